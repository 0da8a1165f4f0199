//! `portcullis-verify` with its users in a real OpenLDAP (`authentication_backend.ldap`,
//! `tests/src/ldap.rs`), asked the way nginx asks (`/api/authz/auth-request`) and logged in at
//! the portal: login by email gives the directory's canonical username, groups from the
//! directory drive the access rules, Basic credentials are checked by a bind, a refresh sees a
//! group removal and a deleted user, the directory down fails closed without ending sessions
//! (and, before the refresh is due, does not matter at all), password change and reset go
//! through the directory, FreeIPA's filter keeps locked and expired accounts out, the
//! operations are counted, and the server does not start without its directory.
// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use portcullis_tests::client::basic;
use portcullis_tests::ldap::{BASE_DN, IPA_USERS, PASSWORD, PROGRAMS, Slapd};
use portcullis_tests::process::require;
use portcullis_tests::verify::{Verify, VerifyConfig};
use portcullis_verify_server::attach_configured_directory;
use serde_json::{Value, json};

const PORTAL: &str = "auth.example.com:8443";
const RESET: &str = "identity_validation:\n  reset_password:\n    jwt_secret: 'a-reset-password-jwt-secret-0123456789'\n";

/// A verify server and a client for it.
struct Server {
    verify: Verify,
    http: reqwest::Client,
    dir: std::path::PathBuf,
}

