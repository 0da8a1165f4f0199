//! The OpenID provider against the certified relying party: panva's `openid-client` 6 (pinned in
//! `tests/oidc-rp/package-lock.json`, installed by `scripts/test` with `npm ci`) drives every grant
//! of `tests/oidc-rp/rp.mjs` against `portcullis-verify` built by `App::build` from a
//! configuration file, served over TLS on loopback as `https://auth.example.com:<port>`, with its
//! signing key generated at first start and kept in the SQLite storage. Its checks: discovery, the
//! code flow with PKCE and consent, userinfo, a stable subject, introspection, refresh rotation
//! and family revocation, code replay, PKCE mismatch, a public client, revocation, client
//! credentials, a wrong secret, the device flow and RP-initiated logout.

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use portcullis_tests::process::{find_program, free_port, require};
use portcullis_tests::tls;
use portcullis_tests::users::ALICE;
use portcullis_verify_server::{App, Tuning};

/// Authelia's documented digest of `insecure_secret` (PBKDF2-SHA512, 310000 rounds).
const APP_SECRET_DIGEST: &str = "$pbkdf2-sha512$310000$c8p78n7pUMln0jzvd4aK4Q$JNRBzwAo0ek5qKn50cFzzvE9RXV88h1wJn5KGiHrD0YKtZaR/nCb2CJPOsKaPK0hjf.9yHxzQGZziziccp6Yng";

const CHECKS: [&str; 14] = [
    "discovery",
    "code-flow",
    "userinfo",
    "same-subject",
    "introspection",
    "refresh-rotation",
    "code-reuse",
    "pkce-mismatch",
    "public-client",
    "revocation",
    "client-credentials",
    "wrong-secret",
    "device-flow",
    "end-session",
];

fn rp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc-rp")
}

fn configuration(port: u16, certs: &tls::CertFiles, dir: &Path) -> String {
    format!(
        r#"server:
  address: 'tcp://127.0.0.1:{port}/'
  tls:
    certificate: '{chain}'
    key: '{key}'
log:
  level: debug
authentication_backend:
  file:
    path: '{users}'
access_control:
  default_policy: one_factor
session:
  secret: 'oidc-rp-test-session-secret-0123456789'
  cookies:
    - domain: example.com
      authelia_url: 'https://auth.example.com:{port}'
storage:
  local:
    path: '{db}'
identity_providers:
  oidc:
    hmac_secret: 'oidc-rp-test-hmac-secret-0123456789-0123456789-0123456789-0123456789'
    clients:
      - client_id: app
        client_name: Recording App
        client_secret: '{APP_SECRET_DIGEST}'
        redirect_uris: ['https://app.example.com/callback']
        scopes: [openid, profile, email, groups, offline_access]
        grant_types: [authorization_code, refresh_token]
        authorization_policy: one_factor
        consent_mode: explicit
        post_logout_redirect_uris: ['https://app.example.com/logged-out']
      - client_id: spa
        public: true
        redirect_uris: ['https://app.example.com/callback']
        scopes: [openid, profile, email, groups]
        authorization_policy: one_factor
        consent_mode: implicit
        require_pkce: true
        pkce_challenge_method: S256
      - client_id: tv
        client_name: The TV
        public: true
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', refresh_token]
        scopes: [openid, profile, offline_access]
        authorization_policy: one_factor
      - client_id: machine
        client_secret: '$plaintext$machine-secret-0123456789'
        grant_types: [client_credentials]
        scopes: [api.read]
"#,
        chain = certs.chain.display(),
        key = certs.key.display(),
        users = Path::new(portcullis_tests::verify::QUICKSTART_USERS).display(),
        db = dir.join("db.sqlite3").display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_completes_every_grant() {
    if !require(&["node"]) {
        return;
    }
    let rp = rp_dir();
    if !rp.join("node_modules/openid-client").is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "tests/oidc-rp/node_modules is missing: scripts/test runs `npm ci` there"
        );
        let line = "SKIPPED (run `npm ci` in tests/oidc-rp): openid_client_completes_every_grant\n";
        eprint!("{line}");
        let file = portcullis_tests::process::skip_file();
        let previous = std::fs::read_to_string(&file).unwrap_or_default();
        let _ = std::fs::write(&file, format!("{previous}{line}"));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = tls::write(dir.path());
    let port = free_port();
    let path = dir.path().join("configuration.yml");
    std::fs::write(&path, configuration(port, &certs, dir.path())).unwrap();
    let (config, warnings) =
        portcullis_verify_server::config::load(&path, &Default::default()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let tuning = Tuning {
        failure_delay: Duration::from_millis(10),
        ..Tuning::default()
    };
    let handle = App::build_with(config, tuning).await.unwrap();
    let stop = handle.shutdown_trigger();
    let served = tokio::spawn(handle.serve());

    let node = find_program("node").unwrap();
    let output = tokio::process::Command::new(node)
        .arg(rp.join("rp.mjs"))
        .current_dir(&rp)
        .env("RP_ISSUER", format!("https://auth.example.com:{port}"))
        .env("RP_CONNECT", format!("127.0.0.1:{port}"))
        .env("RP_CA", &certs.ca)
        .env("RP_CLIENT_ID", "app")
        .env("RP_CLIENT_SECRET", "insecure_secret")
        .env("RP_PUBLIC_CLIENT_ID", "spa")
        .env("RP_CC_CLIENT_ID", "machine")
        .env("RP_CC_CLIENT_SECRET", "machine-secret-0123456789")
        .env("RP_REDIRECT_URI", "https://app.example.com/callback")
        .env("RP_USERNAME", ALICE.0)
        .env("RP_PASSWORD", ALICE.1)
        .env("RP_EMAIL", "alice@example.com")
        .env("RP_GROUPS", "admins,dev")
        .env("RP_DEVICE_CLIENT_ID", "tv")
        .env("RP_POST_LOGOUT_URI", "https://app.example.com/logged-out")
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("rp.mjs finishes within two minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    stop.trigger();
    let _ = tokio::time::timeout(Duration::from_secs(10), served).await;
    let results: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    for check in CHECKS {
        let line = results
            .iter()
            .find(|r| r["check"] == check)
            .unwrap_or_else(|| {
                panic!("no result for {check}\nstdout:\n{stdout}\nstderr:\n{stderr}")
            });
        assert_eq!(
            line["ok"], true,
            "{check} failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            line["detail"]
        );
    }
    assert!(
        output.status.success(),
        "rp.mjs exited with {}\n{stdout}\n{stderr}",
        output.status
    );
}
