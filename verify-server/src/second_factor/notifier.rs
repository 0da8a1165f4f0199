//! Notifications (docs/reference/second-factor.md §3.3): the filesystem notifier writes the last
//! message only, in Authelia's layout, so a test — or an operator without mail — reads the code
//! out of it.

use std::io::Write;
use std::path::{Path, PathBuf};

use std::time::Duration;

use lettre::message::Body;
use lettre::message::Mailbox;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters, TlsVersion};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use portcullis_second_factor::datetime::sqlite_datetime;

use crate::config::{SmtpConfig, SmtpSecurity};

/// Who a message goes to.
#[derive(Debug, Clone)]
pub(crate) struct Recipient {
    pub(crate) display_name: String,
    pub(crate) address: String,
}

impl Recipient {
    /// `"John Doe" <john.doe@example.com>`, or `<john.doe@example.com>` without a name.
    fn header(&self) -> String {
        if self.display_name.is_empty() {
            format!("<{}>", self.address)
        } else {
            let quoted = self.display_name.replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{quoted}\" <{}>", self.address)
        }
    }
}

/// Where notifications go.
#[derive(Debug, Clone)]
pub(crate) enum Notifier {
    Filesystem(PathBuf),
    Smtp(Box<Smtp>),
}

/// The SMTP notifier: a lettre transport (STARTTLS or implicit TLS on rustls) and the envelope.
#[derive(Clone)]
pub(crate) struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    sender: Mailbox,
    subject: String,
    timeout: Duration,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("sender", &self.sender.to_string())
            .finish_non_exhaustive()
    }
}

impl Smtp {
    /// The transport for `config`; an unreadable trust anchor or sender is an error.
    pub(crate) fn new(config: &SmtpConfig) -> Result<Self, String> {
        let mut tls = TlsParameters::builder(config.server_name.clone())
            .dangerous_accept_invalid_certs(config.skip_verify)
            .dangerous_accept_invalid_hostnames(config.skip_verify);
        if config.minimum_tls13 {
            tls = tls.set_min_tls_version(TlsVersion::Tlsv13);
        }
        for path in &config.extra_roots {
            let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let certificate = Certificate::from_pem(&pem)
                .map_err(|e| format!("{}: not a PEM certificate: {e}", path.display()))?;
            tls = tls.add_root_certificate(certificate);
        }
        let tls = tls.build_rustls().map_err(|e| format!("TLS: {e}"))?;
        let security = match config.security {
            SmtpSecurity::Implicit => Tls::Wrapper(tls),
            SmtpSecurity::StartTlsRequired => Tls::Required(tls),
            SmtpSecurity::StartTlsOpportunistic => Tls::Opportunistic(tls),
            SmtpSecurity::None => Tls::None,
        };
        let timeout = Duration::from_secs(config.timeout.max(1));
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.clone())
                .port(config.port)
                .tls(security)
                .timeout(Some(timeout))
                .hello_name(ClientId::Domain(config.identifier.clone()));
        if let Some(user) = &config.username {
            let password = config
                .password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        let sender: Mailbox = config
            .sender
            .parse()
            .map_err(|e| format!("notifier.smtp.sender: {e}"))?;
        Ok(Self {
            transport: builder.build(),
            sender,
            subject: config.subject.clone(),
            timeout,
        })
    }

    async fn check(&self) -> Result<(), String> {
        match tokio::time::timeout(self.timeout * 2, self.transport.test_connection()).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err("the mail server did not answer NOOP".to_owned()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the mail server did not answer in time".to_owned()),
        }
    }

