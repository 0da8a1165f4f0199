//! The failure delay: failed authentications take as long as successful ones, so timing reveals
//! neither bans nor unknown users (docs/reference/forward-auth.md §11).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use rand::RngCore;

use crate::lock;

/// Successful verifications remembered for the moving average.
const KEPT: usize = 50;

/// Pads failed authentications to max(minimum, moving average of the last 50 successes) plus
/// jitter.
#[derive(Debug)]
pub struct FailureDelay {
    minimum: Duration,
    jitter_ms: u64,
    successes: Mutex<VecDeque<Duration>>,
}

impl FailureDelay {
    /// A delay of at least `minimum`, plus up to `jitter_ms` of random jitter.
    pub fn new(minimum: Duration, jitter_ms: u64) -> Self {
        Self {
            minimum,
            jitter_ms,
            successes: Mutex::new(VecDeque::new()),
        }
    }

    /// Remember how long a successful authentication took.
    pub fn record_success(&self, took: Duration) {
        let mut s = lock(&self.successes);
        s.push_back(took);
        while s.len() > KEPT {
            s.pop_front();
        }
    }

    /// How long a failure should take in all.
    pub fn target(&self) -> Duration {
        let average = {
            let s = lock(&self.successes);
            if s.is_empty() {
                Duration::ZERO
            } else {
                s.iter().sum::<Duration>() / s.len() as u32
            }
        };
        let jitter = if self.jitter_ms == 0 {
            0
        } else {
            rand::rng().next_u64() % (self.jitter_ms + 1)
        };
        self.minimum.max(average) + Duration::from_millis(jitter)
    }

    /// Sleep for what is left of [`FailureDelay::target`] after `elapsed` already spent.
    pub async fn pad(&self, elapsed: Duration) {
        tokio::time::sleep(self.target().saturating_sub(elapsed)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_follows_the_slowest_of_minimum_and_average() {
        let d = FailureDelay::new(Duration::from_millis(100), 0);
        assert_eq!(d.target(), Duration::from_millis(100));
        d.record_success(Duration::from_millis(300));
        d.record_success(Duration::from_millis(500));
        assert_eq!(d.target(), Duration::from_millis(400));
        for _ in 0..KEPT {
            d.record_success(Duration::from_millis(10));
        }
        assert_eq!(
            d.target(),
            Duration::from_millis(100),
            "old successes age out"
        );
        let jittery = FailureDelay::new(Duration::from_millis(100), 85);
        for _ in 0..50 {
            let t = jittery.target();
            assert!(
                t >= Duration::from_millis(100) && t <= Duration::from_millis(185),
                "{t:?}"
            );
        }
    }
}
