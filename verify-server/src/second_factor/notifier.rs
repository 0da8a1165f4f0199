//! Notifications (docs/reference/second-factor.md §3.3): the filesystem notifier writes the last
//! message only, in Authelia's layout, so a test — or an operator without mail — reads the code
//! out of it.

use std::io::Write;
use std::path::{Path, PathBuf};

use portcullis_second_factor::datetime::sqlite_datetime;

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
    /// The start-up check: the folder made (0700) and the file emptied (0600), as Authelia does.
    pub(crate) fn startup_check(&self) -> std::io::Result<()> {
        match self {
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
        notifier.startup_check().unwrap();
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
