//! HTTPS clients that reach the proxy on loopback under the `example.com` names: a reqwest client
//! for ordinary requests, a raw client for request targets no URL parser would send unchanged
//! (`/public/../admin`, absolute-form targets), and a WebSocket client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsConnector, rustls};
use tokio_tungstenite::tungstenite;

use crate::upstream::Seen;

/// The host names under test (`<name>.example.com`).
pub const HOSTS: [&str; 5] = ["auth", "app", "public", "forbidden", "office"];

/// A browser-like `Accept` (a navigation).
pub const ACCEPT_HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// A client for one proxy port.
#[derive(Clone)]
pub struct Client {
    /// The proxy's HTTPS port.
    pub port: u16,
    http: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
}

/// A response, read to the end.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body text.
    pub body: String,
}

impl Reply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// What the upstream application saw: the body of its JSON answer. Panics on any other reply.
    pub fn seen(&self) -> Seen {
        assert_eq!(
            self.status, 200,
            "expected the application's answer, got {self:?}"
        );
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not the application's answer ({e}): {self:?}"))
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// The `name=value` pair of the session cookie this reply sets.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("authelia_session=") && !c.contains("Max-Age=0"))
            .map(|c| c.split(';').next().unwrap_or_default().to_owned())
    }
}

/// A request being built (reqwest, never following redirects). Each header has one value (a second
/// `header` call replaces the first); send repeated or oddly spelled headers with [`Client::raw`].
pub struct Request {
    builder: reqwest::RequestBuilder,
    headers: HeaderMap,
}

impl Request {
    fn new(builder: reqwest::RequestBuilder, headers: &[(&str, &str)]) -> Self {
        headers.iter().fold(
            Self {
                builder,
                headers: HeaderMap::new(),
            },
            |r, (n, v)| r.header(n, v),
        )
    }

    /// Set a header (replacing an earlier value).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
        self
    }

    /// Send the session cookie.
    pub fn cookie(self, pair: &str) -> Self {
        self.header("cookie", pair)
    }

    /// Basic credentials in `Authorization`.
    pub fn basic(self, user: &str, password: &str) -> Self {
        self.header("authorization", &basic(user, password))
    }

    /// Send it and read the whole reply.
    pub async fn send(self) -> Reply {
        let response = self
            .builder
            .headers(self.headers)
            .send()
            .await
            .expect("request through the proxy");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        Reply {
            status,
            headers,
            body,
        }
    }
}

/// `Basic <base64(user:password)>`.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

impl Client {
    /// A client whose `*.example.com` names all resolve to the proxy on `127.0.0.1:port`.
    pub fn new(port: u16) -> Self {
        let tls = crate::tls::client_config();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .no_proxy();
        for host in HOSTS {
            builder = builder.resolve(&format!("{host}.example.com"), addr);
        }
        Self {
            port,
            http: builder.build().expect("HTTP client"),
            tls,
        }
    }

