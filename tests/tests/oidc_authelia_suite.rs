//! Authelia's own OIDC suite configuration (`tests/fixtures/authelia-oidc-suite/`, unchanged)
//! starts portcullis-verify with the environment the suite's compose file gives Authelia — the
//! `template` filter and the `/config`, `/pki`, `/certs` mounts (moved under a scratch folder) —
//! its Redis replaced by a real `redis-server` and its proxy port by the server's. The suite's
//! clients then work: a code flow with consent for `oidc-tester-app-public` (john logs in), client
//! credentials with opaque and JWT access tokens, and `oidc-tester-app`'s two_factor policy
//! refused (Portcullis has no second factor yet). Then panva's openid-client runs the same flows
//! (`tests/oidc-rp/rp.mjs` with `RP_MODE=authelia-suite`).

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use portcullis_tests::process::{find_program, free_port, redis_server, require};
use portcullis_tests::tls;
use portcullis_verify_server::config::{LoadOptions, load_all};
use portcullis_verify_server::{App, Tuning};
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/authelia-oidc-suite");
const OIDC_KEY: &str = include_str!("../../verify-server/tests/fixtures/oidc-rs256.pem");
const OIDC_CHAIN: &str = include_str!("../../verify-server/tests/fixtures/oidc-rs256-chain.crt");
/// The plaintext of the suite clients' PBKDF2 secret (Authelia's suite tests use it).
const SECRET: &str = "foobar";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authelias_oidc_suite_configuration_starts_and_its_clients_work() {
    if !require(&["redis-server"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["config", "pki", "certs"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    // The mounts: users file, PKI (server certificate, OIDC key and chain), certificates folder.
    let certs = tls::write(&root.join("pki"));
    std::fs::copy(&certs.chain, root.join("pki/public.backend.crt")).unwrap();
    std::fs::copy(&certs.key, root.join("pki/private.backend.pem")).unwrap();
    std::fs::write(root.join("pki/private.oidc.pem"), OIDC_KEY).unwrap();
    // The OIDC key's chain: a leaf carrying that key and its issuer (Portcullis, like Authelia,
    // refuses a chain whose first certificate does not carry the key).
    std::fs::write(root.join("pki/public.oidc.chain.pem"), OIDC_CHAIN).unwrap();
    std::fs::copy(&certs.ca, root.join("certs/public.crt")).unwrap();
    std::fs::copy(
        Path::new(FIXTURES).join("users.yml"),
        root.join("config/users.yml"),
    )
    .unwrap();

    let (_redis, redis_port) = redis_server(root);

    let port = free_port();
    let text = std::fs::read_to_string(Path::new(FIXTURES).join("configuration.yml")).unwrap();
    let text = text
        .replace("'/pki/", &format!("'{}/pki/", root.display()))
        .replace("\"/pki/", &format!("\"{}/pki/", root.display()))
        .replace("'/config/", &format!("'{}/config/", root.display()))
        .replace("'/certs/'", &format!("'{}/certs/'", root.display()))
        .replace("'tcp://:9091'", &format!("'tcp://127.0.0.1:{port}'"))
        .replace(":8080", &format!(":{port}"))
        .replace("host: 'redis'", "host: '127.0.0.1'")
        // The suite's mail container is not part of this test.
        .replace(
            "notifier:\n  smtp:",
            "notifier:\n  disable_startup_check: true\n  smtp:",
        )
        .replace("port: 6379", &format!("port: {redis_port}"));
    let path = root.join("config/configuration.yml");
    std::fs::write(&path, &text).unwrap();
    let options = LoadOptions::from_variables(&[(
        "X_AUTHELIA_CONFIG_FILTERS".to_owned(),
        "template".to_owned(),
    )])
    .unwrap();
    let (config, warnings) = load_all(std::slice::from_ref(&path), &options)
        .unwrap_or_else(|e| panic!("the suite configuration: {e}"));
    // What Portcullis reads but does not act on is said, once each.
    let keys: Vec<&str> = warnings.iter().map(|w| w.key.as_str()).collect();
    for key in [
        "webauthn.metadata",
        "identity_providers.oidc.enable_client_debug_messages",
    ] {
        assert!(keys.contains(&key), "{key} not warned about: {keys:?}");
    }
    // TOTP is implemented (the suite sets storage.encryption_key): no warning.
    assert!(!keys.contains(&"totp"), "{keys:?}");
    let handle = App::build_with(
        config,
        Tuning {
            failure_delay: Duration::from_millis(10),
            ..Tuning::default()
        },
    )
    .await
    .unwrap();
    let stop = handle.shutdown_trigger();
    tokio::spawn(handle.serve());

    let issuer = format!("https://login.example.com:{port}");
    let ca = reqwest::Certificate::from_pem(tls::pem().ca.as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .resolve("login.example.com", ([127, 0, 0, 1], port).into())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let doc: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], issuer);
    let jwks: Value = http
        .get(format!("{issuer}/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwks["keys"][0]["alg"], "RS256",
        "the suite's configured key"
    );
    assert_eq!(
        jwks["keys"][0]["x5c"].as_array().map(Vec::len),
        Some(2),
        "the suite's certificate_chain, published"
    );

    // john logs in and consents for oidc-tester-app-public (one_factor, explicit consent).
    let redirect = format!("https://oidc-public.example.com:{port}/oauth2/callback");
    let authorize = |client: &str, redirect: &str| {
        format!(
            "{issuer}/api/oidc/authorization?response_type=code&client_id={client}&redirect_uri={}&scope=openid%20profile%20email%20groups&state=suite-state-0123&nonce=suite-nonce-0123&code_challenge={CHALLENGE}&code_challenge_method=S256",
            form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
        )
    };
    let r = http
        .get(authorize("oidc-tester-app-public", &redirect))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let portal = r.headers()["location"].to_str().unwrap().to_owned();
    let flow_id = query_param(&portal, "flow_id").expect("the login flow");
    let r = http
        .post(format!("{issuer}/api/firstfactor"))
        .header("content-type", "application/json")
        .body(serde_json::json!({"username": "john", "password": "password", "flow": "openid_connect", "flowID": flow_id}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("authelia_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let body: Value = r.json().await.unwrap();
    let mut next = body["data"]["redirect"].as_str().unwrap().to_owned();
    let mut callback = None;
    for _ in 0..4 {
        let r = http
            .get(&next)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        if location.contains("/consent/openid/decision") {
            let flow_id = query_param(&location, "flow_id").unwrap();
            let r = http
                .post(format!("{issuer}/api/oidc/consent"))
                .header("content-type", "application/json")
                .header("cookie", &cookie)
                .body(serde_json::json!({"flow_id": flow_id, "client_id": "oidc-tester-app-public", "consent": true}).to_string())
                .send()
                .await
                .unwrap();
            let answer: Value = r.json().await.unwrap();
            next = answer["data"]["redirect_uri"].as_str().unwrap().to_owned();
            continue;
        }
        callback = Some(location);
        break;
    }
    let callback = callback.expect("the callback");
    let code = query_param(&callback, "code").unwrap_or_else(|| panic!("{callback}"));
    let r = http
        .post(format!("{issuer}/api/oidc/token"))
        .basic_auth("oidc-tester-app-public", Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    let info: Value = http
        .get(format!("{issuer}/api/oidc/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["preferred_username"], "john");
    assert_eq!(info["email"], "john.doe@authelia.com");
    assert_eq!(info["groups"], serde_json::json!(["admins", "dev"]));

    // oidc-tester-app requires two factors: refused to the client.
    let r = http
        .get(authorize(
            "oidc-tester-app",
            &format!("https://oidc.example.com:{port}/oauth2/callback"),
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied"),
        "{location}"
    );

    // Client credentials, as the suite's scenario sends them (client_secret_post).
    for (client, jwt) in [
        ("client-credentials-opaque", false),
        ("client-credentials-jwt", true),
    ] {
        let r = http
            .post(format!("{issuer}/api/oidc/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client),
                ("client_secret", SECRET),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{client}");
        let t: Value = r.json().await.unwrap();
        let at = t["access_token"].as_str().unwrap();
        assert_eq!(
            at.split('.').count() == 3 && at.starts_with("eyJ"),
            jwt,
            "{client}: {at}"
        );
        let i: Value = http
            .post(format!("{issuer}/api/oidc/introspection"))
            .form(&[
                ("token", at),
                ("client_id", client),
                ("client_secret", SECRET),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(i["active"], true, "{client}");
        assert_eq!(i["sub"], client);
    }

    // The certified relying party against the same server.
    if require(&["node"]) {
        let rp = Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc-rp");
        assert!(
            rp.join("node_modules/openid-client").is_dir() || std::env::var_os("CI").is_none(),
            "tests/oidc-rp/node_modules is missing: scripts/test runs `npm ci` there"
        );
        if rp.join("node_modules/openid-client").is_dir() {
            let output = tokio::process::Command::new(find_program("node").unwrap())
                .arg(rp.join("rp.mjs"))
                .current_dir(&rp)
                .env("RP_MODE", "authelia-suite")
                .env("RP_ISSUER", &issuer)
                .env("RP_CONNECT", format!("127.0.0.1:{port}"))
                .env("RP_CA", &certs.ca)
                .env("RP_USERNAME", "john")
                .env("RP_PASSWORD", "password")
                .env("RP_EMAIL", "john.doe@authelia.com")
                .env("RP_SUITE_SECRET", SECRET)
                .env("RP_REDIRECT_URI", &redirect)
                .output();
            let output = tokio::time::timeout(Duration::from_secs(120), output)
                .await
                .unwrap()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            let results: Vec<Value> = stdout
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            for check in [
                "suite-code-flow",
                "suite-client-credentials-opaque",
                "suite-client-credentials-jwt",
            ] {
                let line = results
                    .iter()
                    .find(|r| r["check"] == check)
                    .unwrap_or_else(|| {
                        panic!(
                            "no {check}: {stdout}\n{}",
                            String::from_utf8_lossy(&output.stderr)
                        )
                    });
                assert_eq!(line["ok"], true, "{check}: {}", line["detail"]);
            }
            assert!(output.status.success(), "{stdout}");
        }
    }
    stop.trigger();
}
