//! Shared set-up for the router tests: a configuration, users, an injected clock and helpers that
//! send one request through `oneshot`.
#![allow(
    dead_code,
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{HeaderMap, Request, Response, StatusCode};
use portcullis_auth::regulation::Regulator;
use portcullis_auth::users::UserDatabase;
use portcullis_session::{MemoryStore, SessionStore};
use portcullis_verify_server::config::{Config, SecretSources, parse};
use portcullis_verify_server::{AppState, Tuning, router};
use tower::ServiceExt;

pub mod two_factor;

/// Authelia's published digest of "password" (argon2id, m=65536, t=3, p=4).
pub const ALICE_DIGEST: &str = "$argon2id$v=19$m=65536,t=3,p=4$2ohUAfh9yetl+utr4tLcCQ$AsXx0VlwjvNnCsa70u4HKZvFkC8Gwajr2pHGKcND/xs";
pub const ALICE_PASSWORD: &str = "password";
pub const BOB_PASSWORD: &str = "bob-secret";

pub const CONFIG: &str = r#"
server:
  address: 'tcp://127.0.0.1:9091/'
log:
  level: debug
authentication_backend:
  file:
    path: users.yml
    search:
      email: true
      case_insensitive: true
access_control:
  default_policy: deny
  networks:
    - name: office
      networks: ['198.51.100.0/24']
  rules:
    - domain: public.example.com
      policy: bypass
    - domain: app.example.com
      resources: ['^/public/']
      policy: bypass
    - domain: app.example.com
      resources: ['^/admin']
      subject: ['group:admins']
      policy: one_factor
    - domain: app.example.com
      resources: ['^/admin']
      policy: deny
    - domain: app.example.com
      policy: one_factor
    - domain: secure.example.com
      policy: two_factor
    - domain: office.example.com
      networks: [office]
      policy: bypass
    - domain: office.example.com
      policy: one_factor
    - domain: '*.example.org'
      policy: one_factor
session:
  secret: insecure-test-secret-0123456789
  expiration: 1h
  inactivity: 5m
  cookies:
    - domain: example.com
      authelia_url: https://auth.example.com
      default_redirection_url: https://home.example.com
    - domain: example.org
      authelia_url: https://auth.example.org/portal
      name: org_session
regulation:
  max_retries: 3
  find_time: 2m
  ban_time: 5m
"#;

pub fn users_yaml() -> String {
    let bob = bcrypt::hash(BOB_PASSWORD, 4).unwrap();
    format!(
        "users:\n  alice:\n    displayname: Alice Liddell\n    password: \"{ALICE_DIGEST}\"\n    email: alice@example.com\n    groups: [admins, dev]\n  bob:\n    displayname: Bob\n    password: \"{bob}\"\n    email: [bob@example.com, bob@example.org]\n    groups: [dev]\n  mallory:\n    displayname: Mallory\n    password: \"{bob}\"\n    disabled: true\n"
    )
}

pub fn config(yaml: &str) -> Config {
    parse(
        Path::new("/etc/portcullis/configuration.yml"),
        yaml,
        &SecretSources::default(),
    )
    .map(|(c, _)| c)
    .unwrap_or_else(|e| panic!("test config: {e}"))
}

pub struct Harness {
    pub state: AppState,
    pub clock: Arc<AtomicU64>,
    pub store: Arc<dyn SessionStore>,
}

pub fn tuning() -> Tuning {
    Tuning {
        failure_delay: Duration::from_millis(5),
        failure_jitter_ms: 0,
        elevation_delay: Duration::ZERO,
        ..Tuning::default()
    }
}

impl Harness {
    pub fn new() -> Self {
        Self::with(CONFIG, Arc::new(MemoryStore::new()))
    }

    pub fn with(yaml: &str, store: Arc<dyn SessionStore>) -> Self {
        let config = config(yaml);
        let users = UserDatabase::parse(Path::new("users.yml"), &users_yaml(), true, true).unwrap();
        let clock = Arc::new(AtomicU64::new(1_700_000_000));
        let c = clock.clone();
        let regulator = Regulator::in_memory(config.regulation);
        let state = AppState::new(
            config,
            users,
            store.clone(),
            regulator,
            Arc::new(move || c.load(Ordering::SeqCst)),
            tuning(),
        )
        .unwrap();
        Self {
            state,
            clock,
            store,
        }
    }

    pub fn advance(&self, seconds: u64) {
        self.clock.fetch_add(seconds, Ordering::SeqCst);
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        self.send_from("127.0.0.1:40000", request).await
    }

    pub async fn send_from(&self, peer: &str, mut request: Request<Body>) -> Reply {
        let peer: SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        Reply::read(response).await
    }

    /// Log in through the JSON API and return the session cookie pair `name=value`.
    pub async fn login(&self, host: &str, username: &str, password: &str) -> String {
        let reply = self
            .send(
                Request::post("/api/firstfactor")
                    .header("host", host)
                    .header("content-type", "application/json")
                    .body(Body::from(
                        serde_json::json!({"username": username, "password": password}).to_string(),
                    ))
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "login failed: {}", reply.body);
        reply.cookie_pair().expect("a session cookie")
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub async fn read(response: Response<Body>) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        Self {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn cookie_pair(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .find(|c| !c.contains("Max-Age=0") && !c.starts_with("portcullis_csrf"))
            .map(|c| c.split(';').next().unwrap().to_owned())
    }

    pub fn clears_cookie(&self) -> bool {
        self.headers
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().contains("Max-Age=0"))
    }
}

/// An nginx-style `auth_request` check.
pub fn auth_request(url: &str, method: &str) -> http::request::Builder {
    Request::get("/api/authz/auth-request")
        .header("X-Original-URL", url)
        .header("X-Original-Method", method)
}

/// A Traefik/Caddy-style forward-auth check.
pub fn forward_auth(proto: &str, host: &str, uri: &str, method: &str) -> http::request::Builder {
    Request::get("/api/authz/forward-auth")
        .header("X-Forwarded-Proto", proto)
        .header("X-Forwarded-Host", host)
        .header("X-Forwarded-URI", uri)
        .header("X-Forwarded-Method", method)
}

pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Send raw request bytes to a listening server and read the whole answer (`Connection: close`).
pub async fn raw_request(addr: SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The CSRF cookie (`name=value`) a page set and the token in its forms.
pub fn csrf_from(page: &Reply) -> (String, String) {
    let cookie = page
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("portcullis_csrf="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    (cookie, csrf_token(page))
}

/// The CSRF token in a page's forms.
pub fn csrf_token(page: &Reply) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.body.find(marker).unwrap() + marker.len();
    page.body[start..].split('"').next().unwrap().to_owned()
}
