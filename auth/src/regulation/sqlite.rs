//! The regulation log in the SQLite file: tables `portcullis_authentication_logs` and
//! `portcullis_bans`, prefixed so that an Authelia database's own `authentication_logs` (another
//! layout) is never written with rows it cannot read.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, params};

use super::local::{Memory, NewBan};
use super::push;
use crate::{AuthError, lock};

/// The open SQLite connection of a local regulator.
pub(super) struct SqliteLog {
    conn: Mutex<Connection>,
}

fn error(path: &Path) -> impl Fn(rusqlite::Error) -> AuthError + '_ {
    move |e| AuthError::Regulation {
        store: path.display().to_string(),
        message: e.to_string(),
    }
}

impl SqliteLog {
    /// Open (or create) the tables in `path` and load the bans unexpired at `now` and the attempts
    /// of the last `find_time` seconds.
    pub(super) fn open(path: &Path, find_time: u64, now: u64) -> Result<(Self, Memory), AuthError> {
        let err = error(path);
        let conn = Connection::open(path).map_err(&err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS portcullis_authentication_logs (
                 time INTEGER NOT NULL, successful INTEGER NOT NULL, username TEXT NOT NULL, remote_ip TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS portcullis_authentication_logs_time ON portcullis_authentication_logs(time);
             CREATE TABLE IF NOT EXISTS portcullis_bans (kind TEXT NOT NULL, value TEXT NOT NULL, expires INTEGER NOT NULL,
                 PRIMARY KEY (kind, value));",
        )
        .map_err(&err)?;
        let mut memory = Memory::default();
        {
            let mut stmt = conn
                .prepare("SELECT kind, value, expires FROM portcullis_bans WHERE expires > ?1")
                .map_err(&err)?;
            let rows = stmt
                .query_map(params![now as i64], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(&err)?;
            for row in rows {
                let (kind, value, expires) = row.map_err(&err)?;
                let expires = expires.max(0) as u64;
                match kind.as_str() {
                    "user" => {
                        memory.user_bans.insert(value, expires);
                    }
                    "ip" => {
                        if let Ok(ip) = value.parse() {
                            memory.ip_bans.insert(ip, expires);
                        }
                    }
                    _ => {}
                }
            }
            let since = now.saturating_sub(find_time) as i64;
            let mut stmt = conn
                .prepare("SELECT time, successful, username, remote_ip FROM portcullis_authentication_logs WHERE time >= ?1 ORDER BY time")
                .map_err(&err)?;
            let rows = stmt
                .query_map(params![since], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, bool>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(&err)?;
            for row in rows {
                let (time, ok, user, ip) = row.map_err(&err)?;
                let time = time.max(0) as u64;
                if !user.is_empty() {
                    push(memory.attempts_by_user.entry(user).or_default(), (time, ok));
                }
                if let Ok(ip) = ip.parse() {
                    push(memory.attempts_by_ip.entry(ip).or_default(), (time, ok));
                }
            }
        }
        Ok((
            Self {
                conn: Mutex::new(conn),
            },
            memory,
        ))
    }

    /// Write an attempt and the bans it caused; drop attempts older than a day (or `find_time`).
    pub(super) fn append(
        &self,
        username: &str,
        ip: Option<IpAddr>,
        success: bool,
        now: u64,
        new_bans: &[NewBan],
        find_time: u64,
    ) -> Result<(), rusqlite::Error> {
        let conn = lock(&self.conn);
        let ip_text = ip.map(|i| i.to_string()).unwrap_or_default();
        conn.execute(
            "INSERT INTO portcullis_authentication_logs (time, successful, username, remote_ip) VALUES (?1, ?2, ?3, ?4)",
            params![now as i64, success, username, ip_text],
        )?;
        for (kind, value, until) in new_bans {
            conn.execute(
                "INSERT OR REPLACE INTO portcullis_bans (kind, value, expires) VALUES (?1, ?2, ?3)",
                params![kind, value, *until as i64],
            )?;
        }
        conn.execute(
            "DELETE FROM portcullis_authentication_logs WHERE time < ?1",
            params![now.saturating_sub(find_time.max(86_400)) as i64],
        )?;
        Ok(())
    }
}
