//! Two `portcullis-verify` replicas, each built by `App::build` from its own configuration file and
//! SQLite file, sharing one real `redis-server`: a login flow started on one continues on the
//! other, a code issued by one is redeemed on the other, both sign with the one key generated at
//! first start, and a token revoked on one is refused by both. Replica A's SQLite file holds an
//! Authelia identifier for alice, which becomes her subject everywhere.

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use portcullis_tests::process::{free_port, redis_server, require};
use portcullis_tests::tls;
use portcullis_tests::users::ALICE;
use portcullis_verify_server::{App, Tuning};
use serde_json::Value;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn configuration(
    port: u16,
    issuer_port: u16,
    redis: u16,
    certs: &tls::CertFiles,
    db: &Path,
) -> String {
    format!(
        r#"server:
  address: 'tcp://127.0.0.1:{port}/'
  tls: {{ certificate: '{chain}', key: '{key}' }}
authentication_backend:
  file: {{ path: '{users}' }}
access_control: {{ default_policy: one_factor }}
session:
  secret: 'oidc-replicas-session-secret-0123456789'
  redis: {{ host: 127.0.0.1, port: {redis}, timeout: 2s }}
  cookies:
    - domain: example.com
      authelia_url: 'https://auth.example.com:{issuer_port}'
storage:
  local: {{ path: '{db}' }}
identity_providers:
  oidc:
    hmac_secret: 'oidc-replicas-hmac-secret-0123456789-0123456789-0123456789-0123456789'
    clients:
      - client_id: spa
        public: true
        redirect_uris: ['https://app.example.com/callback']
        scopes: [openid, profile]
        authorization_policy: one_factor
        consent_mode: implicit
"#,
        chain = certs.chain.display(),
        key = certs.key.display(),
        users = Path::new(portcullis_tests::verify::QUICKSTART_USERS).display(),
        db = db.display(),
    )
}

fn client(port: u16) -> (reqwest::Client, String) {
    let ca = reqwest::Certificate::from_pem(tls::pem().ca.as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .resolve("auth.example.com", ([127, 0, 0, 1], port).into())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (client, format!("https://auth.example.com:{port}"))
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_flows_codes_keys_and_revocations() {
    if !require(&["redis-server"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = tls::write(dir.path());
    let (_redis, redis_port) = redis_server(dir.path());
    // A's storage is an Authelia database that already knows alice.
    const ALICE_SUB: &str = "5f0a1b2c-3d4e-4f60-8a7b-9c0d1e2f3a4b";
    {
        use portcullis_oidc::store::OidcStore;
        let seed = portcullis_oidc::sqlite::SqliteOidcStore::open(&dir.path().join("db-0.sqlite3"))
            .unwrap();
        assert_eq!(
            seed.subject(ALICE.0, "", ALICE_SUB).await.unwrap(),
            ALICE_SUB
        );
    }
    let ports = [free_port(), free_port()];
    let mut stops = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let path = dir.path().join(format!("configuration-{i}.yml"));
        std::fs::write(
            &path,
            configuration(
                *port,
                ports[0],
                redis_port,
                &certs,
                &dir.path().join(format!("db-{i}.sqlite3")),
            ),
        )
        .unwrap();
        let (config, _) =
            portcullis_verify_server::config::load(&path, &Default::default()).unwrap();
        let handle = App::build_with(
            config,
            Tuning {
                failure_delay: Duration::from_millis(10),
                ..Tuning::default()
            },
        )
        .await
        .unwrap();
        stops.push(handle.shutdown_trigger());
        tokio::spawn(handle.serve());
    }
    let (a, base_a) = client(ports[0]);
    let (b, base_b) = client(ports[1]);
    let issuer = format!("https://auth.example.com:{}", ports[0]);

    // Both replicas publish the same key: the one generated first, kept (sealed) in Redis.
    let jwks_a: Value = a
        .get(format!("{base_a}/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks_b: Value = b
        .get(format!("{base_b}/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks_a, jwks_b);

    // The flow starts on A.
    let authorize = format!(
        "/api/oidc/authorization?response_type=code&client_id=spa&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&scope=openid%20profile&state=state-0123456789&code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let r = a.get(format!("{base_a}{authorize}")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let portal = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        portal.starts_with(&format!("{issuer}/?flow=openid_connect&flow_id=")),
        "{portal}"
    );
    let flow_id = query_param(&portal, "flow_id").unwrap();
    // The login happens on B, which finds the flow in Redis.
    let r = b
        .post(format!("{base_b}/api/firstfactor"))
        .header("content-type", "application/json")
        .body(serde_json::json!({"username": ALICE.0, "password": ALICE.1, "flow": "openid_connect", "flowID": flow_id}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let body: Value = r.json().await.unwrap();
    let back = body["data"]["redirect"].as_str().unwrap().to_owned();
    assert!(
        back.starts_with(&format!("{issuer}/api/oidc/authorization?")),
        "{back}"
    );
    // Back on A with the session B created: the code.
    let path = back.strip_prefix(&issuer).unwrap();
    let r = a
        .get(format!("{base_a}{path}"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let callback = r.headers()["location"].to_str().unwrap().to_owned();
    let code = query_param(&callback, "code").unwrap_or_else(|| panic!("{callback}"));
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some(issuer.as_str())
    );
    // B redeems the code A issued.
    let r = b
        .post(format!("{base_b}/api/oidc/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "spa"),
            ("redirect_uri", "https://app.example.com/callback"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(
                tokens["id_token"]
                    .as_str()
                    .unwrap()
                    .split('.')
                    .next()
                    .unwrap(),
            )
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        header["kid"], jwks_a["keys"][0]["kid"],
        "B signs with the key A publishes"
    );
    // The code is used up on A too.
    let r = a
        .post(format!("{base_a}/api/oidc/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "spa"),
            ("redirect_uri", "https://app.example.com/callback"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let replay: Value = r.json().await.unwrap();
    assert_eq!(replay["error"], "invalid_grant");
    // The replay revoked the family: the access token is refused on both replicas.
    for (c, base) in [(&a, &base_a), (&b, &base_b)] {
        let r = c
            .get(format!("{base}/api/oidc/userinfo"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{base}");
    }

    // A fresh token: valid on both, revoked on B, refused on both.
    let r = a
        .get(format!("{base_a}{authorize}"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let code = query_param(r.headers()["location"].to_str().unwrap(), "code").unwrap();
    let tokens: Value = a
        .post(format!("{base_a}/api/oidc/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "spa"),
            ("redirect_uri", "https://app.example.com/callback"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    for (c, base) in [(&a, &base_a), (&b, &base_b)] {
        let r = c
            .get(format!("{base}/api/oidc/userinfo"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{base}");
        let info: Value = r.json().await.unwrap();
        assert_eq!(info["preferred_username"], ALICE.0);
    }
    let r = b
        .post(format!("{base_b}/api/oidc/revocation"))
        .form(&[("token", access.as_str()), ("client_id", "spa")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for (c, base) in [(&a, &base_a), (&b, &base_b)] {
        let r = c
            .get(format!("{base}/api/oidc/userinfo"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "revoked on B, refused by {base}");
    }
    for stop in stops {
        stop.trigger();
    }
}
