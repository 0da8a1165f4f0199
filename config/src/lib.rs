//! The configuration kit shared by Portcullis servers.
//!
//! Each server describes its file as serde structs and turns them into validated domain types; this
//! crate supplies what every such loader needs, written once:
//!
//! - [`deserialize_yaml`]: YAML text into a raw serde type, with a [`ConfigError`] that names the
//!   file, the line and the key path (`session.cookies[0].domain`) of the first problem;
//! - [`locate`]: the line of a key path, for errors found after deserialisation;
//! - [`parse_duration`]: Authelia's duration forms (`90`, `5m`, `1h30m`, `2 hours`);
//! - [`ListenAddress`]: Authelia's `tcp://host:port/path` listen addresses (IPv4, IPv6, path prefix);
//! - [`SecretFile`]: secrets read from files named by `…_FILE` environment variables;
//! - [`resolve_path`]: relative paths taken from the configuration file's folder;
//! - [`apply_filters`]: Authelia's `template` and `expand-env` file filters;
//! - [`RawDuration`], [`RawSecret`]: durations and secrets as written, for raw serde types.
//!
//! ```
//! use portcullis_config::{deserialize_yaml, parse_duration, ListenAddress};
//!
//! #[derive(Debug, serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Raw { server: Server }
//! #[derive(Debug, serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Server { address: String }
//!
//! let raw: Raw = deserialize_yaml("app.yml".as_ref(), "server:\n  address: tcp://:9091/auth\n").unwrap();
//! let address = ListenAddress::parse(&raw.server.address, 9091).unwrap();
//! assert_eq!(address.socket().port(), 9091);
//! assert_eq!(address.path(), "/auth");
//! assert_eq!(parse_duration("1h30m"), Ok(5400));
//!
//! let error = deserialize_yaml::<Raw>("app.yml".as_ref(), "server:\n  adress: x\n").unwrap_err();
//! assert_eq!(error.line, Some(2));
//! assert_eq!(error.key, "server.adress");
//! ```

#![warn(missing_docs, unreachable_pub)]

mod address;
mod duration;
mod error;
mod filters;
mod locate;
mod paths;
mod raw_values;
mod secret_file;
mod yaml;

pub use address::{AddressError, ListenAddress};
pub use duration::{DurationError, parse_duration};
pub use error::{ConfigError, ConfigWarning};
pub use filters::{Filter, FilterInputs, ProcessInputs, apply_filters};
pub use locate::locate;
pub use paths::resolve_path;
pub use raw_values::{RawDuration, RawSecret};
pub use secret_file::{SecretFile, SecretFileError};
pub use yaml::deserialize_yaml;
