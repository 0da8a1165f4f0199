//! One provider at run time: its discovered endpoints and keys, its back-channel calls to the
//! OpenID provider, its cookie and caches.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use portcullis_headers::{AuthentikMeta, Profile, ProfileConfig, StripList, strip_names};
use portcullis_oidc::relying_party::{IdpKeys, ProviderMetadata, TokenCheck, verify_token};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::config::{Mode, Provider};
use crate::cookie::SessionCookie;
use crate::header_auth::HeaderCache;

/// The largest answer read from the provider.
const MAX_BODY: usize = 1024 * 1024;
/// How long one back-channel call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The least time between two JWK Set fetches (an unknown `kid` fetches again).
const KEYS_RETRY: u64 = 60;
/// Back-channel calls in flight at once per provider; more wait (docs/reference/security.md R9.5).
const MAX_CALLS: usize = 32;

/// Why a back-channel call failed. Every one of them denies.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// No answer, or an unreadable one.
    #[error("{0}")]
    Transport(String),
    /// An answer with an error status.
    #[error("status {status}: {body}")]
    Status {
        /// The status.
        status: u16,
        /// The start of the body (the provider's `error`).
        body: String,
    },
    /// A token or document that does not verify.
    #[error("{0}")]
    Invalid(String),
}

/// What discovery (or the explicit endpoints) gave.
#[derive(Debug)]
pub(crate) struct Discovered {
    pub(crate) authorization: String,
    pub(crate) token: String,
    pub(crate) userinfo: Option<String>,
    pub(crate) end_session: Option<String>,
    pub(crate) jwks: Option<String>,
    /// The issuer tokens must name; `None` when only endpoints are configured (claims then come
    /// from UserInfo).
    pub(crate) issuer: Option<String>,
    /// The provider signs with the client secret (HS*).
    pub(crate) hmac: bool,
    /// PKCE S256 is sent.
    pub(crate) pkce: bool,
    /// The identity headers, with `X-authentik-meta-jwks`.
    pub(crate) profile: Profile,
}

/// The tokens of a token endpoint answer.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub(crate) access_token: String,
    #[serde(default)]
    pub(crate) id_token: Option<String>,
    #[serde(default)]
    pub(crate) refresh_token: Option<String>,
    #[serde(default)]
    pub(crate) expires_in: Option<u64>,
}

/// One provider.
pub(crate) struct ProviderRuntime {
    pub(crate) config: Provider,
    pub(crate) cookie: SessionCookie,
    /// The key login states are signed with.
    pub(crate) state_key: Vec<u8>,
    /// Inbound headers removed before proxying (§14 item 2).
    pub(crate) strip: StripList,
    pub(crate) header_cache: HeaderCache,
    pub(crate) upstream: Option<(portcullis_proxy::UpstreamClient, portcullis_proxy::Upstream)>,
    outpost_name: String,
    http: reqwest::Client,
    discovered: RwLock<Option<Arc<Discovered>>>,
    keys: RwLock<(u64, Arc<IdpKeys>)>,
    keys_fetch: tokio::sync::Mutex<()>,
    calls: tokio::sync::Semaphore,
}

impl std::fmt::Debug for ProviderRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRuntime")
            .field("name", &self.config.name)
            .field("mode", &self.config.mode)
            .field("ready", &self.discovered().is_some())
            .finish_non_exhaustive()
    }
}

/// A key derived from the cookie secret for one purpose, so the cookie MAC, the login state and
/// PKCE never share a key.
pub(crate) fn derive_key(secret: &str, purpose: &str) -> Vec<u8> {
    use sha2::Digest as _;
    // SHA-256 over a length-prefixed secret and the purpose: a PRF fit for deriving keys from a
    // secret of at least 32 bytes, and it cannot fail.
    let mut hash = Sha256::new();
    hash.update(b"portcullis-outpost key\0");
    hash.update((secret.len() as u64).to_be_bytes());
    hash.update(secret.as_bytes());
    hash.update(purpose.as_bytes());
    hash.finalize().to_vec()
}

