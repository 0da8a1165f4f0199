//! Test support: an in-process OpenID provider on loopback whose token answers the test controls
//! byte for byte (forged tokens included), an outpost built on it, and request helpers.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity
)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use http::{Request, Response, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_outpost::{AppState, config, router};
use serde_json::{Value, json};
use tower::ServiceExt as _;

pub const NOW: u64 = 1_700_000_000;
pub const KEY: &str = include_str!("../../../verify-server/tests/fixtures/oidc-rs256.pem");
pub const OTHER_KEY: &str = include_str!("../../../verify-server/tests/fixtures/oidc-es256.pem");
pub const SECRET: &str = "a-cookie-secret-of-at-least-32-bytes!";
pub const CLIENT_SECRET: &str = "the-client-secret";

/// The fake provider: what its token endpoint answers next, and what it received.
#[derive(Clone, Default)]
pub struct Idp {
    pub issuer: String,
    pub next_token: Arc<Mutex<Option<Value>>>,
    pub token_forms: Arc<Mutex<Vec<Vec<(String, String)>>>>,
    pub userinfo: Arc<Mutex<Value>>,
    pub discovery_extra: Arc<Mutex<Value>>,
}

impl Idp {
    /// Sign claims with the provider's RS256 key (`kid` "idp-1").
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("idp-1".into());
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_rsa_pem(KEY.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    /// The standard claims of a token for `client` and `user`.
    pub fn claims(&self, client: &str, user: &str) -> Value {
        json!({
            "iss": self.issuer, "aud": client, "sub": format!("sub-{user}"), "exp": NOW + 3600,
            "iat": NOW, "preferred_username": user, "email": format!("{user}@example.com"),
            "name": format!("User {user}"), "groups": ["users", format!("{user}-group")],
            "entitlements": ["read"], "sid": format!("idp-session-{user}"),
        })
    }

    /// The token endpoint's next answer: an access token and an ID token for these claims.
    pub fn will_issue(&self, claims: &Value) {
        let token = self.sign(claims);
        *self.next_token.lock().unwrap() = Some(json!({
            "access_token": token, "id_token": token, "token_type": "Bearer", "expires_in": 3600,
        }));
    }

    pub fn will_answer(&self, body: Value) {
        *self.next_token.lock().unwrap() = Some(body);
    }
}

fn jwks() -> Value {
    let key = portcullis_oidc::keys::SigningKey::from_pem(
        KEY,
        portcullis_oidc::keys::Algorithm::RS256,
        Some("idp-1"),
    )
    .unwrap();
    json!({"keys": [key.jwk()]})
}

/// Start the provider on loopback.
pub async fn start_idp() -> Idp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let idp = Idp {
        issuer: format!("http://127.0.0.1:{port}"),
        userinfo: Arc::new(Mutex::new(json!({}))),
        discovery_extra: Arc::new(Mutex::new(json!({}))),
        ..Idp::default()
    };
    let i = idp.clone();
    let discovery = move || {
        let i = i.clone();
        async move {
            let mut doc = json!({
                "issuer": i.issuer,
                "authorization_endpoint": format!("{}/authorize", i.issuer),
                "token_endpoint": format!("{}/token", i.issuer),
                "userinfo_endpoint": format!("{}/userinfo", i.issuer),
                "end_session_endpoint": format!("{}/logout", i.issuer),
                "jwks_uri": format!("{}/jwks", i.issuer),
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            });
            if let Value::Object(extra) = i.discovery_extra.lock().unwrap().clone() {
                for (k, v) in extra {
                    doc[k] = v;
                }
            }
            axum::Json(doc)
        }
    };
    let i = idp.clone();
    let token = move |body: String| {
        let i = i.clone();
        async move {
            let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
                .into_owned()
                .collect();
            i.token_forms.lock().unwrap().push(form);
            match i.next_token.lock().unwrap().clone() {
                Some(v) => (StatusCode::OK, axum::Json(v)),
                None => (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": "invalid_grant"})),
                ),
            }
        }
    };
    let i = idp.clone();
    let userinfo = move || {
        let i = i.clone();
        async move { axum::Json(i.userinfo.lock().unwrap().clone()) }
    };
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(|| async { axum::Json(jwks()) }))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    idp
}

/// An outpost for `providers_yaml` (the `providers:` list) on the given provider, discovered.
pub struct Outpost {
    pub state: AppState,
    pub clock: Arc<AtomicU64>,
    pub idp: Idp,
}

pub fn provider_yaml(idp: &Idp, name: &str, mode: &str, external: &str, extra: &str) -> String {
    format!(
        "  - name: {name}\n    mode: {mode}\n    external_host: {external}\n    cookie_secret: '{SECRET}'\n    client_id: {name}\n    client_secret: {CLIENT_SECRET}\n    issuer: {}\n{extra}",
        idp.issuer
    )
}

pub async fn outpost(idp: &Idp, providers: &str) -> Outpost {
    outpost_with(idp, providers, "storage:\n  memory: true\n").await
}

pub async fn outpost_with(idp: &Idp, providers: &str, head: &str) -> Outpost {
    let text = format!("{head}providers:\n{providers}");
    let (config, _) = config::parse(Path::new("outpost.yml"), &text, &|_| None).unwrap();
    let store = portcullis_outpost::open_store(&config.storage)
        .await
        .unwrap();
    let clock = Arc::new(AtomicU64::new(NOW));
    let c = clock.clone();
    let state = AppState::new(&config, store, Arc::new(move || c.load(Ordering::SeqCst))).unwrap();
    assert_eq!(
        state.discover_all().await,
        config.providers.len(),
        "discovery"
    );
    Outpost {
        state,
        clock,
        idp: idp.clone(),
    }
}

/// A response, read.
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The `name=value` of the last `Set-Cookie` that sets (not deletes) a cookie.
    pub fn session_cookie(&self) -> Option<String> {
        self.cookies()
            .into_iter()
            .rev()
            .find(|c| !c.contains("Max-Age=0"))
            .map(|c| c.split(';').next().unwrap().to_owned())
    }

    pub fn location(&self) -> &str {
        self.header("location").unwrap_or("")
    }
}

pub async fn read(response: Response<Body>) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

impl Outpost {
    /// Send a request from `peer`.
    pub async fn send_from(&self, peer: &str, mut request: Request<Body>) -> Reply {
        let addr: SocketAddr = format!("{peer}:50000").parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(addr));
        read(router(self.state.clone()).oneshot(request).await.unwrap()).await
    }

    /// Send a request from loopback (a trusted proxy).
    pub async fn send(&self, request: Request<Body>) -> Reply {
        self.send_from("127.0.0.1", request).await
    }

    /// GET with headers.
    pub async fn get(&self, uri: &str, headers: &[(&str, &str)]) -> Reply {
        let mut b = Request::get(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.send(b.body(Body::empty()).unwrap()).await
    }

    pub fn advance(&self, seconds: u64) {
        self.clock.fetch_add(seconds, Ordering::SeqCst);
    }
}

/// A query parameter of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
