//! HTTPS upstreams: a self-signed certificate is refused unless trusted or verification is off;
//! HTTP/2 is used when the upstream offers it by ALPN, HTTP/1.1 for upgrades.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::get;
use http::{HeaderValue, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use portcullis_proxy::{ClientOptions, ProxyError, Upstream, UpstreamClient};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};

use crate::support::front;
use crate::websocket::{echo_router, echo_through};

/// A self-signed certificate for 127.0.0.1 and localhost.
fn certificate() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let key = PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
    (certified.cert.der().clone(), key.into())
}

/// Says which version, `Host` and URI authority the request came with, in headers.
async fn report(request: Request) -> Response {
    let header = |value: &str| HeaderValue::from_str(value).unwrap();
    let host = request
        .headers()
        .get("host")
        .map(|host| host.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let authority = request
        .uri()
        .authority()
        .map(ToString::to_string)
        .unwrap_or_default();
    Response::builder()
        .header(
            "x-seen-version",
            header(&format!("{:?}", request.version())),
        )
        .header("x-seen-host", header(&host))
        .header("x-seen-authority", header(&authority))
        .header("x-seen-path", header(request.uri().path()))
        .body(Body::from("over tls"))
        .unwrap()
}

fn router() -> Router {
    echo_router().route("/report", get(report))
}

/// Serves `router()` over TLS with hyper-util's HTTP/1.1 + HTTP/2 server, offering `alpn`.
async fn serve_tls(alpn: &[&[u8]]) -> (SocketAddr, CertificateDer<'static>) {
    let (cert, key) = certificate();
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = TowerToHyperService::new(router());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let service = service.clone();
            tokio::spawn(async move {
                // A client that does not trust the certificate aborts the handshake.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, cert)
}

fn https(addr: SocketAddr) -> Upstream {
    Upstream::parse(&format!("https://{addr}")).unwrap()
}

fn report_request() -> http::Request<Body> {
    http::Request::get("/report?x=1")
        .header("host", "app.example.com")
        .body(Body::empty())
        .unwrap()
}

fn client(verify_tls: bool, extra_roots: Vec<CertificateDer<'static>>) -> UpstreamClient {
    UpstreamClient::new(ClientOptions {
        verify_tls,
        extra_roots,
        ..ClientOptions::default()
    })
    .unwrap()
}

#[tokio::test]
async fn unverified_tls_reaches_an_http2_upstream_with_the_client_host_as_authority() {
    let (addr, _) = serve_tls(&[b"h2", b"http/1.1"]).await;
    let response = client(false, Vec::new())
        .forward(report_request(), &https(addr), None)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers["x-seen-version"], "HTTP/2.0");
    assert_eq!(headers["x-seen-authority"], "app.example.com");
    assert_eq!(headers["x-seen-host"], "app.example.com");
    assert_eq!(headers["x-seen-path"], "/report");
}

#[tokio::test]
async fn http1_is_used_when_the_upstream_offers_only_http1() {
    let (addr, _) = serve_tls(&[b"http/1.1"]).await;
    let host = HeaderValue::from_static("override.example");
    let response = client(false, Vec::new())
        .forward(report_request(), &https(addr), Some(&host))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-seen-version"], "HTTP/1.1");
    assert_eq!(response.headers()["x-seen-host"], "override.example");
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error() {
    let (addr, _) = serve_tls(&[b"h2", b"http/1.1"]).await;
    let error = client(true, Vec::new())
        .forward(report_request(), &https(addr), None)
        .await
        .unwrap_err();
    assert!(matches!(error, ProxyError::Tls { .. }), "{error:?}");
    assert!(error.is_connect());
    assert!(error.to_string().contains("certificate"), "{error}");
}

#[tokio::test]
async fn an_extra_root_makes_the_certificate_trusted() {
    let (addr, cert) = serve_tls(&[b"h2", b"http/1.1"]).await;
    let response = client(true, vec![cert])
        .forward(report_request(), &https(addr), None)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-seen-version"], "HTTP/2.0");
}

#[tokio::test]
async fn trusting_another_certificate_does_not_help() {
    let (addr, cert) = serve_tls(&[b"http/1.1"]).await;
    let (other, _) = certificate();
    assert_ne!(other, cert);
    let error = client(true, vec![other])
        .forward(report_request(), &https(addr), None)
        .await
        .unwrap_err();
    assert!(matches!(error, ProxyError::Tls { .. }), "{error:?}");
}

#[tokio::test]
async fn websocket_to_an_http2_capable_upstream_goes_over_http1() {
    let (addr, _) = serve_tls(&[b"h2", b"http/1.1"]).await;
    let front = front(client(false, Vec::new()), https(addr), None).await;
    assert_eq!(echo_through(front).await, "HTTP/1.1");
}

#[test]
fn a_non_certificate_extra_root_is_refused() {
    let error = UpstreamClient::new(ClientOptions {
        extra_roots: vec![CertificateDer::from(vec![1_u8, 2, 3])],
        ..ClientOptions::default()
    })
    .unwrap_err();
    assert!(matches!(error, ProxyError::Options { .. }), "{error:?}");
}
