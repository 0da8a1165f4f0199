//! Rate limits by client address, as Authelia's `server.endpoints.rate_limits` buckets: each bucket
//! allows `requests` counted requests per `period` seconds; when any bucket is full, the endpoint
//! answers 429 until that bucket's window ends. The caller decides what counts (the OpenID
//! endpoints count only failed requests, as Authelia does). Time is passed in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

/// One bucket: at most `requests` per `period` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Window length in seconds (> 0).
    pub period: u64,
    /// Counted requests allowed per window (> 0).
    pub requests: u64,
}

/// How many addresses are remembered at most, so a flood of sources cannot grow memory without
/// bound (see [`RateLimiter::count`]).
const MAX_ADDRESSES: usize = 100_000;

#[derive(Debug, Clone)]
struct Windows {
    /// Per bucket: (window start, count).
    counts: Vec<(u64, u64)>,
    last_seen: u64,
}

/// A rate limiter over buckets.
#[derive(Debug)]
pub struct RateLimiter {
    buckets: Vec<Bucket>,
    state: Mutex<HashMap<IpAddr, Windows>>,
}

impl RateLimiter {
    /// A limiter with `buckets` (none: never limits).
    pub fn new(buckets: Vec<Bucket>) -> Self {
        Self {
            buckets: buckets
                .into_iter()
                .filter(|b| b.period > 0 && b.requests > 0)
                .collect(),
            state: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds until the full bucket's window ends)` when `ip` is limited at `now`.
    pub fn limited(&self, ip: IpAddr, now: u64) -> Option<u64> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let windows = state.get(&ip)?;
        self.buckets
            .iter()
            .zip(&windows.counts)
            .filter(|(b, (start, count))| now < start + b.period && *count >= b.requests)
            .map(|(b, (start, _))| start + b.period - now)
            .max()
    }

    /// Count one request of `ip` at `now`.
    pub fn count(&self, ip: IpAddr, now: u64) {
        if self.buckets.is_empty() {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.len() >= MAX_ADDRESSES && !state.contains_key(&ip) {
            // One sweep per fill: drop the addresses whose every window has ended. If the map is
            // still full, the flood comes from too many addresses for per-address limits to mean
            // anything; start over rather than scan on every request.
            let longest = self.buckets.iter().map(|b| b.period).max().unwrap_or(0);
            state.retain(|_, w| w.last_seen + longest > now);
            if state.len() >= MAX_ADDRESSES {
                state.clear();
            }
        }
        let windows = state.entry(ip).or_insert_with(|| Windows {
            counts: vec![(now, 0); self.buckets.len()],
            last_seen: now,
        });
        windows.last_seen = now;
        for (bucket, (start, count)) in self.buckets.iter().zip(windows.counts.iter_mut()) {
            if now >= *start + bucket.period {
                *start = now;
                *count = 0;
            }
            *count += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn every_bucket_limits_until_its_window_ends() {
        let l = RateLimiter::new(vec![
            Bucket {
                period: 60,
                requests: 3,
            },
            Bucket {
                period: 600,
                requests: 5,
            },
        ]);
        for t in 0..3 {
            assert_eq!(l.limited(IP, 100 + t), None);
            l.count(IP, 100 + t);
        }
        assert_eq!(l.limited(IP, 110), Some(50), "first bucket full until 160");
        assert_eq!(l.limited(OTHER, 110), None, "per address");
        assert_eq!(l.limited(IP, 160), None, "the window ended");
        l.count(IP, 160);
        l.count(IP, 161);
        // 5 in the 600 s bucket since 100: limited until 700.
        assert_eq!(l.limited(IP, 170), Some(530));
        assert_eq!(RateLimiter::new(vec![]).limited(IP, 0), None);
    }
}
