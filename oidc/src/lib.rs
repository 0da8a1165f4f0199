//! OpenID Connect as pure code: the rules of an OpenID provider (and, for the outpost, of a
//! relying party) without I/O. Time and randomness come in as arguments.
//!
//! - [`authorize`]: the authorization request parsed against its client, errors classified by
//!   whether they may be redirected.
//! - [`pkce`], [`scope`], [`client`], [`client_auth`]: the pieces of that and of the token request.
//! - [`opaque`]: HMAC-signed opaque codes and tokens; [`keys`]: signing keys and the JWK Set;
//!   [`claims`]: ID token and UserInfo claims; [`discovery`]: the metadata documents;
//!   [`response`]: delivering the authorization response.
//! - [`relying_party`]: the client's side, for the outpost: discovery, the provider's JWK Set,
//!   token verification with an algorithm allowlist, the login state, PKCE.
//! - [`store`]: the [`store::OidcStore`] trait and its memory store; the SQLite store is behind
//!   feature `sqlite`.
//!
//! ```
//! use portcullis_oidc::pkce::{verify, Challenge, ChallengeMethod, s256};
//! let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
//! let challenge = Challenge { method: ChallengeMethod::S256, value: s256(verifier) };
//! assert!(verify(Some(&challenge), Some(verifier)).is_ok());
//! assert!(verify(Some(&challenge), None).is_err());
//! ```

#![warn(missing_docs, unreachable_pub)]

pub mod authorize;
pub mod claims;
pub mod client;
pub mod client_auth;
pub mod discovery;
pub mod error;
pub mod jwt;
pub mod keys;
pub mod opaque;
pub mod pkce;
pub mod relying_party;
pub mod response;
pub mod scope;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod store;

pub use error::{ErrorCode, OAuthError, OidcError};
