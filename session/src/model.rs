//! The session record and its lifetime rules (docs/reference/forward-auth.md §9.2, §4.6). Pure: `now` is an argument.

use portcullis_core::Identity;
use serde::{Deserialize, Serialize};

use crate::SessionId;

/// Authelia's default `expiration`: 1 hour.
pub const DEFAULT_EXPIRATION: u64 = 60 * 60;
/// Authelia's default `inactivity`: 5 minutes.
pub const DEFAULT_INACTIVITY: u64 = 5 * 60;
/// Authelia's default `remember_me`: `1M`, which Authelia's duration parser reads as 30 days
/// (720 h, `HoursInMonth`), i.e. 2 592 000 seconds.
pub const DEFAULT_REMEMBER_ME: u64 = 30 * 24 * 60 * 60;

/// The lifetime settings of one cookie domain, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Lifetime of the cookie and of the server-side record (`expiration`).
    pub expiration: u64,
    /// Idle limit (`inactivity`); `0` turns the check off.
    pub inactivity: u64,
    /// Lifetime of a "keep me logged in" session (`remember_me`); `None` disables the option
    /// (Authelia's `-1`), and a remember-me request is then treated as an ordinary login.
    pub remember_me: Option<u64>,
}

impl Default for Lifetime {
    /// Authelia's defaults: 1 h expiration, 5 min inactivity, 30 days remember-me.
    fn default() -> Self {
        Self {
            expiration: DEFAULT_EXPIRATION,
            inactivity: DEFAULT_INACTIVITY,
            remember_me: Some(DEFAULT_REMEMBER_ME),
        }
    }
}

/// What the lifetime rules say about a session at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Validity {
    /// The session may be used.
    Valid,
    /// `now` has reached `expires_at`: destroy the session.
    Expired,
    /// Idle for longer than `inactivity` (never for remember-me sessions): destroy the session.
    Inactive,
}

/// A remembered login, bound to the cookie domain it was created for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The id its cookie carries.
    pub id: SessionId,
    /// The cookie domain the session was created for (from configuration, never from `Host`).
    /// Using the session under another cookie domain must destroy it (docs/reference/security.md R6.2).
    pub cookie_domain: String,
    /// Who logged in, at which level.
    pub identity: Identity,
    /// Unix time (seconds) of creation.
    pub created_at: u64,
    /// Unix time (seconds) of the last request seen with this session.
    pub last_activity: u64,
    /// Unix time (seconds) from which the session is expired.
    pub expires_at: u64,
    /// True when the user asked to be kept logged in and the cookie domain allows it.
    pub remember_me: bool,
    /// Unix time (seconds) the user's details were last read from the user backend (at login, then
    /// at each refresh). Records written before this field existed read as 0: refresh at once.
    #[serde(default)]
    pub refreshed_at: u64,
}

impl Session {
    /// A new session created at `now`.
    ///
    /// `remember_me` is ignored (false) when `lifetime.remember_me` is `None`. The session expires at
    /// `now` plus the remember-me duration when it is a remember-me session, otherwise plus
    /// `lifetime.expiration`. `created_at`, `last_activity` and `refreshed_at` are `now`.
    pub fn new(
        id: SessionId,
        cookie_domain: impl Into<String>,
        identity: Identity,
        remember_me: bool,
        now: u64,
        lifetime: &Lifetime,
    ) -> Self {
        let (remember_me, duration) = match (remember_me, lifetime.remember_me) {
            (true, Some(duration)) => (true, duration),
            _ => (false, lifetime.expiration),
        };
        Self {
            id,
            cookie_domain: cookie_domain.into(),
            identity,
            created_at: now,
            last_activity: now,
            expires_at: now.saturating_add(duration),
            remember_me,
            refreshed_at: now,
        }
    }

    /// Judge the session at `now`.
    ///
    /// - `Expired` when `now >= expires_at`.
    /// - `Inactive` when inactivity applies, `lifetime.inactivity > 0`, and
    ///   `now - last_activity > lifetime.inactivity` (strictly greater, as upstream).
    ///   Inactivity applies to every session except remember-me ones; when the cookie domain no
    ///   longer allows remember-me (`lifetime.remember_me` is `None`), it applies to those too.
    /// - `Valid` otherwise.
    ///
    /// A `last_activity` in the future (clock skew) counts as no idle time.
    pub fn validity(&self, now: u64, lifetime: &Lifetime) -> Validity {
        if now >= self.expires_at {
            return Validity::Expired;
        }
        let exempt = self.remember_me && lifetime.remember_me.is_some();
        if !exempt
            && lifetime.inactivity > 0
            && now.saturating_sub(self.last_activity) > lifetime.inactivity
        {
            return Validity::Inactive;
        }
        Validity::Valid
    }

    /// Record activity at `now`. `last_activity` never moves backwards.
    pub fn touch(&mut self, now: u64) {
        self.last_activity = self.last_activity.max(now);
    }

