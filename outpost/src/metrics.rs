//! Prometheus metrics, the equivalents of authentik's
//! `authentik_outpost_proxy_request_duration_seconds` and
//! `authentik_outpost_proxy_upstream_response_duration_seconds`, with the same labels.

use portcullis_server_core::metrics::LatencyHistogram;
use portcullis_server_core::metrics::{Registry, encode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::exponential_buckets;

/// The labels authentik uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct Labels {
    pub(crate) outpost_name: String,
    pub(crate) method: String,
    pub(crate) host: String,
    /// `auth_nginx`, `auth_traefik`, `auth_caddy`, `auth_envoy`, `proxy`, `start`, `callback`,
    /// `sign_out`, `backchannel_logout`, `ping`.
    pub(crate) r#type: String,
}

pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<Labels, LatencyHistogram>,
    upstream: Family<Labels, LatencyHistogram>,
}

fn histogram() -> LatencyHistogram {
    LatencyHistogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("portcullis_outpost_proxy");
        let requests = Family::<Labels, LatencyHistogram>::new_with_constructor(
            histogram as fn() -> LatencyHistogram,
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer a request, by outpost, method, host and type",
            requests.clone(),
        );
        let upstream = Family::<Labels, LatencyHistogram>::new_with_constructor(
            histogram as fn() -> LatencyHistogram,
        );
        registry.register(
            "upstream_response_duration_seconds",
            "Time the upstream took to answer a proxied request",
            upstream.clone(),
        );
        Self {
            registry,
            requests,
            upstream,
        }
    }

    pub(crate) fn request(&self, labels: &Labels, seconds: f64) {
        self.requests.get_or_create(labels).observe(seconds);
    }

    pub(crate) fn upstream(&self, labels: &Labels, seconds: f64) {
        self.upstream.get_or_create(labels).observe(seconds);
    }

    pub(crate) fn render(&self) -> String {
        encode(&self.registry)
    }
}
