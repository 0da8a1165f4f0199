//! The pieces `scripts/bench-outpost` needs: a bare axum server (the baseline), a fake OpenID
//! provider that logs everyone in as `bench` (discovery, JWK Set, token endpoint, and `/mint` for
//! Bearer tokens), and a seeder for the outpost's SQLite session store.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::{get, post};
use portcullis_oidc::keys::{Algorithm, KeySet, SigningKey};
use portcullis_session::SessionId;
use portcullis_session::claims::{ClaimsSession, ClaimsStore, SqliteClaimsStore};
use serde_json::{Value, json};

const KEY: &str = include_str!("../../verify-server/tests/fixtures/oidc-rs256.pem");

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A bare `axum::serve` server with one fallback handler answering `200` with one header: the
/// cheapest thing that could answer a check.
pub fn bare_axum(addr: SocketAddr) {
    runtime().block_on(async move {
        let app = Router::new().fallback(|| async { ([("x-bench", "1")], "") });
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        println!("bare axum ready on {addr}");
        axum::serve(listener, app).await.expect("serve");
    });
}

fn key() -> SigningKey {
    SigningKey::from_pem(KEY, Algorithm::RS256, Some("bench-1")).expect("the fixture key")
}

fn token(issuer: &str, audience: &str) -> String {
    let t = now();
    key()
        .sign(
            &json!({
                "iss": issuer, "aud": audience, "sub": "sub-bench", "exp": t + 12 * 3600, "iat": t,
                "preferred_username": "bench", "email": "bench@example.com", "name": "Bench User",
                "groups": ["users"], "entitlements": [], "sid": "bench-session",
            }),
            None,
        )
        .expect("sign")
}

/// The fake provider on `addr` (issuer `http://addr`).
pub fn fake_idp(addr: SocketAddr) {
    let issuer = format!("http://{addr}");
    runtime().block_on(async move {
        let i = issuer.clone();
        let discovery = move || {
            let i = i.clone();
            async move {
                axum::Json(json!({
                    "issuer": i,
                    "authorization_endpoint": format!("{i}/authorize"),
                    "token_endpoint": format!("{i}/token"),
                    "jwks_uri": format!("{i}/jwks"),
                    "end_session_endpoint": format!("{i}/logout"),
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                }))
            }
        };
        let i = issuer.clone();
        let issue = move |body: String| {
            let i = i.clone();
            async move {
                let client = form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "client_id")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let t = token(&i, &client);
                axum::Json(json!({"access_token": t, "id_token": t, "token_type": "Bearer", "expires_in": 43200}))
            }
        };
        let i = issuer.clone();
        let mint = move |query: axum::extract::RawQuery| {
            let i = i.clone();
            async move {
                let aud = query
                    .0
                    .as_deref()
                    .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "aud"))
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                token(&i, &aud)
            }
        };
        let jwks: Value = serde_json::to_value(KeySet::new(vec![key()]).jwks()).expect("jwks");
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(move || async move { axum::Json(jwks.clone()) }))
            .route("/token", post(issue))
            .route("/mint", get(mint));
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        println!("fake provider ready on {addr}");
        axum::serve(listener, app).await.expect("serve");
    });
}

/// Add `count` sessions of provider `provider` (one user each) to the outpost's SQLite file.
pub fn seed(db: &Path, count: usize, provider: &str) {
    let store = SqliteClaimsStore::open(db).expect("open the outpost store");
    let t = now();
    let data = json!({
        "claims": {"sub": "x", "exp": t + 12 * 3600, "preferred_username": "seeded", "email": "seeded@example.com", "groups": ["users"]},
        "raw_token": "x".repeat(700),
        "created_at": t,
    });
    runtime().block_on(async {
        let mut rng = rand::rng();
        for i in 0..count {
            let session = ClaimsSession {
                id: SessionId::generate(&mut rng),
                provider: provider.to_owned(),
                sub: format!("seeded-{i}"),
                sid: Some(format!("sid-{i}")),
                expires_at: t + 12 * 3600,
                data: data.to_string(),
            };
            store.put(&session, t).await.expect("put");
        }
        println!("sessions={}", store.count(t).await.expect("count"));
    });
}
