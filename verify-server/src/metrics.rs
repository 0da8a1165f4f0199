//! Prometheus metrics: checks by endpoint and decision, check latency, logins by outcome, active
//! bans, sessions, and the users' directory (operations by kind and outcome, their latency, open
//! service connections).

use std::sync::OnceLock;

use portcullis_server_core::metrics::{LatencyHistogram, Registry, encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

type Labels = Vec<(&'static str, String)>;

/// The metric handles and their registry.
pub(crate) struct Metrics {
    registry: Registry,
    checks: Family<Labels, Counter>,
    latency: LatencyHistogram,
    logins: Family<Labels, Counter>,
    oidc: Family<Labels, Counter>,
    bans: Gauge,
    sessions: Gauge,
    ldap: LdapMetrics,
}

/// Every decision a check answers with (`authz.rs`).
const DECISIONS: [&str; 6] = [
    "allow",
    "forbidden",
    "challenge",
    "unauthorized",
    "redirect",
    "bad_request",
];

/// One endpoint's check counters, each made at its first use, so that the exposition lists only
/// the decisions that happened.
#[derive(Debug)]
pub(crate) struct EndpointCounters {
    endpoint: String,
    family: Family<Labels, Counter>,
    decisions: [(&'static str, OnceLock<Counter>); DECISIONS.len()],
}

impl EndpointCounters {
    fn count(&self, decision: &'static str) {
        let make = || {
            self.family
                .get_or_create(&vec![
                    ("endpoint", self.endpoint.clone()),
                    ("decision", decision.to_owned()),
                ])
                .clone()
        };
        match self.decisions.iter().find(|(d, _)| *d == decision) {
            Some((_, counter)) => counter.get_or_init(make).inc(),
            // Not in the list: counted all the same, through the family.
            None => make().inc(),
        };
    }
}

/// The directory's metrics, shared with the directory wrapper that records them.
#[derive(Clone, Debug)]
pub(crate) struct LdapMetrics {
    operations: Family<Labels, Counter>,
    latency: Family<Labels, Histogram>,
    pub(crate) pool: Gauge,
}

impl LdapMetrics {
    /// One directory operation of `kind` (`find`, `bind`, `password`) that ended in `outcome`.
    pub(crate) fn record(&self, kind: &'static str, outcome: &'static str, seconds: f64) {
        self.operations
            .get_or_create(&vec![
                ("kind", kind.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
        self.latency
            .get_or_create(&vec![("kind", kind.to_owned())])
            .observe(seconds);
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let checks = Family::<Labels, Counter>::default();
        registry.register(
            "authz_checks",
            "Forward-auth checks by endpoint and decision",
            checks.clone(),
        );
        let latency = LatencyHistogram::new(exponential_buckets(0.000_05, 2.0, 18));
        registry.register(
            "authz_check_duration_seconds",
            "Time to answer a forward-auth check",
            latency.clone(),
        );
        let logins = Family::<Labels, Counter>::default();
        registry.register("logins", "Portal logins by outcome", logins.clone());
        let oidc = Family::<Labels, Counter>::default();
        registry.register(
            "oidc_requests",
            "OpenID Connect provider requests by endpoint and outcome",
            oidc.clone(),
        );
        let bans = Gauge::default();
        registry.register(
            "regulation_active_bans",
            "Users and IPs banned now",
            bans.clone(),
        );
        let sessions = Gauge::default();
        registry.register("sessions", "Sessions stored", sessions.clone());
        let ldap = LdapMetrics {
            operations: Family::default(),
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
            }),
            pool: Gauge::default(),
        };
        registry.register(
            "ldap_operations",
            "Operations on the users' directory by kind and outcome",
            ldap.operations.clone(),
        );
        registry.register(
            "ldap_operation_duration_seconds",
            "Time the users' directory took to answer, by kind of operation",
            ldap.latency.clone(),
        );
        registry.register(
            "ldap_pool_connections",
            "Service connections to the users' directory open now",
            ldap.pool.clone(),
        );
        Self {
            registry,
            checks,
            latency,
            logins,
            oidc,
            bans,
            sessions,
            ldap,
        }
    }

    pub(crate) fn ldap(&self) -> LdapMetrics {
        self.ldap.clone()
    }

    /// The counters of the endpoint `name`, for its route to keep.
    pub(crate) fn endpoint(&self, name: &str) -> EndpointCounters {
        EndpointCounters {
            endpoint: name.to_owned(),
            family: self.checks.clone(),
            decisions: DECISIONS.map(|d| (d, OnceLock::new())),
        }
    }

    /// One check answered with `decision` in `seconds`: a lookup in the endpoint's own counters
    /// and two atomic additions in the histogram, no lock the workers share.
    pub(crate) fn check(&self, counters: &EndpointCounters, decision: &'static str, seconds: f64) {
        self.latency.observe(seconds);
        counters.count(decision);
    }

    pub(crate) fn login(&self, outcome: &'static str) {
        self.logins
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    pub(crate) fn oidc(&self, endpoint: &'static str, outcome: &'static str) {
        self.oidc
            .get_or_create(&vec![
                ("endpoint", endpoint.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
    }

    pub(crate) fn render(&self, bans: usize, sessions: usize) -> String {
        self.bans.set(i64::try_from(bans).unwrap_or(i64::MAX));
        self.sessions
            .set(i64::try_from(sessions).unwrap_or(i64::MAX));
        encode(&self.registry)
    }
}
