//! One-time codes (`one_time_code`) and identity-verification tokens (`identity_verification`):
//! stored by signature or id, used once, revocable.

use std::net::IpAddr;

use rand::Rng;
use rusqlite::{OptionalExtension, params};

use super::{
    CodeRow, SecondFactorStore, StoredCode, TokenUse, parse_uuid, random_uuid, storage, uuid_text,
};
use crate::SecondFactorError;
use crate::datetime::{parse_sqlite_datetime, sqlite_datetime};
use crate::encryption::Location;

impl SecondFactorStore {
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
