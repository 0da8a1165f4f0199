//! The OpenID Connect provider through the router: every error row of
//! docs/reference/oidc-provider.md §3, the login and consent flow, and each grant.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use base64::Engine;
use common::*;
use http::{Request, StatusCode};
use portcullis_auth::regulation::Regulator;
use portcullis_auth::users::UserDatabase;
use portcullis_oidc::pkce::s256;
use portcullis_oidc::store::MemoryOidcStore;
use portcullis_session::MemoryStore;
use portcullis_verify_server::AppState;
use portcullis_verify_server::oidc::OidcRuntime;
use serde_json::Value;

const KEY: &str = include_str!("fixtures/oidc-rs256.pem");
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const STATE: &str = "state-0123456789";
const NONCE: &str = "nonce-0123456789";

fn oidc_yaml() -> String {
    oidc_yaml_with(9)
}

/// `backchannel`: the port of the back-channel logout receiver of `logout-app`.
fn oidc_yaml_with(backchannel: u16) -> String {
    let key: String = KEY.lines().map(|l| format!("          {l}\n")).collect();
    let es_key: String = include_str!("fixtures/oidc-es256.pem")
        .lines()
        .map(|l| format!("          {l}\n"))
        .collect();
    let client_key: String = include_str!("fixtures/oidc-es256.pub.pem")
        .lines()
        .map(|l| format!("              {l}\n"))
        .collect();
    format!(
        "{CONFIG}identity_providers:
  oidc:
    hmac_secret: 'a-very-long-hmac-secret-for-the-tests-0123456789-0123456789-0123456789'
    jwks:
      - key: |
{key}      - key_id: es-key
        algorithm: ES256
        key: |
{es_key}    discovery_signed_response_alg: RS256
    cors:
      endpoints: [token, userinfo]
      allowed_origins: ['https://spa.example.com']
    claims_policies:
      outpost:
        id_token: [preferred_username, groups, ak_proxy, entitlements]
      in-token:
        id_token: [preferred_username, groups]
        access_token: [preferred_username, groups, email]
    authorization_policies:
      admins:
        default_policy: deny
        rules:
          - subject: 'group:admins'
            policy: one_factor
    clients:
      - client_id: app
        client_name: The App
        client_secret: '$plaintext$app-secret'
        redirect_uris: ['https://app.example.com/cb']
        scopes: [openid, profile, email, groups, offline_access]
        grant_types: [authorization_code, refresh_token]
        authorization_policy: one_factor
      - client_id: spa
        public: true
        redirect_uris: ['https://spa.example.com/cb']
        authorization_policy: one_factor
        consent_mode: implicit
      - client_id: admins-only
        client_secret: '$plaintext$admins-secret'
        redirect_uris: ['https://admin.example.com/cb']
        authorization_policy: admins
        consent_mode: implicit
      - client_id: strict
        client_secret: '$plaintext$strict-secret'
        redirect_uris: ['https://strict.example.com/cb']
        consent_mode: implicit
      - client_id: machine
        client_secret: '$plaintext$machine-secret'
        grant_types: [client_credentials]
        scopes: [api.read]
      - client_id: jwt-app
        client_secret: '$plaintext$jwt-secret'
        redirect_uris: ['https://jwt.example.com/cb']
        scopes: [openid, profile, groups]
        authorization_policy: one_factor
        consent_mode: implicit
        access_token_signed_response_alg: RS256
        claims_policy: in-token
      - client_id: hs-app
        client_secret: '$plaintext$hs-secret-0123456789-0123456789'
        redirect_uris: ['https://hs.example.com/cb']
        scopes: [openid, profile, groups]
        authorization_policy: one_factor
        consent_mode: implicit
        id_token_signed_response_alg: HS256
        access_token_signed_response_alg: HS256
        claims_policy: in-token
      - client_id: logout-app
        client_secret: '$plaintext$logout-secret'
        redirect_uris: ['https://logout.example.com/cb']
        post_logout_redirect_uris: ['https://logout.example.com/bye']
        backchannel_logout_uri: 'http://127.0.0.1:{backchannel}/bcl'
        scopes: [openid, profile, offline_access]
        grant_types: [authorization_code, refresh_token]
        authorization_policy: one_factor
        consent_mode: implicit
      - client_id: outpost
        client_secret: '$plaintext$outpost-secret'
        redirect_uris: ['https://outpost.example.com/outpost.goauthentik.io/callback?X-authentik-auth-callback=true']
        scopes: [openid, profile, groups, ak_proxy, entitlements]
        grant_types: [authorization_code, client_credentials]
        token_endpoint_auth_method: client_secret_post
        authorization_policy: one_factor
        consent_mode: implicit
        claims_policy: outpost
      - client_id: par-only
        client_secret: '$plaintext$par-secret'
        redirect_uris: ['https://par.example.com/cb']
        authorization_policy: one_factor
        consent_mode: implicit
        require_pushed_authorization_requests: true
      - client_id: tv
        client_name: The TV
        public: true
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', refresh_token]
        scopes: [openid, profile, offline_access]
        authorization_policy: one_factor
      - client_id: jwt-client
        client_secret: '$plaintext$jwt-client-secret-0123456789-0123456789'
        token_endpoint_auth_method: client_secret_jwt
        grant_types: [client_credentials]
        scopes: [api.read]
      - client_id: pk-client
        token_endpoint_auth_method: private_key_jwt
        token_endpoint_auth_signing_alg: ES256
        grant_types: [client_credentials]
        scopes: [api.read]
        jwks:
          - key_id: pk-1
            key: |
{client_key}      - client_id: remember
        client_secret: '$plaintext$remember-secret'
        redirect_uris: ['https://remember.example.com/cb']
        authorization_policy: one_factor
        consent_mode: pre-configured
        pre_configured_consent_duration: 1d
      - client_id: es-app
        client_secret: '$plaintext$es-secret'
        redirect_uris: ['https://es.example.com/cb']
        authorization_policy: one_factor
        consent_mode: implicit
        id_token_signed_response_alg: ES256
      - client_id: signed-app
        client_secret: '$plaintext$signed-secret'
        redirect_uris: ['https://signed.example.com/cb']
        scopes: [openid, profile, groups]
        authorization_policy: one_factor
        consent_mode: implicit
        userinfo_signed_response_alg: RS256
        introspection_signed_response_alg: RS256
      - client_id: other
        client_secret: '$plaintext$other-secret'
        redirect_uris: ['https://other.example.com/cb']
        authorization_policy: one_factor
        consent_mode: implicit
"
    )
}

struct Oidc {
    h: Harness,
}

async fn harness() -> Oidc {
    harness_yaml(&oidc_yaml()).await
}

async fn harness_yaml(yaml: &str) -> Oidc {
    harness_at(yaml, 1_700_000_000).await
}

/// The harness with its clock (and the provider's start) at `now`.
async fn harness_at(yaml: &str, now: u64) -> Oidc {
    let mut config = config(yaml);
    let provider = config.oidc.take().unwrap();
    let users = UserDatabase::parse(Path::new("users.yml"), &users_yaml(), true, true).unwrap();
    let clock = Arc::new(AtomicU64::new(now));
    let c = clock.clone();
    let store = Arc::new(MemoryStore::new());
    let regulation = config.regulation;
    let state = AppState::new(
        config,
        users,
        store.clone(),
        Regulator::in_memory(regulation),
        Arc::new(move || c.load(Ordering::SeqCst)),
        tuning(),
    )
    .unwrap();
    let runtime = OidcRuntime::build(provider, Arc::new(MemoryOidcStore::new()), now)
        .await
        .unwrap();
    state.attach_oidc(runtime).unwrap();
    Oidc {
        h: Harness {
            state,
            clock,
            store,
        },
    }
}

