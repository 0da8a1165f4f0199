//! The file under a `SqliteStore`: created private, checked before anything is written to it, and
//! given its schema.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;

use rusqlite::Connection;

use super::{GENERATION, TABLE, sql_error};
use crate::StoreError;

/// Create the parent folder, and the file (mode 0600) when it does not exist. An existing path is
/// left as it is; it must be a regular file.
pub(crate) fn prepare_file(path: &Path) -> Result<(), StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
            path: parent.to_owned(),
            source,
        })?;
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = std::fs::metadata(path).map_err(|source| StoreError::Io {
                path: path.to_owned(),
                source,
            })?;
            if meta.is_file() {
                Ok(())
            } else {
                Err(StoreError::Io {
                    path: path.to_owned(),
                    source: io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
                })
            }
        }
        Err(source) => Err(StoreError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// `PRAGMA quick_check`, before anything is written to the file.
pub(crate) fn quick_check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    check_rows(conn, path, "PRAGMA quick_check")
}

/// Run an integrity check `pragma`: one row `ok`, or the problems it lists.
fn check_rows(conn: &Connection, path: &Path, pragma: &str) -> Result<(), StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.to_owned(),
        detail,
    };
    let mut stmt = conn.prepare(pragma).map_err(|e| sql_error(path, e))?;
    let rows: Vec<String> = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| sql_error(path, e))?;
    match rows.as_slice() {
        [only] if only == "ok" => Ok(()),
        [] => Err(corrupt("quick_check returned nothing".into())),
        problems => Err(corrupt(problems.join("; "))),
    }
}

/// Whether the file has a table named `name`.
pub(super) fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [name],
        |row| row.get(0),
    )
}

/// `PRAGMA quick_check` of every table of the file but `skipped` (and of their indexes).
pub(super) fn quick_check_except(
    conn: &Connection,
    path: &Path,
    skipped: &str,
) -> Result<(), StoreError> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name <> ?1")
        .and_then(|mut stmt| {
            stmt.query_map([skipped], |row| row.get::<_, String>(0))?
                .collect()
        })
        .map_err(|e| sql_error(path, e))?;
    for table in tables {
        let pragma = format!("PRAGMA quick_check(\"{}\")", table.replace('"', "\"\""));
        check_rows(conn, path, &pragma)?;
    }
    Ok(())
}

pub(super) fn init_schema(conn: &Connection) -> rusqlite::Result<()> {
    // `journal_mode` answers with a row, so it is queried rather than executed.
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.execute_batch(&format!(
        "PRAGMA synchronous = NORMAL;
         CREATE TABLE IF NOT EXISTS {TABLE} (
             id TEXT PRIMARY KEY NOT NULL,
             username TEXT NOT NULL,
             expires_at INTEGER NOT NULL,
             last_activity INTEGER NOT NULL,
             data TEXT NOT NULL
         );
         CREATE INDEX IF NOT EXISTS {TABLE}_username ON {TABLE} (username);
         CREATE INDEX IF NOT EXISTS {TABLE}_expires_at ON {TABLE} (expires_at);
         CREATE TABLE IF NOT EXISTS {GENERATION} (
             id INTEGER PRIMARY KEY CHECK (id = 0),
             generation INTEGER NOT NULL
         );
         INSERT OR IGNORE INTO {GENERATION} (id, generation) VALUES (0, 0);
         CREATE TRIGGER IF NOT EXISTS {TABLE}_inserted AFTER INSERT ON {TABLE}
         BEGIN UPDATE {GENERATION} SET generation = generation + 1 WHERE id = 0; END;
         CREATE TRIGGER IF NOT EXISTS {TABLE}_deleted AFTER DELETE ON {TABLE}
         BEGIN UPDATE {GENERATION} SET generation = generation + 1 WHERE id = 0; END;"
    ))
}