/// A directory and a verify server over it.
struct World {
    slapd: Slapd,
    server: Server,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for World {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

/// The verify server's configuration over `slapd`, with `refresh` and second factors as asked.
fn yaml(slapd: &Slapd, refresh: &str, second_factor: bool) -> String {
    let base = VerifyConfig {
        proxy_port: 8443,
        expiration: "1h".into(),
        inactivity: "5m".into(),
        second_factor,
        ldap: Some(slapd.verify_keys()),
    }
    .yaml()
    .replace(
        "refresh_interval: 5m",
        &format!("refresh_interval: {refresh}"),
    );
    if second_factor {
        format!("{base}{RESET}")
    } else {
        base
    }
}

impl World {
    async fn start(refresh: &str, second_factor: bool) -> Option<Self> {
        if !require(PROGRAMS) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("portcullis-ldap-server-")
            .tempdir()
            .unwrap();
        let slapd = Slapd::start(dir.path());
        let server = Server::start(dir.path(), &yaml(&slapd, refresh, second_factor)).await;
        Some(Self {
            slapd,
            server,
            _dir: dir,
        })
    }
}

impl Server {
    async fn start(dir: &std::path::Path, yaml: &str) -> Self {
        Self {
            verify: Verify::start_yaml(dir, yaml).await,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .no_proxy()
                .build()
                .unwrap(),
            dir: dir.to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.verify.addr)
    }

    /// `(status, body, session cookie)` of a portal call.
    async fn portal(
        &self,
        method: reqwest::Method,
        path: &str,
        cookie: Option<&str>,
        body: Option<Value>,
    ) -> (u16, String, Option<String>) {
        let mut request = self
            .http
            .request(method, self.url(path))
            .header("host", PORTAL);
        if let Some(c) = cookie {
            request = request.header("cookie", c);
        }
        if let Some(b) = body {
            request = request
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| {
                (c.starts_with("authelia_session=") || c.starts_with("portcullis_reset="))
                    && !c.contains("Max-Age=0")
            })
            .map(|c| c.split(';').next().unwrap().to_owned());
        (status, r.text().await.unwrap(), cookie)
    }

    /// A portal login; the session cookie, or `None` when refused.
    async fn login(&self, user: &str, password: &str) -> Option<String> {
        let (status, _, cookie) = self
            .portal(
                reqwest::Method::POST,
                "/api/firstfactor",
                None,
                Some(json!({"username": user, "password": password})),
            )
            .await;
        if status == 200 { cookie } else { None }
    }

    /// An nginx-style check of `url` with `credentials` (`cookie: …` or `authorization: …`):
    /// (status, Remote-User, Remote-Groups, whether the session cookie was cleared).
    async fn check(
        &self,
        url: &str,
        header: (&str, &str),
    ) -> (u16, Option<String>, Option<String>, bool) {
        let r = self
            .http
            .get(self.url("/api/authz/auth-request"))
            .header("x-original-url", url)
            .header("x-original-method", "GET")
            .header(header.0, header.1)
            .send()
            .await
            .unwrap();
        let get = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let cleared = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|c| c.starts_with("authelia_session=") && c.contains("Max-Age=0"));
        (
            r.status().as_u16(),
            get("remote-user"),
            get("remote-groups"),
            cleared,
        )
    }

    fn mail(&self) -> String {
        std::fs::read_to_string(self.dir.join("notification.txt")).unwrap_or_default()
    }
}

fn sorted(groups: Option<String>) -> Vec<String> {
    let mut g: Vec<String> = groups
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    g.sort();
    g
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_logins_basic_credentials_and_group_rules_come_from_the_directory() {
    let Some(w) = World::start("5m", false).await else {
        return;
    };
    // By email: the session's user is the directory's uid.
    let john = w
        .login("JOHN.DOE@authelia.com", PASSWORD)
        .await
        .expect("john by email");
    let (_, state, _) = w
        .portal(reqwest::Method::GET, "/api/state", Some(&john), None)
        .await;
    let state: Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["data"]["username"], "john", "{state}");
    let (status, user, groups, _) = w
        .check("https://app.example.com/admin", ("cookie", &john))
        .await;
    assert_eq!((status, user.as_deref()), (200, Some("john")));
    assert_eq!(sorted(groups), ["admins", "dev"]);

    // harry is in dev only: the admins-only path is refused, the rest allowed.
    let harry = w.login("harry", PASSWORD).await.expect("harry");
    assert_eq!(
        w.check("https://app.example.com/admin", ("cookie", &harry))
            .await
            .0,
        403
    );
    let (status, user, groups, _) = w
        .check("https://app.example.com/", ("cookie", &harry))
        .await;
    assert_eq!((status, user.as_deref()), (200, Some("harry")));
    assert_eq!(sorted(groups), ["dev"]);

    // Refused at the portal: wrong password, unknown user, an empty password, two entries,
    // filter metacharacters.
    for (login, password) in [
        ("john", "wrong"),
        ("nobody", PASSWORD),
        ("john", ""),
        ("dup", PASSWORD),
        ("*", PASSWORD),
        ("john)(uid=*", PASSWORD),
        ("j*", PASSWORD),
    ] {
        assert_eq!(
            w.login(login, password).await,
            None,
            "{login:?} / {password:?} logged in"
        );
    }

    // Basic: a bind per new credential; the identity is the directory's.
    let (status, user, groups, _) = w
        .check(
            "https://app.example.com/",
            (
                "authorization",
                &basic("harry.potter@authelia.com", PASSWORD),
            ),
        )
        .await;
    assert_eq!((status, user.as_deref()), (200, Some("harry")));
    assert_eq!(sorted(groups), ["dev"]);
    for (login, password) in [("harry", "wrong"), ("*", PASSWORD), ("nobody", PASSWORD)] {
        let (status, user, _, _) = w
            .check(
                "https://app.example.com/",
                ("authorization", &basic(login, password)),
            )
            .await;
        assert_eq!((status, user), (401, None), "Basic {login:?}");
    }

    // Counted and timed.
    let metrics = w.verify.state.render_metrics().await;
    for line in [
        "portcullis_ldap_operations_total{kind=\"find\",outcome=\"found\"}",
        "portcullis_ldap_operations_total{kind=\"find\",outcome=\"not_found\"}",
        "portcullis_ldap_operations_total{kind=\"bind\",outcome=\"success\"}",
        "portcullis_ldap_operations_total{kind=\"bind\",outcome=\"invalid_credentials\"}",
        "portcullis_ldap_operation_duration_seconds_count{kind=\"bind\"}",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    let pool = metrics
        .lines()
        .find(|l| l.starts_with("portcullis_ldap_pool_connections "))
        .unwrap_or_else(|| panic!("no pool gauge in\n{metrics}"));
    assert_eq!(
        pool, "portcullis_ldap_pool_connections 1",
        "pooling is off: one connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_sees_group_removal_and_deletion_and_an_outage_fails_closed_keeping_sessions() {
    let Some(mut w) = World::start("1s", false).await else {
        return;
    };
    let john = w.login("john", PASSWORD).await.unwrap();
    let harry = w.login("harry", PASSWORD).await.unwrap();
    let bob = w.login("bob", PASSWORD).await.unwrap();
    assert_eq!(
        w.check("https://app.example.com/admin", ("cookie", &john))
            .await
            .0,
        200
    );
    w.slapd.ldapmodify(&format!(
        "dn: cn=admins,ou=groups,{BASE_DN}\nchangetype: modify\nreplace: member\nmember: cn=Bob Dylan,ou=users,{BASE_DN}\n"
    ));
    w.slapd.ldapmodify(&format!(
        "dn: cn=Harry Potter,ou=users,{BASE_DN}\nchangetype: delete\n"
    ));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, user, groups, _) = w
        .check("https://app.example.com/admin", ("cookie", &john))
        .await;
    assert_eq!(status, 403, "john left admins");
    assert_eq!(user, None);
    let (status, _, groups_now, _) = w.check("https://app.example.com/", ("cookie", &john)).await;
    assert_eq!((status, sorted(groups_now)), (200, vec!["dev".to_owned()]));
    assert!(groups.is_none());
    let (status, user, _, cleared) = w
        .check("https://app.example.com/", ("cookie", &harry))
        .await;
    assert_eq!(
        (status, user, cleared),
        (401, None, true),
        "harry was deleted"
    );

    // Down when the refresh is due: refused within the timeout, the session kept.
    w.slapd.freeze(true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let started = Instant::now();
    let (status, user, _, cleared) = w.check("https://app.example.com/", ("cookie", &bob)).await;
    assert_eq!((status, user, cleared), (401, None, false), "frozen");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    w.slapd.freeze(false);
    let (status, user, _, _) = w.check("https://app.example.com/", ("cookie", &bob)).await;
    assert_eq!(
        (status, user.as_deref()),
        (200, Some("bob")),
        "back by itself"
    );

    w.slapd.kill();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, user, _, cleared) = w.check("https://app.example.com/", ("cookie", &bob)).await;
    assert_eq!((status, user, cleared), (401, None, false), "killed");
    w.slapd.restart();
    let (status, user, _, _) = w.check("https://app.example.com/", ("cookie", &bob)).await;
    assert_eq!((status, user.as_deref()), (200, Some("bob")), "restarted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_the_refresh_is_due_sessions_and_cached_basic_credentials_outlive_an_outage() {
    let Some(mut w) = World::start("5m", false).await else {
        return;
    };
    let john = w.login("john", PASSWORD).await.unwrap();
    let harry = basic("harry", PASSWORD);
    assert_eq!(
        w.check("https://app.example.com/", ("authorization", &harry))
            .await
            .0,
        200
    );
    for outage in ["frozen", "killed"] {
        if outage == "frozen" {
            w.slapd.freeze(true);
        } else {
            w.slapd.kill();
        }
        for _ in 0..20 {
            let started = Instant::now();
            let (status, user, groups, _) = w
                .check("https://app.example.com/admin", ("cookie", &john))
                .await;
            assert_eq!((status, user.as_deref()), (200, Some("john")), "{outage}");
            assert_eq!(sorted(groups), ["admins", "dev"]);
            let (status, user, _, _) = w
                .check("https://app.example.com/", ("authorization", &harry))
                .await;
            assert_eq!((status, user.as_deref()), (200, Some("harry")), "{outage}");
            assert!(
                started.elapsed() < Duration::from_millis(500),
                "{outage}: the directory was asked ({:?})",
                started.elapsed()
            );
        }
        // What needs the directory is refused, within its timeout, never allowed.
        let started = Instant::now();
        // A login not seen before (the cache keeps logins as typed).
        let fresh = if outage == "frozen" {
            "bob"
        } else {
            "bob.dylan@authelia.com"
        };
        for (login, password) in [(fresh, PASSWORD), ("harry", "wrong")] {
            let (status, user, _, _) = w
                .check(
                    "https://app.example.com/",
                    ("authorization", &basic(login, password)),
                )
                .await;
            assert_eq!((status, user), (401, None), "{outage}: Basic {login}");
        }
        assert_eq!(w.login(fresh, PASSWORD).await, None, "{outage}: portal");
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "{outage}: {:?}",
            started.elapsed()
        );
        // Under load: 32 sessions and 32 Basic credentials the cache has not seen (the cache
        // keeps logins as typed, so each spelling is new) at once. The sessions pass; no new
        // credential passes; none waits behind the others for longer than the timeout allows.
        let spellings: Vec<String> = (0..32u32)
            .map(|i| {
                "bob.dylan@authelia.com"
                    .chars()
                    .enumerate()
                    .map(|(n, ch)| {
                        if n < 5 && i & (1 << n) != 0 {
                            ch.to_ascii_uppercase()
                        } else {
                            ch
                        }
                    })
                    .collect::<String>()
            })
            .map(|login| basic(&login, PASSWORD))
            .collect();
        let started = Instant::now();
        let sessions = futures_util::future::join_all(
            (0..32).map(|_| w.check("https://app.example.com/", ("cookie", &john))),
        );
        let credentials = futures_util::future::join_all(
            spellings
                .iter()
                .map(|h| w.check("https://app.example.com/", ("authorization", h))),
        );
        let (sessions, credentials) = tokio::join!(sessions, credentials);
        let elapsed = started.elapsed();
        assert!(
            sessions
                .iter()
                .all(|r| r.0 == 200 && r.1.as_deref() == Some("john")),
            "{outage}: {sessions:?}"
        );
        assert!(
            credentials.iter().all(|r| r.0 == 401 && r.1.is_none()),
            "{outage}: {credentials:?}"
        );
        assert!(
            elapsed < Duration::from_secs(7),
            "{outage}: {elapsed:?} under load"
        );
        if outage == "frozen" {
            w.slapd.freeze(false);
        } else {
            w.slapd.restart();
        }
        // Back by itself: a new credential binds again.
        let (status, user, _, _) = w
            .check(
                "https://app.example.com/",
                ("authorization", &basic("bob", PASSWORD)),
            )
            .await;
        assert_eq!(
            (status, user.as_deref()),
            (200, Some("bob")),
            "after {outage}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_and_reset_go_through_the_directory() {
    use reqwest::Method;
    let Some(w) = World::start("5m", true).await else {
        return;
    };
    let john = w.login("john", PASSWORD).await.unwrap();
    let old_basic = basic("john", PASSWORD);
    let cached = w
        .check("https://app.example.com/", ("authorization", &old_basic))
        .await;
    assert_eq!(cached.0, 200, "cached with the old password");
    let (status, body, _) = w
        .portal(
            Method::POST,
            "/api/user/session/elevation",
            Some(&john),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mail = w.mail();
    let code = regex::Regex::new(r"-{40}\n\n([A-Z0-9]{6,20})\n\n-{40}")
        .unwrap()
        .captures(&mail)
        .unwrap_or_else(|| panic!("no code in {mail}"))[1]
        .to_owned();
    let (status, body, _) = w
        .portal(
            Method::PUT,
            "/api/user/session/elevation",
            Some(&john),
            Some(json!({"otc": code})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let change = |old: &str, new: &str| json!({"username": "john", "old_password": old, "new_password": new});
    let (status, body, _) = w
        .portal(
            Method::POST,
            "/api/change-password",
            Some(&john),
            Some(change("not-the-password", "a brand new one")),
        )
        .await;
    assert_eq!(
        (status, body.as_str()),
        (401, r#"{"message":"Incorrect Password","status":"KO"}"#)
    );
    let (status, body, _) = w
        .portal(
            Method::POST,
            "/api/change-password",
            Some(&john),
            Some(change(PASSWORD, "a brand new one")),
        )
        .await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"OK"}"#));
    assert_eq!(w.login("john", PASSWORD).await, None, "the old password");
    assert!(w.login("john", "a brand new one").await.is_some());
    // Basic credentials cached with the old password no longer count.
    let stale = w
        .check("https://app.example.com/", ("authorization", &old_basic))
        .await;
    assert_eq!(stale.0, 401, "the cached old password");
    let (status, _, _, _) = w
        .check(
            "https://app.example.com/",
            ("authorization", &basic("john", "a brand new one")),
        )
        .await;
    assert_eq!(status, 200);

    // harry forgot his: a mailed link, then a reset by the service account.
    let (status, _, _) = w
        .portal(
            Method::POST,
            "/api/reset-password/identity/start",
            None,
            Some(json!({"username": "harry.potter@authelia.com"})),
        )
        .await;
    assert_eq!(status, 200);
    let mail = w.mail();
    let token = mail
        .lines()
        .rev()
        .find(|l| l.contains("/reset-password/step2?token="))
        .unwrap_or_else(|| panic!("no link in {mail}"))
        .split("token=")
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    let (status, body, reset) = w
        .portal(
            Method::POST,
            "/api/reset-password/identity/finish",
            None,
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"OK"}"#));
    let (status, body, _) = w
        .portal(
            Method::POST,
            "/api/reset-password",
            reset.as_deref(),
            Some(json!({"password": "harry's new one"})),
        )
        .await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"OK"}"#));
    assert_eq!(w.login("harry", PASSWORD).await, None);
    assert!(w.login("harry", "harry's new one").await.is_some());
    let metrics = w.verify.state.render_metrics().await;
    assert!(
        metrics
            .contains("portcullis_ldap_operations_total{kind=\"password\",outcome=\"success\"} 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeipas_filter_keeps_locked_and_expired_accounts_out() {
    let Some(w) = World::start("5m", false).await else {
        return;
    };
    // The same directory under `implementation: freeipa`: its default users filter.
    let keys = format!(
        "    address: 'ldap://127.0.0.1:{}'\n    implementation: freeipa\n    timeout: 2s\n    base_dn: '{BASE_DN}'\n    additional_users_dn: 'ou=users'\n    additional_groups_dn: 'ou=groups'\n    user: '{}'\n    password: '{}'\n",
        w.slapd.port,
        portcullis_tests::ldap::SERVICE_DN,
        portcullis_tests::ldap::SERVICE_PASSWORD
    );
    let yaml = VerifyConfig {
        proxy_port: 8443,
        expiration: "1h".into(),
        inactivity: "5m".into(),
        second_factor: false,
        ldap: Some(keys),
    }
    .yaml();
    let dir = tempfile::tempdir().unwrap();
    let ipa = Server::start(dir.path(), &yaml).await;
    let allowed: Vec<&str> = {
        let mut allowed = Vec::new();
        for (uid, _) in IPA_USERS {
            if ipa.login(uid, PASSWORD).await.is_some() {
                allowed.push(uid);
            }
        }
        allowed
    };
    assert_eq!(allowed, ["ipa-active"]);
    // john has no Kerberos password expiry: FreeIPA's filter does not know him.
    assert_eq!(ipa.login("john", PASSWORD).await, None);
    // The custom filter of the other server lets every one of them in.
    for (uid, _) in IPA_USERS {
        assert!(
            w.login(uid, PASSWORD).await.is_some(),
            "{uid} under the custom filter"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_does_not_start_without_its_directory() {
    if !require(PROGRAMS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut slapd = Slapd::start(dir.path());
    let good = yaml(&slapd, "5m", false);
    // The service account refused.
    let state = Verify::state(
        dir.path(),
        &good.replace(
            &format!("password: '{}'", portcullis_tests::ldap::SERVICE_PASSWORD),
            "password: 'not-the-service-password'",
        ),
    );
    let e = attach_configured_directory(&state)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("authentication_backend.ldap"), "{e}");
    assert!(e.contains("service account was refused"), "{e}");
    // Nobody listening.
    let port = slapd.port;
    slapd.kill();
    let state = Verify::state(dir.path(), &good);
    let e = attach_configured_directory(&state)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("ldap://127.0.0.1:{port}")), "{e}");
}
