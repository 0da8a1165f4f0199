//! The metrics listener: a registry of `prometheus-client` metrics, rendered in the OpenMetrics
//! text format on one path of a separate listener; and [`LatencyHistogram`], observed without a
//! lock.

use std::future::Future;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::HeaderValue;
use http::header::CONTENT_TYPE;
pub use prometheus_client::registry::Registry;

mod latency;
pub use latency::LatencyHistogram;

/// The content type of the OpenMetrics text format.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Render `registry`; an encoding failure yields an empty exposition rather than a partial one.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}

/// A rendered exposition as a response.
pub fn exposition(text: String) -> Response {
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
    response
}

/// A router answering `GET path` with whatever `render` produces.
pub fn router<F, Fut>(path: &str, render: F) -> Router
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = String> + Send + 'static,
{
    Router::new().route(
        path,
        get(move || {
            let render = render.clone();
            async move { exposition(render().await) }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use tower::ServiceExt;

    #[tokio::test]
    async fn renders_the_registry_on_its_path() {
        let mut registry = Registry::with_prefix("test");
        let counter = Counter::<u64>::default();
        registry.register("hits", "Hits", counter.clone());
        counter.inc();
        let text = encode(&registry);
        assert!(text.contains("test_hits_total 1"), "{text}");
        let app = router("/metrics", move || {
            let text = text.clone();
            async move { text }
        });
        let response = app
            .clone()
            .oneshot(
                http::Request::get("/metrics")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), http::StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], OPENMETRICS);
        let other = app
            .oneshot(
                http::Request::get("/other")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(other.status(), http::StatusCode::NOT_FOUND);
    }
}
