//! The second factors in SQLite, in Authelia's own tables (docs/reference/second-factor.md §4):
//! pointed at an Authelia `db.sqlite3` with its `storage.encryption_key`, every user's TOTP keeps
//! working, rows are written as Authelia writes them, and its `migrations` rows are never
//! touched, so the user can go back. A file without Authelia's tables gets the same tables (the
//! row-scoped scheme, Authelia's newest) and a `portcullis_second_factor_schema` row saying so.
//!
//! Blocking (rusqlite behind a mutex): callers on an async runtime use `spawn_blocking`.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rand::Rng;
use rusqlite::{Connection, OptionalExtension, params};

use crate::SecondFactorError;
use crate::encryption::{Location, Scheme, StorageCipher};
use crate::signature::{OTC_KEY_LENGTH, OTP_KEY_LENGTH};
use crate::totp::{TotpParameters, TotpSecret};
use crate::uuid::{parse_uuid, random_uuid, uuid_text};

/// The tables a fresh file gets: the layout of Authelia's schema 24 for the ones Portcullis uses.
const FRESH_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS portcullis_second_factor_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS encryption (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(100) NOT NULL UNIQUE, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS totp_configurations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_used_at DATETIME NULL DEFAULT NULL, username VARCHAR(100) NOT NULL UNIQUE,
    issuer VARCHAR(100), algorithm VARCHAR(6) NOT NULL DEFAULT 'SHA1', digits INTEGER NOT NULL DEFAULT 6,
    period INTEGER NOT NULL DEFAULT 30, secret BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS totp_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    username VARCHAR(100) NOT NULL, step CHAR(64) NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS totp_history_username_step_key ON totp_history (username, step);
CREATE TABLE IF NOT EXISTS user_preferences (
    id INTEGER PRIMARY KEY AUTOINCREMENT, username VARCHAR(100) NOT NULL UNIQUE,
    second_factor_method VARCHAR(11) NOT NULL);
CREATE TABLE IF NOT EXISTS one_time_code (
    id INTEGER PRIMARY KEY AUTOINCREMENT, public_id CHAR(36) NOT NULL, signature VARCHAR(128) NOT NULL,
    issued DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, issued_ip VARCHAR(39) NOT NULL,
    expires DATETIME NOT NULL, username VARCHAR(100) NOT NULL, intent VARCHAR(100) NOT NULL,
    consumed DATETIME NULL DEFAULT NULL, consumed_ip VARCHAR(39) NULL DEFAULT NULL,
    revoked DATETIME NULL DEFAULT NULL, revoked_ip VARCHAR(39) NULL DEFAULT NULL, code BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS one_time_code_signature ON one_time_code (signature, username);
CREATE UNIQUE INDEX IF NOT EXISTS one_time_code_lookup ON one_time_code (public_id);
CREATE TABLE IF NOT EXISTS identity_verification (
    id INTEGER PRIMARY KEY AUTOINCREMENT, jti VARCHAR(36) NOT NULL UNIQUE,
    iat DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, issued_ip VARCHAR(39) NOT NULL,
    exp DATETIME NOT NULL, username VARCHAR(100) NOT NULL, action VARCHAR(50) NOT NULL,
    consumed DATETIME NULL DEFAULT NULL, consumed_ip VARCHAR(39) NULL DEFAULT NULL,
    revoked DATETIME NULL DEFAULT NULL, revoked_ip VARCHAR(39) NULL DEFAULT NULL);
CREATE TABLE IF NOT EXISTS webauthn_users (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, rpid VARCHAR(512) NOT NULL,
    username VARCHAR(100) NOT NULL, userid CHAR(64) NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS webauthn_users_lookup_key ON webauthn_users (rpid, username);
CREATE TABLE IF NOT EXISTS webauthn_credentials (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    last_used_at DATETIME NULL DEFAULT NULL, rpid VARCHAR(512) NOT NULL, username VARCHAR(100) NOT NULL,
    description VARCHAR(64) NOT NULL, kid VARCHAR(512) NOT NULL, aaguid CHAR(36) NULL,
    attestation_format VARCHAR(32), attachment VARCHAR(64), transport VARCHAR(64) DEFAULT '',
    sign_count INTEGER DEFAULT 0, clone_warning BOOLEAN NOT NULL DEFAULT FALSE,
    legacy BOOLEAN NOT NULL DEFAULT FALSE, discoverable BOOLEAN NOT NULL,
    present BOOLEAN NOT NULL DEFAULT FALSE, verified BOOLEAN NOT NULL DEFAULT FALSE,
    backup_eligible BOOLEAN NOT NULL DEFAULT FALSE, backup_state BOOLEAN NOT NULL DEFAULT FALSE,
    public_key BLOB NOT NULL, attestation BLOB NULL DEFAULT NULL,
    attestation_type VARCHAR(32) NOT NULL DEFAULT '');
CREATE UNIQUE INDEX IF NOT EXISTS webauthn_credentials_kid_key ON webauthn_credentials (kid);
CREATE UNIQUE INDEX IF NOT EXISTS webauthn_credentials_lookup_key
    ON webauthn_credentials (rpid, username, description);
";

/// A `one_time_code` row: its id or public id, expiry, intent, consumed and revoked times.
type CodeRow<Id> = (Id, String, String, Option<String>, Option<String>);

/// Where the tables came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An Authelia database at this schema version (its last `migrations` row).
    Authelia {
        /// `version_after` of the last migration.
        schema: u32,
    },
    /// Tables Portcullis created.
    Portcullis,
}

/// One user's TOTP registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRegistration {
    /// The user.
    pub username: String,
    /// The issuer shown in the authenticator app.
    pub issuer: String,
    /// How the codes are made.
    pub parameters: TotpParameters,
    /// The key.
    pub secret: TotpSecret,
    /// When it was registered (Unix seconds).
    pub created_at: i64,
    /// When it was last used to sign in.
    pub last_used_at: Option<i64>,
}

/// A WebAuthn credential as `portcullis storage user webauthn list` shows it (never the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebAuthnCredential {
    /// The row id.
    pub id: i64,
    /// The user.
    pub username: String,
    /// The RP ID it is bound to (the portal host).
    pub rpid: String,
    /// The user's name for it.
    pub description: String,
    /// The credential id, standard base64.
    pub kid: String,
    /// When it was registered.
    pub created_at: Option<i64>,
    /// When it was last used.
    pub last_used_at: Option<i64>,
}