    async fn send(&self, to: &Recipient, title: &str, body: &str) -> Result<(), String> {
        let address = to
            .address
            .parse()
            .map_err(|e| format!("recipient address: {e}"))?;
        let name = (!to.display_name.is_empty()).then(|| to.display_name.clone());
        let message = Message::builder()
            .from(self.sender.clone())
            .to(Mailbox::new(name, address))
            .subject(self.subject.replace("{title}", title))
            .header(ContentType::TEXT_PLAIN)
            .body(eight_bit(body))
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(self.timeout * 4, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the mail server did not accept the message in time".to_owned()),
        }
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).write(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

impl Notifier {
    /// The start-up check: for the filesystem, the folder made (0700) and the file emptied
    /// (0600), as Authelia does; for SMTP, a connection with TLS and authentication.
    pub(crate) async fn startup_check(&self) -> std::io::Result<()> {
        match self {
            Self::Smtp(smtp) => smtp.check().await.map_err(std::io::Error::other),
            Self::Filesystem(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    let mut builder = std::fs::DirBuilder::new();
                    builder.recursive(true);
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::DirBuilderExt;
                        builder.mode(0o700);
                    }
                    builder.create(parent)?;
                }
                write_private(path, "")
            }
        }
    }

    /// Send `subject` with `body` to `to` at `now`.
    pub(crate) async fn send(
        &self,
        to: &Recipient,
        subject: &str,
        body: &str,
        now: u64,
    ) -> std::io::Result<()> {
        match self {
            Self::Smtp(smtp) => smtp
                .send(to, subject, body)
                .await
                .map_err(std::io::Error::other),
            Self::Filesystem(path) => {
                // Go's time.Time.String() for a UTC time: `2026-08-22 11:24:05 +0000 UTC`.
                let date = sqlite_datetime(i64::try_from(now).unwrap_or(i64::MAX))
                    .replace("+00:00", " +0000 UTC");
                let text = format!(
                    "Date: {date}\nRecipient: {}\nSubject: {subject}\n{body}\n\n",
                    to.header()
                );
                let path = path.clone();
                tokio::task::spawn_blocking(move || write_private(&path, &text))
                    .await
                    .map_err(std::io::Error::other)?
            }
        }
    }
}

/// The body as 8bit text with CRLF line ends, so the code and the links arrive as they are
/// (quoted-printable, lettre's choice for lines over 78 characters, would turn `id=` into
/// `id=3D`). Prose is wrapped at 76 characters; a longer word (a link) stays whole, within
/// SMTP's limit of 998 characters a line (RFC 5321 §4.5.3.1.6), else the text is left to lettre.
fn eight_bit(body: &str) -> Body {
    let text = wrap(body, 76).replace('\n', "\r\n");
    if text.split("\r\n").all(|l| l.len() <= 998) && !text.contains('\0') {
        Body::dangerous_pre_encoded(text.into_bytes(), ContentTransferEncoding::EightBit)
    } else {
        Body::new(text)
    }
}

/// `text` with lines longer than `width` broken at spaces (a word longer than that stays whole),
/// so that mail can travel as it is instead of quoted-printable.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split('\n') {
        let mut current = 0;
        for (i, word) in line.split(' ').enumerate() {
            if i > 0 {
                if current + 1 + word.len() > width {
                    out.push('\n');
                    current = 0;
                } else {
                    out.push(' ');
                    current += 1;
                }
            }
            out.push_str(word);
            current += word.len();
        }
        out.push('\n');
    }
    out.pop();
    out
}

/// The body of the one-time code message: the code alone on its line between two rules of 40
/// dashes, each with a blank line around it.
pub(crate) fn one_time_code_body(
    display_name: &str,
    domain: &str,
    code: &str,
    lifespan_minutes: u64,
    revoke_url: &str,
    ip: &str,
) -> String {
    let rule = "-".repeat(40);
    format!(
        "Hi {display_name},\n\n\
         A one-time code was requested to confirm your identity before changing the security settings of your account at {domain}.\n\n\
         The code is valid for {lifespan_minutes} minutes and only from the IP address {ip}.\n\n\
         {rule}\n\n{code}\n\n{rule}\n\n\
         If you did not ask for it, your password may be known to someone else. Revoke the code with this link, then change your password:\n\n\
         {revoke_url}\n\n\
         This message was requested from the IP address {ip}.\n"
    )
}

