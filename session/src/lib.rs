//! `portcullis-session`: remembered logins.
//!
//! - [`SessionId`]: 256 random bits from the CSPRNG you pass in, as 43 base64url characters; a
//!   malformed value never parses, and `Debug` shows only a prefix.
//! - [`Session`] and [`Lifetime`]: the record and Authelia's lifetime rules (`expiration`,
//!   `inactivity`, `remember_me`), judged by [`Session::validity`] at a `now` you pass in.
//! - [`CookieSpec`] renders `Set-Cookie`; [`find_session_cookie`] reads only our cookie from a
//!   request, bounded, picking the first well-formed copy when duplicates arrive.
//! - [`SessionStore`]: the async, object-safe store trait (`Arc<dyn SessionStore>`), with
//!   [`MemoryStore`] (bounded, per-user index) and, behind the `sqlite` feature, `SqliteStore`
//!   (one SQLite file, served from memory, written through).
//! - [`claims`]: the outpost's sessions (opaque IdP claims and tokens) and their store trait,
//!   indexed by `(provider, sub)` and `(provider, sid)` for sign-out and back-channel logout.
//!
//! The model (ids, sessions, cookies, the memory stores) does no I/O and reads no clock: time is a
//! `u64` of unix seconds and randomness a `rand_core::CryptoRng`, both passed in. Only the
//! `sqlite` and `redis` features bring in files, sockets, tokio and threads.
//!
//! ```
//! use portcullis_core::{AuthLevel, Identity};
//! use portcullis_session::{
//!     find_session_cookie, CookieSpec, Lifetime, MemoryStore, Session, SessionId, SessionStore,
//!     Validity,
//! };
//! use rand::SeedableRng;
//!
//! let now = 1_700_000_000;
//! let lifetime = Lifetime::default(); // 1 h expiration, 5 min inactivity, 30 days remember-me
//! let mut rng = rand::rngs::StdRng::from_os_rng();
//! let session = Session::new(
//!     SessionId::generate(&mut rng),
//!     "example.com",
//!     Identity::user("alice", AuthLevel::OneFactor),
//!     false,
//!     now,
//!     &lifetime,
//! );
//! assert_eq!(session.validity(now + 60, &lifetime), Validity::Valid);
//! assert_eq!(session.validity(now + 301, &lifetime), Validity::Inactive);
//!
//! let spec = CookieSpec::new("authelia_session", "example.com").unwrap();
//! let set_cookie = spec.set_cookie(&session.id, Some(session.max_age(now)));
//! assert!(set_cookie.ends_with("; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"));
//!
//! let mut headers = http::HeaderMap::new();
//! let pair = format!("theme=dark; authelia_session={}", session.id.as_str());
//! headers.insert(http::header::COOKIE, pair.parse().unwrap());
//! assert_eq!(find_session_cookie(&headers, "authelia_session"), Some(session.id.clone()));
//!
//! let store: std::sync::Arc<dyn SessionStore> = std::sync::Arc::new(MemoryStore::new());
//! tokio::runtime::Runtime::new().unwrap().block_on(async {
//!     store.put(&session).await.unwrap();
//!     assert_eq!(store.get(&session.id, now + 60).await.unwrap(), Some(session.clone()));
//!     assert_eq!(store.delete_user("ALICE").await.unwrap(), 1);
//! });
//! ```

#![warn(missing_docs, unreachable_pub)]

mod ceremony;
pub mod claims;
mod cookie;
mod id;
mod memory;
mod model;
#[cfg(feature = "redis")]
mod redis_store;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;

pub use ceremony::{CeremonyStore, MemoryCeremonies};
pub use cookie::{
    CookieLimits, CookieLookup, CookieSpec, CookieSpecError, MAX_COOKIE_HEADER_BYTES,
    MAX_COOKIE_PAIRS, SameSite, find_session_cookie, lookup_session_cookie,
    lookup_session_cookie_with,
};
pub use id::{SESSION_ID_BYTES, SESSION_ID_LEN, SessionId};
pub use memory::{DEFAULT_MAX_ENTRIES, MemoryStore};
pub use model::{
    DEFAULT_EXPIRATION, DEFAULT_INACTIVITY, DEFAULT_REMEMBER_ME, Lifetime, Session, Validity,
};
#[cfg(feature = "redis")]
pub use redis_store::{RedisConfig, RedisSentinel, RedisStore, RedisTls};
#[cfg(feature = "sqlite")]
pub use sqlite::{
    DEFAULT_ACTIVITY_PERSIST_INTERVAL, EXTERNAL_CHANGE_CHECK_INTERVAL, SqliteOptions, SqliteStore,
};
pub use store::{SessionStore, StoreError};
