//! The keys a `private_key_jwt` client publishes at its `jwks_uri`: fetched over https (or
//! loopback http), bounded in size and time, cached, and never fetched more than once a minute
//! per client, whether the last fetch worked or not.

use std::sync::{Arc, PoisonError};

use portcullis_oidc::keys::{Algorithm, ClientKey, JwkSet};

use super::OidcRuntime;
use crate::config::OidcClient;

/// How long fetched keys are used before they are fetched again.
const FRESH_FOR: u64 = 300;
/// The least time between two fetches for one client: an unknown `kid` (the client rotated its
/// key) or a failed fetch waits this long, so a client's callers cannot make the provider fetch
/// on every request.
const RETRY_AFTER: u64 = 60;
/// The largest JWK Set read; a bigger answer is a failed fetch.
const MAX_BYTES: usize = 64 * 1024;
/// How long one fetch may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What is known about one client's `jwks_uri`: the last attempt and the last keys it gave.
#[derive(Debug)]
pub(super) struct FetchedKeys {
    uri: String,
    tried_at: u64,
    fetched_at: u64,
    keys: Arc<Vec<ClientKey>>,
}

impl OidcRuntime {
    /// The client's keys for an assertion naming `kid`: from the cache while fresh, otherwise
    /// fetched (without holding the cache: other clients' assertions do not wait on this one).
    /// `None` when no key is known.
    pub(crate) async fn client_keys(
        &self,
        client: &OidcClient,
        kid: Option<&str>,
        now: u64,
    ) -> Option<Arc<Vec<ClientKey>>> {
        let uri = client.jwks_uri.as_deref()?;
        let previous = {
            let mut cache = self
                .fetched_keys
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let entry = cache.get_mut(&client.client.id).filter(|e| e.uri == uri);
            match entry {
                Some(e) => {
                    let known =
                        kid.is_none_or(|kid| e.keys.iter().any(|k| k.kid.as_deref() == Some(kid)));
                    let fresh = now < e.fetched_at.saturating_add(FRESH_FOR) && known;
                    if fresh || now < e.tried_at.saturating_add(RETRY_AFTER) {
                        return non_empty(&e.keys);
                    }
                    // Claim this fetch: callers meanwhile use the keys known so far.
                    e.tried_at = now;
                    e.keys.clone()
                }
                None => {
                    cache.insert(
                        client.client.id.clone(),
                        FetchedKeys {
                            uri: uri.to_owned(),
                            tried_at: now,
                            fetched_at: 0,
                            keys: Arc::new(Vec::new()),
                        },
                    );
                    Arc::new(Vec::new())
                }
            }
        };
        let default = client.assertion_alg.unwrap_or(Algorithm::RS256);
        let keys = match fetch(uri, default).await {
            Ok(keys) => Arc::new(keys),
            Err(reason) => {
                tracing::warn!(client = %client.client.id, uri, reason, "could not fetch the client's keys from its jwks_uri");
                return non_empty(&previous);
            }
        };
        let mut cache = self
            .fetched_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache.insert(
            client.client.id.clone(),
            FetchedKeys {
                uri: uri.to_owned(),
                tried_at: now,
                fetched_at: now,
                keys: keys.clone(),
            },
        );
        non_empty(&keys)
    }
}

fn non_empty(keys: &Arc<Vec<ClientKey>>) -> Option<Arc<Vec<ClientKey>>> {
    (!keys.is_empty()).then(|| keys.clone())
}

/// One fetch: a 2xx answer of at most [`MAX_BYTES`] holding a JWK Set; keys it cannot use (other
/// types, encryption keys) are left out.
async fn fetch(uri: &str, default: Algorithm) -> Result<Vec<ClientKey>, String> {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let mut response = client.get(uri).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BYTES as u64)
    {
        return Err(format!("the answer is larger than {MAX_BYTES} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_BYTES {
            return Err(format!("the answer is larger than {MAX_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("not a JWK Set: {e}"))?;
    Ok(set
        .keys
        .iter()
        .filter_map(|k| ClientKey::from_jwk(k, default).ok())
        .collect())
}
