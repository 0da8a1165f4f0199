//! The WebAuthn credentials of an Authelia database (`webauthn_credentials`), listed and deleted
//! for `portcullis storage`; Portcullis does not register them yet.

use rusqlite::{OptionalExtension, params};

use super::{SecondFactorStore, WebAuthnCredential, storage, table_exists};
use crate::SecondFactorError;
use crate::datetime::parse_sqlite_datetime;

impl SecondFactorStore {
    /// The WebAuthn credentials in Authelia's table (empty when the database has none), of one
    /// user or of all.
    pub fn webauthn_credentials(
        &self,
        username: Option<&str>,
    ) -> Result<Vec<WebAuthnCredential>, SecondFactorError> {
        let conn = self.conn();
        if !table_exists(&conn, "webauthn_credentials")? {
            return Ok(Vec::new());
        }
        let mut stmt = conn
            .prepare(
                "SELECT id, username, COALESCE(rpid, ''), COALESCE(description, ''), kid,
                        COALESCE(CAST(created_at AS TEXT), ''), CAST(last_used_at AS TEXT)
                 FROM webauthn_credentials WHERE ?1 IS NULL OR username = ?1 ORDER BY username, id",
            )
            .map_err(storage)?;
        let rows = stmt
            .query_map(params![username], |r| {
                Ok(WebAuthnCredential {
                    id: r.get(0)?,
                    username: r.get(1)?,
                    rpid: r.get(2)?,
                    description: r.get(3)?,
                    kid: r.get(4)?,
                    created_at: parse_sqlite_datetime(&r.get::<_, String>(5)?),
                    last_used_at: r
                        .get::<_, Option<String>>(6)?
                        .as_deref()
                        .and_then(parse_sqlite_datetime),
                })
            })
            .map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    /// Delete `user`'s WebAuthn credential whose description is `description`
    /// (case-insensitively, as descriptions are unique that way); true when one was deleted.
    pub fn delete_webauthn_credential(
        &self,
        username: &str,
        description: &str,
    ) -> Result<bool, SecondFactorError> {
        let conn = self.conn();
        if !table_exists(&conn, "webauthn_credentials")? {
            return Ok(false);
        }
        let n = conn
            .execute(
                "DELETE FROM webauthn_credentials WHERE username = ?1 AND lower(description) = lower(?2)",
                params![username, description],
            )
            .map_err(storage)?;
        Ok(n > 0)
    }

    /// Whether `user` has a WebAuthn credential (Authelia's table, when the database has one).
    pub fn has_webauthn(&self, username: &str) -> Result<bool, SecondFactorError> {
        let conn = self.conn();
        if !table_exists(&conn, "webauthn_credentials")? {
            return Ok(false);
        }
        conn.query_row(
            "SELECT 1 FROM webauthn_credentials WHERE username = ?1 LIMIT 1",
            params![username],
            |_| Ok(()),
        )
        .optional()
        .map(|found| found.is_some())
        .map_err(storage)
    }
}
