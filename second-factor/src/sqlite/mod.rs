//! The second factors in SQLite, in Authelia's own tables (docs/reference/second-factor.md §4):
//! pointed at an Authelia `db.sqlite3` with its `storage.encryption_key`, every user's TOTP keeps
//! working, rows are written as Authelia writes them, and its `migrations` rows are never
//! touched, so the user can go back. A file without Authelia's tables gets the same tables (the
//! row-scoped scheme, Authelia's newest) and a `portcullis_second_factor_schema` row saying so.
//!
//! Blocking (rusqlite behind a mutex): callers on an async runtime use `spawn_blocking`.

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rand::Rng;
use rusqlite::{Connection, OptionalExtension, params};

use crate::SecondFactorError;
use crate::datetime::{parse_sqlite_datetime, sqlite_datetime};
use crate::encryption::{Location, Scheme, StorageCipher};
use crate::signature::{OTC_KEY_LENGTH, OTP_KEY_LENGTH};
use crate::totp::{Algorithm, Digits, Period, TotpParameters, TotpSecret};

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

fn uuid_text(bytes: [u8; 16]) -> String {
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let compact: String = text.chars().filter(|c| *c != '-').collect();
    hex::decode(compact).ok()?.try_into().ok()
}

/// A random version-4 UUID.
fn random_uuid(rng: &mut impl Rng) -> [u8; 16] {
    let mut bytes: [u8; 16] = rng.random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes
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

    /// `user`'s TOTP registration, if any. A row whose secret does not decrypt, or whose
    /// parameters are not valid, is an error: it never yields codes.
    pub fn totp(&self, username: &str) -> Result<Option<TotpRegistration>, SecondFactorError> {
        type Row = (
            String,
            Option<String>,
            String,
            i64,
            i64,
            Vec<u8>,
            String,
            Option<String>,
        );
        let row: Option<Row> = self
            .conn()
            .query_row(
                "SELECT username, issuer, algorithm, digits, period, secret, created_at, last_used_at
                 FROM totp_configurations WHERE username = ?1",
                params![username],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get::<_, String>(6)?,
                        r.get(7)?,
                    ))
                },
            )
            .optional()
            .map_err(storage)?;
        let Some((name, issuer, algorithm, digits, period, sealed, created, last_used)) = row
        else {
            return Ok(None);
        };
        let location = Location::Row {
            table: "totp_configurations",
            column: "secret",
            row: &name,
        };
        let plain = self.cipher.open(&sealed, location)?;
        let text = String::from_utf8(plain).map_err(|_| SecondFactorError::SecretNotBase32)?;
        let parameters = TotpParameters {
            algorithm: Algorithm::parse(&algorithm)?,
            digits: Digits::new(u32::try_from(digits).map_err(|_| SecondFactorError::Digits(0))?)?,
            period: Period::new(u64::try_from(period).map_err(|_| SecondFactorError::Period(0))?)?,
        };
        Ok(Some(TotpRegistration {
            username: name,
            issuer: issuer.unwrap_or_default(),
            parameters,
            secret: TotpSecret::from_base32(&text)?,
            created_at: parse_sqlite_datetime(&created).unwrap_or(0),
            last_used_at: last_used.as_deref().and_then(parse_sqlite_datetime),
        }))
    }

    /// Save `registration`, replacing any earlier one of the user (one TOTP per user, as in
    /// Authelia's `REPLACE INTO`).
    pub fn save_totp(
        &self,
        registration: &TotpRegistration,
        rng: &mut impl Rng,
    ) -> Result<(), SecondFactorError> {
        let location = Location::Row {
            table: "totp_configurations",
            column: "secret",
            row: &registration.username,
        };
        let sealed = self.cipher.seal(
            rng.random(),
            registration.secret.to_base32().as_bytes(),
            location,
        );
        self.conn()
            .execute(
                "REPLACE INTO totp_configurations
                 (created_at, last_used_at, username, issuer, algorithm, digits, period, secret)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    sqlite_datetime(registration.created_at),
                    registration.last_used_at.map(sqlite_datetime),
                    registration.username,
                    registration.issuer,
                    registration.parameters.algorithm.as_str(),
                    registration.parameters.digits.get(),
                    registration.parameters.period.get(),
                    sealed,
                ],
            )
            .map_err(storage)?;
        Ok(())
    }

    /// Remove `user`'s TOTP registration; true when there was one.
    pub fn delete_totp(&self, username: &str) -> Result<bool, SecondFactorError> {
        let n = self
            .conn()
            .execute(
                "DELETE FROM totp_configurations WHERE username = ?1",
                params![username],
            )
            .map_err(storage)?;
        Ok(n > 0)
    }

    /// Note a sign-in with `user`'s TOTP at `now`.
    pub fn touch_totp(&self, username: &str, now: i64) -> Result<(), SecondFactorError> {
        self.conn()
            .execute(
                "UPDATE totp_configurations SET last_used_at = ?1 WHERE username = ?2",
                params![sqlite_datetime(now), username],
            )
            .map_err(storage)?;
        Ok(())
    }

    /// Record that `user` used the TOTP window starting at `window_start`: true the first time,
    /// false when it was used before (a replay). One atomic insert, so two requests racing with
    /// the same code cannot both be first.
    pub fn record_totp_window(
        &self,
        username: &str,
        window_start: u64,
        now: i64,
    ) -> Result<bool, SecondFactorError> {
        let signature =
            crate::signature::totp_history_signature(&self.otp_key.0, window_start, username);
        let n = self
            .conn()
            .execute(
                "INSERT OR IGNORE INTO totp_history (created_at, username, step) VALUES (?1, ?2, ?3)",
                params![sqlite_datetime(now), username, signature],
            )
            .map_err(storage)?;
        Ok(n == 1)
    }

    /// Whether `user` used the window starting at `window_start` before.
    pub fn totp_window_used(
        &self,
        username: &str,
        window_start: u64,
    ) -> Result<bool, SecondFactorError> {
        let signature =
            crate::signature::totp_history_signature(&self.otp_key.0, window_start, username);
        self.conn()
            .query_row(
                "SELECT 1 FROM totp_history WHERE username = ?1 AND step = ?2",
                params![username, signature],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(storage)
    }

    /// Every TOTP registration, by username (for `portcullis storage user totp export`). A row
    /// that does not decrypt is an error, as for one user.
    pub fn totp_registrations(&self) -> Result<Vec<TotpRegistration>, SecondFactorError> {
        let names: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare("SELECT username FROM totp_configurations ORDER BY username")
                .map_err(storage)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(storage)?;
            rows.collect::<Result<_, _>>().map_err(storage)?
        };
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some(r) = self.totp(&name)? {
                out.push(r);
            }
        }
        Ok(out)
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

    /// `user`'s preferred second-factor method (`totp`, `webauthn`, `mobile_push`, or empty).
    pub fn preferred_method(&self, username: &str) -> Result<Option<String>, SecondFactorError> {
        self.conn()
            .query_row(
                "SELECT second_factor_method FROM user_preferences WHERE username = ?1",
                params![username],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage)
    }

    /// Save `user`'s preferred method.
    pub fn set_preferred_method(
        &self,
        username: &str,
        method: &str,
    ) -> Result<(), SecondFactorError> {
        self.conn()
            .execute(
                "REPLACE INTO user_preferences (username, second_factor_method) VALUES (?1, ?2)",
                params![username, method],
            )
            .map_err(storage)?;
        Ok(())
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

    /// Record an identity-verification token (the `jti` of a password-reset link).
    #[allow(clippy::too_many_arguments)]
    pub fn save_identity_verification(
        &self,
        jti: &str,
        username: &str,
        action: &str,
        ip: IpAddr,
        issued: i64,
        expires: i64,
    ) -> Result<(), SecondFactorError> {
        self.conn()
            .execute(
                "INSERT INTO identity_verification (jti, iat, issued_ip, exp, username, action)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    jti,
                    sqlite_datetime(issued),
                    ip.to_string(),
                    sqlite_datetime(expires),
                    username,
                    action
                ],
            )
            .map_err(storage)?;
        Ok(())
    }

    /// Use the token `jti` of `username` for `action` from `ip` at `now`: consumed exactly once.
    pub fn consume_identity_verification(
        &self,
        jti: &str,
        username: &str,
        action: &str,
        ip: IpAddr,
        now: i64,
    ) -> Result<TokenUse, SecondFactorError> {
        let conn = self.conn();
        let row: Option<(Option<String>, Option<String>)> = conn
            .query_row(
                "SELECT CAST(consumed AS TEXT), CAST(revoked AS TEXT) FROM identity_verification
                 WHERE jti = ?1 AND username = ?2 AND action = ?3",
                params![jti, username, action],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(storage)?;
        match row {
            None => Ok(TokenUse::Unknown),
            Some((_, Some(_))) => Ok(TokenUse::Revoked),
            Some((Some(_), None)) => Ok(TokenUse::AlreadyUsed),
            Some((None, None)) => {
                let n = conn
                    .execute(
                        "UPDATE identity_verification SET consumed = ?1, consumed_ip = ?2
                         WHERE jti = ?3 AND consumed IS NULL AND revoked IS NULL",
                        params![sqlite_datetime(now), ip.to_string(), jti],
                    )
                    .map_err(storage)?;
                Ok(if n == 1 {
                    TokenUse::Consumed
                } else {
                    TokenUse::AlreadyUsed
                })
            }
        }
    }

    /// Revoke the unused token `jti` (from `ip`, at `now`); true when it was revoked now.
    pub fn revoke_identity_verification(
        &self,
        jti: &str,
        ip: IpAddr,
        now: i64,
    ) -> Result<bool, SecondFactorError> {
        let n = self
            .conn()
            .execute(
                "UPDATE identity_verification SET revoked = ?1, revoked_ip = ?2
                 WHERE jti = ?3 AND consumed IS NULL AND revoked IS NULL",
                params![sqlite_datetime(now), ip.to_string(), jti],
            )
            .map_err(storage)?;
        Ok(n == 1)
    }

    /// Store a fresh one-time code for `user`, issued from `ip` for `intent`, valid until
    /// `expires`; the code itself is kept encrypted and looked up by its signature. Returns its
    /// public id.
    #[allow(clippy::too_many_arguments)]
    pub fn save_one_time_code(
        &self,
        username: &str,
        ip: IpAddr,
        intent: &str,
        code: &str,
        now: i64,
        expires: i64,
        rng: &mut impl Rng,
    ) -> Result<[u8; 16], SecondFactorError> {
        let signature =
            crate::signature::one_time_code_signature(&self.otc_key.0, username, ip, intent, code);
        let public_id = random_uuid(rng);
        let location = Location::Row {
            table: "one_time_code",
            column: "code",
            row: &signature,
        };
        let sealed = self.cipher.seal(rng.random(), code.as_bytes(), location);
        self.conn()
            .execute(
                "INSERT INTO one_time_code
                 (public_id, signature, issued, issued_ip, expires, username, intent, code)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    uuid_text(public_id),
                    signature,
                    sqlite_datetime(now),
                    ip.to_string(),
                    sqlite_datetime(expires),
                    username,
                    intent,
                    sealed
                ],
            )
            .map_err(storage)?;
        Ok(public_id)
    }

    /// Use the code `code` typed by `user` from `ip` for `intent` at `now`: true when it was
    /// issued to that user, from that address, for that intent, and is unexpired, unrevoked and
    /// unused — then it is marked used. Everything else is false.
    pub fn consume_one_time_code(
        &self,
        username: &str,
        ip: IpAddr,
        intent: &str,
        code: &str,
        now: i64,
    ) -> Result<bool, SecondFactorError> {
        let signature =
            crate::signature::one_time_code_signature(&self.otc_key.0, username, ip, intent, code);
        let conn = self.conn();
        let row: Option<CodeRow<i64>> = conn
            .query_row(
                "SELECT id, expires, intent, consumed, revoked FROM one_time_code
                 WHERE signature = ?1 AND username = ?2",
                params![signature, username],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
            .map_err(storage)?;
        let Some((id, expires, stored_intent, consumed, revoked)) = row else {
            return Ok(false);
        };
        let unexpired = parse_sqlite_datetime(&expires).is_some_and(|e| now < e);
        if !unexpired || stored_intent != intent || consumed.is_some() || revoked.is_some() {
            return Ok(false);
        }
        // Only one request can flip `consumed` from NULL.
        let n = conn
            .execute(
                "UPDATE one_time_code SET consumed = ?1, consumed_ip = ?2
                 WHERE id = ?3 AND consumed IS NULL AND revoked IS NULL",
                params![sqlite_datetime(now), ip.to_string(), id],
            )
            .map_err(storage)?;
        Ok(n == 1)
    }

    /// Revoke the pending code with `public_id` (from `ip`, at `now`): true when a pending code
    /// was revoked; false for an unknown, used or already revoked one.
    pub fn revoke_one_time_code(
        &self,
        public_id: [u8; 16],
        ip: IpAddr,
        now: i64,
    ) -> Result<bool, SecondFactorError> {
        let n = self
            .conn()
            .execute(
                "UPDATE one_time_code SET revoked = ?1, revoked_ip = ?2
                 WHERE public_id = ?3 AND consumed IS NULL AND revoked IS NULL",
                params![sqlite_datetime(now), ip.to_string(), uuid_text(public_id)],
            )
            .map_err(storage)?;
        Ok(n == 1)
    }

    /// The stored state of the code with `public_id`.
    pub fn one_time_code(
        &self,
        public_id: [u8; 16],
    ) -> Result<Option<StoredCode>, SecondFactorError> {
        let row: Option<CodeRow<String>> = self
            .conn()
            .query_row(
                "SELECT public_id, expires, intent, consumed, revoked FROM one_time_code WHERE public_id = ?1",
                params![uuid_text(public_id)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
            .map_err(storage)?;
        Ok(row.and_then(|(id, expires, intent, consumed, revoked)| {
            Some(StoredCode {
                public_id: parse_uuid(&id)?,
                expires: parse_sqlite_datetime(&expires)?,
                intent,
                consumed: consumed.is_some(),
                revoked: revoked.is_some(),
            })
        }))
    }
}

#[cfg(test)]
mod tests;
