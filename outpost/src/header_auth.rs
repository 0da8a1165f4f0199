//! Machine credentials in `Authorization` (docs/reference/outpost.md §8, §14 item 1): Bearer
//! JWTs issued for this client, validated locally; Basic with the `goauthentik.io/token`
//! username (the password is a Bearer token); Basic app passwords through authentik's
//! `client_credentials` request. Results are cached per credential: 60 s when accepted, 10 s when
//! refused (bounded), so a client costs the provider one call a minute, not one per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use portcullis_core::credential::{Credential, parse_credential};
use sha2::{Digest as _, Sha256};

use crate::claims::{Claims, SessionData};
use crate::config::BasicAuth;
use crate::provider::ProviderRuntime;

/// How long an accepted credential is remembered.
const POSITIVE_TTL: u64 = 60;
/// How long a refused credential is remembered.
const NEGATIVE_TTL: u64 = 10;
/// The most credentials remembered per provider.
const MAX_ENTRIES: usize = 10_000;

/// The username whose password is a token.
const TOKEN_USERNAME: &str = "goauthentik.io/token";

/// Remembered credentials, keyed by the SHA-256 of the `Authorization` value (the value itself
/// is never kept).
#[derive(Debug, Default)]
pub(crate) struct HeaderCache {
    entries: Mutex<HashMap<[u8; 32], Remembered>>,
    /// One check with the provider at a time per credential (docs/reference/security.md R9.5):
    /// concurrent requests with the same `Authorization` wait for the first one's answer.
    in_flight: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
}

/// Until when, and the outcome (`None`: refused).
type Remembered = (u64, Option<Arc<SessionData>>);

impl HeaderCache {
    fn get(&self, key: &[u8; 32], now: u64) -> Option<Option<Arc<SessionData>>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|(until, _)| now < *until)
            .map(|(_, outcome)| outcome.clone())
    }

    fn put(&self, key: [u8; 32], outcome: Option<Arc<SessionData>>, now: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (until, _)| now < *until);
            if entries.len() >= MAX_ENTRIES {
                // Still full of live entries: forget the refusals first, then everything. A
                // forgotten credential is only checked again.
                entries.retain(|_, (_, outcome)| outcome.is_some());
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
        }
        // An accepted credential is never remembered past its token's expiry
        // (docs/reference/security.md R7.4).
        let until = match &outcome {
            Some(data) => (now + POSITIVE_TTL).min(data.claims.exp),
            None => now + NEGATIVE_TTL,
        };
        entries.insert(key, (until, outcome));
    }

    /// The lock that makes checks of one credential single-flight.
    fn flight(&self, key: [u8; 32]) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if flights.len() >= MAX_ENTRIES {
            // Only idle locks are dropped: a lock someone holds has another owner.
            flights.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        flights.entry(key).or_default().clone()
    }

    fn landed(&self, key: &[u8; 32]) {
        let mut flights = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if flights
            .get(key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            flights.remove(key);
        }
    }

    /// Forget every accepted credential of `sub` (sign-out and back-channel logout).
    pub(crate) fn forget_sub(&self, sub: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, (_, outcome)| outcome.as_ref().is_none_or(|d| d.claims.sub != sub));
    }
}

/// The outcome of reading `Authorization`.
#[derive(Debug)]
pub(crate) enum HeaderAuth {
    /// No `Authorization` header, or a scheme this provider does not read.
    Absent,
    /// A credential that does not authenticate.
    Refused,
    /// Authenticated; `fresh` when the provider was asked now (not a cache hit).
    Accepted {
        /// Who.
        data: Arc<SessionData>,
        /// Checked now rather than remembered.
        fresh: bool,
    },
}

/// A credential of `Authorization` the outpost reads.
enum Presented {
    Bearer(String),
    Basic {
        username: String,
        password: portcullis_core::Secret,
    },
}

fn presented(value: &http::HeaderValue) -> Result<Option<Presented>, ()> {
    let text = value.to_str().map_err(|_| ())?;
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        let token = rest.trim();
        if token.is_empty() || token.contains(' ') {
            return Err(());
        }
        return Ok(Some(Presented::Bearer(token.to_owned())));
    }
    match parse_credential(Some(value)) {
        Credential::Basic { username, password } => {
            Ok(Some(Presented::Basic { username, password }))
        }
        Credential::Absent => Ok(None),
        Credential::Invalid(_) => Err(()),
        // Other schemes are not ours to judge.
        _ => Ok(None),
    }
}

