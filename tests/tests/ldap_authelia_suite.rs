//! Authelia's own LDAP suite configuration (`tests/fixtures/authelia-ldap-suite/`) starts with
//! the mounts its compose file gives Authelia, its directory replaced by a real slapd with the
//! suite's users (`tests/src/ldap.rs`): john logs in by username and by email over the suite's
//! LDAPS settings (pooled, `skip_verify`), his groups come from the suite's groups filter, and
//! the suite's rules apply to him.
// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use portcullis_tests::ldap::{PASSWORD, PROGRAMS, Slapd};
use portcullis_tests::process::{FailureLogs, free_port, require};
use portcullis_tests::smtp::start_mail_server_with;
use portcullis_tests::tls;
use portcullis_verify_server::config::{LoadOptions, load_all};
use portcullis_verify_server::{App, Tuning};
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/authelia-ldap-suite");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authelias_ldap_suite_configuration_starts_and_logs_john_in() {
    let mut programs = PROGRAMS.to_vec();
    programs.push("aiosmtpd");
    if !require(&programs) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["config", "pki", "certs"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    let certs = tls::write(&root.join("pki"));
    std::fs::copy(&certs.chain, root.join("pki/public.backend.crt")).unwrap();
    std::fs::copy(&certs.key, root.join("pki/private.backend.pem")).unwrap();
    std::fs::copy(&certs.ca, root.join("certs/public.crt")).unwrap();
    let slapd = Slapd::start(root);
    // The suite's mail server takes no account.
    let mail = start_mail_server_with(root, &certs, "", "");
    let _logs = FailureLogs {
        files: mail.process.logs.clone(),
    };
    let port = free_port();
    let text = std::fs::read_to_string(Path::new(FIXTURES).join("configuration.yml"))
        .unwrap()
        .replace("'/pki/", &format!("'{}/pki/", root.display()))
        .replace("'/config/", &format!("'{}/config/", root.display()))
        .replace("'/certs/'", &format!("'{}/certs/'", root.display()))
        .replace("'tcp://:9091'", &format!("'tcp://127.0.0.1:{port}'"))
        .replace(
            "'ldaps://openldap'",
            &format!("'ldaps://127.0.0.1:{}'", slapd.tls_port),
        )
        .replace(
            "    address: 'smtp://mail.example.com:1025'\n",
            &format!(
                "    address: 'smtp://127.0.0.1:{}'\n    tls:\n      server_name: 'mail.example.com'\n",
                mail.port
            ),
        );
    assert!(
        text.contains(&format!("ldaps://127.0.0.1:{}", slapd.tls_port))
            && text.contains("server_name: 'mail.example.com'"),
        "the suite's directory or notifier moved"
    );
    let path = root.join("config/configuration.yml");
    std::fs::write(&path, &text).unwrap();
    let (config, warnings) = load_all(std::slice::from_ref(&path), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("the suite configuration: {e}"));
    let keys: Vec<&str> = warnings.iter().map(|w| w.key.as_str()).collect();
    // Every LDAP key of the suite is implemented; skip_verify is, and is warned about.
    let ldap_warnings: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| k.starts_with("authentication_backend"))
        .collect();
    assert_eq!(
        ldap_warnings,
        ["authentication_backend.ldap.tls.skip_verify"],
        "{keys:?}"
    );
    let handle = App::build_with(
        config,
        Tuning {
            failure_delay: Duration::from_millis(10),
            ..Tuning::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("the suite configuration does not start: {e}"));
    let addr = handle.local_addr();
    let stop = handle.shutdown_trigger();
    tokio::spawn(handle.serve());

    let ca = reqwest::Certificate::from_pem(&std::fs::read(&certs.ca).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .resolve("login.example.com", addr)
        .no_proxy()
        .build()
        .unwrap();
    let base = format!("https://login.example.com:{port}");
    let login = |username: &'static str, password: &'static str| {
        let request = client
            .post(format!("{base}/api/firstfactor"))
            .json(&json!({"username": username, "password": password}));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let cookie = response
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|c| c.starts_with("authelia_session=") && !c.contains("Max-Age=0"))
                .map(|c| c.split(';').next().unwrap().to_owned());
            (status, cookie)
        }
    };
    let (status, _) = login("john", "wrong").await;
    assert_eq!(status, 401);
    for name in ["john", "john.doe@authelia.com"] {
        let (status, cookie) = login(name, PASSWORD).await;
        assert_eq!(status, 200, "{name}");
        let cookie = cookie.expect("a session");
        let state: Value = client
            .get(format!("{base}/api/state"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(state["data"]["username"], "john", "{state}");
        assert_eq!(state["data"]["authentication_level"], 1, "{state}");
        // The suite's rules with the directory's groups.
        let check = |url: &'static str| {
            client
                .get(format!("{base}/api/authz/auth-request"))
                .header("x-original-url", url)
                .header("x-original-method", "GET")
                .header("cookie", &cookie)
                .send()
        };
        let r = check("https://singlefactor.example.com/").await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["remote-user"], "john");
        let mut groups: Vec<&str> = r.headers()["remote-groups"]
            .to_str()
            .unwrap()
            .split(',')
            .collect();
        groups.sort_unstable();
        assert_eq!(groups, ["admins", "dev"]);
        assert_eq!(r.headers()["remote-email"], "john.doe@authelia.com");
        assert_eq!(r.headers()["remote-name"], "John Doe");
        let r = check("https://secure.example.com/").await.unwrap();
        assert_eq!(r.status(), 401, "two_factor needs more");
        let r = check("https://deny.example.com/").await.unwrap();
        assert_eq!(r.status(), 403);
    }
    stop.trigger();
}
