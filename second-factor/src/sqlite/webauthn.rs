//! WebAuthn users and credentials in Authelia's `webauthn_users` and `webauthn_credentials`
//! (docs/reference/second-factor.md §2.4, §4.2): user handles of 64 printable ASCII characters,
//! credential ids as standard base64 in `kid`, COSE keys encrypted under the database's scheme.
//! Authelia databases below schema 24 have older columns; their credentials are refused here
//! (Authelia 4.39 migrates them when it starts once).

use rand::Rng;
use rusqlite::{OptionalExtension, Row, params};

use super::{Origin, SecondFactorStore, WebAuthnCredential, storage, table_exists};
use crate::SecondFactorError;
use crate::datetime::{parse_sqlite_datetime, sqlite_datetime};
use crate::encryption::Location;

/// The length of a user handle Portcullis makes, as Authelia's.
pub const USER_HANDLE_LENGTH: usize = 64;
/// Authelia's `random.CharSetASCII`: letters, digits and symbols.
const USER_HANDLE_CHARSET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
/// The first Authelia schema with today's WebAuthn columns (V0024 `attestation_type`).
const WEBAUTHN_SCHEMA: u32 = 24;

/// A credential as stored, with its key decrypted.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredWebAuthnCredential {
    /// The row id (what the portal's routes name).
    pub id: i64,
    /// When it was registered.
    pub created_at: i64,
    /// When it was last used.
    pub last_used_at: Option<i64>,
    /// The RP ID.
    pub rpid: String,
    /// The user.
    pub username: String,
    /// The user's name for it.
    pub description: String,
    /// The credential id, standard base64.
    pub kid: String,
    /// The authenticator model, as a UUID (absent for U2F credentials).
    pub aaguid: Option<String>,
    /// `none`, `packed`, `fido-u2f`, …
    pub attestation_format: String,
    /// `none`, `self`, `basic_full`, …
    pub attestation_type: String,
    /// `platform` or `cross-platform`.
    pub attachment: String,
    /// How it can be reached.
    pub transports: Vec<String>,
    /// The last signature counter.
    pub sign_count: u32,
    /// Set once a counter went backwards.
    pub clone_warning: bool,
    /// Registered through the U2F API (asserted with the `appid` extension).
    pub legacy: bool,
    /// A passkey.
    pub discoverable: bool,
    /// UP at registration.
    pub present: bool,
    /// UV at registration.
    pub verified: bool,
    /// BE.
    pub backup_eligible: bool,
    /// BS.
    pub backup_state: bool,
    /// The COSE key bytes (decrypted).
    pub public_key: Vec<u8>,
}

impl std::fmt::Debug for StoredWebAuthnCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredWebAuthnCredential")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("rpid", &self.rpid)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A credential to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebAuthnCredential {
    /// The RP ID.
    pub rpid: String,
    /// The user.
    pub username: String,
    /// The user's name for it (1–64 characters, unique per user case-insensitively).
    pub description: String,
    /// The credential id, standard base64.
    pub kid: String,
    /// The authenticator model, as a UUID.
    pub aaguid: Option<String>,
    /// The attestation format.
    pub attestation_format: String,
    /// How far the attestation was checked.
    pub attestation_type: String,
    /// `platform` or `cross-platform` (`""` when unknown).
    pub attachment: String,
    /// How it can be reached.
    pub transports: Vec<String>,
    /// The first counter.
    pub sign_count: u32,
    /// A passkey.
    pub discoverable: bool,
    /// UP at registration.
    pub present: bool,
    /// UV at registration.
    pub verified: bool,
    /// BE.
    pub backup_eligible: bool,
    /// BS.
    pub backup_state: bool,
    /// The COSE key bytes.
    pub public_key: Vec<u8>,
    /// When (Unix seconds).
    pub created_at: i64,
}

const COLUMNS: &str = "id, CAST(created_at AS TEXT), CAST(last_used_at AS TEXT), rpid, username, description, kid,
    aaguid, COALESCE(attestation_format, ''), COALESCE(attestation_type, ''), COALESCE(attachment, ''),
    COALESCE(transport, ''), COALESCE(sign_count, 0), clone_warning, legacy, discoverable, present,
    verified, backup_eligible, backup_state, public_key";

/// A row before its key is decrypted.
type RawRow = (StoredWebAuthnCredential, Vec<u8>);

