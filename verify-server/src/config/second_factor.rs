//! The second-factor sections (docs/reference/second-factor.md §1.1, §3.1, §3.3): `totp`,
//! `identity_validation.elevated_session`, `notifier`, `storage.encryption_key` and
//! `default_2fa_method`, with Authelia's defaults and rules. Where Authelia refuses to start
//! because a key is missing, Portcullis starts with the feature that needs it off and one
//! warning naming the key.

use std::path::PathBuf;

use portcullis_config::ConfigError;
use portcullis_core::Secret;
use portcullis_second_factor::encryption::MINIMUM_KEY_LENGTH;
use portcullis_second_factor::totp::{Algorithm, Digits, Period, TotpParameters};
use serde::Deserialize;
use serde::de::IgnoredAny;

use portcullis_auth::rate_limit::Bucket;

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
pub(super) struct RawElevatedSession {
    pub code_lifespan: Option<RawDuration>,
    pub elevation_lifespan: Option<RawDuration>,
    pub characters: Option<usize>,
    pub require_second_factor: Option<bool>,
    pub skip_second_factor: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotifier {
    pub disable_startup_check: Option<bool>,
    pub template_path: Option<IgnoredAny>,
    pub filesystem: Option<RawFilesystemNotifier>,
    pub smtp: Option<RawSmtp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    pub address: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub timeout: Option<RawDuration>,
    pub username: Option<String>,
    pub password: Option<RawSecret>,
    pub identifier: Option<String>,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub startup_check_address: Option<IgnoredAny>,
    pub disable_require_tls: Option<bool>,
    /// Portcullis sends plain text only, so there is nothing to disable.
    #[allow(dead_code)]
    pub disable_html_emails: Option<bool>,
    pub disable_starttls: Option<bool>,
    pub tls: Option<RawSmtpTls>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtpTls {
    pub server_name: Option<String>,
    pub skip_verify: Option<bool>,
    pub minimum_version: Option<String>,
    pub maximum_version: Option<IgnoredAny>,
    pub certificate_chain: Option<IgnoredAny>,
    pub private_key: Option<IgnoredAny>,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `submissions://`: TLS from the first byte.
    Implicit,
    /// STARTTLS, refused without it (the default).
    StartTlsRequired,
    /// STARTTLS when offered (`disable_require_tls`).
    StartTlsOpportunistic,
    /// No TLS (`disable_starttls` with `disable_require_tls`).
    None,
}

/// `notifier.smtp`, validated.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Host name or address to connect to.
    pub host: String,
    /// Port.
    pub port: u16,
    /// How the connection is secured.
    pub security: SmtpSecurity,
    /// The name the certificate must carry (`tls.server_name`, else the host).
    pub server_name: String,
    /// `tls.skip_verify`.
    pub skip_verify: bool,
    /// `tls.minimum_version` is TLS 1.3.
    pub minimum_tls13: bool,
    /// Connect and command timeout, seconds.
    pub timeout: u64,
    /// Credentials.
    pub username: Option<String>,
    /// The password.
    pub password: Option<Secret>,
    /// The `EHLO` name.
    pub identifier: String,
    /// `From:`.
    pub sender: String,
    /// The subject template (`{title}`).
    pub subject: String,
    /// Extra trust anchors for the server's certificate (`certificates_directory`).
    pub extra_roots: Vec<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFilesystemNotifier {
    pub filename: Option<String>,
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
    /// Accepted for Authelia files; the zxcvbn policy is not enforced (a warning says so).
    #[allow(dead_code)]
    pub min_score: Option<IgnoredAny>,
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
    }
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

/// Where notifications go.
#[derive(Debug, Clone)]
pub enum NotifierConfig {
    /// `notifier.filesystem.filename`: the last message, in Authelia's layout.
    Filesystem(PathBuf),
    /// `notifier.smtp`.
    Smtp(Box<SmtpConfig>),
}

/// Everything the second factors need, validated.
#[derive(Debug, Clone)]
pub struct SecondFactorConfig {
    /// TOTP, unless disabled or impossible (no encryption key).
    pub totp: Option<TotpConfig>,
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
    pub webauthn_configured: bool,
    pub certificates_directory: Option<String>,
    pub password_change: Option<RawPasswordChange>,
    pub password_policy: Option<RawPasswordPolicy>,
    pub password_reset: Option<RawPasswordReset>,
}

/// `address` as a mailbox, or `None`.
fn lettre_address(address: &str) -> Option<()> {
    let (local, domain) = address.trim().rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty() && !address.contains(char::is_whitespace))
        .then_some(())
        .or_else(|| {
            // `Name <addr@host>`.
            let inner = address.trim().strip_suffix('>')?.rsplit_once('<')?.1;
            let (l, d) = inner.rsplit_once('@')?;
            (!l.is_empty() && !d.is_empty()).then_some(())
        })
}

impl Validator<'_> {
    /// The PEM files of `certificates_directory` (Authelia's extra trust anchors).
    fn certificate_files(&self, dir: &str) -> Result<Vec<PathBuf>, ConfigError> {
        let path = self.path(dir);
        let entries = std::fs::read_dir(&path).map_err(|e| {
            self.error("certificates_directory", format!("{}: {e}", path.display()))
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "pem" | "crt" | "cer"))
            })
            .collect();
        files.sort();
        Ok(files)
    }

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

    fn smtp(
        &mut self,
        raw: &RawSmtp,
        password_file: Option<Secret>,
        roots: &[PathBuf],
    ) -> Result<SmtpConfig, ConfigError> {
        const K: &str = "notifier.smtp";
        let address = match (&raw.address, &raw.host) {
            (Some(a), _) => a.clone(),
            (None, Some(host)) => {
                self.warn(
                    &format!("{K}.host"),
                    "is deprecated: use notifier.smtp.address",
                );
                format!("smtp://{host}:{}", raw.port.unwrap_or(25))
            }
            (None, None) => "smtp://localhost:25".to_owned(),
        };
        let url = url::Url::parse(&address).map_err(|e| {
            self.error(
                &format!("{K}.address"),
                format!("{address:?} is not a URL: {e}"),
            )
        })?;
        let (implicit, default_port) = match url.scheme() {
            "smtp" => (false, 25),
            "submission" => (false, 587),
            "submissions" => (true, 465),
            other => {
                return Err(self.error(
                    &format!("{K}.address"),
                    format!("scheme {other:?} must be smtp, submission or submissions"),
                ));
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
            .ok_or_else(|| self.error(&format!("{K}.address"), "has no host"))?;
        let port = url.port().unwrap_or(default_port);
        let require_tls = !raw.disable_require_tls.unwrap_or(false);
        let starttls = !raw.disable_starttls.unwrap_or(false);
        let security = match (implicit, starttls, require_tls) {
            (true, _, _) => SmtpSecurity::Implicit,
            (false, true, true) => SmtpSecurity::StartTlsRequired,
            (false, true, false) => SmtpSecurity::StartTlsOpportunistic,
            (false, false, false) => SmtpSecurity::None,
            (false, false, true) => {
                return Err(self.error(
                    &format!("{K}.disable_starttls"),
                    "a connection without STARTTLS cannot be secured: set disable_require_tls too, or use submissions://",
                ));
            }
        };
        if security == SmtpSecurity::None || security == SmtpSecurity::StartTlsOpportunistic {
            self.warn(
                &format!("{K}.disable_require_tls"),
                "mail (one-time codes included) may travel without TLS",
            );
        }
        let sender = raw
            .sender
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.error(&format!("{K}.sender"), "is required"))?;
        if lettre_address(&sender).is_none() {
            return Err(self.error(
                &format!("{K}.sender"),
                format!("{sender:?} is not an email address"),
            ));
        }
        let tls = raw.tls.as_ref();
        let minimum_tls13 = match tls.and_then(|t| t.minimum_version.as_deref()) {
            None | Some("TLS1.2") => false,
            Some("TLS1.3") => true,
            Some(other) => {
                return Err(self.error(
                    &format!("{K}.tls.minimum_version"),
                    format!("{other:?} must be TLS1.2 or TLS1.3"),
                ));
            }
        };
        if let Some(t) = tls
            && (t.certificate_chain.is_some() || t.private_key.is_some())
        {
            self.warn(
                &format!("{K}.tls.certificate_chain"),
                "client certificates are not implemented by Portcullis; ignored",
            );
        }
        if tls.is_some_and(|t| t.maximum_version.is_some()) {
            self.warn(
                &format!("{K}.tls.maximum_version"),
                "not implemented by Portcullis; ignored: the newest version both sides support is used",
            );
        }
        if raw.startup_check_address.is_some() {
            self.warn(
                &format!("{K}.startup_check_address"),
                "ignored: the start-up check connects, secures the connection and authenticates without naming a recipient",
            );
        }
        let skip_verify = tls.and_then(|t| t.skip_verify).unwrap_or(false);
        if skip_verify {
            self.warn(
                &format!("{K}.tls.skip_verify"),
                "the mail server's certificate is not checked: anyone on the path can read the codes",
            );
        }
        let password = match (password_file, &raw.password) {
            (Some(p), _) => Some(p),
            (None, Some(p)) => Some(Secret::new(p.0.clone())),
            (None, None) => None,
        };
        if password.is_some() && raw.username.is_none() {
            return Err(self.error(&format!("{K}.username"), "is required with a password"));
        }
        Ok(SmtpConfig {
            server_name: tls
                .and_then(|t| t.server_name.clone())
                .unwrap_or_else(|| host.clone()),
            host,
            port,
            security,
            skip_verify,
            minimum_tls13,
            timeout: self.duration(&format!("{K}.timeout"), &raw.timeout, 5)?,
            username: raw.username.clone(),
            password,
            identifier: raw
                .identifier
                .clone()
                .unwrap_or_else(|| "localhost".to_owned()),
            sender,
            subject: raw
                .subject
                .clone()
                .unwrap_or_else(|| "[Authelia] {title}".to_owned()),
            extra_roots: roots.to_vec(),
        })
    }

    fn notifier(
        &mut self,
        raw: &RawNotifier,
        smtp_password_file: Option<Secret>,
        roots: &[PathBuf],
    ) -> Result<Option<NotifierConfig>, ConfigError> {
        if raw.template_path.is_some() {
            self.warn(
                "notifier.template_path",
                "not implemented by Portcullis; ignored: the built-in templates are used",
            );
        }
        match (&raw.filesystem, &raw.smtp) {
            (Some(_), Some(_)) => Err(self.error(
                "notifier",
                "configure exactly one notifier: filesystem or smtp, not both",
            )),
            (Some(fs), None) => {
                let filename = fs
                    .filename
                    .as_deref()
                    .filter(|f| !f.is_empty())
                    .ok_or_else(|| self.error("notifier.filesystem.filename", "is required"))?;
                Ok(Some(NotifierConfig::Filesystem(self.path(filename))))
            }
            (None, Some(smtp)) => Ok(Some(NotifierConfig::Smtp(Box::new(self.smtp(
                smtp,
                smtp_password_file,
                roots,
            )?)))),
            (None, None) => Ok(None),
        }
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
        if raw.webauthn_configured {
            self.warn(
                "webauthn",
                "not implemented by Portcullis yet; ignored: WebAuthn and passkeys are not offered",
            );
        }
        let identity = raw.identity_validation.unwrap_or_default();
        let reset_backend = raw.password_reset.unwrap_or_default();
        let reset_disabled = reset_backend.disable.unwrap_or(false);
        let reset = match (&identity.reset_password, reset_disabled) {
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
        let policy = raw.password_policy.unwrap_or_default();
        if policy
            .zxcvbn
            .as_ref()
            .is_some_and(|z| z.enabled == Some(true))
        {
            self.warn(
                "password_policy.zxcvbn",
                "NOT ENFORCED: the zxcvbn policy is not implemented by Portcullis; use password_policy.standard",
            );
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
                }
            }
            _ => PasswordPolicy::default(),
        };
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