/// What using an identity-verification token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// It was unused and is now consumed.
    Consumed,
    /// It was used before.
    AlreadyUsed,
    /// It was revoked.
    Revoked,
    /// No such token (or another action's, or another user's).
    Unknown,
}

/// A one-time code as stored: what is needed to check one typed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    /// The public id (a UUID's 16 bytes), for revocation.
    pub public_id: [u8; 16],
    /// Expiry (Unix seconds).
    pub expires: i64,
    /// The intent it was issued for.
    pub intent: String,
    /// Already used.
    pub consumed: bool,
    /// Revoked.
    pub revoked: bool,
}

/// The SQLite store of second factors.
#[derive(Debug)]
pub struct SecondFactorStore {
    conn: Mutex<Connection>,
    cipher: StorageCipher,
    otp_key: HmacKey,
    otc_key: HmacKey,
    origin: Origin,
}

/// An HMAC key read from the `encryption` table. Its `Debug` never shows it.
#[derive(Clone)]
struct HmacKey(Vec<u8>);

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey([redacted])")
    }
}

fn storage(e: rusqlite::Error) -> SecondFactorError {
    SecondFactorError::Storage(e.to_string())
}

fn table_exists(conn: &Connection, name: &str) -> Result<bool, SecondFactorError> {
    conn.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        params![name],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
    .map_err(storage)
}