/// Check the `Authorization` value `value` for `app` at `now`.
pub(crate) async fn authenticate(
    app: &ProviderRuntime,
    value: &http::HeaderValue,
    now: u64,
) -> HeaderAuth {
    let config = &app.config;
    let credential = match presented(value) {
        Ok(Some(c)) => c,
        Ok(None) => return HeaderAuth::Absent,
        Err(()) => return HeaderAuth::Refused,
    };
    let relevant = match &credential {
        Presented::Bearer(_) => config.bearer,
        Presented::Basic { username, .. } if username == TOKEN_USERNAME => config.bearer,
        Presented::Basic { .. } => config.basic != BasicAuth::Off,
    };
    if !relevant {
        return HeaderAuth::Absent;
    }
    let key: [u8; 32] = Sha256::digest(value.as_bytes()).into();
    if let Some(cached) = app.header_cache.get(&key, now) {
        return match cached {
            Some(data) => HeaderAuth::Accepted { data, fresh: false },
            None => HeaderAuth::Refused,
        };
    }
    let flight = app.header_cache.flight(key);
    let outcome = {
        let _one = flight.lock().await;
        // Another request may have checked it while this one waited.
        if let Some(cached) = app.header_cache.get(&key, now) {
            drop(_one);
            drop(flight);
            app.header_cache.landed(&key);
            return match cached {
                Some(data) => HeaderAuth::Accepted { data, fresh: false },
                None => HeaderAuth::Refused,
            };
        }
        let outcome = check(app, &credential, now).await.map(Arc::new);
        app.header_cache.put(key, outcome.clone(), now);
        outcome
    };
    drop(flight);
    app.header_cache.landed(&key);
    match outcome {
        Some(data) => HeaderAuth::Accepted { data, fresh: true },
        None => HeaderAuth::Refused,
    }
}

async fn check(app: &ProviderRuntime, credential: &Presented, now: u64) -> Option<SessionData> {
    let config = &app.config;
    let audiences: Vec<&str> = std::iter::once(config.client_id.as_str())
        .chain(config.federated_audiences.iter().map(String::as_str))
        .collect();
    let bearer = |token: String| async move {
        match app.verify(&token, &audiences, now).await {
            // A session made by header auth carries no `sid`: back-channel logout of a
            // browser session does not end it (docs/reference/outpost.md §4.5).
            Ok(map) => Claims::from_map(&map).map(|claims| SessionData {
                claims: Claims {
                    sid: None,
                    ..claims
                },
                raw_token: token,
                id_token: None,
                refresh_token: None,
                created_at: now,
            }),
            Err(e) => {
                tracing::info!(provider = %config.name, reason = %e, "Bearer token refused");
                None
            }
        }
    };
    match credential {
        Presented::Bearer(token) => bearer(token.clone()).await,
        Presented::Basic { username, password } if username == TOKEN_USERNAME => {
            bearer(password.expose().to_owned()).await
        }
        Presented::Basic { username, password } if config.basic == BasicAuth::Authentik => {
            let discovered = app.discovered()?;
            let answer = match app
                .app_password(&discovered, username, password.expose())
                .await
            {
                Ok(a) => a,
                Err(e) => {
                    tracing::info!(provider = %config.name, user = %username, reason = %e, "Basic credentials refused by the provider");
                    return None;
                }
            };
            let id_token = answer.id_token?;
            let only_client = [config.client_id.as_str()];
            match app.verify(&id_token, &only_client, now).await {
                Ok(map) => Claims::from_map(&map).map(|claims| SessionData {
                    claims: Claims {
                        sid: None,
                        ..claims
                    },
                    raw_token: id_token.clone(),
                    id_token: Some(id_token),
                    refresh_token: None,
                    created_at: now,
                }),
                Err(e) => {
                    tracing::warn!(provider = %config.name, reason = %e, "the provider's ID token for Basic credentials does not verify");
                    None
                }
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(sub: &str) -> Arc<SessionData> {
        Arc::new(SessionData {
            claims: Claims {
                sub: sub.into(),
                exp: u64::MAX,
                ..Claims::default()
            },
            raw_token: String::new(),
            id_token: None,
            refresh_token: None,
            created_at: 0,
        })
    }

    #[test]
    fn accepted_for_a_minute_refused_for_ten_seconds_and_bounded() {
        let cache = HeaderCache::default();
        // A token expiring in 20 s is remembered 20 s, not 60.
        let mut short = (*data("s")).clone();
        short.claims.exp = 120;
        cache.put([9; 32], Some(Arc::new(short)), 100);
        assert!(cache.get(&[9; 32], 119).is_some());
        assert!(cache.get(&[9; 32], 120).is_none());
        cache.put([1; 32], Some(data("a")), 100);
        cache.put([2; 32], None, 100);
        assert!(matches!(cache.get(&[1; 32], 159), Some(Some(_))));
        assert!(cache.get(&[1; 32], 160).is_none(), "60 s, not extended");
        assert!(matches!(cache.get(&[2; 32], 109), Some(None)));
        assert!(cache.get(&[2; 32], 110).is_none());
        cache.forget_sub("a");
        assert!(cache.get(&[1; 32], 101).is_none());
        for i in 0..MAX_ENTRIES + 5 {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            cache.put(key, None, 200);
        }
        assert!(cache.entries.lock().unwrap().len() <= MAX_ENTRIES);
    }
}
