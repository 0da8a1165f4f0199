//! The second-factor sections (docs/reference/second-factor.md §1.1, §3.1, §3.3): `totp`,
//! `identity_validation.elevated_session`, `notifier`, `storage.encryption_key` and
//! `default_2fa_method`, with Authelia's defaults and rules. Where Authelia refuses to start
//! because a key is missing, Portcullis starts with the feature that needs it off and one
//! warning naming the key.

use portcullis_config::ConfigError;
use portcullis_core::Secret;
use portcullis_second_factor::encryption::MINIMUM_KEY_LENGTH;
use portcullis_second_factor::totp::{Algorithm, Digits, Period, TotpParameters};
use serde::Deserialize;

use portcullis_auth::rate_limit::Bucket;

use super::notifier::{NotifierConfig, RawNotifier};
use super::passwords::{
    PasswordPolicy, RawPasswordChange, RawPasswordPolicy, RawPasswordReset, RawResetPassword,
    ResetConfig,
};
use super::raw::{RawDuration, RawRateLimits, RawSecret};
use super::validate::Validator;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTotp {
    pub disable: Option<bool>,
    pub issuer: Option<String>,
    pub algorithm: Option<String>,
    pub digits: Option<u32>,
    pub period: Option<u64>,
    pub skew: Option<u32>,
    pub secret_size: Option<usize>,
    pub allowed_algorithms: Option<Vec<String>>,
    pub allowed_digits: Option<Vec<u32>>,
    pub allowed_periods: Option<Vec<u64>>,
    pub disable_reuse_security_policy: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIdentityValidation {
    pub elevated_session: Option<RawElevatedSession>,
    pub reset_password: Option<RawResetPassword>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawElevatedSession {
    pub code_lifespan: Option<RawDuration>,
    pub elevation_lifespan: Option<RawDuration>,
    pub characters: Option<usize>,
    pub require_second_factor: Option<bool>,
    pub skip_second_factor: Option<bool>,
}

/// `totp`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpConfig {
    /// The issuer written into new registrations.
    pub issuer: String,
    /// The parameters offered by default.
    pub default: TotpParameters,
    /// Steps either side of the current one.
    pub skew: u32,
    /// Bytes of a generated secret.
    pub secret_size: usize,
    /// What a user may choose at registration (the default always included).
    pub allowed_algorithms: Vec<Algorithm>,
    /// Allowed digits.
    pub allowed_digits: Vec<Digits>,
    /// Allowed periods.
    pub allowed_periods: Vec<Period>,
    /// A replayed code is refused (false: only logged).
    pub reuse_protection: bool,
}

/// `identity_validation.elevated_session`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElevationConfig {
    /// Seconds a one-time code stays valid.
    pub code_lifespan: u64,
    /// Seconds an elevation lasts.
    pub elevation_lifespan: u64,
    /// Characters of a code.
    pub characters: usize,
    /// A user with a second factor must use it before elevating.
    pub require_second_factor: bool,
    /// A session at two factors counts as elevated.
    pub skip_second_factor: bool,
}

impl Default for ElevationConfig {
    fn default() -> Self {
        Self {
            code_lifespan: 5 * 60,
            elevation_lifespan: 10 * 60,
            characters: 8,
            require_second_factor: false,
            skip_second_factor: false,
        }
    }
}

/// Everything the second factors need, validated.
#[derive(Debug, Clone)]
pub struct SecondFactorConfig {
    /// TOTP, unless disabled or impossible (no encryption key).
    pub totp: Option<TotpConfig>,
    /// WebAuthn, unless disabled or impossible (no encryption key).
    pub webauthn: Option<super::webauthn::WebAuthnConfig>,
    /// `storage.encryption_key`.
    pub encryption_key: Option<Secret>,
    /// Session elevation.
    pub elevation: ElevationConfig,
    /// The notifier, if one is configured.
    pub notifier: Option<NotifierConfig>,
    /// Check the notifier at start.
    pub notifier_startup_check: bool,
    /// `default_2fa_method`.
    pub default_method: Option<String>,
    /// Users may change their password (`authentication_backend.password_change.disable` unset).
    pub password_change: bool,
    /// Password reset, when it is on.
    pub reset: Option<ResetConfig>,
    /// `…reset_password_start`.
    pub reset_start_limit: Vec<Bucket>,
    /// `…reset_password_finish`.
    pub reset_finish_limit: Vec<Bucket>,
    /// `password_policy.standard`.
    pub password_policy: PasswordPolicy,
    /// `server.endpoints.rate_limits.second_factor_totp`.
    pub totp_limit: Vec<Bucket>,
    /// `…session_elevation_start`.
    pub elevation_start_limit: Vec<Bucket>,
    /// `…session_elevation_finish`.
    pub elevation_finish_limit: Vec<Bucket>,
}

impl SecondFactorConfig {
    /// True when identity verification (elevation codes) can be sent.
    pub fn can_elevate(&self) -> bool {
        self.notifier.is_some()
    }
}

