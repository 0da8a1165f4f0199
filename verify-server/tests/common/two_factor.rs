//! A server with second factors on (SQLite in a temporary folder, the filesystem notifier, the
//! elevation rate limits raised as Authelia's suites raise them), and the steps every
//! second-factor test takes: log in, elevate with the mailed code, register TOTP.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use portcullis_second_factor::totp::{TotpParameters, TotpSecret, code_at};
use portcullis_session::MemoryStore;
use serde_json::{Value, json};

use super::{CONFIG, Harness, Reply, users_yaml};

pub const KEY: &str = "a_not_so_secure_encryption_key";

pub struct TwoFactor {
    pub h: Harness,
    pub dir: tempfile::TempDir,
}

pub fn yaml(dir: &Path, extra: &str) -> String {
    format!(
        "{CONFIG}storage:\n  encryption_key: {KEY}\n  local:\n    path: {}\nnotifier:\n  filesystem:\n    filename: {}\nserver:\n  address: 'tcp://127.0.0.1:9091/'\n  endpoints:\n    rate_limits:\n      session_elevation_start:\n        buckets: [{{ period: 1m, requests: 20 }}]\n      session_elevation_finish:\n        buckets: [{{ period: 1m, requests: 20 }}]\n{extra}",
        dir.join("db.sqlite3").display(),
        dir.join("notification.txt").display()
    )
    .replacen("server:\n  address: 'tcp://127.0.0.1:9091/'\nlog:", "log:", 1)
}

impl TwoFactor {
    pub fn new() -> Self {
        Self::with("")
    }

    /// With top-level sections added (or, for `authentication_backend:`, replacing the test's).
    pub fn with_top(top: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users.yml");
        std::fs::write(&users, users_yaml()).unwrap();
        let mut text = yaml(dir.path(), "");
        if top.starts_with("authentication_backend:") {
            let start = text.find("authentication_backend:").unwrap();
            let end = start + text[start..].find("access_control:").unwrap();
            text.replace_range(start..end, top);
        } else {
            text.push_str(top);
        }
        let text = text.replacen(
            "    path: users.yml\n",
            &format!("    path: {}\n", users.display()),
            1,
        );
        let h = Harness::with(&text, Arc::new(MemoryStore::new()));
        Self { h, dir }
    }

    pub fn with(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The users file lives in the test's folder, so a password change can write it.
        let users = dir.path().join("users.yml");
        std::fs::write(&users, users_yaml()).unwrap();
        let text = yaml(dir.path(), extra).replacen(
            "    path: users.yml\n",
            &format!("    path: {}\n", users.display()),
            1,
        );
        let h = Harness::with(&text, Arc::new(MemoryStore::new()));
        Self { h, dir }
    }

    pub fn now(&self) -> u64 {
        self.h.state.now()
    }

    pub async fn call(&self, method: &str, path: &str, cookie: &str, body: Option<Value>) -> Reply {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "auth.example.com");
        if !cookie.is_empty() {
            b = b.header("cookie", cookie);
        }
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.h.send(b.body(body).unwrap()).await
    }

    pub fn mailed_code(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("notification.txt")).unwrap();
        let pattern = regex::Regex::new(r"-{40}\n\n([A-Z0-9]{6,20})\n\n-{40}").unwrap();
        pattern
            .captures(&text)
            .unwrap_or_else(|| panic!("no code in {text}"))[1]
            .to_owned()
    }

    pub async fn elevate(&self, cookie: &str) {
        let r = self
            .call("POST", "/api/user/session/elevation", cookie, None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let code = self.mailed_code();
        let r = self
            .call(
                "PUT",
                "/api/user/session/elevation",
                cookie,
                Some(json!({"otc": code.to_lowercase()})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }

    /// Register TOTP for the user of `cookie`; returns the secret.
    pub async fn register(&self, cookie: &str) -> TotpSecret {
        self.elevate(cookie).await;
        let r = self
            .call(
                "PUT",
                "/api/secondfactor/totp/register",
                cookie,
                Some(json!({"algorithm": "SHA1", "length": 6, "period": 30})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        let secret = TotpSecret::from_base32(v["data"]["base32_secret"].as_str().unwrap()).unwrap();
        let code = code_at(&secret, TotpParameters::default(), self.now());
        let r = self
            .call(
                "POST",
                "/api/secondfactor/totp/register",
                cookie,
                Some(json!({"token": code})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body, r#"{"status":"OK"}"#);
        secret
    }
}

pub fn data(r: &Reply) -> Value {
    serde_json::from_str::<Value>(&r.body).unwrap()["data"].clone()
}
