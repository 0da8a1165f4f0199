//! `portcullis doctor` against a real portcullis-verify served over HTTPS in this process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

const USERS: &str = "users:\n  alice:\n    displayname: Alice\n    password: \"$argon2id$v=19$m=65536,t=3,p=4$2ohUAfh9yetl+utr4tLcCQ$AsXx0VlwjvNnCsa70u4HKZvFkC8Gwajr2pHGKcND/xs\"\n";

fn config(extra: &str) -> String {
    format!(
        "server:\n  address: tcp://127.0.0.1:0/\n  tls:\n    certificate: cert.pem\n    key: key.pem\n\
         authentication_backend:\n  file:\n    path: users.yml\n\
         access_control:\n  default_policy: one_factor\n\
         session:\n  secret: a-doctor-test-session-secret\n  cookies:\n    - domain: example.invalid\n      authelia_url: https://auth.example.invalid\n\
         {extra}"
    )
}

fn doctor(path: &std::path::Path, url: Option<&str>) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command.arg("doctor").arg("--config").arg(path);
    if let Some(url) = url {
        command.args(["--url", url]);
    }
    let out = command.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_portals_proxies_health_clock_and_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
    std::fs::write(dir.path().join("users.yml"), USERS).unwrap();
    let path = dir.path().join("configuration.yml");
    std::fs::write(&path, config("")).unwrap();
    let (loaded, _) = portcullis_verify_server::config::load(&path, &Default::default()).unwrap();
    let handle = portcullis_verify_server::App::build(loaded).await.unwrap();
    let addr = handle.local_addr();
    let stop = handle.shutdown_trigger();
    let served = tokio::spawn(handle.serve());

    let url = format!("https://127.0.0.1:{}", addr.port());
    let (code, out) = tokio::task::spawn_blocking({
        let path = path.clone();
        move || doctor(&path, Some(&url))
    })
    .await
    .unwrap();
    assert!(
        out.contains(
            "ok: portal https://auth.example.invalid lies inside the cookie domain example.invalid"
        ),
        "{out}"
    );
    assert!(
        out.contains("warning: portal host auth.example.invalid does not resolve"),
        "{out}"
    );
    assert!(
        out.contains("ok: forwarded headers are believed only from private networks"),
        "{out}"
    );
    assert!(
        out.contains("error: https://127.0.0.1:"),
        "a self-signed certificate is not trusted: {out}"
    );
    assert!(out.contains("/api/health answers 200 OK"), "{out}");
    assert!(
        out.contains("ok: the server's clock is within 5 s"),
        "{out}"
    );
    assert!(
        out.contains("ok: the server's certificate is valid for"),
        "{out}"
    );
    assert_eq!(code, Some(1), "an error makes the exit code 1: {out}");

    // Nothing listens there: an error that says what to look at.
    let (code, out) = tokio::task::spawn_blocking({
        let path = path.clone();
        move || doctor(&path, Some("http://127.0.0.1:9"))
    })
    .await
    .unwrap();
    assert!(
        out.contains("error: http://127.0.0.1:9/api/health does not answer"),
        "{out}"
    );
    assert_eq!(code, Some(1));

    // Trusting everyone is a warning, but not an error.
    std::fs::write(
        &path,
        config("portcullis:\n  trusted_proxies: ['0.0.0.0/0']\n"),
    )
    .unwrap();
    let (code, out) = tokio::task::spawn_blocking(move || doctor(&path, None))
        .await
        .unwrap();
    assert!(
        out.contains("warning: portcullis.trusted_proxies trusts every address"),
        "{out}"
    );
    assert_eq!(code, Some(0), "{out}");

    stop.trigger();
    served.await.unwrap().unwrap();
}
