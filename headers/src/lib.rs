//! `portcullis-headers`: what the upstream learns about the requester, and how spoofed copies are
//! kept out.
//!
//! A pure crate (no I/O, no clock, no global state) shared by `portcullis-verify` and
//! `portcullis-outpost`:
//!
//! - A [`Profile`] picks the identity headers: [`Profile::Authelia`] (`Remote-User`,
//!   `Remote-Groups`, `Remote-Name`, `Remote-Email`), [`Profile::Authentik`] (the twelve
//!   `X-authentik-*` headers) or [`Profile::Custom`]. Configuration deserialises into
//!   [`ProfileConfig`] and is validated by [`Profile::try_from`].
//! - [`emit`] renders the profile for an [`Identity`]. Every header of the profile is always
//!   present, with empty user-derived values for an anonymous request, so a proxy that copies them
//!   overwrites client-sent copies. A value with a control character is emitted empty and reported
//!   in [`HeaderSet::rejected`].
//! - [`strip_names`] builds the [`StripList`] of inbound names to delete before forwarding (any case,
//!   `_` read as `-`); [`strip_underscore_headers`] drops every header whose name holds `_`.
//! - [`basic_upstream`] builds the upstream `Authorization: Basic` value from user attributes, and
//!   [`additional_headers`] renders `additionalHeaders` attributes (user over groups).
//!
//! ```
//! use http::{HeaderMap, HeaderValue};
//! use portcullis_core::{AuthLevel, Identity};
//! use portcullis_headers::{Profile, ProfileConfig, emit, strip_names};
//!
//! let profile = Profile::try_from(ProfileConfig::Authelia)?;
//! let alice = Identity::user("alice", AuthLevel::TwoFactor)
//!     .with_groups(["admins", "dev"])
//!     .with_emails(["alice@example.com", "a@example.org"]);
//!
//! // A client tried to smuggle an identity in.
//! let mut request = HeaderMap::new();
//! request.insert("remote_user", HeaderValue::from_static("root"));
//! request.insert("accept", HeaderValue::from_static("*/*"));
//!
//! strip_names(&profile, &[]).strip(&mut request);
//! let headers = emit(&profile, &alice, None);
//! assert!(headers.rejected().is_empty());
//! headers.apply_to(&mut request);
//!
//! assert_eq!(request["remote-user"], "alice");
//! assert_eq!(request["remote-groups"], "admins,dev");
//! assert_eq!(request["remote-email"], "alice@example.com");
//! assert!(!request.contains_key("remote_user"));
//! assert_eq!(request["accept"], "*/*");
//!
//! // Anonymous: the four headers are still there, empty.
//! let anonymous = emit(&profile, &Identity::anonymous(), None);
//! assert_eq!(anonymous.len(), 4);
//! assert!(anonymous.iter().all(|(_, value)| value.is_empty()));
//! # Ok::<(), portcullis_headers::HeadersError>(())
//! ```
//!
//! [`Identity`]: portcullis_core::Identity

#![warn(missing_docs, unreachable_pub)]

mod additional;
mod basic;
mod custom;
mod error;
mod profile;
mod set;
mod strip;

pub use additional::additional_headers;
pub use basic::basic_upstream;
pub use custom::CustomProfile;
pub use error::HeadersError;
pub use profile::{
    AUTHENTIK_VERSION_PREFIX, AuthentikMeta, CustomProfileConfig, Profile, ProfileConfig, emit,
    names,
};
pub use set::{HeaderSet, Rejection, RejectionReason, canonical_name};
pub use strip::{StripList, strip_names, strip_underscore_headers};
