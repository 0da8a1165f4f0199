//! `notifier` (filesystem or SMTP, exactly one) and `certificates_directory`, the trust anchors
//! of the SMTP server's certificate (docs/reference/second-factor.md §3.3, §7 item 11).

use std::path::PathBuf;

use portcullis_config::ConfigError;
use portcullis_core::Secret;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::raw::{RawDuration, RawSecret};
use super::validate::Validator;

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

/// Where notifications go.
#[derive(Debug, Clone)]
pub enum NotifierConfig {
    /// `notifier.filesystem.filename`: the last message, in Authelia's layout.
    Filesystem(PathBuf),
    /// `notifier.smtp`.
    Smtp(Box<SmtpConfig>),
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
    pub(super) fn certificate_files(&self, dir: &str) -> Result<Vec<PathBuf>, ConfigError> {
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

    pub(super) fn notifier(
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
}
