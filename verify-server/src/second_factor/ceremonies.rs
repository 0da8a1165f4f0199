//! The second factors' ceremony state (a TOTP registration waiting for its first code, an
//! elevated session, WebAuthn challenges, passkey sessions, password-reset permits) in the
//! [`CeremonyStore`]: this server's memory, or the sessions' Redis when `session.redis` is set,
//! so that behind several replicas a ceremony begun on one finishes on any other and a restart
//! forgets nothing. A store failure reads as "no ceremony" and refuses the step (fail closed).

use std::net::IpAddr;

use portcullis_second_factor::totp::{Algorithm, Digits, Period, TotpParameters, TotpSecret};
use portcullis_session::{CeremonyStore, SessionId};
use portcullis_webauthn::encoding::{Challenge, base64url, decode_binary};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::SecondFactorRuntime;
use super::webauthn::WebOrigin;

const TOTP_REGISTRATION: &str = "totp-registration";
const ELEVATION: &str = "elevation";
const WEBAUTHN_REGISTRATION: &str = "webauthn-registration";
const WEBAUTHN_ASSERTION: &str = "webauthn-assertion";
const PASSKEY_LOGIN: &str = "passkey-login";
const PASSKEY_SESSION: &str = "passkey-session";
const PASSWORD_RESET: &str = "password-reset";

/// A registration waiting for its first code.
#[derive(Debug, Clone)]
pub(crate) struct PendingTotp {
    pub(crate) secret: TotpSecret,
    pub(crate) parameters: TotpParameters,
    pub(crate) expires: u64,
}

/// An elevated session: until when, and from which address.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Elevation {
    pub(crate) expires: u64,
    pub(crate) ip: IpAddr,
}

/// A WebAuthn ceremony begun: what its answer must match, and until when.
#[derive(Debug, Clone)]
pub(crate) struct Ceremony {
    pub(crate) challenge: Challenge,
    pub(crate) origin: WebOrigin,
    pub(crate) expires: u64,
    /// A registration's description.
    pub(crate) description: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredTotp {
    secret: String,
    algorithm: String,
    digits: u32,
    period: u64,
    expires: u64,
}

#[derive(Serialize, Deserialize)]
struct StoredCeremony {
    challenge: String,
    origin: String,
    rp_id: String,
    expires: u64,
    description: Option<String>,
}

impl StoredCeremony {
    fn from(c: &Ceremony) -> Self {
        Self {
            challenge: base64url(c.challenge.as_bytes()),
            origin: c.origin.origin.clone(),
            rp_id: c.origin.rp_id.clone(),
            expires: c.expires,
            description: c.description.clone(),
        }
    }

    fn into_ceremony(self) -> Option<Ceremony> {
        let bytes: [u8; 32] = decode_binary("challenge", &self.challenge)
            .ok()?
            .try_into()
            .ok()?;
        Some(Ceremony {
            challenge: Challenge::new(bytes),
            origin: WebOrigin {
                origin: self.origin,
                rp_id: self.rp_id,
            },
            expires: self.expires,
            description: self.description,
        })
    }
}

impl SecondFactorRuntime {
    fn ceremonies(&self) -> &dyn CeremonyStore {
        match self.shared_ceremonies.get() {
            Some(shared) => shared.as_ref(),
            None => &self.local_ceremonies,
        }
    }

