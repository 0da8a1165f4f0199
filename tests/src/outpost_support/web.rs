//! The scripted browser of the outpost tests: reqwest with `*.example.com` on loopback, the
//! provider's cookies in a jar, and the whole login through the outpost and the provider's form.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use http::HeaderMap;
use serde_json::Value;

use super::app::header;
use super::{APP_HOST, CLIENT_ID, IDP_HOST, PASSWORD, USERNAME, redirect_uri};

/// Cookies by name (paths ignored: the provider's cookies all have distinct names).
#[derive(Debug, Default, Clone)]
pub struct Jar(BTreeMap<String, String>);

impl Jar {
    /// Take in every `Set-Cookie` of an answer; a deletion removes the cookie.
    pub fn absorb(&mut self, headers: &HeaderMap) {
        for value in headers.get_all("set-cookie") {
            let text = String::from_utf8_lossy(value.as_bytes());
            let Some((name, rest)) = text.split(';').next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let lower = text.to_ascii_lowercase();
            let deleted = rest.is_empty()
                || lower.contains("max-age=0")
                || lower.contains("expires=thu, 01 jan 1970");
            if deleted {
                self.0.remove(name.trim());
            } else {
                self.0
                    .insert(name.trim().to_owned(), rest.trim().to_owned());
            }
        }
    }

    /// The `Cookie` header value.
    pub fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// One cookie's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// The `name=value` of the `Set-Cookie` for `name` that sets (not deletes) it.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|c| c.starts_with(&format!("{name}=")) && !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
        .next_back()
}

/// Whether an answer deletes cookie `name` (`Max-Age=0`).
pub fn deletes_cookie(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with(&format!("{name}=")) && c.contains("Max-Age=0"))
}

/// A query parameter of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `Location` of an answer, resolved against the URL that was asked for.
pub fn location(asked: &str, headers: &HeaderMap) -> String {
    let value = header(headers, "location");
    assert!(!value.is_empty(), "no Location in the answer to {asked}");
    url::Url::parse(asked)
        .and_then(|u| u.join(value))
        .unwrap_or_else(|e| panic!("Location {value} (from {asked}): {e}"))
        .to_string()
}

/// A scripted browser: reqwest with `*.example.com` on loopback, no redirects followed, no
/// idle connections kept (an outpost shuts down without waiting for them), and the provider's
/// cookies kept in a jar (the outpost's cookie is handled by each test, explicitly).
pub struct Web {
    /// The client.
    pub http: reqwest::Client,
    /// The provider's cookies (its browser session).
    pub idp: Jar,
    /// The callback URL (as sent to the outpost) and the pre-login cookie of the last
    /// [`Web::login`], for tests that replay it.
    pub last_callback: Option<(String, String)>,
    /// The whole `Set-Cookie` of the session cookie the last [`Web::login`] received.
    pub last_set_cookie: Option<String>,
}

/// A response, read to the end.
#[derive(Debug)]
pub struct Got {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body text.
    pub body: String,
    /// The URL asked for.
    pub url: String,
}

impl Got {
    /// The `Location`, resolved.
    pub fn location(&self) -> String {
        location(&self.url, &self.headers)
    }

    /// The body as JSON (the application's echo).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

impl Default for Web {
    fn default() -> Self {
        Self::new()
    }
}

impl Web {
    /// A fresh browser.
    pub fn new() -> Self {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let http = reqwest::Client::builder()
            .resolve(APP_HOST, loopback)
            .resolve(IDP_HOST, loopback)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .build()
            .expect("an HTTP client");
        Self {
            http,
            idp: Jar::default(),
            last_callback: None,
            last_set_cookie: None,
        }
    }

    async fn read(url: &str, response: reqwest::Response) -> Got {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        Got {
            status,
            headers,
            body,
            url: url.to_owned(),
        }
    }