    /// `https://<host>.example.com:<port><path>`.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}.example.com:{}{path}", self.port)
    }

    /// A browser-like GET (navigation `Accept`).
    pub fn get(&self, host: &str, path: &str) -> Request {
        Request::new(
            self.http.get(self.url(host, path)),
            &[("accept", ACCEPT_HTML)],
        )
    }

    /// An XHR GET (`X-Requested-With: XMLHttpRequest`, JSON `Accept`).
    pub fn xhr(&self, host: &str, path: &str) -> Request {
        Request::new(
            self.http.get(self.url(host, path)),
            &[
                ("accept", "application/json"),
                ("x-requested-with", "XMLHttpRequest"),
            ],
        )
    }

    /// A POST with a JSON body.
    pub fn post_json(&self, host: &str, path: &str, body: &Value) -> Request {
        Request::new(
            self.http.post(self.url(host, path)).body(body.to_string()),
            &[
                ("content-type", "application/json"),
                ("accept", "application/json"),
            ],
        )
    }

    /// Log in through the proxy (`POST https://auth.example.com/api/firstfactor`) and return the
    /// session cookie pair.
    pub async fn login(&self, user: &str, password: &str) -> String {
        let reply = self
            .post_json(
                "auth",
                "/api/firstfactor",
                &serde_json::json!({"username": user, "password": password}),
            )
            .send()
            .await;
        assert_eq!(reply.status, 200, "login as {user} failed: {reply:?}");
        reply
            .session_cookie()
            .unwrap_or_else(|| panic!("login as {user} set no session cookie: {reply:?}"))
    }

    /// Log out through the proxy (`POST https://auth.example.com/api/logout`).
    pub async fn logout(&self, cookie: &str) {
        let reply = self
            .post_json("auth", "/api/logout", &serde_json::json!({}))
            .cookie(cookie)
            .send()
            .await;
        assert_eq!(reply.status, 200, "logout failed: {reply:?}");
    }

    async fn tls_stream(
        &self,
        sni: &str,
    ) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to the proxy");
        let name = rustls_pki_types::ServerName::try_from(sni.to_owned()).expect("server name");
        TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .expect("TLS handshake with the proxy")
    }

    /// Send `GET <target> HTTP/1.1` byte for byte over TLS to `<host>.example.com` (SNI and `Host`),
    /// with extra header lines, and read the reply.
    pub async fn raw_get(&self, host: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
        let host_header = format!("{host}.example.com:{}", self.port);
        let mut lines = vec![("Host", host_header.as_str()), ("Accept", ACCEPT_HTML)];
        lines.extend_from_slice(headers);
        self.raw(&format!("{host}.example.com"), "GET", target, &lines)
            .await
    }

    /// Send a request with exactly this request line and these header lines (plus
    /// `Connection: close`), over TLS with the given SNI name.
    pub async fn raw(
        &self,
        sni: &str,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = format!("{method} {target} HTTP/1.1\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("Connection: close\r\n\r\n");
        let mut stream = self.tls_stream(sni).await;
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send the raw request");
        let mut bytes = Vec::new();
        let read = async {
            let mut buf = [0u8; 8192];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => bytes.extend_from_slice(&buf[..n]),
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(15), read).await;
        parse_reply(&bytes).unwrap_or_else(|| {
            panic!(
                "unreadable reply to {method} {target}: {:?}",
                String::from_utf8_lossy(&bytes)
            )
        })
    }

    /// Open a WebSocket to `wss://<host>.example.com:<port><path>` with extra request headers.
    /// `Err` carries the HTTP status when the handshake was refused.
    pub async fn websocket(
        &self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<
        tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
        u16,
    > {
        use tungstenite::client::IntoClientRequest;
        let url = format!("wss://{host}.example.com:{}{path}", self.port);
        let mut request = url.into_client_request().expect("WebSocket request");
        for (name, value) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        let stream = self.tls_stream(&format!("{host}.example.com")).await;
        match tokio_tungstenite::client_async(request, stream).await {
            Ok((socket, _)) => Ok(socket),
            Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(e) => panic!("WebSocket handshake failed: {e}"),
        }
    }
}

fn parse_reply(bytes: &[u8]) -> Option<Reply> {
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..split]).ok()?;
    let mut raw_body = &bytes[split + 4..];
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        headers.append(
            http::HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
            HeaderValue::from_str(value.trim()).ok()?,
        );
    }
    let chunked = headers
        .get("transfer-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let end = raw_body.windows(2).position(|w| w == b"\r\n")?;
            let size_text = std::str::from_utf8(&raw_body[..end]).ok()?;
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            raw_body = &raw_body[end + 2..];
            if size == 0 {
                break;
            }
            body.extend_from_slice(raw_body.get(..size)?);
            raw_body = raw_body.get(size + 2..)?;
        }
    } else {
        body.extend_from_slice(raw_body);
    }
    Some(Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
