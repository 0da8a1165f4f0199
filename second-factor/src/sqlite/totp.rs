//! TOTP registrations, the used-window history and the preferred method, in Authelia's
//! `totp_configurations`, `totp_history` and `user_preferences`.

use rand::Rng;
use rusqlite::{OptionalExtension, params};

use super::{SecondFactorStore, TotpRegistration, storage};
use crate::SecondFactorError;
use crate::datetime::{parse_sqlite_datetime, sqlite_datetime};
use crate::encryption::Location;
use crate::totp::{Algorithm, Digits, Period, TotpParameters, TotpSecret};

impl SecondFactorStore {
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
}
