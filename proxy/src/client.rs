//! The pooled upstream client and `forward`.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use http::header::{self, HeaderValue};
use http::uri::Authority;
use http::{Extensions, Method, Request, Response, StatusCode, Uri, Version};
use hyper::upgrade::OnUpgrade;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio_rustls::rustls::ClientConfig;

use crate::error::ConnectTimedOut;
use crate::hop::{self, Keep};
use crate::{ProxyError, Upstream, tls, upgrade};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// At most this many upstreams keep a connection pool; past it the pools are dropped and rebuilt
/// on demand (backend overrides come from user claims, so their number is not fixed).
const MAX_UPSTREAMS: usize = 64;

/// How an [`UpstreamClient`] connects.
#[derive(Clone)]
pub struct ClientOptions {
    /// Verify the upstream's certificate (authentik's `internal_host_ssl_validation`). When
    /// `false` any certificate is accepted, for any name.
    pub verify_tls: bool,
    /// Limit for the TCP connection plus the TLS handshake.
    pub connect_timeout: Duration,
    /// Certificate authorities trusted besides the system's, when `verify_tls` is on.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// An upgraded (WebSocket) connection with no byte in either direction for this long (up to
    /// twice as long) is closed.
    pub upgrade_idle_timeout: Duration,
}

impl Default for ClientOptions {
    /// Verification on, a 10 second connect timeout, no extra roots, upgraded connections closed
    /// after 10 idle minutes.
    fn default() -> Self {
        Self {
            verify_tls: true,
            connect_timeout: Duration::from_secs(10),
            extra_roots: Vec::new(),
            upgrade_idle_timeout: Duration::from_secs(600),
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("verify_tls", &self.verify_tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("extra_roots", &self.extra_roots.len())
            .field("upgrade_idle_timeout", &self.upgrade_idle_timeout)
            .finish()
    }
}

/// The reverse proxy of one application: pooled connections to its upstreams over HTTP/1.1, or
/// HTTP/2 when a TLS upstream offers it by ALPN.
///
/// Cloning is cheap and shares the pools. Environment proxy variables (`HTTP_PROXY` and the like)
/// are not read: requests always go straight to the upstream.
#[derive(Clone)]
pub struct UpstreamClient {
    inner: Arc<Inner>,
}

struct Inner {
    connect_timeout: Duration,
    upgrade_idle_timeout: Duration,
    verify_tls: bool,
    /// ALPN `h2`, `http/1.1`.
    tls_any: Arc<ClientConfig>,
    /// ALPN `http/1.1` only: upgrades (WebSocket) need HTTP/1.1 end to end.
    tls_http1: Arc<ClientConfig>,
    pools: Mutex<HashMap<Upstream, Pools>>,
}

/// The two pools of one upstream.
#[derive(Clone)]
struct Pools {
    any: Client<Dialer, Body>,
    http1: Client<Dialer, Body>,
}

impl fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("verify_tls", &self.inner.verify_tls)
            .field("connect_timeout", &self.inner.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl UpstreamClient {
    /// Builds the client: the TLS configuration (ring; the system's trusted roots plus
    /// `extra_roots`, unless `verify_tls` is off). Connections are made on demand.
    ///
    /// # Errors
    ///
    /// [`ProxyError::Options`] when an extra root is not a usable CA certificate.
    pub fn new(options: ClientOptions) -> Result<Self, ProxyError> {
        let mut tls_any = tls::client_config(&options)?;
        let mut tls_http1 = tls_any.clone();
        tls_any.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tls_http1.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            inner: Arc::new(Inner {
                connect_timeout: options.connect_timeout,
                upgrade_idle_timeout: options.upgrade_idle_timeout,
                verify_tls: options.verify_tls,
                tls_any: Arc::new(tls_any),
                tls_http1: Arc::new(tls_http1),
                pools: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Forwards `request` (as an axum or hyper server received it) to `upstream` and returns the
    /// upstream's response for the client.
    ///
    /// - The method, path, query, headers and body are kept; the version is chosen per
    ///   connection (HTTP/1.1, or HTTP/2 when a TLS upstream offers `h2`).
    /// - `host` replaces the `Host` header when given (authentik's `host_header`); otherwise the
    ///   client's `Host` is kept, as authentik does. The same value is the `:authority` of an
    ///   HTTP/2 request; the TLS server name is always the upstream's host.
    /// - Hop-by-hop headers ([`remove_hop_by_hop`](crate::remove_hop_by_hop)) are removed in both
    ///   directions. An upgrade request (`Connection: upgrade` and `Upgrade`, WebSocket say) keeps
    ///   both headers and goes over HTTP/1.1; when the upstream answers `101 Switching Protocols`
    ///   the two upgraded connections are joined in a spawned task, which ends when either side
    ///   closes.
    /// - Both bodies stream: nothing is buffered whole, and response data reaches the client as it
    ///   arrives (server-sent events work).
    ///
    /// `X-Forwarded-*` and identity headers are the caller's job: set them on `request` first
    /// (after calling [`remove_hop_by_hop`](crate::remove_hop_by_hop), so a client cannot have
    /// them removed by naming them in `Connection`).
    ///
    /// # Errors
    ///
    /// [`ProxyError::Connect`], [`ProxyError::Timeout`] or [`ProxyError::Tls`] when no connection
    /// could be made, [`ProxyError::Other`] when the upstream failed to answer,
    /// [`ProxyError::InvalidRequest`] for a `CONNECT` request, and [`ProxyError::Upgrade`] when the
    /// client's connection cannot be upgraded or the upstream switched to a protocol the client did
    /// not ask for.
    pub async fn forward(
        &self,
        request: Request<Body>,
        upstream: &Upstream,
        host: Option<&HeaderValue>,
    ) -> Result<Response<Body>, ProxyError> {
        let (mut parts, body) = request.into_parts();
        if parts.method == Method::CONNECT {
            return Err(ProxyError::InvalidRequest {
                reason: "CONNECT requests are not forwarded",
            });
        }

        let requested_upgrade = hop::strip(
            &mut parts.headers,
            Keep {
                upgrade: true,
                te_trailers: true,
            },
        );
        let client_upgrade =
            match &requested_upgrade {
                Some(_) => Some(parts.extensions.remove::<OnUpgrade>().ok_or_else(|| {
                    ProxyError::Upgrade {
                        reason: "the client's connection cannot be upgraded".to_owned(),
                    }
                })?),
                None => None,
            };
        // Nothing of the server side's extensions (its upgrade handle, HTTP/2 `:protocol`) may
        // steer the client side.
        parts.extensions = Extensions::new();

        let host = match host {
            Some(value) => Some(value.clone()),
            None => parts.headers.get(header::HOST).cloned().or_else(|| {
                // HTTP/2 clients send `:authority` instead of `Host`.
                parts
                    .uri
                    .authority()
                    .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
            }),
        };
        if let Some(value) = &host {
            parts.headers.insert(header::HOST, value.clone());
        }
        parts.uri = upstream_uri(&parts.uri, upstream, host.as_ref())?;
        parts.version = Version::HTTP_11;

        let pools = self.pools(upstream)?;
        let client = if requested_upgrade.is_some() {
            &pools.http1
        } else {
            &pools.any
        };
        let response = client
            .request(Request::from_parts(parts, body))
            .await
            .map_err(|error| ProxyError::from_client(&error, self.inner.connect_timeout))?;

        let (mut parts, body) = response.into_parts();
        if parts.status == StatusCode::SWITCHING_PROTOCOLS {
            let (Some(requested), Some(client_upgrade)) = (requested_upgrade, client_upgrade)
            else {
                return Err(ProxyError::Upgrade {
                    reason: "the upstream switched protocols unasked".to_owned(),
                });
            };
            let answered = hop::strip(
                &mut parts.headers,
                Keep {
                    upgrade: true,
                    te_trailers: false,
                },
            );
            if !answered.is_some_and(|answered| hop::same_protocol(&requested, &answered)) {
                return Err(ProxyError::Upgrade {
                    reason: "the upstream switched to a protocol the client did not ask for"
                        .to_owned(),
                });
            }
            let upstream_upgrade =
                parts
                    .extensions
                    .remove::<OnUpgrade>()
                    .ok_or_else(|| ProxyError::Upgrade {
                        reason: "the upstream connection cannot be upgraded".to_owned(),
                    })?;
            upgrade::join(
                client_upgrade,
                upstream_upgrade,
                upstream.clone(),
                self.inner.upgrade_idle_timeout,
            )?;
            parts.extensions = Extensions::new();
            return Ok(Response::from_parts(parts, Body::empty()));
        }

        hop::strip(
            &mut parts.headers,
            Keep {
                upgrade: false,
                te_trailers: false,
            },
        );
        parts.extensions = Extensions::new();
        Ok(Response::from_parts(parts, Body::new(body)))
    }

    /// The pools of `upstream`, made on first use.
    fn pools(&self, upstream: &Upstream) -> Result<Pools, ProxyError> {
        let mut pools = self
            .inner
            .pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = pools.get(upstream) {
            return Ok(found.clone());
        }
        if pools.len() >= MAX_UPSTREAMS {
            tracing::debug!(
                upstreams = pools.len(),
                "too many upstreams; dropping their connection pools"
            );
            pools.clear();
        }
        let target = upstream.root_uri()?;
        let built = Pools {
            any: pooled(self.dialer(target.clone(), &self.inner.tls_any)),
            http1: pooled(self.dialer(target, &self.inner.tls_http1)),
        };
        pools.insert(upstream.clone(), built.clone());
        Ok(built)
    }

    fn tcp(&self) -> HttpConnector {
        let mut tcp = HttpConnector::new();
        // The scheme is checked by the HTTPS connector around it.
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(self.inner.connect_timeout));
        tcp
    }

    fn dialer(&self, target: Uri, tls: &Arc<ClientConfig>) -> Dialer {
        Dialer {
            target,
            // Not `HttpsConnectorBuilder`: it insists on setting ALPN itself (and panics on a
            // configuration that has it), and cannot offer `http/1.1` alone. `From` keeps the
            // configuration as it is and accepts both `http` and `https`.
            https: HttpsConnector::from((self.tcp(), Arc::clone(tls))),
            timeout: self.inner.connect_timeout,
        }
    }
}

fn pooled(dialer: Dialer) -> Client<Dialer, Body> {
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(dialer)
}

/// The URI of the forwarded request: the upstream's scheme, the request's path and query, and as
/// authority the `Host` sent (the pool key, and HTTP/2's `:authority`) when it is a plain
/// `host[:port]`, else the upstream's. The connection itself always goes to the upstream
/// ([`Dialer`]).
fn upstream_uri(
    original: &Uri,
    upstream: &Upstream,
    host: Option<&HeaderValue>,
) -> Result<Uri, ProxyError> {
    let authority = host
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<Authority>().ok())
        .filter(plain_authority)
        .unwrap_or_else(|| upstream.authority_typed().clone());
    let path = original
        .path_and_query()
        .map(|path| path.as_str())
        .filter(|path| path.starts_with('/') || *path == "*")
        .unwrap_or("/");
    Uri::builder()
        .scheme(upstream.scheme_typed().clone())
        .authority(authority)
        .path_and_query(path)
        .build()
        .map_err(|_| ProxyError::InvalidRequest {
            reason: "the request target cannot be sent to the upstream",
        })
}

/// `host` or `host:port` with a numeric port: no user info, nothing `http` accepts leniently.
fn plain_authority(authority: &Authority) -> bool {
    let host = authority.host();
    !host.is_empty()
        && !authority.as_str().contains('@')
        && match authority.as_str().strip_prefix(host) {
            Some("") => true,
            Some(rest) => rest
                .strip_prefix(':')
                .is_some_and(|port| port.parse::<u16>().is_ok()),
            None => false,
        }
}

/// Connects to one upstream whatever URI the pool asks for (the pool is keyed by the `Host` the
/// request carries), with one timeout over TCP connect and TLS handshake.
#[derive(Clone)]
struct Dialer {
    target: Uri,
    https: HttpsConnector<HttpConnector>,
    timeout: Duration,
}

impl tower::Service<Uri> for Dialer {
    type Response = MaybeHttpsStream<TokioIo<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.https.poll_ready(cx)
    }

    fn call(&mut self, _pool_key: Uri) -> Self::Future {
        let connecting = self.https.call(self.target.clone());
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(connected) => connected,
                Err(_elapsed) => Err(Box::new(ConnectTimedOut) as BoxError),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream() -> Upstream {
        Upstream::parse("https://backend:8443").unwrap()
    }

    #[test]
    fn uri_keeps_path_and_query_and_takes_the_host() {
        let original: Uri = "/a/b?c=d&e".parse().unwrap();
        let host = HeaderValue::from_static("app.example.com");
        let uri = upstream_uri(&original, &upstream(), Some(&host)).unwrap();
        assert_eq!(uri.to_string(), "https://app.example.com/a/b?c=d&e");
    }

    #[test]
    fn odd_hosts_and_targets_fall_back() {
        let upstream = upstream();
        for host in [
            "",
            "user@app",
            "bad host",
            "app:notaport",
            "app:99999",
            "app:",
        ] {
            let host = HeaderValue::from_str(host).unwrap();
            let uri = upstream_uri(&Uri::from_static("/x"), &upstream, Some(&host)).unwrap();
            assert_eq!(uri.to_string(), "https://backend:8443/x", "{host:?}");
        }
        let v6 = HeaderValue::from_static("[::1]:8080");
        let uri = upstream_uri(&Uri::from_static("/"), &upstream, Some(&v6)).unwrap();
        assert_eq!(uri.authority().unwrap(), "[::1]:8080");
        let non_ascii = HeaderValue::from_bytes(b"\xe9t\xe9").unwrap();
        let uri = upstream_uri(&Uri::from_static("/"), &upstream, Some(&non_ascii)).unwrap();
        assert_eq!(uri.authority().unwrap(), "backend:8443");

        let absolute = Uri::from_static("http://elsewhere/p?q");
        let uri = upstream_uri(&absolute, &upstream, None).unwrap();
        assert_eq!(uri.to_string(), "https://backend:8443/p?q");
        let authority_form = Uri::from_static("elsewhere:443");
        let uri = upstream_uri(&authority_form, &upstream, None).unwrap();
        assert_eq!(uri.to_string(), "https://backend:8443/");
    }
}
