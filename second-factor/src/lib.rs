//! Second factors as pure code, for `portcullis-verify` and anything else that checks them:
//! no I/O, no clock, no global randomness — the time and the random source come in as arguments.
//!
//! - [`totp`]: RFC 6238 codes, checked in Authelia's counter order with the matched step returned
//!   for replay protection; [`otpauth`]: the `otpauth://` URI as Authelia writes it.
//! - [`encryption`]: Authelia's storage encryption, both schemes, so an Authelia database keeps
//!   working; [`signature`]: the keyed signatures of used TOTP windows and one-time codes.
//! - [`one_time_code`]: the codes that elevate a session; [`redact`]: email addresses as the user
//!   info shows them; [`datetime`]: times as Authelia's rows and API write them; [`uuid`]: UUIDs
//!   as its rows write them.
//! - `sqlite` (feature `sqlite`): the second factors in Authelia's own tables.
//!
//! The reference is docs/reference/second-factor.md.
//!
//! ```
//! use portcullis_second_factor::totp::{code_at, validate, TotpParameters, TotpSecret};
//! let secret = TotpSecret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")?;
//! let parameters = TotpParameters::default();
//! let now = 1_700_000_000;
//! let code = code_at(&secret, parameters, now);
//! let matched = validate(&secret, parameters, &code, now + 30, 1)?.expect("one step of skew");
//! assert_eq!(matched.step, now / 30);
//! assert_eq!(validate(&secret, parameters, &code, now + 90, 1)?, None);
//! # Ok::<(), portcullis_second_factor::SecondFactorError>(())
//! ```

#![warn(missing_docs, unreachable_pub)]

pub mod datetime;
pub mod encryption;
mod error;
pub mod one_time_code;
pub mod otpauth;
pub mod redact;
pub mod signature;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod totp;
pub mod uuid;

pub use error::SecondFactorError;