    async fn put<T: Serialize>(
        &self,
        kind: &str,
        key: &str,
        value: &T,
        expires: u64,
        now: u64,
    ) -> bool {
        let Ok(bytes) = serde_json::to_vec(value) else {
            return false;
        };
        match self
            .ceremonies()
            .put_ceremony(kind, key, &bytes, expires, now)
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(kind, error = %e, "ceremony state could not be kept: the step is refused");
                false
            }
        }
    }

    async fn read<T: DeserializeOwned>(
        &self,
        kind: &str,
        key: &str,
        now: u64,
        take: bool,
    ) -> Option<T> {
        let store = self.ceremonies();
        let found = if take {
            store.take_ceremony(kind, key, now).await
        } else {
            store.get_ceremony(kind, key, now).await
        };
        match found {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(kind, error = %e, "ceremony state could not be read: the step is refused");
                None
            }
        }
    }

    async fn forget(&self, kind: &str, key: &str) {
        if let Err(e) = self.ceremonies().delete_ceremony(kind, key).await {
            tracing::warn!(kind, error = %e, "ceremony state could not be removed");
        }
    }

    /// Keep `session`'s pending TOTP registration; false when it cannot be kept.
    pub(crate) async fn set_pending(
        &self,
        session: &SessionId,
        pending: PendingTotp,
        now: u64,
    ) -> bool {
        let stored = StoredTotp {
            secret: pending.secret.to_base32(),
            algorithm: pending.parameters.algorithm.as_str().to_owned(),
            digits: pending.parameters.digits.get(),
            period: pending.parameters.period.get(),
            expires: pending.expires,
        };
        self.put(
            TOTP_REGISTRATION,
            session.as_str(),
            &stored,
            pending.expires,
            now,
        )
        .await
    }

    /// The pending registration of `session`, unexpired at `now`.
    pub(crate) async fn pending(&self, session: &SessionId, now: u64) -> Option<PendingTotp> {
        let s: StoredTotp = self
            .read(TOTP_REGISTRATION, session.as_str(), now, false)
            .await?;
        Some(PendingTotp {
            secret: TotpSecret::from_base32(&s.secret).ok()?,
            parameters: TotpParameters {
                algorithm: Algorithm::parse(&s.algorithm).ok()?,
                digits: Digits::new(s.digits).ok()?,
                period: Period::new(s.period).ok()?,
            },
            expires: s.expires,
        })
    }

    pub(crate) async fn clear_pending(&self, session: &SessionId) {
        self.forget(TOTP_REGISTRATION, session.as_str()).await;
    }

    pub(crate) async fn set_elevation(
        &self,
        session: &SessionId,
        elevation: Elevation,
        now: u64,
    ) -> bool {
        self.put(
            ELEVATION,
            session.as_str(),
            &elevation,
            elevation.expires,
            now,
        )
        .await
    }

    /// The elevation of `session` if it is unexpired at `now` and was made from `ip`; one made
    /// from another address is deleted (docs/reference/second-factor.md §3.2).
    pub(crate) async fn elevation_of(
        &self,
        session: &SessionId,
        ip: Option<IpAddr>,
        now: u64,
    ) -> Option<Elevation> {
        let current: Elevation = self.read(ELEVATION, session.as_str(), now, false).await?;
        if current.expires > now && Some(current.ip) == ip {
            Some(current)
        } else {
            self.forget(ELEVATION, session.as_str()).await;
            None
        }
    }

    fn ceremony_kind(registration: bool) -> &'static str {
        if registration {
            WEBAUTHN_REGISTRATION
        } else {
            WEBAUTHN_ASSERTION
        }
    }

    /// Keep a WebAuthn ceremony of `session` (`registration` or assertion).
    pub(crate) async fn set_ceremony(
        &self,
        registration: bool,
        session: &SessionId,
        ceremony: Ceremony,
        now: u64,
    ) -> bool {
        let expires = ceremony.expires;
        self.put(
            Self::ceremony_kind(registration),
            session.as_str(),
            &StoredCeremony::from(&ceremony),
            expires,
            now,
        )
        .await
    }

    /// Take the ceremony of `session` (it is used once, whatever the outcome), if unexpired.
    pub(crate) async fn take_ceremony(
        &self,
        registration: bool,
        session: &SessionId,
        now: u64,
    ) -> Option<Ceremony> {
        let stored: StoredCeremony = self
            .read(
                Self::ceremony_kind(registration),
                session.as_str(),
                now,
                true,
            )
            .await?;
        stored.into_ceremony().filter(|c| c.expires > now)
    }

    /// Keep a passkey login's ceremony under its challenge (the browser has no session yet).
    pub(crate) async fn set_passkey_login(&self, ceremony: Ceremony, now: u64) -> bool {
        let key = base64url(ceremony.challenge.as_bytes());
        let expires = ceremony.expires;
        self.put(
            PASSKEY_LOGIN,
            &key,
            &StoredCeremony::from(&ceremony),
            expires,
            now,
        )
        .await
    }

    /// Take the passkey login whose challenge is `challenge`, if unexpired.
    pub(crate) async fn take_passkey_login(&self, challenge: &[u8], now: u64) -> Option<Ceremony> {
        if challenge.len() != 32 {
            return None;
        }
        let stored: StoredCeremony = self
            .read(PASSKEY_LOGIN, &base64url(challenge), now, true)
            .await?;
        stored.into_ceremony().filter(|c| c.expires > now)
    }

    /// Note that `session` logged in with a passkey, until `expires`.
    pub(crate) async fn mark_passkey_session(
        &self,
        session: &SessionId,
        expires: u64,
        now: u64,
    ) -> bool {
        self.put(PASSKEY_SESSION, session.as_str(), &true, expires, now)
            .await
    }

    /// Whether `session` logged in with a passkey (and has not reached two factors since);
    /// `None` when the store cannot say, which every caller treats as a refusal.
    pub(crate) async fn passkey_session(&self, session: &SessionId, now: u64) -> Option<bool> {
        match self
            .ceremonies()
            .get_ceremony(PASSKEY_SESSION, session.as_str(), now)
            .await
        {
            Ok(found) => Some(found.is_some()),
            Err(e) => {
                tracing::warn!(error = %e, "whether the session logged in with a passkey cannot be read: refused");
                None
            }
        }
    }

    /// True unless `session` is known to have logged in with a password: a possession factor
    /// (TOTP, WebAuthn) may then not be its second factor.
    pub(crate) async fn is_passkey_session(&self, session: &SessionId, now: u64) -> bool {
        self.passkey_session(session, now).await != Some(false)
    }

    /// Allow the browser holding the reset cookie `key` to set `username`'s password until
    /// `expires`.
    pub(crate) async fn permit_reset(
        &self,
        key: &str,
        username: &str,
        expires: u64,
        now: u64,
    ) -> bool {
        self.put(PASSWORD_RESET, key, &username, expires, now).await
    }

    /// The user the reset cookie `key` may set the password of.
    pub(crate) async fn reset_permit(&self, key: &str, now: u64) -> Option<String> {
        self.read(PASSWORD_RESET, key, now, false).await
    }

    pub(crate) async fn end_reset(&self, key: &str) {
        self.forget(PASSWORD_RESET, key).await;
    }

    /// Move what belongs to a session to its new id (the id changes when the level rises). A
    /// session raised to two factors is no longer a passkey-only session.
    pub(crate) async fn rename_session(&self, old: &SessionId, new: &SessionId, now: u64) {
        for kind in [
            TOTP_REGISTRATION,
            ELEVATION,
            WEBAUTHN_REGISTRATION,
            WEBAUTHN_ASSERTION,
        ] {
            let store = self.ceremonies();
            if let Ok(Some(bytes)) = store.take_ceremony(kind, old.as_str(), now).await {
                let expires = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v["expires"].as_u64())
                    .unwrap_or(0);
                if expires > now
                    && let Err(e) = store
                        .put_ceremony(kind, new.as_str(), &bytes, expires, now)
                        .await
                {
                    tracing::warn!(kind, error = %e, "ceremony state could not follow the new session id");
                }
            }
        }
        self.forget(PASSKEY_SESSION, old.as_str()).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use portcullis_session::{CeremonyStore, SessionId, StoreError};

    use super::{Elevation, SecondFactorRuntime};
    use crate::config::{SecretSources, parse};

    /// A ceremony store that cannot answer (Redis down).
    #[derive(Debug)]
    struct Down;

    #[async_trait::async_trait]
    impl CeremonyStore for Down {
        async fn put_ceremony(
            &self,
            _: &str,
            _: &str,
            _: &[u8],
            _: u64,
            _: u64,
        ) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn get_ceremony(
            &self,
            _: &str,
            _: &str,
            _: u64,
        ) -> Result<Option<Vec<u8>>, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn take_ceremony(
            &self,
            _: &str,
            _: &str,
            _: u64,
        ) -> Result<Option<Vec<u8>>, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
        async fn delete_ceremony(&self, _: &str, _: &str) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
    }

    fn runtime(dir: &std::path::Path) -> SecondFactorRuntime {
        let yaml = "authentication_backend:\n  file:\n    path: users.yml\naccess_control:\n  default_policy: one_factor\nsession:\n  secret: a-test-session-secret-0123456789\n  cookies:\n    - domain: example.com\n      authelia_url: https://auth.example.com\nstorage:\n  encryption_key: a_not_so_secure_encryption_key\n";
        let path = dir.join("configuration.yml");
        let (config, _) = parse(&path, yaml, &SecretSources::default()).unwrap();
        SecondFactorRuntime::open(&config.second_factor, &dir.join("db.sqlite3"))
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn a_ceremony_store_that_cannot_answer_refuses_every_step() {
        let dir = tempfile::tempdir().unwrap();
        let id = SessionId::generate(&mut rand::rng());
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        // In memory: a password session is known as one, and an elevation is kept.
        let rt = runtime(dir.path());
        assert_eq!(rt.passkey_session(&id, 10).await, Some(false));
        assert!(!rt.is_passkey_session(&id, 10).await);
        assert!(
            rt.set_elevation(&id, Elevation { expires: 100, ip }, 10)
                .await
        );
        assert!(rt.elevation_of(&id, Some(ip), 10).await.is_some());
        // Down: nothing is kept, nothing is found, and a session's kind is unknown — which bars
        // a possession factor as its second factor and the password route alike.
        let rt = runtime(dir.path());
        assert!(rt.attach_ceremonies(Arc::new(Down)));
        assert_eq!(rt.passkey_session(&id, 10).await, None);
        assert!(rt.is_passkey_session(&id, 10).await);
        assert!(
            !rt.set_elevation(&id, Elevation { expires: 100, ip }, 10)
                .await
        );
        assert!(rt.elevation_of(&id, Some(ip), 10).await.is_none());
        assert!(rt.take_ceremony(true, &id, 10).await.is_none());
        assert!(rt.reset_permit("cookie", 10).await.is_none());
    }
}