fn raw_row(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    let transports: String = r.get(11)?;
    let sign_count: i64 = r.get(12)?;
    Ok((
        StoredWebAuthnCredential {
            id: r.get(0)?,
            created_at: parse_sqlite_datetime(&r.get::<_, String>(1)?).unwrap_or(0),
            last_used_at: r
                .get::<_, Option<String>>(2)?
                .as_deref()
                .and_then(parse_sqlite_datetime),
            rpid: r.get(3)?,
            username: r.get(4)?,
            description: r.get(5)?,
            kid: r.get(6)?,
            aaguid: r.get(7)?,
            attestation_format: r.get(8)?,
            attestation_type: r.get(9)?,
            attachment: r.get(10)?,
            transports: transports
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            sign_count: u32::try_from(sign_count).unwrap_or(u32::MAX),
            clone_warning: r.get(13)?,
            legacy: r.get(14)?,
            discoverable: r.get(15)?,
            present: r.get(16)?,
            verified: r.get(17)?,
            backup_eligible: r.get(18)?,
            backup_state: r.get(19)?,
            public_key: Vec::new(),
        },
        r.get(20)?,
    ))
}

impl SecondFactorStore {
    /// WebAuthn needs Authelia's schema-24 columns; older Authelia databases are refused.
    fn webauthn_tables(&self) -> Result<(), SecondFactorError> {
        match self.origin {
            Origin::Authelia { schema } if schema < WEBAUTHN_SCHEMA => {
                Err(SecondFactorError::WebAuthnSchema(schema))
            }
            _ => Ok(()),
        }
    }

    fn decrypt_key(
        &self,
        (mut row, sealed): RawRow,
    ) -> Result<StoredWebAuthnCredential, SecondFactorError> {
        let location = Location::WebAuthnCredential {
            column: "public_key",
            kid: &row.kid,
            rpid: &row.rpid,
        };
        row.public_key = self.cipher.open(&sealed, location)?;
        Ok(row)
    }

    /// The user handle of `username` at `rpid`, if one was made.
    pub fn webauthn_user(
        &self,
        rpid: &str,
        username: &str,
    ) -> Result<Option<String>, SecondFactorError> {
        self.webauthn_tables()?;
        self.conn()
            .query_row(
                "SELECT userid FROM webauthn_users WHERE rpid = ?1 AND username = ?2",
                params![rpid, username],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage)
    }

    /// The user handle of `username` at `rpid`, made (64 random printable ASCII characters) the
    /// first time, as Authelia does at the first registration.
    pub fn ensure_webauthn_user(
        &self,
        rpid: &str,
        username: &str,
        rng: &mut impl Rng,
    ) -> Result<String, SecondFactorError> {
        if let Some(handle) = self.webauthn_user(rpid, username)? {
            return Ok(handle);
        }
        let handle: String = (0..USER_HANDLE_LENGTH)
            .map(|_| {
                char::from(USER_HANDLE_CHARSET[rng.random_range(0..USER_HANDLE_CHARSET.len())])
            })
            .collect();
        self.conn()
            .execute(
                "INSERT OR IGNORE INTO webauthn_users (rpid, username, userid) VALUES (?1, ?2, ?3)",
                params![rpid, username, handle],
            )
            .map_err(storage)?;
        // Read back: another request may have made it at the same moment.
        self.webauthn_user(rpid, username)?
            .ok_or_else(|| SecondFactorError::Storage("webauthn user not saved".into()))
    }

    /// The user whose handle at `rpid` is `handle` (passkey login).
    pub fn webauthn_user_by_handle(
        &self,
        rpid: &str,
        handle: &[u8],
    ) -> Result<Option<String>, SecondFactorError> {
        self.webauthn_tables()?;
        let Ok(handle) = std::str::from_utf8(handle) else {
            return Ok(None);
        };
        self.conn()
            .query_row(
                "SELECT username FROM webauthn_users WHERE rpid = ?1 AND userid = ?2",
                params![rpid, handle],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage)
    }