fn query(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn params(location: &str) -> Vec<(String, String)> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

fn param(location: &str, name: &str) -> Option<String> {
    params(location)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn app_query(extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let mut q: Vec<(&'static str, String)> = vec![
        ("response_type", "code".into()),
        ("client_id", "app".into()),
        ("redirect_uri", "https://app.example.com/cb".into()),
        ("scope", "openid profile email groups offline_access".into()),
        ("state", STATE.into()),
        ("nonce", NONCE.into()),
        ("code_challenge", s256(VERIFIER)),
        ("code_challenge_method", "S256".into()),
    ];
    for (k, v) in extra {
        q.retain(|(key, _)| key != k);
        if !v.is_empty() {
            q.push((leak(k), (*v).to_owned()));
        }
    }
    q
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

fn client_query(client: &str, redirect: &str, scope: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", leak(client).into()),
        ("redirect_uri", leak(redirect).into()),
        ("scope", leak(scope).into()),
        ("state", STATE.into()),
        ("code_challenge", s256(VERIFIER)),
        ("code_challenge_method", "S256".into()),
    ]
}

impl Oidc {
    async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut r = Request::get(path)
            .header("host", "auth.example.com")
            .header("x-forwarded-proto", "https");
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        self.h.send(r.body(Body::empty()).unwrap()).await
    }

    async fn authorize(&self, q: &[(&'static str, String)], cookie: Option<&str>) -> Reply {
        let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.get(
            &format!("/api/oidc/authorization?{}", query(&pairs)),
            cookie,
        )
        .await
    }

    async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        basic_auth: Option<(&str, &str)>,
    ) -> Reply {
        let mut r = Request::post(path)
            .header("host", "auth.example.com")
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic_auth {
            r = r.header("authorization", basic(id, secret));
        }
        self.h.send(r.body(Body::from(query(form))).unwrap()).await
    }

    async fn post_json(&self, path: &str, body: Value, cookie: &str) -> Reply {
        self.h
            .send(
                Request::post(path)
                    .header("host", "auth.example.com")
                    .header("content-type", "application/json")
                    .header("cookie", cookie)
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await
    }

    /// Log in through the JSON API within flow `flow_id`: the session cookie and the path the
    /// portal sends the browser back to.
    async fn flow_login(&self, user: &str, password: &str, flow_id: &str) -> (String, String) {
        let login = self
            .h
            .send(
                Request::post("/api/firstfactor")
                    .header("host", "auth.example.com")
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::json!({"username": user, "password": password, "flow": "openid_connect", "flowID": flow_id}).to_string()))
                    .unwrap(),
            )
            .await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.body);
        let cookie = login.cookie_pair().expect("a session cookie");
        let next = json(&login)["data"]["redirect"]
            .as_str()
            .expect("a redirect after the flow login")
            .to_owned();
        assert!(next.contains("consent_id="), "{next}");
        (cookie, next)
    }

    /// Walk the browser through login (and consent when asked) to the client's callback.
    async fn code_for(
        &self,
        q: &[(&'static str, String)],
        user: &str,
        password: &str,
    ) -> (String, String) {
        let r = self.authorize(q, None).await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
        let location = r.header("location").unwrap().to_owned();
        assert!(
            location.starts_with("https://auth.example.com/?flow=openid_connect&flow_id="),
            "{location}"
        );
        let flow_id = param(&location, "flow_id").unwrap();
        let (cookie, mut next) = self.flow_login(user, password, &flow_id).await;
        for _ in 0..4 {
            let path = next
                .strip_prefix("https://auth.example.com")
                .unwrap_or_else(|| panic!("left the issuer: {next}"));
            let r = self.get(path, Some(&cookie)).await;
            assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
            let location = r.header("location").unwrap().to_owned();
            if location.starts_with("https://auth.example.com/consent/openid/decision") {
                let flow_id = param(&location, "flow_id").unwrap();
                let info = self
                    .get(
                        &format!("/api/oidc/consent?flow_id={flow_id}"),
                        Some(&cookie),
                    )
                    .await;
                let info: Value = serde_json::from_str(&info.body).unwrap();
                assert_eq!(info["status"], "OK", "{info}");
                let client = info["data"]["client_id"].as_str().unwrap().to_owned();
                let answer = self
                    .post_json("/api/oidc/consent", serde_json::json!({"flow_id": flow_id, "client_id": client, "consent": true, "pre_configure": false}), &cookie)
                    .await;
                let answer: Value = serde_json::from_str(&answer.body).unwrap();
                next = answer["data"]["redirect_uri"].as_str().unwrap().to_owned();
                continue;
            }
            return (location, cookie);
        }
        panic!("too many hops");
    }

    async fn redeem(&self, code: &str, verifier: &str) -> Reply {
        self.post_form(
            "/api/oidc/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", "https://app.example.com/cb"),
                ("code_verifier", verifier),
            ],
            Some(("app", "app-secret")),
        )
        .await
    }

    async fn tokens(&self) -> Value {
        let (callback, _) = self
            .code_for(&app_query(&[]), "alice", ALICE_PASSWORD)
            .await;
        let code = param(&callback, "code").unwrap();
        let r = self.redeem(&code, VERIFIER).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        serde_json::from_str(&r.body).unwrap()
    }

    async fn userinfo(&self, token: &str) -> Reply {
        self.h
            .send(
                Request::get("/api/oidc/userinfo")
                    .header("host", "auth.example.com")
                    .header("authorization", format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
    }

    async fn introspect(&self, token: &str, client: (&str, &str)) -> Value {
        let r = self
            .post_form("/api/oidc/introspection", &[("token", token)], Some(client))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        serde_json::from_str(&r.body).unwrap()
    }
}

fn json(r: &Reply) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("not JSON: {}", r.body))
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn discovery_and_jwks() {
    let o = harness().await;
    let r = o.get("/.well-known/openid-configuration", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let doc = json(&r);
    assert_eq!(doc["issuer"], "https://auth.example.com");
    assert_eq!(
        doc["authorization_endpoint"],
        "https://auth.example.com/api/oidc/authorization"
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256", "ES256", "HS256"]),
        "the keys', and hs-app's secret"
    );
    // The issuer follows the cookie domain of the host, with the portal's path.
    let r =
        o.h.send(
            Request::get("/.well-known/oauth-authorization-server")
                .header("host", "auth.example.org")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(json(&r)["issuer"], "https://auth.example.org/portal");
    // A host outside every cookie domain has no issuer.
    let r =
        o.h.send(
            Request::get("/.well-known/openid-configuration")
                .header("host", "evil.test")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let jwks = json(&o.get("/jwks.json", None).await);
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert_eq!(jwks["keys"][1]["kty"], "EC");
    assert_eq!(jwks["keys"][1]["kid"], "es-key");
    for k in jwks["keys"].as_array().unwrap() {
        assert!(k.get("d").is_none(), "no private part: {k}");
    }
}

#[tokio::test]
async fn unknown_clients_and_redirect_uris_never_reach_the_supplied_uri() {
    let o = harness().await;
    for q in [
        app_query(&[("client_id", "nobody")]),
        app_query(&[("redirect_uri", "https://evil.example.net/cb")]),
        app_query(&[("redirect_uri", "https://app.example.com/cb/")]),
        app_query(&[("client_id", "")]),
    ] {
        let r = o.authorize(&q, None).await;
        assert_eq!(r.status, StatusCode::FOUND);
        let location = r.header("location").unwrap();
        assert!(
            location.starts_with("https://auth.example.com/consent/completion?error="),
            "{location}"
        );
        let page = o
            .get(
                location.strip_prefix("https://auth.example.com").unwrap(),
                None,
            )
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert!(page.body.contains("invalid_"), "{}", page.body);
    }
}

#[tokio::test]
async fn request_errors_go_to_the_client_with_state_and_iss() {
    let o = harness().await;
    let cases = [
        (
            app_query(&[("response_type", "token")]),
            "unsupported_response_type",
        ),
        (app_query(&[("scope", "openid admin")]), "invalid_scope"),
        (app_query(&[("state", "short")]), "invalid_state"),
        (app_query(&[("nonce", "short")]), "insufficient_entropy"),
        (
            app_query(&[("code_challenge_method", "plain")]),
            "invalid_request",
        ),
        (app_query(&[("prompt", "none")]), "login_required"),
        (
            app_query(&[("response_mode", "fragment")]),
            "unsupported_response_mode",
        ),
        (
            client_query("spa", "https://spa.example.com/cb", "openid")
                .into_iter()
                .filter(|(k, _)| !k.starts_with("code_challenge"))
                .collect(),
            "invalid_request",
        ),
    ];
    for (q, error) in cases {
        let r = o.authorize(&q, None).await;
        assert_eq!(r.status, StatusCode::FOUND, "{error}");
        let location = r.header("location").unwrap();
        assert!(
            location.starts_with("https://app.example.com/cb?")
                || location.starts_with("https://spa.example.com/cb?"),
            "{location}"
        );
        assert_eq!(
            param(location, "error").as_deref(),
            Some(error),
            "{location}"
        );
        assert_eq!(
            param(location, "iss").as_deref(),
            Some("https://auth.example.com")
        );
        if error != "invalid_state" {
            assert_eq!(
                param(location, "state").as_deref(),
                Some(STATE),
                "{location}"
            );
        }
        assert!(param(location, "code").is_none());
    }
}

#[tokio::test]
async fn the_code_flow_with_consent_pkce_and_the_minimal_id_token() {
    let o = harness().await;
    let t = o.tokens().await;
    assert_eq!(t["token_type"], "bearer");
    assert_eq!(t["expires_in"], 3600);
    assert!(
        t["access_token"]
            .as_str()
            .unwrap()
            .starts_with("portcullis_at_")
    );
    assert!(
        t["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("portcullis_rt_")
    );
    let c = claims(t["id_token"].as_str().unwrap());
    assert_eq!(c["iss"], "https://auth.example.com");
    assert_eq!(c["aud"], serde_json::json!(["app"]));
    assert_eq!(c["azp"], "app");
    assert_eq!(c["nonce"], NONCE);
    assert_eq!(c["amr"], serde_json::json!(["pwd"]));
    assert_eq!(
        c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
        3600
    );
    assert!(
        c.get("email").is_none() && c.get("groups").is_none(),
        "Authelia 4.39: the ID token is minimal"
    );
    let sub = c["sub"].as_str().unwrap();
    assert_eq!(sub.len(), 36);
    assert_eq!(&sub[14..15], "4", "a version-4 UUID");
    assert_eq!(
        c["at_hash"],
        portcullis_oidc::claims::at_hash(
            t["access_token"].as_str().unwrap(),
            portcullis_oidc::keys::Algorithm::RS256
        )
    );
    let info = o.userinfo(t["access_token"].as_str().unwrap()).await;
    assert_eq!(info.status, StatusCode::OK);
    let info = json(&info);
    assert_eq!(info["sub"], sub);
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["name"], "Alice Liddell");
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["email_verified"], true);
    assert_eq!(info["groups"], serde_json::json!(["admins", "dev"]));
    // The subject is stable.
    let again = claims(o.tokens().await["id_token"].as_str().unwrap());
    assert_eq!(again["sub"], sub);
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_its_tokens() {
    let o = harness().await;
    let (callback, _) = o.code_for(&app_query(&[]), "alice", ALICE_PASSWORD).await;
    let code = param(&callback, "code").unwrap();
    let first = json(&o.redeem(&code, VERIFIER).await);
    let replay = o.redeem(&code, VERIFIER).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(json(&replay)["error"], "invalid_grant");
    assert_eq!(
        o.userinfo(first["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let refresh = o
        .post_form(
            "/api/oidc/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ],
            Some(("app", "app-secret")),
        )
        .await;
    assert_eq!(json(&refresh)["error"], "invalid_grant");
}

#[tokio::test]
async fn token_request_errors() {
    let o = harness().await;
    let (callback, _) = o.code_for(&app_query(&[]), "alice", ALICE_PASSWORD).await;
    let code = param(&callback, "code").unwrap();
    // Wrong PKCE verifier.
    let r = o
        .redeem(&code, "a-different-verifier-of-the-right-length-000000")
        .await;
    assert_eq!(json(&r)["error"], "invalid_grant");
    assert!(
        json(&r)["error_description"]
            .as_str()
            .unwrap()
            .contains("PKCE")
    );
    // The code is used up by the failed attempt.
    assert_eq!(
        json(&o.redeem(&code, VERIFIER).await)["error"],
        "invalid_grant"
    );
    // Bogus code, wrong secret, unknown client, two methods at once, unsupported grant.
    assert_eq!(
        json(&o.redeem("portcullis_ac_bogus.bogus", VERIFIER).await)["error"],
        "invalid_grant"
    );
    let r = o
        .post_form(
            "/api/oidc/token",
            &[("grant_type", "authorization_code"), ("code", "x")],
            Some(("app", "wrong")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(json(&r)["error"], "invalid_client");
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    let r = o
        .post_form(
            "/api/oidc/token",
            &[("grant_type", "authorization_code"), ("code", "x")],
            Some(("nobody", "x")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = o
        .post_form(
            "/api/oidc/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("client_secret", "app-secret"),
            ],
            Some(("app", "app-secret")),
        )
        .await;
    assert_eq!(json(&r)["error"], "invalid_request");
    // client_secret_post for a client_secret_basic client.
    let r = o
        .post_form(
            "/api/oidc/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("client_id", "app"),
                ("client_secret", "app-secret"),
            ],
            None,
        )
        .await;
    assert_eq!(json(&r)["error"], "invalid_client");
    let r = o
        .post_form(
            "/api/oidc/token",
            &[("grant_type", "password")],
            Some(("app", "app-secret")),
        )
        .await;
    assert_eq!(json(&r)["error"], "unsupported_grant_type");
    let r = o
        .post_form(
            "/api/oidc/token",
            &[("grant_type", "client_credentials")],
            Some(("app", "app-secret")),
        )
        .await;
    assert_eq!(json(&r)["error"], "unauthorized_client");
    let r = o
        .post_form("/api/oidc/token", &[], Some(("app", "app-secret")))
        .await;
    assert_eq!(json(&r)["error"], "invalid_request");
    // Not a form body.
    let r =
        o.h.send(
            Request::post("/api/oidc/token")
                .header("host", "auth.example.com")
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_replay_revokes_the_family() {
    let o = harness().await;
    let t = o.tokens().await;
    let rt1 = t["refresh_token"].as_str().unwrap();
    let refresh = |token: String| {
        let o = &o;
        async move {
            o.post_form(
                "/api/oidc/token",
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
                Some(("app", "app-secret")),
            )
            .await
        }
    };
    let second = json(&refresh(rt1.to_owned()).await);
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt2, rt1);
    assert!(second["id_token"].is_string());
    // The access token issued with the used refresh token is gone.
    assert_eq!(
        o.userinfo(t["access_token"].as_str().unwrap()).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        o.userinfo(second["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::OK
    );
    // Widening is refused, and the refused request does not use the token up; narrowing works.
    let r = o
        .post_form(
            "/api/oidc/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt2),
                ("scope", "openid admin"),
            ],
            Some(("app", "app-secret")),
        )
        .await;
    assert_eq!(json(&r)["error"], "invalid_scope");
    let r = o
        .post_form(
            "/api/oidc/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt2),
                ("scope", "openid offline_access"),
            ],
            Some(("app", "app-secret")),
        )
        .await;
    let third = json(&r);
    assert_eq!(third["scope"], "openid offline_access", "{third}");
    let rt3 = third["refresh_token"].as_str().unwrap().to_owned();
    // Presenting rt1 again is a replay: the whole family goes.
    let replay = refresh(rt1.to_owned()).await;
    assert_eq!(json(&replay)["error"], "invalid_grant");
    assert_eq!(
        json(&refresh(rt3).await)["error"],
        "invalid_grant",
        "the newest refresh token is revoked too"
    );
    assert_eq!(
        o.userinfo(third["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "the family is revoked"
    );
}

#[tokio::test]
async fn userinfo_errors() {
    let o = harness().await;
    let r = o.userinfo("portcullis_at_forged.forged").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    let r =
        o.h.send(
            Request::get("/api/oidc/userinfo")
                .header("host", "auth.example.com")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let t = o.tokens().await;
    let r = o.userinfo(t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        json(&r)["error_description"]
            .as_str()
            .unwrap()
            .contains("Only OpenID Connect 1.0 Access Tokens")
    );
    // A client-credentials token has no openid scope.
    let cc = json(
        &o.post_form(
            "/api/oidc/token",
            &[("grant_type", "client_credentials"), ("scope", "api.read")],
            Some(("machine", "machine-secret")),
        )
        .await,
    );
    let r = o.userinfo(cc["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
}

#[tokio::test]
async fn client_credentials_introspection_and_revocation() {
    let o = harness().await;
    let r = o
        .post_form(
            "/api/oidc/token",
            &[("grant_type", "client_credentials"), ("scope", "api.read")],
            Some(("machine", "machine-secret")),
        )
        .await;
    let cc = json(&r);
    assert!(cc.get("id_token").is_none() && cc.get("refresh_token").is_none());
    let token = cc["access_token"].as_str().unwrap();
    let i = o.introspect(token, ("machine", "machine-secret")).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["sub"], "machine");
    assert_eq!(i["scope"], "api.read");
    assert!(i.get("username").is_none());
    // Another client cannot probe it.
    assert_eq!(
        o.introspect(token, ("other", "other-secret")).await["active"],
        false
    );
    assert_eq!(
        o.introspect("garbage", ("machine", "machine-secret")).await["active"],
        false
    );
    // Public clients may not introspect.
    let r = o
        .post_form(
            "/api/oidc/introspection",
            &[("token", token), ("client_id", "spa")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = o
        .post_form("/api/oidc/introspection", &[("token", token)], None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for scope in ["openid", "offline_access", "api.write"] {
        let r = o
            .post_form(
                "/api/oidc/token",
                &[("grant_type", "client_credentials"), ("scope", scope)],
                Some(("machine", "machine-secret")),
            )
            .await;
        assert_eq!(json(&r)["error"], "invalid_scope", "{scope}");
    }
    // Revocation by another client does nothing; by the owner it ends the token.
    let r = o
        .post_form(
            "/api/oidc/revocation",
            &[("token", token)],
            Some(("other", "other-secret")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        o.introspect(token, ("machine", "machine-secret")).await["active"],
        true
    );
    o.post_form(
        "/api/oidc/revocation",
        &[("token", token)],
        Some(("machine", "machine-secret")),
    )
    .await;
    assert_eq!(
        o.introspect(token, ("machine", "machine-secret")).await["active"],
        false
    );
    // A user's refresh token revoked: its family is gone.
    let t = o.tokens().await;
    let i = o
        .introspect(t["access_token"].as_str().unwrap(), ("app", "app-secret"))
        .await;
    assert_eq!(i["username"], "alice");
    o.post_form(
        "/api/oidc/revocation",
        &[("token", t["refresh_token"].as_str().unwrap())],
        Some(("app", "app-secret")),
    )
    .await;
    assert_eq!(
        o.introspect(t["access_token"].as_str().unwrap(), ("app", "app-secret"))
            .await["active"],
        false
    );
}

#[tokio::test]
async fn authorization_policies_and_levels() {
    let o = harness().await;
    // bob is not in admins: denied without consent; alice passes.
    let q = client_query("admins-only", "https://admin.example.com/cb", "openid");
    let (callback, _) = o.code_for(&q, "bob", BOB_PASSWORD).await;
    assert_eq!(
        param(&callback, "error").as_deref(),
        Some("access_denied"),
        "{callback}"
    );
    let (callback, _) = o.code_for(&q, "alice", ALICE_PASSWORD).await;
    assert!(param(&callback, "code").is_some(), "{callback}");
    // A two_factor client cannot be satisfied without a second factor.
    let q = client_query("strict", "https://strict.example.com/cb", "openid");
    let (callback, _) = o.code_for(&q, "alice", ALICE_PASSWORD).await;
    assert_eq!(param(&callback, "error").as_deref(), Some("access_denied"));
}

#[tokio::test]
async fn prompt_max_age_and_sessions() {
    let o = harness().await;
    let q = client_query("spa", "https://spa.example.com/cb", "openid profile");
    let (callback, cookie) = o.code_for(&q, "alice", ALICE_PASSWORD).await;
    assert!(param(&callback, "code").is_some());
    // With a session and implicit consent, the next request gets a code at once.
    let r = o.authorize(&q, Some(&cookie)).await;
    assert!(param(r.header("location").unwrap(), "code").is_some());
    // prompt=none with a session works; prompt=login and an exceeded max_age send the browser
    // to the portal again.
    let mut none = q.clone();
    none.push(("prompt", "none".into()));
    assert!(
        param(
            o.authorize(&none, Some(&cookie))
                .await
                .header("location")
                .unwrap(),
            "code"
        )
        .is_some()
    );
    let mut login = q.clone();
    login.push(("prompt", "login".into()));
    let r = o.authorize(&login, Some(&cookie)).await;
    assert!(
        r.header("location")
            .unwrap()
            .contains("flow=openid_connect")
    );
    o.h.advance(120);
    let mut max_age = q.clone();
    max_age.push(("max_age", "60".into()));
    let r = o.authorize(&max_age, Some(&cookie)).await;
    assert!(
        r.header("location")
            .unwrap()
            .contains("flow=openid_connect")
    );
    // POST is answered with a redirect to the GET form.
    let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = o.post_form("/api/oidc/authorization", &pairs, None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.header("location")
            .unwrap()
            .starts_with("https://auth.example.com/api/oidc/authorization?response_type=code")
    );
}

#[tokio::test]
async fn consent_refusal_and_consent_api_failures() {
    let o = harness().await;
    let r = o.authorize(&app_query(&[]), None).await;
    let flow_id = param(r.header("location").unwrap(), "flow_id").unwrap();
    let (cookie, next) = o.flow_login("bob", BOB_PASSWORD, &flow_id).await;
    let r = o
        .get(
            next.strip_prefix("https://auth.example.com").unwrap(),
            Some(&cookie),
        )
        .await;
    assert!(
        r.header("location")
            .unwrap()
            .contains("/consent/openid/decision")
    );
    // The consent page needs no JavaScript and carries the client's name.
    let page = o
        .get(
            &format!("/consent/openid/decision?flow=openid_connect&flow_id={flow_id}"),
            Some(&cookie),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("The App") && page.body.contains("offline_access"));
    // API failures are 200 KO: no session, wrong client, unknown flow.
    let other = o.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    for (body, c) in [
        (
            serde_json::json!({"flow_id": flow_id, "client_id": "app", "consent": true}),
            "",
        ),
        (
            serde_json::json!({"flow_id": flow_id, "client_id": "spa", "consent": true}),
            cookie.as_str(),
        ),
        (
            serde_json::json!({"flow_id": "nope", "client_id": "app", "consent": true}),
            cookie.as_str(),
        ),
        (
            serde_json::json!({"flow_id": flow_id, "client_id": "app", "consent": true}),
            other.as_str(),
        ),
    ] {
        let r = o.post_json("/api/oidc/consent", body, c).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(json(&r)["status"], "KO");
    }
    let r = o
        .post_json(
            "/api/oidc/consent",
            serde_json::json!({"flow_id": flow_id, "client_id": "app", "consent": false}),
            &cookie,
        )
        .await;
    let back = json(&r)["data"]["redirect_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = o
        .get(
            back.strip_prefix("https://auth.example.com").unwrap(),
            Some(&cookie),
        )
        .await;
    assert_eq!(
        param(r.header("location").unwrap(), "error").as_deref(),
        Some("access_denied")
    );
    // The answered flow cannot be reused.
    let r = o
        .get(
            back.strip_prefix("https://auth.example.com").unwrap(),
            Some(&cookie),
        )
        .await;
    assert!(param(r.header("location").unwrap(), "code").is_none());
}

#[tokio::test]
async fn form_post_response_mode() {
    let o = harness().await;
    let mut q = client_query("spa", "https://spa.example.com/cb", "openid");
    q.push(("response_mode", "form_post".into()));
    let r = o.authorize(&q, None).await;
    let flow_id = param(r.header("location").unwrap(), "flow_id").unwrap();
    let (cookie, next) = o.flow_login("alice", ALICE_PASSWORD, &flow_id).await;
    let r = o
        .get(
            next.strip_prefix("https://auth.example.com").unwrap(),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("action=\"https://spa.example.com/cb\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("name=\"code\"") && r.body.contains("name=\"iss\""));
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .contains("form-action https://spa.example.com")
    );
    // An error goes to the client by form_post as well: a 200 page, counted as an error.
    let mut q = client_query("spa", "https://spa.example.com/cb", "openid admin");
    q.push(("response_mode", "form_post".into()));
    let r = o.authorize(&q, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("name=\"error\"") && r.body.contains("invalid_scope"));
    assert!(!r.body.contains("name=\"code\""));
    let metrics = tower::ServiceExt::oneshot(
        portcullis_verify_server::metrics_router(o.h.state.clone(), "/metrics"),
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await
    .unwrap();
    let text = Reply::read(metrics).await.body;
    for needle in [
        r#"portcullis_oidc_requests_total{endpoint="authorization",outcome="login"} 1"#,
        r#"portcullis_oidc_requests_total{endpoint="authorization",outcome="code"} 1"#,
        r#"portcullis_oidc_requests_total{endpoint="authorization",outcome="error"} 1"#,
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
}

#[tokio::test]
async fn failed_token_requests_are_rate_limited_per_address() {
    let o = harness().await;
    let bad = |peer: &'static str| {
        let o = &o;
        async move {
            o.h.send_from(
                peer,
                Request::post("/api/oidc/token")
                    .header("host", "auth.example.com")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("authorization", basic("app", "wrong"))
                    .body(Body::from("grant_type=authorization_code&code=x"))
                    .unwrap(),
            )
            .await
        }
    };
    // Authelia's default first bucket: 30 failed requests per minute.
    for _ in 0..30 {
        assert_eq!(
            bad("192.0.2.10:1000").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = bad("192.0.2.10:1000").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), Some("60"));
    assert_eq!(json(&r)["error"], "temporarily_unavailable");
    // Another address is not affected; the limit ends with its window.
    assert_eq!(
        bad("192.0.2.11:1000").await.status,
        StatusCode::UNAUTHORIZED
    );
    o.h.advance(61);
    assert_eq!(
        bad("192.0.2.10:1000").await.status,
        StatusCode::UNAUTHORIZED
    );
    // Successful requests do not count: 40 client-credentials grants in a row.
    for _ in 0..40 {
        let r =
            o.h.send_from(
                "192.0.2.12:1000",
                Request::post("/api/oidc/token")
                    .header("host", "auth.example.com")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("authorization", basic("machine", "machine-secret"))
                    .body(Body::from("grant_type=client_credentials&scope=api.read"))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    // Userinfo with bad tokens is limited the same way.
    for _ in 0..30 {
        o.userinfo("portcullis_at_bad.bad").await;
    }
    assert_eq!(
        o.userinfo("portcullis_at_bad.bad").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn redeem_for(o: &Oidc, client: &str, secret: &str, redirect: &str) -> Value {
    let q = client_query(client, redirect, "openid profile groups");
    let (callback, _) = o.code_for(&q, "alice", ALICE_PASSWORD).await;
    let code = param(&callback, "code").unwrap_or_else(|| panic!("{callback}"));
    let r = o
        .post_form(
            "/api/oidc/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", VERIFIER),
            ],
            Some((client, secret)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    json(&r)
}

fn header(jwt: &str) -> Value {
    let part = jwt.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn jwt_access_tokens_are_rfc9068_and_still_revocable() {
    let o = harness().await;
    let t = redeem_for(&o, "jwt-app", "jwt-secret", "https://jwt.example.com/cb").await;
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(header(at)["typ"], "at+jwt");
    assert_eq!(header(at)["alg"], "RS256");
    let c = claims(at);
    assert_eq!(c["iss"], "https://auth.example.com");
    assert_eq!(c["client_id"], "jwt-app");
    assert_eq!(c["aud"], serde_json::json!(["jwt-app"]));
    assert_eq!(c["scp"], serde_json::json!(["openid", "profile", "groups"]));
    assert_eq!(c["groups"], serde_json::json!(["admins", "dev"]));
    assert_eq!(c["preferred_username"], "alice");
    assert!(c.get("email").is_none(), "the email scope was not granted");
    assert_eq!(
        c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
        3600
    );
    // The signature verifies against the published key.
    let jwks = json(&o.get("/jwks.json", None).await);
    let k = &jwks["keys"][0];
    assert_eq!(header(at)["kid"], k["kid"]);
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        k["n"].as_str().unwrap(),
        k["e"].as_str().unwrap(),
    )
    .unwrap();
    let verified = portcullis_oidc::jwt::verify(
        at,
        &key,
        &portcullis_oidc::jwt::Expect {
            alg: jsonwebtoken::Algorithm::RS256,
            issuer: Some("https://auth.example.com"),
            typ: Some("at+jwt"),
            now: 1_700_000_100,
            leeway: 0,
        },
    );
    assert!(verified.is_ok(), "{verified:?}");
    // The ID token carries the claims policy's claims.
    assert_eq!(
        claims(t["id_token"].as_str().unwrap())["groups"],
        serde_json::json!(["admins", "dev"])
    );
    // It works at userinfo and introspection, a tampered copy does not, and revocation holds.
    assert_eq!(o.userinfo(at).await.status, StatusCode::OK);
    assert_eq!(
        o.introspect(at, ("jwt-app", "jwt-secret")).await["active"],
        true
    );
    let mut parts: Vec<String> = at.split('.').map(str::to_owned).collect();
    let mut body = claims(at);
    body["sub"] = serde_json::json!("someone-else");
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body.to_string());
    assert_eq!(
        o.userinfo(&parts.join(".")).await.status,
        StatusCode::UNAUTHORIZED
    );
    o.post_form(
        "/api/oidc/revocation",
        &[("token", at)],
        Some(("jwt-app", "jwt-secret")),
    )
    .await;
    assert_eq!(o.userinfo(at).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        o.introspect(at, ("jwt-app", "jwt-secret")).await["active"],
        false
    );
}

#[tokio::test]
async fn hs256_tokens_are_keyed_by_the_client_secret() {
    let o = harness().await;
    let doc = json(&o.get("/.well-known/openid-configuration", None).await);
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256", "ES256", "HS256"])
    );
    let t = redeem_for(
        &o,
        "hs-app",
        "hs-secret-0123456789-0123456789",
        "https://hs.example.com/cb",
    )
    .await;
    let key = portcullis_oidc::jwt::secret_key(b"hs-secret-0123456789-0123456789").unwrap();
    let expect = |typ| portcullis_oidc::jwt::Expect {
        alg: jsonwebtoken::Algorithm::HS256,
        issuer: Some("https://auth.example.com"),
        typ,
        now: 1_700_000_100,
        leeway: 0,
    };
    let id =
        portcullis_oidc::jwt::verify(t["id_token"].as_str().unwrap(), &key, &expect(None)).unwrap();
    assert_eq!(id["aud"], serde_json::json!(["hs-app"]));
    assert_eq!(id["preferred_username"], "alice");
    let at = t["access_token"].as_str().unwrap();
    portcullis_oidc::jwt::verify(at, &key, &expect(Some("at+jwt"))).unwrap();
    assert!(
        portcullis_oidc::jwt::verify(
            at,
            &portcullis_oidc::jwt::secret_key(b"other").unwrap(),
            &expect(Some("at+jwt"))
        )
        .is_err()
    );
    assert_eq!(o.userinfo(at).await.status, StatusCode::OK);
    // An HS256 token claiming to be another client's is not accepted.
    let forged = portcullis_oidc::jwt::sign_with_secret(
        jsonwebtoken::Algorithm::HS256,
        b"guessed",
        &serde_json::json!({"iss": "https://auth.example.com", "client_id": "jwt-app", "jti": "x", "exp": 1_800_000_000u64}),
        Some("at+jwt"),
    )
    .unwrap();
    assert_eq!(o.userinfo(&forged).await.status, StatusCode::UNAUTHORIZED);
}

/// A client's back-channel logout endpoint: records each `logout_token` it receives.
async fn backchannel_receiver() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let app = axum::Router::new().route(
        "/bcl",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                let token = form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "logout_token")
                    .map(|(_, v)| v.into_owned());
                let _ = tx.send(token.unwrap_or_default());
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, rx)
}

async fn logout_app_tokens(o: &Oidc, user: &str, password: &str) -> (Value, String) {
    let q = client_query(
        "logout-app",
        "https://logout.example.com/cb",
        "openid profile offline_access",
    );
    let (callback, cookie) = o.code_for(&q, user, password).await;
    let code = param(&callback, "code").unwrap();
    let r = o
        .post_form(
            "/api/oidc/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://logout.example.com/cb"),
                ("code_verifier", VERIFIER),
            ],
            Some(("logout-app", "logout-secret")),
        )
        .await;
    (json(&r), cookie)
}

async fn session_user(o: &Oidc, cookie: &str) -> Value {
    json(&o.get("/api/state", Some(cookie)).await)["data"]["username"].clone()
}

#[tokio::test]
async fn rp_initiated_logout_with_a_valid_hint_logs_out_at_once_and_tells_the_client() {
    let (port, mut logouts) = backchannel_receiver().await;
    let o = harness_yaml(&oidc_yaml_with(port)).await;
    let (t, cookie) = logout_app_tokens(&o, "alice", ALICE_PASSWORD).await;
    let id_token = t["id_token"].as_str().unwrap();
    let sub = claims(id_token)["sub"].as_str().unwrap().to_owned();
    assert_eq!(session_user(&o, &cookie).await, "alice");
    let doc = json(&o.get("/.well-known/openid-configuration", None).await);
    assert_eq!(
        doc["end_session_endpoint"],
        "https://auth.example.com/api/oidc/end-session"
    );
    assert_eq!(doc["backchannel_logout_supported"], true);
    let q = query(&[
        ("id_token_hint", id_token),
        ("post_logout_redirect_uri", "https://logout.example.com/bye"),
        ("state", "s-1"),
    ]);
    let r = o
        .get(&format!("/api/oidc/end-session?{q}"), Some(&cookie))
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some("https://logout.example.com/bye?state=s-1")
    );
    assert!(r.clears_cookie());
    assert_eq!(
        session_user(&o, &cookie).await,
        "",
        "the portal session is gone"
    );
    // The refresh token is revoked.
    let refresh = o
        .post_form(
            "/api/oidc/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ],
            Some(("logout-app", "logout-secret")),
        )
        .await;
    assert_eq!(json(&refresh)["error"], "invalid_grant");
    // The client got a logout token it can verify.
    let token = tokio::time::timeout(std::time::Duration::from_secs(5), logouts.recv())
        .await
        .expect("a back-channel logout")
        .unwrap();
    assert_eq!(header(&token)["typ"], "logout+jwt");
    let c = claims(&token);
    assert_eq!(c["sub"], sub);
    assert_eq!(c["aud"], serde_json::json!(["logout-app"]));
    assert_eq!(c["iss"], "https://auth.example.com");
    assert!(c["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(
        c.get("nonce").is_none(),
        "a logout token never carries a nonce"
    );
}

#[tokio::test]
async fn rp_initiated_logout_asks_the_user_when_anything_is_off() {
    let o = harness().await;
    let (alice, alice_cookie) = logout_app_tokens(&o, "alice", ALICE_PASSWORD).await;
    let (bob, _) = logout_app_tokens(&o, "bob", BOB_PASSWORD).await;
    let alice_hint = alice["id_token"].as_str().unwrap();
    let cases = [
        // An unregistered redirect: never followed.
        query(&[
            ("id_token_hint", alice_hint),
            ("post_logout_redirect_uri", "https://evil.example.net/"),
        ]),
        // No hint.
        query(&[
            ("client_id", "logout-app"),
            ("post_logout_redirect_uri", "https://logout.example.com/bye"),
        ]),
        // Another user's hint.
        query(&[("id_token_hint", bob["id_token"].as_str().unwrap())]),
        // A forged hint.
        query(&[(
            "id_token_hint",
            &format!("{}x", &alice_hint[..alice_hint.len() - 1]),
        )]),
    ];
    for q in cases {
        let r = o
            .get(&format!("/api/oidc/end-session?{q}"), Some(&alice_cookie))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{q}");
        assert!(r.header("location").is_none());
        assert!(r.body.contains("Log out?"), "{}", r.body);
        assert_eq!(
            session_user(&o, &alice_cookie).await,
            "alice",
            "nothing happens without the user"
        );
    }
    // A client_id that contradicts the hint is refused.
    let r = o
        .get(
            &format!(
                "/api/oidc/end-session?{}",
                query(&[("id_token_hint", alice_hint), ("client_id", "app")])
            ),
            Some(&alice_cookie),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // The user confirms: logged out, redirected only to a registered URI.
    let r = o
        .get(
            &format!(
                "/api/oidc/end-session?{}",
                query(&[
                    ("client_id", "logout-app"),
                    ("post_logout_redirect_uri", "https://logout.example.com/bye")
                ])
            ),
            Some(&alice_cookie),
        )
        .await;
    let csrf_cookie = r
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
    let token = r
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let confirm = |csrf: String| {
        let o = &o;
        let cookies = format!("{alice_cookie}; {csrf_cookie}");
        async move {
            o.h.send(
                Request::post("/api/oidc/end-session/confirm")
                    .header("host", "auth.example.com")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("cookie", cookies)
                    .body(Body::from(query(&[
                        ("client_id", "logout-app"),
                        ("post_logout_redirect_uri", "https://logout.example.com/bye"),
                        ("csrf", &csrf),
                    ])))
                    .unwrap(),
            )
            .await
        }
    };
    assert_eq!(
        confirm("forged".into()).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(session_user(&o, &alice_cookie).await, "alice");
    let r = confirm(token).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.header("location"), Some("https://logout.example.com/bye"));
    assert_eq!(session_user(&o, &alice_cookie).await, "");
    // Alice's tokens are revoked, bob's are not.
    assert_eq!(
        o.userinfo(alice["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        o.userinfo(bob["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_portal_logout_reaches_every_client() {
    let (port, mut logouts) = backchannel_receiver().await;
    let o = harness_yaml(&oidc_yaml_with(port)).await;
    let (t, cookie) = logout_app_tokens(&o, "alice", ALICE_PASSWORD).await;
    let r =
        o.h.send(
            Request::post("/api/logout")
                .header("host", "auth.example.com")
                .header("content-type", "application/json")
                .header("cookie", &cookie)
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let token = tokio::time::timeout(std::time::Duration::from_secs(5), logouts.recv())
        .await
        .expect("a back-channel logout")
        .unwrap();
    assert_eq!(claims(&token)["aud"], serde_json::json!(["logout-app"]));
    assert_eq!(
        o.userinfo(t["access_token"].as_str().unwrap()).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn client_credentials_with_an_app_password_as_authentiks_outpost_sends_it() {
    use portcullis_auth::app_passwords::{AppPasswordStore, SqliteAppPasswords, generate};
    let o = harness().await;
    // A state whose app password store holds one for alice.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteAppPasswords::open(&dir.path().join("apps.sqlite3")).unwrap();
    let (password, record) = generate([9; 32], "alice", "outpost", 1_700_000_000, None);
    store.create(&record).await.unwrap();
    let mut config = config(&oidc_yaml());
    let provider = config.oidc.take().unwrap();
    let users = UserDatabase::parse(Path::new("users.yml"), &users_yaml(), true, true).unwrap();
    let regulation = config.regulation;
    let clock = o.h.clock.clone();
    let c = clock.clone();
    let state = AppState::new(
        config,
        users,
        o.h.store.clone(),
        Regulator::in_memory(regulation),
        Arc::new(move || c.load(Ordering::SeqCst)),
        tuning(),
    )
    .unwrap();
    state
        .attach_oidc(
            OidcRuntime::build(provider, Arc::new(MemoryOidcStore::new()), 1_700_000_000)
                .await
                .unwrap(),
        )
        .unwrap();
    state.attach_app_passwords(Arc::new(store)).unwrap();
    let o = Oidc {
        h: Harness {
            state,
            clock,
            store: o.h.store.clone(),
        },
    };
    let grant = |username: &str, password: &str, scope: Option<&str>| {
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", "outpost".to_owned()),
            ("username", username.to_owned()),
            ("password", password.to_owned()),
        ];
        if let Some(s) = scope {
            form.push(("scope", s.to_owned()));
        }
        let o = &o;
        async move {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            o.post_form("/api/oidc/token", &pairs, None).await
        }
    };
    let r = grant(
        "alice",
        password.expose(),
        Some("openid profile groups ak_proxy"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let t = json(&r);
    assert!(t.get("refresh_token").is_none());
    let id = claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["preferred_username"], "alice");
    assert_eq!(id["groups"], serde_json::json!(["admins", "dev"]));
    assert_eq!(id["ak_proxy"]["is_superuser"], false);
    assert!(id["ak_proxy"]["user_attributes"].is_object());
    assert_eq!(id["aud"], serde_json::json!(["outpost"]));
    // Without a scope: the client's own.
    let r = grant("alice", password.expose(), None).await;
    assert_eq!(
        json(&r)["scope"],
        "openid profile groups ak_proxy entitlements"
    );
    // The user's password is not an app password; nor is a wrong one, or another user's name.
    assert_eq!(
        json(&grant("alice", ALICE_PASSWORD, None).await)["error"],
        "invalid_grant"
    );
    assert_eq!(
        json(&grant("alice", &format!("{}A", &password.expose()[..47]), None).await)["error"],
        "invalid_grant"
    );
    assert_eq!(
        json(&grant("bob", password.expose(), None).await)["error"],
        "invalid_grant"
    );
    // Only the client's scopes (authentik CVE-2024-52287).
    assert_eq!(
        json(&grant("alice", password.expose(), Some("openid email")).await)["error"],
        "invalid_scope"
    );
    // A client without the client_credentials grant.
    let r = o
        .post_form(
            "/api/oidc/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "app"),
                ("username", "alice"),
                ("password", password.expose()),
            ],
            None,
        )
        .await;
    assert_eq!(json(&r)["error"], "unauthorized_client");
}

#[tokio::test]
async fn generated_keys_rotate_and_the_previous_key_keeps_verifying() {
    // The harness configuration without `jwks`: keys are generated and rotated every 30 days.
    let yaml = oidc_yaml();
    let start = yaml.find("    jwks:\n").unwrap();
    let end = yaml.find("    claims_policies:\n").unwrap();
    let yaml = format!("{}{}", &yaml[..start], &yaml[end..]);
    // Generated keys are RS256 only: the ES256 client goes too.
    let es = yaml.find("      - client_id: es-app\n").unwrap();
    let es_end = es + yaml[es + 1..].find("      - client_id: ").unwrap() + 1;
    let yaml = format!("{}{}", &yaml[..es], &yaml[es_end..]);
    let mut config = config(&yaml);
    let provider = config.oidc.take().unwrap();
    let users = UserDatabase::parse(Path::new("users.yml"), &users_yaml(), true, true).unwrap();
    let clock = Arc::new(AtomicU64::new(1_700_000_000));
    let c = clock.clone();
    let regulation = config.regulation;
    let sessions = Arc::new(MemoryStore::new());
    let state = AppState::new(
        config,
        users,
        sessions.clone(),
        Regulator::in_memory(regulation),
        Arc::new(move || c.load(Ordering::SeqCst)),
        tuning(),
    )
    .unwrap();
    let store = Arc::new(MemoryOidcStore::new());
    state
        .attach_oidc(
            OidcRuntime::build(provider, store.clone(), 1_700_000_000)
                .await
                .unwrap(),
        )
        .unwrap();
    let o = Oidc {
        h: Harness {
            state: state.clone(),
            clock: clock.clone(),
            store: sessions,
        },
    };
    let jwks = json(&o.get("/jwks.json", None).await);
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    let first_kid = jwks["keys"][0]["kid"].clone();
    // Ten minutes before the epoch ends, a token is signed with the first key.
    let next = 1_700_000_000 / (30 * 86_400) * (30 * 86_400) + 30 * 86_400;
    o.h.clock.store(next - 600, Ordering::SeqCst);
    let rt = portcullis_verify_server::oidc::runtime_of(&state).unwrap();
    // The next key is published ahead of its epoch; the current one still signs.
    assert!(rt.rotate_keys(next - 600).await.unwrap());
    let ahead = json(&o.get("/jwks.json", None).await);
    assert_eq!(ahead["keys"].as_array().unwrap().len(), 2);
    assert_eq!(ahead["keys"][0]["kid"], first_kid);
    let upcoming = ahead["keys"][1]["kid"].clone();
    let before = redeem_for(&o, "jwt-app", "jwt-secret", "https://jwt.example.com/cb").await;
    assert_eq!(
        header(before["access_token"].as_str().unwrap())["kid"],
        first_kid
    );
    // A restart in the same epoch finds the same key.
    let again = OidcRuntime::build(config_provider(&yaml), store.clone(), 1_700_000_100)
        .await
        .unwrap();
    assert!(
        !again.rotate_keys(1_700_000_200).await.unwrap(),
        "same epoch: no rotation"
    );
    // The next epoch: a new key signs, the previous one is still published and still verifies.
    o.h.clock.store(next, Ordering::SeqCst);
    assert!(rt.rotate_keys(next).await.unwrap());
    let jwks = json(&o.get("/jwks.json", None).await);
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert_eq!(
        jwks["keys"][0]["kid"], upcoming,
        "the key published ahead now signs"
    );
    assert_eq!(jwks["keys"][1]["kid"], first_kid);
    assert_eq!(
        o.userinfo(before["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::OK,
        "signed before the rotation"
    );
    let after = redeem_for(&o, "jwt-app", "jwt-secret", "https://jwt.example.com/cb").await;
    assert_eq!(
        header(after["access_token"].as_str().unwrap())["kid"],
        jwks["keys"][0]["kid"]
    );
    assert_eq!(
        header(after["id_token"].as_str().unwrap())["kid"],
        jwks["keys"][0]["kid"]
    );
    // Two epochs on, the first key is gone.
    let later = next + 30 * 86_400;
    assert!(rt.rotate_keys(later).await.unwrap());
    let jwks = json(&o.get("/jwks.json", None).await);
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["kid"] != first_kid)
    );
}

fn config_provider(yaml: &str) -> portcullis_verify_server::config::OidcProvider {
    config(yaml).oidc.take().unwrap()
}

#[tokio::test]
async fn pushed_authorization_requests() {
    let o = harness().await;
    let doc = json(&o.get("/.well-known/openid-configuration", None).await);
    assert_eq!(
        doc["pushed_authorization_request_endpoint"],
        "https://auth.example.com/api/oidc/pushed-authorization-request"
    );
    let push = |client: (&'static str, &'static str), q: Vec<(&'static str, String)>| {
        let o = &o;
        async move {
            let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
            o.post_form(
                "/api/oidc/pushed-authorization-request",
                &pairs,
                Some(client),
            )
            .await
        }
    };
    let r = push(("app", "app-secret"), app_query(&[])).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let body = json(&r);
    assert_eq!(body["expires_in"], 300);
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    // The browser carries only client_id and request_uri.
    let q = vec![
        ("client_id", "app".to_owned()),
        ("request_uri", uri.clone()),
    ];
    let (callback, _) = o.code_for(&q, "alice", ALICE_PASSWORD).await;
    assert_eq!(param(&callback, "state").as_deref(), Some(STATE));
    let code = param(&callback, "code").unwrap();
    assert_eq!(o.redeem(&code, VERIFIER).await.status, StatusCode::OK);
    // Used once; another client cannot use a pushed request.
    let r = o.authorize(&q, None).await;
    assert!(
        r.header("location")
            .unwrap()
            .starts_with("https://auth.example.com/consent/completion?error=invalid_request_uri")
    );
    let uri = json(&push(("app", "app-secret"), app_query(&[])).await)["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = o
        .authorize(
            &[("client_id", "spa".to_owned()), ("request_uri", uri)],
            None,
        )
        .await;
    assert!(
        r.header("location")
            .unwrap()
            .contains("error=invalid_request_uri")
    );
    // Errors come back as JSON, never as redirects.
    let r = push(
        ("app", "app-secret"),
        app_query(&[("scope", "openid admin")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(json(&r)["error"], "invalid_scope");
    let r = push(("app", "wrong"), app_query(&[])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A client that must push.
    let direct = client_query("par-only", "https://par.example.com/cb", "openid");
    let r = o.authorize(&direct, None).await;
    assert_eq!(
        param(r.header("location").unwrap(), "error").as_deref(),
        Some("invalid_request")
    );
    let uri = json(&push(("par-only", "par-secret"), direct.clone()).await)["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let (callback, _) = o
        .code_for(
            &[("client_id", "par-only".to_owned()), ("request_uri", uri)],
            "alice",
            ALICE_PASSWORD,
        )
        .await;
    assert!(param(&callback, "code").is_some(), "{callback}");
}

#[tokio::test]
async fn the_device_authorization_grant() {
    let o = harness().await;
    let doc = json(&o.get("/.well-known/openid-configuration", None).await);
    assert_eq!(
        doc["device_authorization_endpoint"],
        "https://auth.example.com/api/oidc/device-authorization"
    );
    let start = || async {
        json(
            &o.post_form(
                "/api/oidc/device-authorization",
                &[
                    ("client_id", "tv"),
                    ("scope", "openid profile offline_access"),
                ],
                None,
            )
            .await,
        )
    };
    let poll = |code: String| {
        let o = &o;
        async move {
            o.post_form(
                "/api/oidc/token",
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", &code),
                    ("client_id", "tv"),
                ],
                None,
            )
            .await
        }
    };
    let d = start().await;
    let device_code = d["device_code"].as_str().unwrap().to_owned();
    let user_code = d["user_code"].as_str().unwrap().to_owned();
    assert_eq!(user_code.len(), 9);
    assert_eq!(
        d["verification_uri"],
        "https://auth.example.com/consent/openid/device-authorization"
    );
    assert_eq!(
        d["verification_uri_complete"],
        format!(
            "https://auth.example.com/consent/openid/device-authorization?user_code={user_code}"
        )
    );
    assert_eq!(
        (d["expires_in"].as_u64(), d["interval"].as_u64()),
        (Some(600), Some(5))
    );
    assert_eq!(
        json(&poll(device_code.clone()).await)["error"],
        "authorization_pending"
    );
    assert_eq!(
        json(&poll(device_code.clone()).await)["error"],
        "slow_down",
        "polled again at once"
    );
    // The page sends an anonymous browser to log in first, and comes back.
    let page = format!("/consent/openid/device-authorization?user_code={user_code}");
    let r = o.get(&page, None).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert!(r.header("location").unwrap().starts_with("https://auth.example.com/?rd=https%3A%2F%2Fauth.example.com%2Fconsent%2Fopenid%2Fdevice-authorization"));
    let cookie = o.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let answer = |code: &str, choice: &str| {
        let o = &o;
        let cookie = cookie.clone();
        let (code, choice) = (code.to_owned(), choice.to_owned());
        async move {
            let r = o
                .get(
                    &format!(
                        "/consent/openid/device-authorization?{}",
                        query(&[("user_code", code.as_str())])
                    ),
                    Some(&cookie),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK);
            let csrf_cookie = r
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
            let token = r
                .body
                .split("name=\"csrf\" value=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_owned();
            let page = r.body.clone();
            let reply =
                o.h.send(
                    Request::post("/consent/openid/device-authorization")
                        .header("host", "auth.example.com")
                        .header("content-type", "application/x-www-form-urlencoded")
                        .header("cookie", format!("{cookie}; {csrf_cookie}"))
                        .body(Body::from(query(&[
                            ("user_code", code.as_str()),
                            ("answer", choice.as_str()),
                            ("csrf", token.as_str()),
                        ])))
                        .unwrap(),
                )
                .await;
            (page, reply)
        }
    };
    // Typed in lower case with a space instead of the dash.
    let typed = user_code.to_lowercase().replace('-', " ");
    let (shown, reply) = answer(&typed, "approve").await;
    assert!(
        shown.contains("The TV") && shown.contains("offline_access"),
        "{shown}"
    );
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body.contains("Device connected"));
    o.h.advance(10);
    let r = poll(device_code.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let t = json(&r);
    assert!(t["refresh_token"].is_string());
    assert_eq!(
        claims(t["id_token"].as_str().unwrap())["aud"],
        serde_json::json!(["tv"])
    );
    assert_eq!(
        json(&o.userinfo(t["access_token"].as_str().unwrap()).await)["preferred_username"],
        "alice"
    );
    assert_eq!(
        json(&poll(device_code).await)["error"],
        "invalid_grant",
        "a device code is used once"
    );
    // The code cannot be approved twice; a denied device gets access_denied.
    let (_, reply) = answer(&user_code, "approve").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let d = start().await;
    let (_, reply) = answer(d["user_code"].as_str().unwrap(), "deny").await;
    assert!(reply.body.contains("denied"));
    o.h.advance(10);
    assert_eq!(
        json(&poll(d["device_code"].as_str().unwrap().to_owned()).await)["error"],
        "access_denied"
    );
    // An expired device code; a forged one; a client without the grant.
    let d = start().await;
    o.h.advance(601);
    assert_eq!(
        json(&poll(d["device_code"].as_str().unwrap().to_owned()).await)["error"],
        "expired_token"
    );
    assert_eq!(
        json(&poll("portcullis_dc_forged.forged".into()).await)["error"],
        "invalid_grant"
    );
    let r = o
        .post_form(
            "/api/oidc/device-authorization",
            &[("client_id", "spa")],
            None,
        )
        .await;
    assert_eq!(json(&r)["error"], "unauthorized_client");
    let r = o
        .post_form(
            "/api/oidc/device-authorization",
            &[("client_id", "tv"), ("scope", "openid email")],
            None,
        )
        .await;
    assert_eq!(json(&r)["error"], "invalid_scope");
}

#[tokio::test]
async fn client_assertions_rfc7523() {
    let o = harness().await;
    let now = 1_700_000_000u64;
    let token_url = "https://auth.example.com/api/oidc/token";
    let assertion = |iss: &str, aud: &str, jti: &str, exp: u64| serde_json::json!({"iss": iss, "sub": iss, "aud": aud, "jti": jti, "exp": exp, "iat": now});
    let hs = |claims: &Value| {
        portcullis_oidc::jwt::sign_with_secret(
            jsonwebtoken::Algorithm::HS256,
            b"jwt-client-secret-0123456789-0123456789",
            claims,
            None,
        )
        .unwrap()
    };
    let grant = |jwt: String, extra: Option<(&'static str, &'static str)>| {
        let o = &o;
        async move {
            let mut form = vec![
                ("grant_type", "client_credentials".to_owned()),
                ("scope", "api.read".to_owned()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ),
                ("client_assertion", jwt),
            ];
            if let Some((k, v)) = extra {
                form.push((k, v.to_owned()));
            }
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            o.post_form("/api/oidc/token", &pairs, None).await
        }
    };
    let good = hs(&assertion("jwt-client", token_url, "j-1", now + 60));
    let r = grant(good.clone(), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(json(&r)["scope"], "api.read");
    // The same assertion again is a replay.
    assert_eq!(grant(good, None).await.status, StatusCode::UNAUTHORIZED);
    // Wrong audience, expired, signed with another secret, sub not the client, two methods.
    for (jwt, why) in [
        (
            hs(&assertion(
                "jwt-client",
                "https://elsewhere.example.com/token",
                "j-2",
                now + 60,
            )),
            "audience",
        ),
        (
            hs(&assertion("jwt-client", token_url, "j-3", now - 10)),
            "expired",
        ),
        (
            portcullis_oidc::jwt::sign_with_secret(
                jsonwebtoken::Algorithm::HS256,
                b"guess",
                &assertion("jwt-client", token_url, "j-4", now + 60),
                None,
            )
            .unwrap(),
            "secret",
        ),
        (
            hs(
                &serde_json::json!({"iss": "jwt-client", "sub": "someone", "aud": token_url, "jti": "j-5", "exp": now + 60}),
            ),
            "sub",
        ),
        (
            hs(&assertion("app", token_url, "j-6", now + 60)),
            "a client that does not use assertions",
        ),
    ] {
        assert_eq!(
            grant(jwt, None).await.status,
            StatusCode::UNAUTHORIZED,
            "{why}"
        );
    }
    let r = grant(
        hs(&assertion("jwt-client", token_url, "j-7", now + 60)),
        Some(("client_secret", "x")),
    )
    .await;
    assert_eq!(json(&r)["error"], "invalid_request");
    // private_key_jwt with the client's ES256 key; the issuer is an accepted audience too.
    let key =
        jsonwebtoken::EncodingKey::from_ec_pem(include_bytes!("fixtures/oidc-es256.pem")).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("pk-1".into());
    let pk = jsonwebtoken::encode(
        &header,
        &assertion("pk-client", "https://auth.example.com", "p-1", now + 60),
        &key,
    )
    .unwrap();
    let r = grant(pk, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // An RS256 assertion for an ES256 client is refused.
    let rsa = jsonwebtoken::EncodingKey::from_rsa_pem(KEY.as_bytes()).unwrap();
    let wrong = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &assertion("pk-client", token_url, "p-2", now + 60),
        &rsa,
    )
    .unwrap();
    assert_eq!(grant(wrong, None).await.status, StatusCode::UNAUTHORIZED);
    let doc = json(&o.get("/.well-known/openid-configuration", None).await);
    assert!(
        doc["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "private_key_jwt")
    );
}

#[tokio::test]
async fn pre_configured_consent_is_remembered_for_the_same_request_only() {
    let o = harness().await;
    let q = client_query(
        "remember",
        "https://remember.example.com/cb",
        "openid profile",
    );
    let r = o.authorize(&q, None).await;
    let flow_id = param(r.header("location").unwrap(), "flow_id").unwrap();
    let (cookie, next) = o.flow_login("alice", ALICE_PASSWORD, &flow_id).await;
    let r = o
        .get(
            next.strip_prefix("https://auth.example.com").unwrap(),
            Some(&cookie),
        )
        .await;
    assert!(
        r.header("location")
            .unwrap()
            .contains("/consent/openid/decision"),
        "asked the first time"
    );
    let info = json(
        &o.get(
            &format!("/api/oidc/consent?flow_id={flow_id}"),
            Some(&cookie),
        )
        .await,
    );
    assert_eq!(info["data"]["pre_configuration"], true);
    let answer = o.post_json("/api/oidc/consent", serde_json::json!({"flow_id": flow_id, "client_id": "remember", "consent": true, "pre_configure": true}), &cookie).await;
    let back = json(&answer)["data"]["redirect_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = o
        .get(
            back.strip_prefix("https://auth.example.com").unwrap(),
            Some(&cookie),
        )
        .await;
    assert!(param(r.header("location").unwrap(), "code").is_some());
    // The same client and scopes: no question; other scopes: asked again; a day later: asked again.
    let r = o.authorize(&q, Some(&cookie)).await;
    assert!(
        param(r.header("location").unwrap(), "code").is_some(),
        "remembered"
    );
    let wider = client_query(
        "remember",
        "https://remember.example.com/cb",
        "openid profile email",
    );
    let r = o.authorize(&wider, Some(&cookie)).await;
    assert!(
        r.header("location")
            .unwrap()
            .contains("/consent/openid/decision"),
        "other scopes are asked for"
    );
    o.h.advance(86_401);
    let fresh = o.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let r = o.authorize(&q, Some(&fresh)).await;
    assert!(
        r.header("location")
            .unwrap()
            .contains("/consent/openid/decision"),
        "the remembered consent expired"
    );
}

#[tokio::test]
async fn es256_id_tokens_use_the_es256_key() {
    let o = harness().await;
    let q = client_query("es-app", "https://es.example.com/cb", "openid");
    let (callback, _) = o.code_for(&q, "alice", ALICE_PASSWORD).await;
    let code = param(&callback, "code").unwrap();
    let r = o
        .post_form(
            "/api/oidc/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://es.example.com/cb"),
                ("code_verifier", VERIFIER),
            ],
            Some(("es-app", "es-secret")),
        )
        .await;
    let id = json(&r)["id_token"].as_str().unwrap().to_owned();
    assert_eq!(header(&id)["alg"], "ES256");
    assert_eq!(header(&id)["kid"], "es-key");
    let jwks = json(&o.get("/jwks.json", None).await);
    let k = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == "es-key")
        .unwrap()
        .clone();
    let key = jsonwebtoken::DecodingKey::from_ec_components(
        k["x"].as_str().unwrap(),
        k["y"].as_str().unwrap(),
    )
    .unwrap();
    portcullis_oidc::jwt::verify(
        &id,
        &key,
        &portcullis_oidc::jwt::Expect {
            alg: jsonwebtoken::Algorithm::ES256,
            issuer: Some("https://auth.example.com"),
            typ: None,
            now: 1_700_000_100,
            leeway: 0,
        },
    )
    .unwrap();
    let doc = json(&o.get("/.well-known/openid-configuration", None).await);
    assert!(
        doc["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "ES256")
    );
}

#[tokio::test]
async fn cors_for_the_listed_endpoints_and_origins_and_signed_metadata() {
    let o = harness().await;
    let preflight = |path: &'static str, origin: &'static str| {
        let o = &o;
        async move {
            o.h.send(
                Request::builder()
                    .method("OPTIONS")
                    .uri(path)
                    .header("host", "auth.example.com")
                    .header("origin", origin)
                    .header("access-control-request-method", "POST")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
        }
    };
    let r = preflight("/api/oidc/token", "https://spa.example.com").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://spa.example.com")
    );
    assert!(
        r.header("access-control-allow-headers")
            .unwrap()
            .contains("Authorization")
    );
    for (path, origin) in [
        ("/api/oidc/token", "https://evil.example.net"),
        ("/api/oidc/introspection", "https://spa.example.com"),
    ] {
        let r = preflight(path, origin).await;
        assert!(
            r.header("access-control-allow-origin").is_none(),
            "{path} {origin}"
        );
    }
    let r =
        o.h.send(
            Request::post("/api/oidc/token")
                .header("host", "auth.example.com")
                .header("origin", "https://spa.example.com")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", basic("machine", "machine-secret"))
                .body(Body::from("grant_type=client_credentials&scope=api.read"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://spa.example.com")
    );
    assert_eq!(r.header("vary"), Some("Origin"));
    // signed_metadata: the document's fields in a JWT signed with the provider's key.
    let doc = json(&o.get("/.well-known/openid-configuration", None).await);
    let signed = doc["signed_metadata"].as_str().unwrap();
    let jwks = json(&o.get("/jwks.json", None).await);
    let k = &jwks["keys"][0];
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        k["n"].as_str().unwrap(),
        k["e"].as_str().unwrap(),
    )
    .unwrap();
    let claims = portcullis_oidc::jwt::verify(
        signed,
        &key,
        &portcullis_oidc::jwt::Expect {
            alg: jsonwebtoken::Algorithm::RS256,
            issuer: Some("https://auth.example.com"),
            typ: None,
            now: 1_700_000_100,
            leeway: 0,
        },
    )
    .unwrap();
    assert_eq!(claims["token_endpoint"], doc["token_endpoint"]);
}

#[tokio::test]
async fn signed_userinfo_and_introspection_answers() {
    let o = harness().await;
    let t = redeem_for(
        &o,
        "signed-app",
        "signed-secret",
        "https://signed.example.com/cb",
    )
    .await;
    let at = t["access_token"].as_str().unwrap();
    let jwks = json(&o.get("/jwks.json", None).await);
    let k = &jwks["keys"][0];
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        k["n"].as_str().unwrap(),
        k["e"].as_str().unwrap(),
    )
    .unwrap();
    let r = o.userinfo(at).await;
    assert_eq!(r.header("content-type"), Some("application/jwt"));
    // No exp in a UserInfo JWT: check its signature and claims by hand.
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_aud = false;
    let info = jsonwebtoken::decode::<Value>(&r.body, &key, &v)
        .unwrap()
        .claims;
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["aud"], serde_json::json!(["signed-app"]));
    assert!(info["jti"].is_string());
    let r = o
        .post_form(
            "/api/oidc/introspection",
            &[("token", at)],
            Some(("signed-app", "signed-secret")),
        )
        .await;
    assert_eq!(
        r.header("content-type"),
        Some("application/token-introspection+jwt")
    );
    assert_eq!(header(&r.body)["typ"], "token-introspection+jwt");
    let claims = jsonwebtoken::decode::<Value>(&r.body, &key, &v)
        .unwrap()
        .claims;
    assert_eq!(claims["token_introspection"]["active"], true);
    assert_eq!(claims["aud"], "signed-app");
    let r = o
        .post_form(
            "/api/oidc/introspection",
            &[("token", "nonsense")],
            Some(("signed-app", "signed-secret")),
        )
        .await;
    let claims = jsonwebtoken::decode::<Value>(&r.body, &key, &v)
        .unwrap()
        .claims;
    assert_eq!(claims["token_introspection"]["active"], false);
}

#[tokio::test]
async fn device_polling_is_not_rate_limited_but_guessing_codes_is() {
    let o = harness().await;
    let d = json(
        &o.post_form(
            "/api/oidc/device-authorization",
            &[("client_id", "tv")],
            None,
        )
        .await,
    );
    let code = d["device_code"].as_str().unwrap().to_owned();
    // Ten minutes of polling every 5 s: 120 polls, all pending, none refused with 429.
    for _ in 0..119 {
        o.h.advance(5);
        let r = o
            .post_form(
                "/api/oidc/token",
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", &code),
                    ("client_id", "tv"),
                ],
                None,
            )
            .await;
        assert_eq!(json(&r)["error"], "authorization_pending", "{}", r.body);
    }
    // Wrong codes on the device page count: the 31st in a minute is refused.
    let cookie = o.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let r = o
        .get("/consent/openid/device-authorization", Some(&cookie))
        .await;
    let csrf_cookie = r
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
    let token = r
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let mut last = StatusCode::OK;
    for _ in 0..31 {
        let r =
            o.h.send(
                Request::post("/consent/openid/device-authorization")
                    .header("host", "auth.example.com")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("cookie", format!("{cookie}; {csrf_cookie}"))
                    .body(Body::from(query(&[
                        ("user_code", "BCDF-GHJK"),
                        ("answer", "approve"),
                        ("csrf", token.as_str()),
                    ])))
                    .unwrap(),
            )
            .await;
        last = r.status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    // Looking codes up on the page counts as well, and is refused once the limit is reached.
    let r = o
        .get(
            "/consent/openid/device-authorization?user_code=CDFG-HJKL",
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    // An hour on (and signed in again: the session has expired), the limit has passed.
    o.h.advance(3600);
    let cookie = o.h.login("auth.example.com", "alice", ALICE_PASSWORD).await;
    let mut statuses = Vec::new();
    for _ in 0..31 {
        let r = o
            .get(
                "/consent/openid/device-authorization?user_code=CDFG-HJKL",
                Some(&cookie),
            )
            .await;
        statuses.push(r.status);
    }
    assert_eq!(statuses[0], StatusCode::OK);
    assert_eq!(statuses[30], StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn private_key_jwt_with_keys_fetched_from_the_jwks_uri() {
    // The client publishes its public key at a JWK Set URL on loopback.
    let public =
        jsonwebtoken::DecodingKey::from_ec_pem(include_bytes!("fixtures/oidc-es256.pub.pem"))
            .unwrap();
    let mut jwk =
        jsonwebtoken::jwk::Jwk::from_decoding_key(&public, Some(jsonwebtoken::Algorithm::ES256))
            .unwrap();
    jwk.common.key_id = Some("remote-1".into());
    let set = serde_json::json!({"keys": [jwk]}).to_string();
    let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = fetches.clone();
    // The same set padded past 64 KiB: too big to be read.
    let big = set.replacen(
        '{',
        &format!("{{\"padding\":\"{}\",", "x".repeat(70_000)),
        1,
    );
    let app = axum::Router::new()
        .route(
            "/jwks",
            axum::routing::get(move || {
                let set = set.clone();
                counter.fetch_add(1, Ordering::SeqCst);
                async move { set }
            }),
        )
        .route(
            "/big",
            axum::routing::get(move || {
                let big = big.clone();
                async move { big }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let yaml = oidc_yaml().replace(
        "      - client_id: other\n",
        &format!("      - client_id: remote-keys\n        token_endpoint_auth_method: private_key_jwt\n        token_endpoint_auth_signing_alg: ES256\n        jwks_uri: 'http://127.0.0.1:{port}/jwks'\n        grant_types: [client_credentials]\n        scopes: [api.read]\n      - client_id: big-keys\n        token_endpoint_auth_method: private_key_jwt\n        token_endpoint_auth_signing_alg: ES256\n        jwks_uri: 'http://127.0.0.1:{port}/big'\n        grant_types: [client_credentials]\n        scopes: [api.read]\n      - client_id: other\n"),
    );
    let o = harness_yaml(&yaml).await;
    let key =
        jsonwebtoken::EncodingKey::from_ec_pem(include_bytes!("fixtures/oidc-es256.pem")).unwrap();
    let assertion_for = |client: &str, jti: &str, kid: &str, exp: u64| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.into());
        let claims = serde_json::json!({"iss": client, "sub": client, "aud": "https://auth.example.com/api/oidc/token", "jti": jti, "exp": exp});
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    let assertion = |jti: &str, kid: &str| assertion_for("remote-keys", jti, kid, 1_700_000_060);
    let grant = |jwt: String| {
        let o = &o;
        async move {
            o.post_form(
                "/api/oidc/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", "api.read"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &jwt),
                ],
                None,
            )
            .await
        }
    };
    let r = grant(assertion("r-1", "remote-1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // A kid the set does not have is refused; within a minute of the last fetch it does not
    // make the provider fetch again.
    assert_eq!(
        grant(assertion("r-2", "unknown")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        grant(assertion("r-3", "remote-1")).await.status,
        StatusCode::OK
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // A minute on, an unknown kid is looked for at the jwks_uri again (the client may have
    // rotated its key); known keys are used from the cache for five minutes.
    o.h.advance(61);
    let later = |jti: &str, kid: &str| assertion_for("remote-keys", jti, kid, 1_700_000_200);
    assert_eq!(grant(later("r-4", "remote-1")).await.status, StatusCode::OK);
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    assert_eq!(
        grant(later("r-5", "unknown")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    // A JWK Set over 64 KiB is not read: the client cannot authenticate.
    let r = grant(assertion_for("big-keys", "b-1", "remote-1", 1_700_000_200)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    // Only https (or loopback http) is fetched.
    let bad = oidc_yaml().replace(
        "      - client_id: other\n",
        "      - client_id: remote-keys\n        token_endpoint_auth_method: private_key_jwt\n        jwks_uri: 'http://keys.example.com/jwks'\n        grant_types: [client_credentials]\n      - client_id: other\n",
    );
    let e = portcullis_verify_server::config::parse(
        std::path::Path::new("/etc/c.yml"),
        &bad,
        &Default::default(),
    )
    .unwrap_err();
    assert!(e.key.ends_with(".jwks_uri"), "{e}");
}

#[tokio::test]
async fn a_certificate_chain_is_published_and_checked_at_start() {
    let chain: String = include_str!("fixtures/oidc-rs256-chain.crt")
        .lines()
        .map(|l| format!("          {l}\n"))
        .collect();
    let yaml = oidc_yaml();
    let at = yaml.find("      - key_id: es-key\n").unwrap();
    let yaml = format!(
        "{}        certificate_chain: |\n{chain}{}",
        &yaml[..at],
        &yaml[at..]
    );
    // The fixture's certificates are valid from 1796128839 (2026-12-01T12:40:39Z).
    let early = OidcRuntime::build(
        config_provider(&yaml),
        Arc::new(MemoryOidcStore::new()),
        1_796_128_838,
    )
    .await
    .unwrap_err();
    assert!(early.to_string().contains("not valid before"), "{early}");
    let o = harness_at(&yaml, 1_800_000_000).await;
    let jwks = json(&o.get("/jwks.json", None).await);
    let rsa = &jwks["keys"][0];
    assert_eq!(rsa["kty"], "RSA");
    assert_eq!(rsa["x5c"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        rsa["x5t#S256"], "x707Wd6Rkcr7inMPTnT8c0GmuA6-Ztv8ipDZsOdRT7Q",
        "openssl x509 -outform der | openssl dgst -sha256 -binary, base64url"
    );
    assert!(
        jwks["keys"][1].get("x5c").is_none(),
        "the ES256 key has no chain"
    );
}

#[tokio::test]
async fn a_reload_needing_a_signing_key_the_server_lacks_is_refused() {
    let o = harness().await;
    let rt = portcullis_verify_server::oidc::runtime_of(&o.h.state).unwrap();
    let again: String = KEY.lines().map(|l| format!("          {l}\n")).collect();
    let yaml = oidc_yaml();
    let at = yaml.find("      - key_id: es-key\n").unwrap();
    let with_key = format!(
        "{}      - key_id: again\n        algorithm: RS256\n        key: |\n{again}{}",
        &yaml[..at],
        &yaml[at..]
    );
    let signed_by = |what: &str| {
        with_key.replacen(
            "      - client_id: app\n",
            &format!(
                "      - client_id: app\n        {what}_signed_response_alg: RS256\n        {what}_signed_response_key_id: again\n"
            ),
            1,
        )
    };
    for what in ["userinfo", "introspection", "id_token"] {
        let err = rt
            .reload_clients(config_provider(&signed_by(what)))
            .unwrap_err();
        assert!(err.contains("client app"), "{what}: {err}");
    }
    // The same clients without the new key's name reload.
    assert!(rt.reload_clients(config_provider(&with_key)).is_ok());
}
