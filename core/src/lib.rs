//! `portcullis-core`: where the request was going, who sent it, and where to send the browser.
//!
//! This crate is the pure vocabulary every Portcullis server shares. It does no I/O: no sockets, no
//! files, no clock, no global state. Time and configuration come in as arguments, so every rule is a
//! table-driven unit test.
//!
//! - [`resolve`] builds a [`Target`] from a proxy's check request in any of the Authelia and authentik
//!   dialects, believing forwarded headers only from [`TrustedProxies`].
//! - [`domain`] canonicalises hosts and matches cookie domains on label boundaries.
//! - [`redirect`] builds the portal redirection URL, picks the status, and judges post-login targets.
//! - [`decide`] turns the required level and the authentication outcome into a [`Decision`].
//! - [`credential`] reads Basic and Bearer credentials from an `Authorization` value.
//! - [`Secret`] keeps secrets out of logs and compares them in constant time.
//!
//! ```
//! use portcullis_core::{decide, AuthLevel, AuthOutcome, Decision, RequiredLevel, Requirement};
//! let needs_login = Requirement::plain(RequiredLevel::OneFactor);
//! assert_eq!(decide(needs_login, AuthOutcome::anonymous()), Decision::Redirect);
//! assert_eq!(
//!     decide(needs_login, AuthOutcome::authenticated(AuthLevel::OneFactor, false)),
//!     Decision::Allow
//! );
//! ```

#![warn(missing_docs, unreachable_pub)]

pub mod credential;
pub mod decision;
pub mod domain;
pub mod identity;
pub mod redirect;
pub mod secret;
pub mod target;
pub mod trusted;

pub use decision::{AuthOutcome, Decision, RequiredLevel, Requirement, decide};
pub use identity::{AttributeValue, Attributes, AuthLevel, Identity};
pub use secret::Secret;
pub use target::{
    Connection, Dialect, RequestHead, ResolveError, Target, TargetUrl, UrlError, checked_method,
    resolve,
};
pub use trusted::{ClientIp, DEFAULT_TRUSTED_PROXIES, TrustedProxies, client_ip, parse_cidr};
