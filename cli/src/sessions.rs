//! `sessions list` / `sessions revoke`: the sessions in the store the server uses: Redis when
//! `session.redis` is configured, else the SQLite file `storage.local.path`.

use std::future::Future;

use portcullis_auth::{OpenMode, SessionBackend, StoreSelection};
use portcullis_server_core::clock::unix_now;
use portcullis_session::{Session, SessionStore};
use serde::Serialize;

use crate::{CliError, Format, Io, ListArgs, RevokeArgs, load_config};

/// How much of a session id is shown: enough to tell sessions apart, far too little to use one.
const ID_PREFIX: usize = 6;

fn now() -> u64 {
    unix_now()
}

/// Open the store `portcullis-verify` would use with this configuration and run `work` on it.
/// A missing SQLite file is an error rather than a new empty store.
fn with_store<T, F, Fut>(config_path: &std::path::Path, work: F) -> Result<T, CliError>
where
    F: FnOnce(std::sync::Arc<dyn SessionStore>) -> Fut,
    Fut: Future<Output = Result<T, portcullis_session::StoreError>>,
{
    let (config, _warnings) = load_config(config_path)?;
    let selection = StoreSelection {
        redis: config.redis.clone(),
        sqlite_path: config.storage_path.clone(),
        secret: config.session_secret.clone(),
    };
    let store = SessionBackend::open(&selection, OpenMode::ExistingOnly, now())
        .map_err(|e| CliError::failed(e.to_string()))?
        .sessions();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the runtime: {e}")))?;
    runtime
        .block_on(async {
            store.health().await?;
            work(store).await
        })
        .map_err(|e| CliError::failed(e.to_string()))
}

/// `YYYY-MM-DDTHH:MM:SSZ` for unix seconds (proleptic Gregorian calendar, UTC).
pub(crate) fn utc(seconds: u64) -> String {
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

fn id_prefix(session: &Session) -> String {
    let id = session.id.as_str();
    format!("{}…", id.get(..ID_PREFIX).unwrap_or(id))
}

#[derive(Debug, Serialize)]
struct SessionReport<'a> {
    username: &'a str,
    cookie_domain: &'a str,
    level: u8,
    created_at: u64,
    last_activity: u64,
    expires_at: u64,
    remember_me: bool,
    id_prefix: String,
}

/// `portcullis sessions list`.
pub(crate) fn list(args: &ListArgs, io: &mut Io<'_>) -> Result<u8, CliError> {
    let username = args.username.clone();
    let mut sessions = with_store(&args.config, |store| async move {
        store.list(username.as_deref(), now()).await
    })?;
    // Stores list in their own order; print a stable one: by user, then oldest first.
    sessions.sort_by(|a, b| {
        (
            a.identity.username.as_str(),
            a.created_at,
            a.cookie_domain.as_str(),
        )
            .cmp(&(
                b.identity.username.as_str(),
                b.created_at,
                b.cookie_domain.as_str(),
            ))
    });
    match args.format {
        Format::Json => {
            let reports: Vec<SessionReport<'_>> = sessions
                .iter()
                .map(|s| SessionReport {
                    username: &s.identity.username,
                    cookie_domain: &s.cookie_domain,
                    level: s.identity.level.as_u8(),
                    created_at: s.created_at,
                    last_activity: s.last_activity,
                    expires_at: s.expires_at,
                    remember_me: s.remember_me,
                    id_prefix: id_prefix(s),
                })
                .collect();
            let json = serde_json::to_string_pretty(&reports)
                .map_err(|e| CliError::failed(format!("cannot encode the list: {e}")))?;
            writeln!(io.out, "{json}")?;
        }
        Format::Text => {
            if sessions.is_empty() {
                writeln!(io.out, "no sessions")?;
                return Ok(0);
            }
            let user_width = sessions
                .iter()
                .map(|s| s.identity.username.chars().count())
                .chain([4])
                .max()
                .unwrap_or(4);
            let domain_width = sessions
                .iter()
                .map(|s| s.cookie_domain.chars().count())
                .chain([6])
                .max()
                .unwrap_or(6);
            writeln!(
                io.out,
                "{:user_width$}  {:domain_width$}  {:20}  {:20}  {:20}  {:11}  ID",
                "USER", "DOMAIN", "CREATED", "LAST ACTIVITY", "EXPIRES", "REMEMBER-ME"
            )?;
            for s in &sessions {
                writeln!(
                    io.out,
                    "{:user_width$}  {:domain_width$}  {:20}  {:20}  {:20}  {:11}  {}",
                    s.identity.username,
                    s.cookie_domain,
                    utc(s.created_at),
                    utc(s.last_activity),
                    utc(s.expires_at),
                    if s.remember_me { "yes" } else { "no" },
                    id_prefix(s),
                )?;
            }
        }
    }
    Ok(0)
}

/// `portcullis sessions revoke`.
pub(crate) fn revoke(args: &RevokeArgs, io: &mut Io<'_>) -> Result<u8, CliError> {
    if args.username.trim().is_empty() {
        return Err(CliError::invalid("--username is empty"));
    }
    let username = args.username.clone();
    let removed = with_store(&args.config, |store| async move {
        store.delete_user(&username).await
    })?;
    let noun = if removed == 1 { "session" } else { "sessions" };
    writeln!(io.out, "revoked {removed} {noun} of {}", args.username)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(utc(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(utc(4_107_542_400), "2100-03-01T00:00:00Z");
    }
}