fn is_https(url: &url::Url) -> bool {
    url.scheme() == "https"
}

/// Why a provider could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    #[error("providers[{index}] {name}: {message}")]
    Provider {
        index: usize,
        name: String,
        message: String,
    },
}

impl ProviderRuntime {
    pub(crate) fn new(
        index: usize,
        config: Provider,
        outpost_name: &str,
    ) -> Result<Self, SetupError> {
        let fail = |message: String| SetupError::Provider {
            index,
            name: config.name.clone(),
            message,
        };
        let mut builder = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        for (host, ip) in &config.back_channel_resolve {
            builder = builder.resolve(host, std::net::SocketAddr::new(*ip, 0));
        }
        let mut extra_roots = Vec::new();
        if let Some(path) = &config.tls_certificate_authority {
            let pem = std::fs::read(path)
                .map_err(|e| fail(format!("tls_certificate_authority {}: {e}", path.display())))?;
            let certificate = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| fail(format!("tls_certificate_authority {}: {e}", path.display())))?;
            builder = builder.add_root_certificate(certificate);
            extra_roots = pem_certificates(&pem);
        }
        let http = builder
            .build()
            .map_err(|e| fail(format!("cannot build the HTTP client: {e}")))?;
        let upstream = match (&config.mode, &config.internal_host) {
            (Mode::Proxy, Some(internal)) => {
                let target = portcullis_proxy::Upstream::parse(internal)
                    .map_err(|e| fail(format!("internal_host: {e}")))?;
                let client =
                    portcullis_proxy::UpstreamClient::new(portcullis_proxy::ClientOptions {
                        verify_tls: config.internal_tls_verify,
                        extra_roots,
                        ..portcullis_proxy::ClientOptions::default()
                    })
                    .map_err(|e| fail(format!("internal_host: {e}")))?;
                Some((client, target))
            }
            _ => None,
        };
        let cookie = SessionCookie::new(
            config.cookie_name(),
            &config.cookie_domain,
            is_https(&config.external_host),
            derive_key(config.cookie_secret.expose(), "cookie"),
        );
        let state_key = derive_key(config.cookie_secret.expose(), "state");
        let strip = strip_names(&Profile::Authentik(AuthentikMeta::default()), &[]);
        Ok(Self {
            cookie,
            state_key,
            strip,
            header_cache: HeaderCache::default(),
            upstream,
            outpost_name: outpost_name.to_owned(),
            http,
            discovered: RwLock::new(None),
            keys: RwLock::new((0, Arc::new(IdpKeys::default()))),
            keys_fetch: tokio::sync::Mutex::new(()),
            calls: tokio::sync::Semaphore::new(MAX_CALLS),
            config,
        })
    }

    /// The `Max-Age` of the cookie set before the login: `access_token_validity` + 1 s as
    /// authentik sets it (docs/reference/outpost.md §10.1), or a browser-session cookie.
    pub(crate) fn pre_login_max_age(&self) -> Option<u64> {
        self.config.access_token_validity.map(|v| v + 1)
    }

    /// The discovered endpoints, once discovery has succeeded.
    pub(crate) fn discovered(&self) -> Option<Arc<Discovered>> {
        self.discovered
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The profile of the identity headers before discovery (no JWKS URL yet).
    fn profile(&self, jwks: &str) -> Profile {
        let meta = AuthentikMeta {
            jwks_url: jwks.to_owned(),
            outpost: self.outpost_name.clone(),
            provider: self.config.name.clone(),
            app: self.config.app_slug.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        Profile::try_from(ProfileConfig::Authentik(meta.clone()))
            .unwrap_or(Profile::Authentik(meta))
    }

    async fn get(&self, url: &str, bearer: Option<&str>) -> Result<Vec<u8>, CallError> {
        let _slot = self.slot().await?;
        let mut request = self.http.get(url).header("accept", "application/json");
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        read(request.send().await).await
    }

    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<Vec<u8>, CallError> {
        let _slot = self.slot().await?;
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body);
        read(request.send().await).await
    }

    /// A slot for one back-channel call, waited for at most the call timeout.
    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, CallError> {
        match tokio::time::timeout(CALL_TIMEOUT, self.calls.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(CallError::Transport(
                "too many calls to the provider in flight".into(),
            )),
        }
    }

    /// Discover the endpoints (and fetch the keys) once. Explicit `endpoints` win over the
    /// document.
    pub(crate) async fn discover(&self, now: u64) -> Result<(), CallError> {
        let c = &self.config;
        let e = &c.endpoints;
        let metadata = match &c.issuer {
            Some(issuer) => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                let body = self.get(&url, None).await?;
                Some(
                    ProviderMetadata::from_discovery(&body, issuer)
                        .map_err(|e| CallError::Invalid(e.to_string()))?,
                )
            }
            None => None,
        };
        let pick = |explicit: &Option<String>, found: Option<&String>| {
            explicit.clone().or_else(|| found.cloned())
        };
        let m = metadata.as_ref();
        let authorization = pick(&e.authorization, m.map(|m| &m.authorization_endpoint))
            .ok_or_else(|| CallError::Invalid("no authorization endpoint".into()))?;
        let token = pick(&e.token, m.map(|m| &m.token_endpoint))
            .ok_or_else(|| CallError::Invalid("no token endpoint".into()))?;
        let jwks = pick(&e.jwks, m.and_then(|m| m.jwks_uri.as_ref()));
        let hmac = m.is_some_and(ProviderMetadata::signs_with_secret) && c.client_secret.is_some();
        let pkce = match c.pkce {
            crate::config::Pkce::Always => true,
            crate::config::Pkce::Never => false,
            crate::config::Pkce::Auto => {
                m.is_some_and(|m| m.pkce_s256) || c.client_secret.is_none()
            }
        };
        let discovered = Discovered {
            profile: self.profile(jwks.as_deref().unwrap_or("")),
            authorization,
            token,
            userinfo: pick(&e.userinfo, m.and_then(|m| m.userinfo_endpoint.as_ref())),
            end_session: pick(
                &e.end_session,
                m.and_then(|m| m.end_session_endpoint.as_ref()),
            ),
            jwks,
            issuer: c.issuer.clone(),
            hmac,
            pkce,
        };
        if c.issuer.is_some() && discovered.jwks.is_none() && !hmac {
            return Err(CallError::Invalid(
                "the provider publishes no jwks_uri and does not sign with the client secret: tokens cannot be verified".into(),
            ));
        }
        if let Some(jwks) = &discovered.jwks {
            let keys = self.fetch_keys(jwks).await?;
            *self.keys.write().unwrap_or_else(PoisonError::into_inner) = (now, Arc::new(keys));
        }
        *self
            .discovered
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(discovered));
        Ok(())
    }

    async fn fetch_keys(&self, url: &str) -> Result<IdpKeys, CallError> {
        let body = self.get(url, None).await?;
        IdpKeys::from_jwks(&body).map_err(|e| CallError::Invalid(e.to_string()))
    }

    /// Verify a token the provider issued for this client (or, for Bearer, for an accepted
    /// audience). An unknown `kid` fetches the keys again, at most once a minute.
    pub(crate) async fn verify(
        &self,
        token: &str,
        audiences: &[&str],
        now: u64,
    ) -> Result<Map<String, Value>, CallError> {
        let discovered = self
            .discovered()
            .ok_or_else(|| CallError::Invalid("the provider is not discovered yet".into()))?;
        let issuer = discovered.issuer.as_deref().ok_or_else(|| {
            CallError::Invalid("no issuer configured: tokens are not verified".into())
        })?;
        let secret = self
            .config
            .client_secret
            .as_ref()
            .filter(|_| discovered.hmac)
            .map(|s| s.expose().as_bytes().to_vec());
        let check = TokenCheck {
            issuer,
            audiences,
            now,
            leeway: 5,
        };
        let (fetched_at, keys) = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match verify_token(token, &keys, secret.as_deref(), &check) {
            Ok(claims) => Ok(claims),
            Err(first) => {
                let unknown_kid = portcullis_oidc::jwt::peek_header(token)
                    .and_then(|h| h.kid)
                    .is_some_and(|kid| !keys.has_kid(&kid));
                let Some(jwks) = discovered.jwks.as_deref() else {
                    return Err(CallError::Invalid(first.to_string()));
                };
                if !unknown_kid || now < fetched_at + KEYS_RETRY {
                    return Err(CallError::Invalid(first.to_string()));
                }
                let _one = self.keys_fetch.lock().await;
                let fresh = self.fetch_keys(jwks).await?;
                let fresh = Arc::new(fresh);
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = (now, fresh.clone());
                verify_token(token, &fresh, secret.as_deref(), &check)
                    .map_err(|e| CallError::Invalid(e.to_string()))
            }
        }
    }

    /// Redeem an authorization code (client credentials in the form body, as authentik sends
    /// them).
    pub(crate) async fn redeem(
        &self,
        discovered: &Discovered,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) -> Result<TokenResponse, CallError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", self.config.client_id.as_str()),
        ];
        if let Some(secret) = &self.config.client_secret {
            form.push(("client_secret", secret.expose()));
        }
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        let body = self.post_form(&discovered.token, &form).await?;
        serde_json::from_slice(&body).map_err(|e| CallError::Invalid(format!("token answer: {e}")))
    }

    /// A refresh-token grant.
    pub(crate) async fn refresh(
        &self,
        discovered: &Discovered,
        refresh_token: &str,
    ) -> Result<TokenResponse, CallError> {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", self.config.client_id.as_str()),
        ];
        if let Some(secret) = &self.config.client_secret {
            form.push(("client_secret", secret.expose()));
        }
        let body = self.post_form(&discovered.token, &form).await?;
        serde_json::from_slice(&body).map_err(|e| CallError::Invalid(format!("token answer: {e}")))
    }

    /// authentik's app passwords: `client_credentials` with `username` and `password`, no client
    /// secret (docs/reference/outpost.md §8.1 step 4).
    pub(crate) async fn app_password(
        &self,
        discovered: &Discovered,
        username: &str,
        password: &str,
    ) -> Result<TokenResponse, CallError> {
        let scope = self.config.scopes.join(" ");
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.config.client_id.as_str()),
            ("username", username),
            ("password", password),
            ("scope", scope.as_str()),
        ];
        let body = self.post_form(&discovered.token, &form).await?;
        serde_json::from_slice(&body).map_err(|e| CallError::Invalid(format!("token answer: {e}")))
    }

    /// The UserInfo claims for an access token.
    pub(crate) async fn userinfo(
        &self,
        discovered: &Discovered,
        access_token: &str,
    ) -> Result<Map<String, Value>, CallError> {
        let url = discovered
            .userinfo
            .as_deref()
            .ok_or_else(|| CallError::Invalid("no UserInfo endpoint".into()))?;
        let body = self.get(url, Some(access_token)).await?;
        serde_json::from_slice(&body)
            .map_err(|e| CallError::Invalid(format!("UserInfo answer: {e}")))
    }
}

/// The certificates of a PEM bundle, for the upstream client's extra roots.
fn pem_certificates(pem: &[u8]) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject as _;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}

/// Read an answer: a success status and at most [`MAX_BODY`] bytes.
async fn read(response: Result<reqwest::Response, reqwest::Error>) -> Result<Vec<u8>, CallError> {
    let mut response = response.map_err(|e| CallError::Transport(e.without_url().to_string()))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| CallError::Transport(e.without_url().to_string()))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(CallError::Transport(format!(
                "the answer is larger than {MAX_BODY} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return Err(CallError::Status {
            status: status.as_u16(),
            body: text,
        });
    }
    Ok(body)
}