    /// GET `url` with the outpost cookie `cookie` (`name=value`) if any.
    pub async fn get(&self, url: &str, cookie: Option<&str>) -> Got {
        let mut request = self.http.get(url).header("accept", "text/html");
        if let Some(c) = cookie {
            request = request.header("cookie", c);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        Self::read(url, response).await
    }

    /// GET at the provider, with its cookies.
    pub async fn idp_get(&mut self, url: &str) -> Got {
        let response = self
            .http
            .get(url)
            .header("accept", "text/html")
            .header("cookie", self.idp.header())
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        self.idp.absorb(response.headers());
        Self::read(url, response).await
    }

    /// POST a form at the provider, with its cookies.
    pub async fn idp_post(&mut self, url: &str, form: &[(&str, &str)]) -> Got {
        let response = self
            .http
            .post(url)
            .header("cookie", self.idp.header())
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        self.idp.absorb(response.headers());
        Self::read(url, response).await
    }

    /// Follow the provider's redirects from `url` until an answer is not a redirect within the
    /// provider, or leaves it: returns that answer (a page) or the URL outside (`Err`).
    pub async fn idp_follow(&mut self, mut url: String) -> Result<Got, String> {
        for _ in 0..10 {
            if !url.starts_with(&format!("http://{IDP_HOST}:")) {
                return Err(url);
            }
            let got = self.idp_get(&url).await;
            if !(300..400).contains(&got.status) {
                return Ok(got);
            }
            url = got.location();
        }
        panic!("more than 10 redirects at the provider, last {url}");
    }

    /// The whole browser login through the outpost at `base` (proxy mode): `path` without a
    /// cookie → 302 to `start` → 302 to the provider's authorization endpoint with PKCE →
    /// the provider's login form (when it has no session yet: submitted with the fixed user) →
    /// the callback at `external` → 302 back to `external` + `path` with the session cookie.
    /// Returns that cookie (`name=value`).
    pub async fn login(
        &mut self,
        base: &str,
        external: &str,
        path: &str,
        cookie_name: &str,
    ) -> String {
        self.login_via(base, base, external, path, cookie_name)
            .await
    }

    /// [`Web::login`] with the browser reaching the outpost at `base` for the request and the
    /// start of the login, and at `callback_base` for the callback (two replicas behind one
    /// external host).
    pub async fn login_via(
        &mut self,
        base: &str,
        callback_base: &str,
        external: &str,
        path: &str,
        cookie_name: &str,
    ) -> String {
        let entry = format!("{base}{path}");
        let r = self.get(&entry, None).await;
        assert_eq!(
            r.status, 302,
            "an anonymous request is sent to log in: {r:?}"
        );
        let start = r.location();
        let back = format!("{external}{path}");
        assert_eq!(
            param(&start, "rd").as_deref(),
            Some(back.as_str()),
            "start carries where to come back to: {start}"
        );
        assert!(
            start.starts_with(&format!("{external}/outpost.goauthentik.io/start?")),
            "{start}"
        );
        // The browser follows to the start endpoint, on whichever outpost it reached.
        let start = start.replacen(external, base, 1);
        let r = self.get(&start, None).await;
        assert_eq!(r.status, 302, "start redirects to the provider: {r:?}");
        let pre_login = set_cookie(&r.headers, cookie_name)
            .unwrap_or_else(|| panic!("start sets the pre-login cookie: {r:?}"));
        let authorize = r.location();
        assert!(
            authorize.starts_with(&format!("http://{IDP_HOST}:")) && authorize.contains("/auth?"),
            "{authorize}"
        );
        for (name, value) in [
            ("client_id", CLIENT_ID.to_owned()),
            ("response_type", "code".to_owned()),
            ("redirect_uri", redirect_uri(external)),
            ("code_challenge_method", "S256".to_owned()),
        ] {
            assert_eq!(
                param(&authorize, name).as_deref(),
                Some(value.as_str()),
                "{name} in {authorize}"
            );
        }
        assert!(param(&authorize, "code_challenge").is_some_and(|c| c.len() == 43));
        let names: Vec<String> = url::Url::parse(&authorize)
            .unwrap()
            .query_pairs()
            .map(|(k, _)| k.into_owned())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(
            names, sorted,
            "the parameters in alphabetical order: {authorize}"
        );
        let callback = match self.idp_follow(authorize).await {
            Err(callback) => callback,
            Ok(page) => {
                assert_eq!(page.status, 200, "the provider's login page: {page:?}");
                let callback = self.submit_login(&page, PASSWORD).await;
                callback.unwrap_or_else(|page| {
                    panic!("the provider refused the right password: {page:?}")
                })
            }
        };
        assert!(
            callback.starts_with(&redirect_uri(external)),
            "the provider returns to the registered callback: {callback}"
        );
        assert!(param(&callback, "code").is_some(), "{callback}");
        let callback = callback.replacen(external, callback_base, 1);
        let r = self.get(&callback, Some(&pre_login)).await;
        assert_eq!(r.status, 302, "the callback redirects: {r:?}");
        assert_eq!(r.location(), back, "back where the user was going");
        self.last_callback = Some((callback, pre_login));
        self.last_set_cookie = r
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(|c| c.starts_with(&format!("{cookie_name}=")) && !c.contains("Max-Age=0"))
            .map(str::to_owned)
            .next_back();
        set_cookie(&r.headers, cookie_name)
            .unwrap_or_else(|| panic!("the callback sets the session cookie: {r:?}"))
    }

    /// Submit the provider's login form `page` as the fixed user with `password`: `Ok` is the
    /// URL outside the provider it ends at, `Err` the page it shows instead.
    pub async fn submit_login(&mut self, page: &Got, password: &str) -> Result<String, Got> {
        assert!(
            page.body.contains("id=\"username\""),
            "the login form: {}",
            page.body
        );
        let action = page
            .body
            .split("action=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("a form action: {}", page.body));
        let action = url::Url::parse(&page.url)
            .and_then(|u| u.join(action))
            .expect("form action URL")
            .to_string();
        let r = self
            .idp_post(&action, &[("username", USERNAME), ("password", password)])
            .await;
        if !(300..400).contains(&r.status) {
            return Err(r);
        }
        match self.idp_follow(r.location()).await {
            Err(outside) => Ok(outside),
            Ok(page) => Err(page),
        }
    }
}
