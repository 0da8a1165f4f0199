//! A latency histogram that a request observes without taking a lock.
//!
//! `prometheus-client`'s `Histogram` takes a write lock on every observation, which every request
//! of a busy server then contends for (BENCHMARKS.md, issue 16). Here each bucket is an atomic
//! counter and the sum is kept in whole nanoseconds, so an observation is two atomic additions.
//! A scrape reads the counters one by one: it may count an observation in a bucket and not yet in
//! the sum, which a Prometheus histogram tolerates (the next scrape sees both).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// A histogram of durations in seconds. Clones share the counts.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Upper bounds in seconds, ascending.
    bounds: Vec<f64>,
    /// One count per bound, then the +Inf bucket.
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

impl LatencyHistogram {
    /// A histogram with these upper bounds (ascending), e.g. `prometheus-client`'s
    /// `exponential_buckets`, so that an exposition keeps its bucket labels.
    pub fn new(bounds: impl IntoIterator<Item = f64>) -> Self {
        let bounds: Vec<f64> = bounds.into_iter().collect();
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self {
            inner: Arc::new(Inner {
                bounds,
                counts,
                sum_nanos: AtomicU64::new(0),
            }),
        }
    }

    /// Count one duration of `seconds`. A negative or non-finite value counts as zero.
    pub fn observe(&self, seconds: f64) {
        let seconds = if seconds.is_finite() && seconds > 0.0 {
            seconds
        } else {
            0.0
        };
        let inner = &*self.inner;
        let bucket = inner
            .bounds
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(inner.bounds.len());
        inner.counts[bucket].fetch_add(1, Ordering::Relaxed);
        // Saturating: u64 nanoseconds hold 584 years, and a float this large is not a latency.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "non-negative and finite, checked above; `as` saturates"
        )]
        let nanos = (seconds * 1e9) as u64;
        inner.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The sum in seconds, the count, and each bucket's own count (not cumulative), the last one
    /// the +Inf bucket (`f64::MAX`, as `prometheus-client` writes it).
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let inner = &*self.inner;
        let buckets: Vec<(f64, u64)> = inner
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::MAX))
            .zip(inner.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        #[allow(
            clippy::cast_precision_loss,
            reason = "a sum of latencies, exact to the nanosecond below 2^53 ns (104 days)"
        )]
        let sum = inner.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        (sum, count, buckets)
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
    use prometheus_client::registry::Registry;

    fn render(register: impl FnOnce(&mut Registry)) -> String {
        let mut registry = Registry::default();
        register(&mut registry);
        crate::metrics::encode(&registry)
    }

    #[test]
    fn the_exposition_is_the_one_prometheus_clients_histogram_writes() {
        // Durations exact in binary and in whole nanoseconds (2^-9 s and coarser), so both sums
        // are exact; then a negative, a NaN and a zero.
        let values = [
            0.001_953_125,
            0.003_906_25,
            0.25,
            3.5,
            1e6,
            -1.0,
            f64::NAN,
            0.0,
        ];
        let ours = LatencyHistogram::new(exponential_buckets(0.000_05, 2.0, 18));
        let reference = Histogram::new(exponential_buckets(0.000_05, 2.0, 18));
        for v in values {
            ours.observe(v);
            // The reference is given what ours counts a bad value as.
            reference.observe(if v.is_finite() && v > 0.0 { v } else { 0.0 });
        }
        let ours = render(|r| r.register("latency", "Latency", ours.clone()));
        let reference = render(|r| r.register("latency", "Latency", reference.clone()));
        assert_eq!(ours, reference);
        assert!(ours.contains("latency_count 8\n"), "{ours}");
        assert!(ours.contains("latency_bucket{le=\"0.0001\"} 3\n"), "{ours}");
        assert!(ours.contains("latency_sum 1000003.755859375\n"), "{ours}");
        assert!(ours.contains("latency_bucket{le=\"+Inf\"} 8\n"), "{ours}");
    }

    #[test]
    fn observations_from_many_threads_are_all_counted() {
        let histogram = LatencyHistogram::new([0.001, 0.002, 0.004, 0.008]);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let histogram = histogram.clone();
                scope.spawn(move || {
                    for _ in 0..10_000 {
                        histogram.observe(0.002);
                    }
                });
            }
        });
        let (sum, count, buckets) = histogram.snapshot();
        assert_eq!(count, 40_000);
        assert_eq!(buckets[1], (0.002, 40_000));
        assert!((sum - 80.0).abs() < 1e-6, "{sum}");
    }
}
