//! Password change and reset settings (docs/reference/second-factor.md §3.1, §3.4, §7 items 12
//! and 13): `authentication_backend.password_change` / `password_reset`,
//! `identity_validation.reset_password` and `password_policy`.

use portcullis_config::ConfigError;
use portcullis_core::Secret;
use serde::Deserialize;

use super::raw::{RawDuration, RawSecret};
use super::validate::Validator;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResetPassword {
    pub jwt_lifespan: Option<RawDuration>,
    pub jwt_algorithm: Option<String>,
    pub jwt_secret: Option<RawSecret>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPasswordReset {
    pub disable: Option<bool>,
    pub custom_url: Option<String>,
}

/// `identity_validation.reset_password`, validated: password reset is on.
#[derive(Debug, Clone)]
pub struct ResetConfig {
    /// Seconds a reset link stays valid.
    pub lifespan: u64,
    /// `HS256`, `HS384` or `HS512`.
    pub algorithm: String,
    /// The signing secret.
    pub secret: Secret,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPasswordChange {
    pub disable: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPasswordPolicy {
    pub standard: Option<RawStandardPolicy>,
    pub zxcvbn: Option<RawZxcvbnPolicy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStandardPolicy {
    pub enabled: Option<bool>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub require_uppercase: Option<bool>,
    pub require_lowercase: Option<bool>,
    pub require_number: Option<bool>,
    pub require_special: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawZxcvbnPolicy {
    pub enabled: Option<bool>,
    pub min_score: Option<i64>,
}

/// `password_policy.standard`, validated (Authelia's rules; empty when it is off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PasswordPolicy {
    /// Shortest length (characters); 0 when the policy is off (a password is still never empty).
    pub min_length: usize,
    /// Longest length; 0: no limit.
    pub max_length: usize,
    /// An upper-case letter.
    pub require_uppercase: bool,
    /// A lower-case letter.
    pub require_lowercase: bool,
    /// A digit.
    pub require_number: bool,
    /// Something else.
    pub require_special: bool,
    /// `password_policy.zxcvbn`: the lowest zxcvbn score (0–4) accepted, when it is on.
    pub zxcvbn_min_score: Option<u8>,
}

impl PasswordPolicy {
    /// Whether `password` meets the policy (never when it is empty).
    pub fn accepts(&self, password: &str) -> bool {
        let length = password.chars().count();
        length > 0
            && length >= self.min_length
            && (self.max_length == 0 || length <= self.max_length)
            && (!self.require_uppercase || password.chars().any(char::is_uppercase))
            && (!self.require_lowercase || password.chars().any(char::is_lowercase))
            && (!self.require_number || password.chars().any(|c| c.is_ascii_digit()))
            && (!self.require_special || password.chars().any(|c| !c.is_alphanumeric()))
            && self
                .zxcvbn_min_score
                .is_none_or(|min| u8::from(zxcvbn::zxcvbn(password, &[]).score()) >= min)
    }

    /// `standard`, `zxcvbn` or `disabled`, as `/api/configuration/password-policy` names it.
    pub fn mode(&self) -> &'static str {
        if self.zxcvbn_min_score.is_some() {
            "zxcvbn"
        } else if self.min_length > 0 {
            "standard"
        } else {
            "disabled"
        }
    }
}

impl Validator<'_> {
    /// Password reset: on when `jwt_secret` is set and neither `disable` nor `custom_url` is.
    pub(super) fn reset(
        &mut self,
        reset_password: Option<&RawResetPassword>,
        backend: Option<RawPasswordReset>,
    ) -> Result<Option<ResetConfig>, ConfigError> {
        let reset_backend = backend.unwrap_or_default();
        let reset_disabled = reset_backend.disable.unwrap_or(false);
        let reset = match (reset_password, reset_disabled) {
            (_, true) => None,
            (None, false) => None,
            (Some(r), false) => {
                const K: &str = "identity_validation.reset_password";
                let algorithm = r
                    .jwt_algorithm
                    .clone()
                    .unwrap_or_else(|| "HS256".to_owned());
                if !matches!(algorithm.as_str(), "HS256" | "HS384" | "HS512") {
                    return Err(self.error(
                        &format!("{K}.jwt_algorithm"),
                        format!("{algorithm:?} must be HS256, HS384 or HS512"),
                    ));
                }
                let lifespan = self.duration(&format!("{K}.jwt_lifespan"), &r.jwt_lifespan, 300)?;
                match r.jwt_secret.as_ref().filter(|s| !s.0.is_empty()) {
                    Some(secret) => Some(ResetConfig {
                        lifespan: lifespan.max(1),
                        algorithm,
                        secret: Secret::new(secret.0.clone()),
                    }),
                    None => {
                        self.warn(
                            &format!("{K}.jwt_secret"),
                            "is not set: password reset is off",
                        );
                        None
                    }
                }
            }
        };
        let reset = match (
            reset,
            reset_backend
                .custom_url
                .as_deref()
                .filter(|u| !u.is_empty()),
        ) {
            (Some(_), Some(_)) => {
                self.warn(
                    "authentication_backend.password_reset.custom_url",
                    "is set: the portal links to it and offers no reset of its own",
                );
                None
            }
            (reset, _) => reset,
        };
        Ok(reset)
    }

    /// `password_policy`: `standard` or `zxcvbn` (at most one), with Authelia's defaults.
    pub(super) fn password_policy(
        &mut self,
        raw: Option<RawPasswordPolicy>,
    ) -> Result<PasswordPolicy, ConfigError> {
        let policy = raw.unwrap_or_default();
        let zxcvbn = policy.zxcvbn.as_ref().filter(|z| z.enabled == Some(true));
        let standard_on = policy
            .standard
            .as_ref()
            .is_some_and(|s| s.enabled == Some(true));
        if let Some(z) = zxcvbn {
            if standard_on {
                return Err(self.error(
                    "password_policy",
                    "only one of standard and zxcvbn may be enabled",
                ));
            }
            let min_score = match z.min_score {
                None | Some(0) => 3,
                Some(n @ 1..=4) => u8::try_from(n).unwrap_or(3),
                Some(n) => {
                    return Err(self.error(
                        "password_policy.zxcvbn.min_score",
                        format!("must be between 1 and 4, not {n}"),
                    ));
                }
            };
            return Ok(PasswordPolicy {
                zxcvbn_min_score: Some(min_score),
                ..PasswordPolicy::default()
            });
        }
        let password_policy = match policy.standard {
            Some(s) if s.enabled == Some(true) => {
                let min_length = s.min_length.unwrap_or(8);
                let max_length = s.max_length.unwrap_or(0);
                if max_length != 0 && max_length < min_length {
                    return Err(self.error(
                        "password_policy.standard.max_length",
                        format!("{max_length} is shorter than min_length {min_length}"),
                    ));
                }
                PasswordPolicy {
                    min_length,
                    max_length,
                    require_uppercase: s.require_uppercase.unwrap_or(false),
                    require_lowercase: s.require_lowercase.unwrap_or(false),
                    require_number: s.require_number.unwrap_or(false),
                    require_special: s.require_special.unwrap_or(false),
                    zxcvbn_min_score: None,
                }
            }
            _ => PasswordPolicy::default(),
        };
        Ok(password_policy)
    }
}
