//! The one place that reads the system clock. Everything else takes `now` as an argument (unix
//! seconds, a [`Clock`]) or measures with a [`Stopwatch`], so tests control time; `clippy.toml`
//! forbids `SystemTime::now` and `Instant::now` elsewhere.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where "now" comes from (unix seconds). Tests inject their own.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock as a [`Clock`].
pub fn system_clock() -> Clock {
    Arc::new(unix_now)
}

/// Now, in unix seconds. A clock before 1970 reads as 0.
#[allow(clippy::disallowed_methods)] // the one clock function
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Measures elapsed time on the monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    /// Start measuring now.
    #[allow(clippy::disallowed_methods)] // the one clock function
    pub fn start() -> Self {
        Self(Instant::now())
    }

    /// Time since [`Stopwatch::start`].
    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// Now on tokio's clock, which a runtime with paused time (tests) controls: for timers handed to
/// hyper ([`ConnectionTimer`](crate::ConnectionTimer)).
#[allow(clippy::disallowed_methods)] // the one clock function
pub(crate) fn runtime_instant() -> Instant {
    tokio::time::Instant::now().into_std()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_move_forward() {
        let clock = system_clock();
        assert!(clock() > 1_700_000_000);
        let watch = Stopwatch::start();
        std::thread::sleep(Duration::from_millis(5));
        assert!(watch.elapsed() >= Duration::from_millis(5));
    }
}