    /// Seconds left until `expires_at` (0 once expired): the cookie's `Max-Age`.
    pub fn max_age(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }

    /// True when the session is expired at `now` (`now >= expires_at`), whatever the inactivity.
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::AuthLevel;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const T0: u64 = 1_700_000_000;

    fn session(remember_me: bool, lifetime: &Lifetime) -> Session {
        let id = SessionId::generate(&mut StdRng::seed_from_u64(9));
        Session::new(
            id,
            "example.com",
            Identity::user("alice", AuthLevel::OneFactor),
            remember_me,
            T0,
            lifetime,
        )
    }

    #[test]
    fn defaults_are_authelias() {
        let l = Lifetime::default();
        assert_eq!(l.expiration, 3600);
        assert_eq!(l.inactivity, 300);
        assert_eq!(l.remember_me, Some(2_592_000));
    }

    #[test]
    fn new_sets_times_and_remember_me() {
        let l = Lifetime::default();
        let plain = session(false, &l);
        assert_eq!((plain.created_at, plain.last_activity), (T0, T0));
        assert_eq!(plain.expires_at, T0 + 3600);
        assert!(!plain.remember_me);
        let kept = session(true, &l);
        assert!(kept.remember_me);
        assert_eq!(kept.expires_at, T0 + 2_592_000);
        let disabled = Lifetime {
            remember_me: None,
            ..l
        };
        let ignored = session(true, &disabled);
        assert!(
            !ignored.remember_me,
            "remember-me disabled ignores the flag"
        );
        assert_eq!(ignored.expires_at, T0 + 3600);
        let saturated = Session::new(
            ignored.id.clone(),
            "example.com",
            Identity::anonymous(),
            false,
            u64::MAX - 1,
            &l,
        );
        assert_eq!(saturated.expires_at, u64::MAX);
    }

    #[test]
    fn lifetime_rules_table() {
        let on = Lifetime {
            expiration: 3600,
            inactivity: 300,
            remember_me: Some(86_400),
        };
        let no_inactivity = Lifetime {
            inactivity: 0,
            ..on
        };
        let no_remember = Lifetime {
            remember_me: None,
            ..on
        };
        // (name, lifetime at creation, remember_me, last activity offset, now offset, lifetime judged, expected)
        let cases: &[(&str, Lifetime, bool, u64, u64, Lifetime, Validity)] = &[
            ("fresh", on, false, 0, 0, on, Validity::Valid),
            (
                "one second before expiry",
                on,
                false,
                3599,
                3599,
                on,
                Validity::Valid,
            ),
            ("at expiry", on, false, 3599, 3600, on, Validity::Expired),
            (
                "after expiry",
                on,
                false,
                3599,
                10_000,
                on,
                Validity::Expired,
            ),
            (
                "idle exactly the limit",
                on,
                false,
                100,
                400,
                on,
                Validity::Valid,
            ),
            (
                "idle one second over",
                on,
                false,
                100,
                401,
                on,
                Validity::Inactive,
            ),
            (
                "expiry wins over inactivity",
                on,
                false,
                0,
                3600,
                on,
                Validity::Expired,
            ),
            (
                "inactivity off",
                no_inactivity,
                false,
                0,
                3599,
                no_inactivity,
                Validity::Valid,
            ),
            (
                "remember-me skips inactivity",
                on,
                true,
                0,
                80_000,
                on,
                Validity::Valid,
            ),
            (
                "remember-me still expires",
                on,
                true,
                86_000,
                86_400,
                on,
                Validity::Expired,
            ),
            (
                "remember-me disabled at creation",
                no_remember,
                true,
                0,
                301,
                no_remember,
                Validity::Inactive,
            ),
            (
                "remember-me disabled later",
                on,
                true,
                0,
                301,
                no_remember,
                Validity::Inactive,
            ),
            (
                "activity in the future",
                on,
                false,
                1000,
                500,
                on,
                Validity::Valid,
            ),
        ];
        for (name, created_with, remember, activity, now, judged_with, expected) in cases {
            let mut s = session(*remember, created_with);
            s.touch(T0 + activity);
            assert_eq!(s.validity(T0 + now, judged_with), *expected, "{name}");
        }
    }

    #[test]
    fn touch_is_monotonic_and_max_age_counts_down() {
        let mut s = session(false, &Lifetime::default());
        s.touch(T0 + 50);
        s.touch(T0 + 10);
        assert_eq!(s.last_activity, T0 + 50);
        assert_eq!(s.max_age(T0), 3600);
        assert_eq!(s.max_age(T0 + 3000), 600);
        assert_eq!(s.max_age(T0 + 3600), 0);
        assert_eq!(s.max_age(T0 + 99_999), 0);
        assert!(!s.is_expired(T0 + 3599));
        assert!(s.is_expired(T0 + 3600));
    }

    #[test]
    fn serde_round_trip() {
        let s = session(true, &Lifetime::default());
        let json = serde_json::to_string(&s).unwrap();
        let back: Session = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}