    /// `username`'s credentials at `rpid`, keys decrypted. A key that does not decrypt is an
    /// error, never a credential without a key.
    pub fn webauthn_credentials_of(
        &self,
        rpid: &str,
        username: &str,
    ) -> Result<Vec<StoredWebAuthnCredential>, SecondFactorError> {
        self.webauthn_tables()?;
        let rows: Vec<RawRow> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM webauthn_credentials WHERE rpid = ?1 AND username = ?2 ORDER BY id"
                ))
                .map_err(storage)?;
            let rows = stmt
                .query_map(params![rpid, username], raw_row)
                .map_err(storage)?;
            rows.collect::<Result<_, _>>().map_err(storage)?
        };
        rows.into_iter().map(|r| self.decrypt_key(r)).collect()
    }

    /// The credential whose id (standard base64) is `kid` at `rpid`.
    pub fn webauthn_credential_by_kid(
        &self,
        rpid: &str,
        kid: &str,
    ) -> Result<Option<StoredWebAuthnCredential>, SecondFactorError> {
        self.webauthn_tables()?;
        let row: Option<RawRow> = self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM webauthn_credentials WHERE rpid = ?1 AND kid = ?2"),
                params![rpid, kid],
                raw_row,
            )
            .optional()
            .map_err(storage)?;
        row.map(|r| self.decrypt_key(r)).transpose()
    }

    /// Whether `username` already has a credential named `description` at `rpid`
    /// (case-insensitively, as Authelia compares them).
    pub fn webauthn_description_taken(
        &self,
        rpid: &str,
        username: &str,
        description: &str,
    ) -> Result<bool, SecondFactorError> {
        self.webauthn_tables()?;
        self.conn()
            .query_row(
                "SELECT 1 FROM webauthn_credentials WHERE rpid = ?1 AND username = ?2 AND lower(description) = lower(?3)",
                params![rpid, username, description],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(storage)
    }

    /// Store a new credential; its key is encrypted under the database's scheme. Returns the
    /// row id.
    pub fn save_webauthn_credential(
        &self,
        credential: &NewWebAuthnCredential,
        rng: &mut impl Rng,
    ) -> Result<i64, SecondFactorError> {
        self.webauthn_tables()?;
        let location = Location::WebAuthnCredential {
            column: "public_key",
            kid: &credential.kid,
            rpid: &credential.rpid,
        };
        let sealed = self
            .cipher
            .seal(rng.random(), &credential.public_key, location);
        let conn = self.conn();
        conn.execute(
            "INSERT INTO webauthn_credentials (created_at, rpid, username, description, kid, aaguid,
                attestation_format, attestation_type, attachment, transport, sign_count, clone_warning,
                legacy, discoverable, present, verified, backup_eligible, backup_state, public_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, 0, ?12, ?13, ?14, ?15, ?16, ?17)",
            params![
                sqlite_datetime(credential.created_at),
                credential.rpid,
                credential.username,
                credential.description,
                credential.kid,
                credential.aaguid,
                credential.attestation_format,
                credential.attestation_type,
                credential.attachment,
                credential.transports.join(","),
                i64::from(credential.sign_count),
                credential.discoverable,
                credential.present,
                credential.verified,
                credential.backup_eligible,
                credential.backup_state,
                sealed,
            ],
        )
        .map_err(storage)?;
        Ok(conn.last_insert_rowid())
    }

    /// Note a use: the new counter, the time, the backup state, and the clone warning once set.
    pub fn record_webauthn_use(
        &self,
        id: i64,
        sign_count: u32,
        backup_state: bool,
        clone_warning: bool,
        now: i64,
    ) -> Result<(), SecondFactorError> {
        self.webauthn_tables()?;
        self.conn()
            .execute(
                "UPDATE webauthn_credentials SET sign_count = ?2, last_used_at = ?3, backup_state = ?4,
                     clone_warning = (clone_warning OR ?5) WHERE id = ?1",
                params![id, i64::from(sign_count), sqlite_datetime(now), backup_state, clone_warning],
            )
            .map_err(storage)?;
        Ok(())
    }

    /// Mark credential `id` discoverable (a passkey login with `experimental_enable_passkey_upgrade`).
    pub fn mark_webauthn_discoverable(&self, id: i64) -> Result<(), SecondFactorError> {
        self.webauthn_tables()?;
        self.conn()
            .execute(
                "UPDATE webauthn_credentials SET discoverable = 1 WHERE id = ?1",
                params![id],
            )
            .map_err(storage)?;
        Ok(())
    }

    /// Rename `username`'s credential `id`; false when the user has no such credential.
    pub fn rename_webauthn_credential(
        &self,
        username: &str,
        id: i64,
        description: &str,
    ) -> Result<bool, SecondFactorError> {
        self.webauthn_tables()?;
        let n = self
            .conn()
            .execute(
                "UPDATE webauthn_credentials SET description = ?3 WHERE id = ?1 AND username = ?2",
                params![id, username, description],
            )
            .map_err(storage)?;
        Ok(n > 0)
    }

    /// Delete `username`'s credential `id`; its description when one was deleted.
    pub fn delete_webauthn_credential_by_id(
        &self,
        username: &str,
        id: i64,
    ) -> Result<Option<String>, SecondFactorError> {
        self.webauthn_tables()?;
        let conn = self.conn();
        let description: Option<String> = conn
            .query_row(
                "SELECT description FROM webauthn_credentials WHERE id = ?1 AND username = ?2",
                params![id, username],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage)?;
        if description.is_some() {
            conn.execute(
                "DELETE FROM webauthn_credentials WHERE id = ?1 AND username = ?2",
                params![id, username],
            )
            .map_err(storage)?;
        }
        Ok(description)
    }

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
