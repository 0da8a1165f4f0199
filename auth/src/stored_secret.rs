//! A secret generated at first start and kept in the SQLite storage, for a server whose
//! configuration sets none (Authelia requires `session.secret` only with Redis).

use std::path::Path;

use portcullis_core::Secret;
use rand::Rng;
use rand::distr::Alphanumeric;
use rusqlite::{Connection, OptionalExtension, params};

use crate::AuthError;

/// Length of a generated secret: 64 alphanumeric characters, about 380 bits.
const GENERATED_LENGTH: usize = 64;

/// Where a secret came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretOrigin {
    /// Made now and stored.
    Generated,
    /// Read from the storage, where an earlier start put it.
    Stored,
}

/// The secret called `name` in the SQLite file at `path`: read when an earlier start stored one,
/// else generated with `rng`, stored, and returned. Two servers starting at once on the same file
/// get the same secret (the first insert wins).
pub fn stored_secret(
    path: &Path,
    name: &str,
    rng: &mut impl Rng,
) -> Result<(Secret, SecretOrigin), AuthError> {
    let err = |e: rusqlite::Error| AuthError::Regulation {
        store: path.display().to_string(),
        message: format!("stored secret {name}: {e}"),
    };
    let conn = Connection::open(path).map_err(err)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS portcullis_secrets (
             name TEXT PRIMARY KEY, value TEXT NOT NULL, created INTEGER NOT NULL);",
    )
    .map_err(err)?;
    let read = |conn: &Connection| {
        conn.query_row(
            "SELECT value FROM portcullis_secrets WHERE name = ?1",
            params![name],
            |row| row.get::<_, String>(0),
        )
        .optional()
    };
    if let Some(value) = read(&conn).map_err(err)?.filter(|v| !v.is_empty()) {
        return Ok((Secret::new(value), SecretOrigin::Stored));
    }
    let generated: String = (0..GENERATED_LENGTH)
        .map(|_| char::from(rng.sample(Alphanumeric)))
        .collect();
    let inserted = conn
        .execute(
            "INSERT OR IGNORE INTO portcullis_secrets (name, value, created) VALUES (?1, ?2, 0)",
            params![name, generated],
        )
        .map_err(err)?;
    let value = read(&conn)
        .map_err(err)?
        .filter(|v| !v.is_empty())
        .ok_or_else(|| err(rusqlite::Error::QueryReturnedNoRows))?;
    let origin = if inserted == 1 {
        SecretOrigin::Generated
    } else {
        SecretOrigin::Stored
    };
    Ok((Secret::new(value), origin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn generated_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (first, origin) = stored_secret(&path, "session", &mut rng).unwrap();
        assert_eq!(origin, SecretOrigin::Generated);
        assert_eq!(first.expose().len(), GENERATED_LENGTH);
        assert!(first.expose().bytes().all(|b| b.is_ascii_alphanumeric()));
        let (again, origin) = stored_secret(&path, "session", &mut rng).unwrap();
        assert_eq!(origin, SecretOrigin::Stored);
        assert_eq!(again, first, "a restart reads the same secret");
        let (other, _) = stored_secret(&path, "other", &mut rng).unwrap();
        assert_ne!(other, first, "each name has its own secret");
    }
}