impl SecondFactorStore {
    /// Open the file at `path` with `encryption_key`. An Authelia database is recognised by its
    /// `migrations` table and read under the scheme of its schema version; one newer than
    /// Portcullis knows is refused. A wrong key is an error (the `check` row does not open),
    /// never codes computed from garbage.
    pub fn open(
        path: &Path,
        encryption_key: &str,
        rng: &mut impl Rng,
    ) -> Result<Self, SecondFactorError> {
        let conn = Connection::open(path).map_err(storage)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(storage)?;
        let origin = if table_exists(&conn, "migrations")? {
            let version: Option<i64> = conn
                .query_row(
                    "SELECT version_after FROM migrations ORDER BY id DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map_err(storage)?;
            let version = version.ok_or(SecondFactorError::NotAutheliaDatabase)?;
            let schema =
                u32::try_from(version).map_err(|_| SecondFactorError::NotAutheliaDatabase)?;
            if !table_exists(&conn, "totp_configurations")? || !table_exists(&conn, "encryption")? {
                return Err(SecondFactorError::NotAutheliaDatabase);
            }
            Origin::Authelia { schema }
        } else {
            conn.execute_batch(FRESH_SCHEMA).map_err(storage)?;
            conn.execute(
                "INSERT INTO portcullis_second_factor_schema (version)
                 SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM portcullis_second_factor_schema)",
                [],
            )
            .map_err(storage)?;
            Origin::Portcullis
        };
        let scheme = match origin {
            Origin::Authelia { schema } => Scheme::for_schema(schema)?,
            Origin::Portcullis => Scheme::RowScoped,
        };
        let cipher = StorageCipher::new(encryption_key, scheme)?;
        let check = Location::Row {
            table: "encryption",
            column: "value",
            row: "check",
        };
        let stored: Option<Vec<u8>> = conn
            .query_row(
                "SELECT value FROM encryption WHERE name = 'check'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage)?;
        match stored {
            Some(value) => {
                cipher
                    .open(&value, check)
                    .map_err(|_| SecondFactorError::WrongEncryptionKey)?;
            }
            None => {
                let value = uuid_text(random_uuid(rng));
                let sealed = cipher.seal(rng.random(), value.as_bytes(), check);
                conn.execute(
                    "INSERT OR IGNORE INTO encryption (name, value) VALUES ('check', ?1)",
                    params![sealed],
                )
                .map_err(storage)?;
            }
        }
        let otp_key = Self::hmac_key(&conn, &cipher, "hmac_key_otp", OTP_KEY_LENGTH, rng)?;
        let otc_key = Self::hmac_key(&conn, &cipher, "hmac_key_otc", OTC_KEY_LENGTH, rng)?;
        Ok(Self {
            conn: Mutex::new(conn),
            cipher,
            otp_key: HmacKey(otp_key),
            otc_key: HmacKey(otc_key),
            origin,
        })
    }

    fn hmac_key(
        conn: &Connection,
        cipher: &StorageCipher,
        name: &str,
        length: usize,
        rng: &mut impl Rng,
    ) -> Result<Vec<u8>, SecondFactorError> {
        let location = Location::Row {
            table: "encryption",
            column: "value",
            row: name,
        };
        let read = || -> Result<Option<Vec<u8>>, SecondFactorError> {
            conn.query_row(
                "SELECT value FROM encryption WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage)
        };
        if read()?.is_none() {
            let fresh: Vec<u8> = (0..length).map(|_| rng.random()).collect();
            let sealed = cipher.seal(rng.random(), &fresh, location);
            conn.execute(
                "INSERT OR IGNORE INTO encryption (name, value) VALUES (?1, ?2)",
                params![name, sealed],
            )
            .map_err(storage)?;
        }
        // Read back: a second server starting on the same file at once keeps the first key.
        let sealed = read()?.ok_or(SecondFactorError::WrongEncryptionKey)?;
        cipher
            .open(&sealed, location)
            .map_err(|_| SecondFactorError::WrongEncryptionKey)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (each statement is
        // atomic), so a poisoned lock is still usable.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Where the tables came from.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The encryption scheme in use.
    pub fn scheme(&self) -> Scheme {
        self.cipher.scheme()
    }

    /// The tables of the database, sorted.
    pub fn tables(&self) -> Result<Vec<String>, SecondFactorError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .map_err(storage)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }
}

mod codes;
mod totp;
mod webauthn;
pub use webauthn::{NewWebAuthnCredential, StoredWebAuthnCredential, USER_HANDLE_LENGTH};

#[cfg(test)]
mod tests;