pub(super) struct RawSecondFactor {
    pub totp: Option<RawTotp>,
    pub identity_validation: Option<RawIdentityValidation>,
    pub notifier: Option<RawNotifier>,
    pub encryption_key: Option<RawSecret>,
    pub default_2fa_method: Option<String>,
    pub webauthn: Option<super::webauthn::RawWebAuthn>,
    pub certificates_directory: Option<String>,
    pub password_change: Option<RawPasswordChange>,
    pub password_policy: Option<RawPasswordPolicy>,
    pub password_reset: Option<RawPasswordReset>,
}

impl Validator<'_> {
    fn totp(&mut self, raw: &RawTotp) -> Result<TotpConfig, ConfigError> {
        let issuer = raw
            .issuer
            .clone()
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| "Authelia".to_owned());
        let algorithm = match &raw.algorithm {
            None => Algorithm::Sha1,
            Some(a) => {
                Algorithm::parse(a).map_err(|e| self.error("totp.algorithm", e.to_string()))?
            }
        };
        let digits = Digits::new(raw.digits.unwrap_or(6))
            .map_err(|e| self.error("totp.digits", e.to_string()))?;
        let period = Period::new(raw.period.unwrap_or(30))
            .map_err(|e| self.error("totp.period", e.to_string()))?;
        let secret_size = match raw.secret_size {
            None | Some(0) => 32,
            Some(n) if n < 20 => {
                return Err(self.error(
                    "totp.secret_size",
                    format!("{n} bytes is below the minimum of 20"),
                ));
            }
            Some(n) => n,
        };
        let mut allowed_algorithms = Vec::new();
        for a in raw.allowed_algorithms.iter().flatten() {
            let parsed = Algorithm::parse(a)
                .map_err(|e| self.error("totp.allowed_algorithms", e.to_string()))?;
            if !allowed_algorithms.contains(&parsed) {
                allowed_algorithms.push(parsed);
            }
        }
        if !allowed_algorithms.contains(&algorithm) {
            allowed_algorithms.push(algorithm);
        }
        let mut allowed_digits = Vec::new();
        for d in raw.allowed_digits.iter().flatten() {
            let parsed =
                Digits::new(*d).map_err(|e| self.error("totp.allowed_digits", e.to_string()))?;
            if !allowed_digits.contains(&parsed) {
                allowed_digits.push(parsed);
            }
        }
        if !allowed_digits.contains(&digits) {
            allowed_digits.push(digits);
        }
        let mut allowed_periods = Vec::new();
        for p in raw.allowed_periods.iter().flatten() {
            let parsed =
                Period::new(*p).map_err(|e| self.error("totp.allowed_periods", e.to_string()))?;
            if !allowed_periods.contains(&parsed) {
                allowed_periods.push(parsed);
            }
        }
        if !allowed_periods.contains(&period) {
            allowed_periods.push(period);
        }
        Ok(TotpConfig {
            issuer,
            default: TotpParameters {
                algorithm,
                digits,
                period,
            },
            skew: raw.skew.unwrap_or(1),
            secret_size,
            allowed_algorithms,
            allowed_digits,
            allowed_periods,
            reuse_protection: !raw.disable_reuse_security_policy.unwrap_or(false),
        })
    }

    fn elevation(&self, raw: Option<&RawElevatedSession>) -> Result<ElevationConfig, ConfigError> {
        let defaults = ElevationConfig::default();
        let Some(raw) = raw else {
            return Ok(defaults);
        };
        let key = "identity_validation.elevated_session";
        let code_lifespan = self.duration(
            &format!("{key}.code_lifespan"),
            &raw.code_lifespan,
            defaults.code_lifespan,
        )?;
        let elevation_lifespan = self.duration(
            &format!("{key}.elevation_lifespan"),
            &raw.elevation_lifespan,
            defaults.elevation_lifespan,
        )?;
        let characters = match raw.characters {
            None | Some(0) => defaults.characters,
            Some(n) if n > 20 => {
                return Err(self.error(
                    &format!("{key}.characters"),
                    format!("{n} characters is more than the maximum of 20"),
                ));
            }
            Some(n) => n,
        };
        if code_lifespan == 0 || elevation_lifespan == 0 {
            return Err(self.error(key, "lifespans must be longer than zero"));
        }
        Ok(ElevationConfig {
            code_lifespan,
            elevation_lifespan,
            characters,
            require_second_factor: raw.require_second_factor.unwrap_or(false),
            skip_second_factor: raw.skip_second_factor.unwrap_or(false),
        })
    }

    pub(super) fn second_factor(
        &mut self,
        raw: RawSecondFactor,
        encryption_key_file: Option<Secret>,
        smtp_password_file: Option<Secret>,
        limits: Option<&RawRateLimits>,
    ) -> Result<SecondFactorConfig, ConfigError> {
        let roots = match raw.certificates_directory.as_deref() {
            None => Vec::new(),
            Some(dir) => self.certificate_files(dir)?,
        };
        let encryption_key = match (encryption_key_file, &raw.encryption_key) {
            (Some(from_file), _) => Some(from_file),
            (None, Some(value)) => Some(Secret::new(value.0.clone())),
            (None, None) => None,
        };
        if let Some(key) = &encryption_key {
            let length = key.expose().chars().count();
            if length < MINIMUM_KEY_LENGTH {
                return Err(self.error(
                    "storage.encryption_key",
                    format!("must be at least {MINIMUM_KEY_LENGTH} characters, not {length}"),
                ));
            }
        }
        let totp_disabled = raw.totp.as_ref().and_then(|t| t.disable).unwrap_or(false);
        let totp = match (&raw.totp, totp_disabled) {
            (_, true) => None,
            (Some(t), false) => Some(self.totp(t)?),
            (None, false) => Some(self.totp(&RawTotp::default())?),
        };
        let totp = match (totp, &encryption_key) {
            (Some(t), Some(_)) => Some(t),
            (Some(_), None) => {
                if raw.totp.is_some() {
                    self.warn(
                        "storage.encryption_key",
                        "is not set: second factors are off (TOTP secrets are stored encrypted with it), so two_factor rules cannot be satisfied",
                    );
                }
                None
            }
            (None, _) => None,
        };
        let webauthn = match (self.webauthn(raw.webauthn.as_ref())?, &encryption_key) {
            (Some(w), Some(_)) => Some(w),
            (Some(_), None) => {
                if raw.webauthn.is_some() {
                    self.warn(
                        "storage.encryption_key",
                        "is not set: WebAuthn is off (credential keys are stored encrypted with it)",
                    );
                }
                None
            }
            (None, _) => None,
        };
        let identity = raw.identity_validation.unwrap_or_default();
        let reset = self.reset(identity.reset_password.as_ref(), raw.password_reset)?;
        let elevation = self.elevation(identity.elevated_session.as_ref())?;
        let (notifier, notifier_startup_check) = match &raw.notifier {
            Some(n) => (
                self.notifier(n, smtp_password_file, &roots)?,
                !n.disable_startup_check.unwrap_or(false),
            ),
            None => (None, true),
        };
        if totp.is_some() && notifier.is_none() && raw.totp.is_some() {
            self.warn(
                "notifier",
                "is not set: no one-time codes can be sent, so sessions cannot be elevated and no new TOTP device can be registered",
            );
        }
        let default_method = match raw.default_2fa_method.as_deref() {
            None | Some("") => None,
            Some("totp") => Some("totp".to_owned()),
            Some("webauthn") if webauthn.is_some() => Some("webauthn".to_owned()),
            Some(m @ ("webauthn" | "mobile_push")) => {
                self.warn(
                    "default_2fa_method",
                    format!("{m:?} is not available in Portcullis; ignored"),
                );
                None
            }
            Some(other) => {
                return Err(self.error(
                    "default_2fa_method",
                    format!("unknown method {other:?}: use totp, webauthn or mobile_push"),
                ));
            }
        };
        let bucket = |period, requests| Bucket { period, requests };
        let totp_limit = self.rate_limit_or(
            "second_factor_totp",
            limits.and_then(|l| l.second_factor_totp.as_ref()),
            &[bucket(60, 30), bucket(120, 40), bucket(600, 50)],
        )?;
        // Weighted by the lifespans, as Authelia's defaults are.
        let code = elevation.code_lifespan;
        let elevation_start_limit = self.rate_limit_or(
            "session_elevation_start",
            limits.and_then(|l| l.session_elevation_start.as_ref()),
            &[bucket(code, 3), bucket(code * 2, 5), bucket(code * 12, 15)],
        )?;
        let lasting = elevation.elevation_lifespan;
        let elevation_finish_limit = self.rate_limit_or(
            "session_elevation_finish",
            limits.and_then(|l| l.session_elevation_finish.as_ref()),
            &[
                bucket(lasting, 3),
                bucket(lasting * 2, 5),
                bucket(lasting * 6, 15),
            ],
        )?;
        let password_policy = self.password_policy(raw.password_policy)?;
        let reset_start_limit = self.rate_limit_or(
            "reset_password_start",
            limits.and_then(|l| l.reset_password_start.as_ref()),
            &[bucket(600, 5), bucket(900, 10), bucket(1800, 15)],
        )?;
        let reset_finish_limit = self.rate_limit_or(
            "reset_password_finish",
            limits.and_then(|l| l.reset_password_finish.as_ref()),
            &[bucket(60, 10), bucket(120, 15)],
        )?;
        Ok(SecondFactorConfig {
            webauthn,
            reset,
            reset_start_limit,
            reset_finish_limit,
            password_change: !raw
                .password_change
                .as_ref()
                .and_then(|p| p.disable)
                .unwrap_or(false),
            password_policy,
            totp,
            encryption_key,
            elevation,
            notifier,
            notifier_startup_check,
            default_method,
            totp_limit,
            elevation_start_limit,
            elevation_finish_limit,
        })
    }
}