/// The body of an event message ("a Second Factor Method was added to your account.").
pub(crate) fn event_body(display_name: &str, event: &str, details: &[(&str, String)]) -> String {
    let mut sorted: Vec<&(&str, String)> = details.iter().collect();
    sorted.sort_by_key(|(k, _)| *k);
    let lines: String = sorted.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
    format!(
        "Hi {display_name},\n\nThis notification has been sent to you in order to notify you that {event}.\n\n{lines}\nIf this was not you, contact an administrator.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_file_holds_the_last_message_in_authelias_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("notification.txt");
        let notifier = Notifier::Filesystem(path.clone());
        notifier.startup_check().await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let dir_mode = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(dir_mode, 0o700);
        }
        let john = Recipient {
            display_name: "John Doe".into(),
            address: "john.doe@authelia.com".into(),
        };
        let body = one_time_code_body(
            "John Doe",
            "example.com",
            "ABCD2346",
            5,
            "https://auth.example.com/revoke/one-time-code?id=x",
            "192.0.2.1",
        );
        notifier.send(&john, "Old", "old body", 1).await.unwrap();
        notifier
            .send(&john, "Confirm your identity", &body, 1_796_136_461)
            .await
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("old body"), "only the last message is kept");
        assert!(text.starts_with(
            "Date: 2026-12-01 14:47:41 +0000 UTC\nRecipient: \"John Doe\" <john.doe@authelia.com>\nSubject: Confirm your identity\nHi John Doe,\n"
        ), "{text}");
        // The spec's extraction pattern finds the code.
        let pattern = regex::Regex::new(r"-{40}\n\n([A-Z0-9]{6,20})\n\n-{40}").unwrap();
        assert_eq!(&pattern.captures(&text).unwrap()[1], "ABCD2346");
        let nameless = Recipient {
            display_name: String::new(),
            address: "x@y.z".into(),
        };
        assert_eq!(nameless.header(), "<x@y.z>");
    }

    #[test]
    fn long_lines_are_wrapped_at_spaces() {
        assert_eq!(wrap("aaa bbb ccc", 7), "aaa bbb\nccc");
        assert_eq!(wrap("a\n\nb", 7), "a\n\nb");
        assert_eq!(
            wrap("averyveryverylongword x", 5),
            "averyveryverylongword\nx"
        );
        let body = one_time_code_body(
            "John",
            "example.com",
            "ABCD2346",
            5,
            "https://auth.example.com/revoke/one-time-code?id=x",
            "192.0.2.1",
        );
        assert!(wrap(&body, 76).lines().all(|l| l.len() <= 76));
        assert!(wrap(&body, 76).contains("\n\nABCD2346\n\n"));
    }

    #[test]
    fn long_links_stay_whole_and_the_body_travels_as_8bit() {
        let link = format!("https://auth.example.com/{}", "x".repeat(100));
        let body = eight_bit(&format!("Hi,\n\n{link}\n"));
        assert_eq!(body.encoding(), ContentTransferEncoding::EightBit);
        let text = String::from_utf8(body.into_vec()).unwrap();
        assert_eq!(text, format!("Hi,\r\n\r\n{link}\r\n"));
        let huge = eight_bit(&"y".repeat(2_000));
        assert_ne!(huge.encoding(), ContentTransferEncoding::EightBit);
    }

    #[test]
    fn event_details_are_sorted() {
        let body = event_body(
            "Jane",
            "a Second Factor Method was added to your account",
            &[
                ("Method", "Time-based One-Time Password".into()),
                ("Device", "x".into()),
            ],
        );
        assert!(
            body.contains("notify you that a Second Factor Method was added to your account.\n")
        );
        assert!(body.find("Device: x").unwrap() < body.find("Method: Time").unwrap());
    }
}
