//! Regulation kept in this process: attempts and bans in memory for the check path, written through
//! to SQLite (with the `sqlite` feature) so that bans survive a restart.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
#[cfg(feature = "sqlite")]
use std::path::Path;
use std::sync::{Arc, Mutex};

#[cfg(feature = "sqlite")]
use super::sqlite::SqliteLog;
use super::{RegulationConfig, ban_until, push};
#[cfg(feature = "sqlite")]
use crate::AuthError;
use crate::lock;

/// Subjects tracked at most (docs/reference/security.md R9.6); past it the table starts afresh.
const MAX_SUBJECTS: usize = 100_000;

#[derive(Debug, Default)]
pub(super) struct Memory {
    /// Newest last; (time, success).
    pub(super) attempts_by_user: HashMap<String, VecDeque<(u64, bool)>>,
    pub(super) attempts_by_ip: HashMap<IpAddr, VecDeque<(u64, bool)>>,
    pub(super) user_bans: HashMap<String, u64>,
    pub(super) ip_bans: HashMap<IpAddr, u64>,
}

/// A ban that `record` just imposed: kind (`user`, `ip`), subject, until.
pub(super) type NewBan = (&'static str, String, u64);

/// Regulation kept in this process. Cheap to clone.
#[derive(Clone)]
pub(super) struct LocalRegulator {
    config: RegulationConfig,
    memory: Arc<Mutex<Memory>>,
    #[cfg(feature = "sqlite")]
    log: Option<Arc<SqliteLog>>,
}

impl LocalRegulator {
    pub(super) fn in_memory(config: RegulationConfig) -> Self {
        Self {
            config,
            memory: Arc::default(),
            #[cfg(feature = "sqlite")]
            log: None,
        }
    }

    #[cfg(feature = "sqlite")]
    pub(super) fn open(config: RegulationConfig, path: &Path, now: u64) -> Result<Self, AuthError> {
        let (log, memory) = SqliteLog::open(path, config.find_time, now)?;
        Ok(Self {
            config,
            memory: Arc::new(Mutex::new(memory)),
            log: Some(Arc::new(log)),
        })
    }

    pub(super) fn is_banned(&self, username: Option<&str>, ip: Option<IpAddr>, now: u64) -> bool {
        let memory = lock(&self.memory);
        let ip_banned = ip
            .and_then(|ip| memory.ip_bans.get(&ip))
            .is_some_and(|&until| until > now);
        let user_banned = username
            .and_then(|u| memory.user_bans.get(u))
            .is_some_and(|&until| until > now);
        ip_banned || user_banned
    }

    pub(super) fn record(&self, username: &str, ip: Option<IpAddr>, success: bool, now: u64) {
        let new_bans = self.record_in_memory(username, ip, success, now);
        #[cfg(feature = "sqlite")]
        if let Some(log) = &self.log
            && let Err(e) = log.append(username, ip, success, now, &new_bans, self.config.find_time)
        {
            tracing::error!(error = %e, "could not persist an authentication attempt");
        }
        for (kind, value, until) in new_bans {
            tracing::warn!(kind, subject = %value, until, "banned after repeated authentication failures");
        }
    }

    fn record_in_memory(
        &self,
        username: &str,
        ip: Option<IpAddr>,
        success: bool,
        now: u64,
    ) -> Vec<NewBan> {
        let cfg = self.config;
        let mut new_bans = Vec::new();
        let mut memory = lock(&self.memory);
        if memory.attempts_by_user.len() > MAX_SUBJECTS {
            memory.attempts_by_user.clear();
        }
        if memory.attempts_by_ip.len() > MAX_SUBJECTS {
            memory.attempts_by_ip.clear();
        }
        if !username.is_empty() {
            push(
                memory
                    .attempts_by_user
                    .entry(username.to_owned())
                    .or_default(),
                (now, success),
            );
        }
        if let Some(ip) = ip {
            push(memory.attempts_by_ip.entry(ip).or_default(), (now, success));
        }
        if success || cfg.max_retries == 0 {
            return new_bans;
        }
        if cfg.by_user
            && !username.is_empty()
            && memory.user_bans.get(username).is_none_or(|&u| u <= now)
            && let Some(until) = memory
                .attempts_by_user
                .get(username)
                .and_then(|a| ban_until(a, cfg, now))
        {
            memory.user_bans.insert(username.to_owned(), until);
            new_bans.push(("user", username.to_owned(), until));
        }
        if let Some(ip) = ip.filter(|_| cfg.by_ip)
            && memory.ip_bans.get(&ip).is_none_or(|&u| u <= now)
            && let Some(until) = memory
                .attempts_by_ip
                .get(&ip)
                .and_then(|a| ban_until(a, cfg, now))
        {
            memory.ip_bans.insert(ip, until);
            new_bans.push(("ip", ip.to_string(), until));
        }
        new_bans
    }

    pub(super) fn active_bans(&self, now: u64) -> usize {
        let memory = lock(&self.memory);
        memory.user_bans.values().filter(|&&u| u > now).count()
            + memory.ip_bans.values().filter(|&&u| u > now).count()
    }
}
