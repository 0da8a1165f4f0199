//! Password resets and changes (docs/reference/ldap.md §5.3 and §5.7 item 11): `unicodePwd` for
//! Active Directory, the Password Modify operation when advertised, `userPassword` as the last
//! resort, the policy hints control when the directory lists it, and the write sent to the server
//! that holds the entry.

use std::collections::HashSet;

use ldap3::controls::RawControl;
use ldap3::exop::PasswordModify;
use ldap3::{Ldap, LdapResult, Mod};

use super::{Implementation, LdapDirectory, LdapError, Referral, rc, unavailable};

/// Active Directory's password policy hints control (`LDAP_SERVER_POLICY_HINTS_OID`), and the
/// OID older domain controllers know it by: with it, a password set by the service account
/// obeys the password history as a change by the user would.
pub(super) const POLICY_HINTS_OIDS: [&str; 2] =
    ["1.2.840.113556.1.4.2239", "1.2.840.113556.1.4.2066"];

/// The control's value: `PolicyHintsRequestValue ::= SEQUENCE { Flags INTEGER }` with flags 1
/// (enforce the policy), in BER.
const POLICY_HINTS_VALUE: [u8; 5] = [0x30, 0x03, 0x02, 0x01, 0x01];

/// A password change as sent: repeated as-is on the server a referral names.
#[derive(Clone, Copy)]
enum PasswordWrite<'a> {
    UnicodePwd { hints: Option<&'static str> },
    PasswordModify { old: Option<&'a str> },
    UserPassword { hints: Option<&'static str> },
}

impl LdapDirectory {
    /// Set the password of the user at `dn`: a reset by the service account (`old` is `None`)
    /// or a change after the old password binds.
    pub async fn set_password(
        &self,
        dn: &str,
        old: Option<&str>,
        new: &str,
    ) -> Result<(), LdapError> {
        if new.is_empty() {
            return Err(LdapError::PasswordRefused("empty".into()));
        }
        if let Some(old) = old {
            if old == new {
                return Err(LdapError::PasswordRefused(
                    "the new password is the old one".into(),
                ));
            }
            self.bind_as(dn, old).await?;
        }
        let discovery = self.discovery().await?;
        let write = if self.config.implementation == Implementation::ActiveDirectory {
            PasswordWrite::UnicodePwd {
                hints: discovery.policy_hints,
            }
        } else if discovery.password_modify {
            PasswordWrite::PasswordModify { old }
        } else {
            PasswordWrite::UserPassword {
                hints: discovery.policy_hints,
            }
        };
        let home = self.home_of(dn);
        let result = if home == self.config.url {
            let (slot, mut ldap) = self.service().await?;
            match self.write_password(&mut ldap, dn, new, write).await {
                Ok(result) => result,
                Err(e) => {
                    self.drop_service(slot).await;
                    return Err(e);
                }
            }
        } else {
            // Found through a referral: the change goes to the server that holds the entry
            // (slapd does not refer a password change beneath a referral object).
            self.write_referred(
                &Referral {
                    address: home,
                    dn: None,
                },
                dn,
                new,
                write,
            )
            .await?
        };
        let result = match (result.rc, self.followable(&result.refs)) {
            // The entry is held by another server: the same change is sent there, once.
            (rc::REFERRAL, Some(referral)) => {
                tracing::debug!(address = %referral.address, "following a password change referral");
                self.write_referred(&referral, dn, new, write).await?
            }
            _ => result,
        };
        match result.rc {
            rc::SUCCESS => Ok(()),
            // Constraint violation, object class violation, unwilling to perform: a weak or
            // refused password (docs/reference/ldap.md §5.4).
            code @ (rc::CONSTRAINT_VIOLATION
            | rc::UNWILLING_TO_PERFORM
            | rc::OBJECT_CLASS_VIOLATION) => Err(LdapError::PasswordRefused(format!(
                "result {code}: {}",
                result.text
            ))),
            rc::INVALID_CREDENTIALS | rc::INAPPROPRIATE_AUTHENTICATION => {
                Err(LdapError::InvalidCredentials)
            }
            code => Err(LdapError::Protocol(format!(
                "result {code}: {}",
                result.text
            ))),
        }
    }

    /// Send one password change on a fresh service connection to the server `referral` names.
    async fn write_referred(
        &self,
        referral: &Referral,
        dn: &str,
        new: &str,
        write: PasswordWrite<'_>,
    ) -> Result<LdapResult, LdapError> {
        let mut referred = self.referred(referral).await?;
        let result = self.write_password(&mut referred, dn, new, write).await;
        let _ = referred.unbind().await;
        result
    }

    /// Send one password change on `ldap`, bounded by the timeout.
    async fn write_password(
        &self,
        ldap: &mut Ldap,
        dn: &str,
        new: &str,
        write: PasswordWrite<'_>,
    ) -> Result<LdapResult, LdapError> {
        let with_hints = |ldap: &mut Ldap, hints: Option<&'static str>| {
            if let Some(oid) = hints {
                ldap.with_controls(vec![RawControl {
                    ctype: oid.to_owned(),
                    crit: true,
                    val: Some(POLICY_HINTS_VALUE.to_vec()),
                }]);
            }
        };
        let timeout = self.config.timeout;
        let answer = match write {
            PasswordWrite::UnicodePwd { hints } => {
                with_hints(ldap, hints);
                let mods = vec![Mod::Replace(
                    b"unicodePwd".to_vec(),
                    HashSet::from([unicode_pwd(new)]),
                )];
                tokio::time::timeout(timeout, ldap.modify(dn, mods)).await
            }
            PasswordWrite::PasswordModify { old } => {
                let exop = PasswordModify {
                    user_id: Some(dn),
                    old_pass: old,
                    new_pass: Some(new),
                };
                tokio::time::timeout(timeout, ldap.extended(exop))
                    .await
                    .map(|r| r.map(|e| e.1))
            }
            PasswordWrite::UserPassword { hints } => {
                with_hints(ldap, hints);
                let mods = vec![Mod::Replace(
                    b"userPassword".to_vec(),
                    HashSet::from([new.as_bytes().to_vec()]),
                )];
                tokio::time::timeout(timeout, ldap.modify(dn, mods)).await
            }
        };
        answer
            .map_err(|_| unavailable("the password change timed out"))?
            .map_err(unavailable)
    }
}

/// The value Active Directory's `unicodePwd` takes: the password in double quotes, UTF-16LE.
fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_pwd_is_the_quoted_password_in_utf16le() {
        // MS-ADTS 3.1.1.3.1.5.1: the value is the UTF-16LE encoding of the quoted password.
        assert_eq!(
            unicode_pwd("aé"),
            vec![0x22, 0x00, 0x61, 0x00, 0xE9, 0x00, 0x22, 0x00]
        );
    }
}
