//! A browser without a page engine: a cookie jar (domain and host-only cookies), redirects
//! followed one hop at a time, and portcullis-verify's portal login through its API.

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use serde_json::Value;

use crate::client::Reply;

/// One cookie of the jar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// The host that set it (host-only cookies) or its `Domain` (without a leading dot).
    pub domain: String,
    /// No `Domain` attribute: sent back to the setting host only.
    pub host_only: bool,
}

impl Cookie {
    fn matches(&self, host: &str) -> bool {
        host == self.domain || (!self.host_only && host.ends_with(&format!(".{}", self.domain)))
    }
}

/// One response of a browsed chain of redirects.
#[derive(Debug, Clone)]
pub struct Hop {
    /// The URL asked.
    pub url: String,
    /// The answer.
    pub reply: Reply,
}

impl Hop {
    /// The absolute URL of the answer's `Location`, resolved against the URL asked.
    pub fn location(&self) -> Option<String> {
        let location = self.reply.header("location")?;
        let base = url::Url::parse(&self.url).expect("a URL asked");
        Some(base.join(location).expect("a Location").to_string())
    }
}

/// A browser without a page engine (see the module documentation).
pub struct Browser {
    pub(super) http: reqwest::Client,
    /// The cookies kept.
    pub jar: Vec<Cookie>,
}

impl Browser {
    /// A browser resolving `<name>.example.com` to `127.0.0.1:<port>` for each `(name, port)`.
    pub fn new(names: &[(&str, u16)]) -> Self {
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls((*crate::tls::client_config()).clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .no_proxy();
        for (name, port) in names {
            builder = builder.resolve(
                &format!("{name}.example.com"),
                SocketAddr::from(([127, 0, 0, 1], *port)),
            );
        }
        Self {
            http: builder.build().expect("HTTP client"),
            jar: Vec::new(),
        }
    }

    /// The `Cookie` header this browser sends to `host`.
    pub fn cookie_header(&self, host: &str) -> String {
        self.jar
            .iter()
            .filter(|c| c.matches(host))
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The cookie called `name` (the first, if several domains hold one).
    pub fn cookie(&self, name: &str) -> Option<&Cookie> {
        self.jar.iter().find(|c| c.name == name)
    }

    /// The cookies whose name starts with `prefix`.
    pub fn cookies_named(&self, prefix: &str) -> Vec<&Cookie> {
        self.jar
            .iter()
            .filter(|c| c.name.starts_with(prefix))
            .collect()
    }

    fn store(&mut self, host: &str, headers: &HeaderMap) {
        for value in headers.get_all("set-cookie") {
            let Ok(text) = value.to_str() else { continue };
            let mut parts = text.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let mut domain = None;
            let mut delete = false;
            for attribute in parts {
                let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
                match key.to_ascii_lowercase().as_str() {
                    "domain" => {
                        domain = Some(val.trim_start_matches('.').to_ascii_lowercase());
                    }
                    "max-age" => delete = val.trim().parse::<i64>().is_ok_and(|s| s <= 0),
                    _ => {}
                }
            }
            let cookie = Cookie {
                name: name.to_owned(),
                value: value.to_owned(),
                host_only: domain.is_none(),
                domain: domain.unwrap_or_else(|| host.to_owned()),
            };
            self.jar
                .retain(|c| !(c.name == cookie.name && c.domain == cookie.domain));
            if !delete && !cookie.value.is_empty() {
                self.jar.push(cookie);
            }
        }
    }

    /// GET `url` with the jar's cookies and `headers`; the answer's cookies go into the jar.
    pub async fn get(&mut self, url: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(self.http.get(url), url, headers).await
    }

    /// POST a JSON body.
    pub async fn post_json(&mut self, url: &str, body: &Value) -> Reply {
        let request = self.http.post(url).body(body.to_string());
        self.send(
            request,
            url,
            &[
                ("content-type", "application/json"),
                ("accept", "application/json"),
            ],
        )
        .await
    }

    async fn send(
        &mut self,
        request: reqwest::RequestBuilder,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let host = url::Url::parse(url)
            .expect("URL")
            .host_str()
            .expect("host")
            .to_owned();
        let mut map = HeaderMap::new();
        map.insert(
            "accept",
            HeaderValue::from_static(crate::client::ACCEPT_HTML),
        );
        for (name, value) in headers {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        let cookies = self.cookie_header(&host);
        if !cookies.is_empty() && !map.contains_key("cookie") {
            map.insert(
                "cookie",
                HeaderValue::from_str(&cookies).expect("cookie header"),
            );
        }
        let response = request
            .headers(map)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        self.store(&host, &headers);
        Reply {
            status,
            headers,
            body,
        }
    }

    /// GET `url` and follow redirects while `follow` accepts the next URL (at most 12 hops).
    /// Every answer is returned, the last one first in [`Trail::last`].
    pub async fn browse(
        &mut self,
        url: &str,
        headers: &[(&str, &str)],
        follow: impl Fn(&url::Url) -> bool,
    ) -> Trail {
        let mut hops = Vec::new();
        let mut next = url.to_owned();
        for _ in 0..12 {
            let reply = self.get(&next, headers).await;
            let hop = Hop {
                url: next.clone(),
                reply,
            };
            let location = (300..400)
                .contains(&hop.reply.status)
                .then(|| hop.location())
                .flatten();
            hops.push(hop);
            match location {
                Some(l) if follow(&url::Url::parse(&l).expect("Location URL")) => next = l,
                _ => return Trail { hops },
            }
        }
        panic!(
            "more than 12 redirects from {url}: {:#?}",
            Trail { hops }.urls()
        );
    }

    /// Log in at portcullis-verify's portal page `portal` (the login page of an OpenID flow,
    /// `…/?flow=openid_connect&flow_id=…`) through its API, as the page's script does; returns
    /// where the portal sends the browser next (the authorization endpoint again).
    pub async fn portal_login(&mut self, portal: &str, user: (&str, &str)) -> String {
        let url = url::Url::parse(portal).expect("portal URL");
        let flow_id = url
            .query_pairs()
            .find(|(k, _)| k == "flow_id")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no flow_id in {portal}"));
        let origin = url.origin().ascii_serialization();
        let reply = self
            .post_json(
                &format!("{origin}/api/firstfactor"),
                &serde_json::json!({
                    "username": user.0,
                    "password": user.1,
                    "flow": "openid_connect",
                    "flowID": flow_id,
                }),
            )
            .await;
        assert_eq!(
            reply.status, 200,
            "the portal login as {}: {reply:?}",
            user.0
        );
        reply.json()["data"]["redirect"]
            .as_str()
            .unwrap_or_else(|| panic!("no redirect after the portal login: {reply:?}"))
            .to_owned()
    }
}

/// The answers of one browsed chain of redirects.
#[derive(Debug, Clone)]
pub struct Trail {
    /// Every answer, in order.
    pub hops: Vec<Hop>,
}

impl Trail {
    /// The last answer.
    pub fn last(&self) -> &Hop {
        self.hops.last().expect("at least one hop")
    }

    /// The URLs asked, in order.
    pub fn urls(&self) -> Vec<String> {
        self.hops.iter().map(|h| h.url.clone()).collect()
    }
}

/// A query parameter of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The claims of a JWT (not verified: the outpost and portcullis-verify did that).
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token
        .split('.')
        .nth(1)
        .unwrap_or_else(|| panic!("not a JWT: {token}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_else(|e| panic!("not a JWT ({e}): {token}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not a JWT ({e}): {token}"))
}
