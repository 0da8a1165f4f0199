//! aiosmtpd (`tests/smtp/server.py`), the real mail server of the second-factor tests, on a free
//! loopback port; the messages it accepted, read back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use portcullis_server_core::clock::Stopwatch;

use crate::process::{Process, find_program, free_port};
use crate::tls;

/// The account the server accepts (AUTH only after STARTTLS when TLS is on).
pub const USER: &str = "mailer";
/// Its password.
pub const PASSWORD: &str = "mailer-secret";

/// A running mail server. Stops when dropped.
pub struct MailServer {
    /// The process (its logs: `process.logs`).
    pub process: Process,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Where it writes the messages.
    pub dir: PathBuf,
}

/// Start aiosmtpd in `dir` with `USER`/`PASSWORD`; STARTTLS (required) with `tls_files`.
pub fn start_mail_server(dir: &Path, tls_files: Option<&tls::CertFiles>) -> MailServer {
    start(dir, tls_files, USER, PASSWORD)
}

/// Start aiosmtpd in `dir` with STARTTLS (required) and the account `user`/`password`.
pub fn start_mail_server_with(
    dir: &Path,
    tls_files: &tls::CertFiles,
    user: &str,
    password: &str,
) -> MailServer {
    start(dir, Some(tls_files), user, password)
}

fn start(dir: &Path, tls_files: Option<&tls::CertFiles>, user: &str, password: &str) -> MailServer {
    let port = free_port();
    let out = dir.join("mail");
    std::fs::create_dir_all(&out).expect("mail folder");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp/server.py");
    let mut command = std::process::Command::new(find_program("aiosmtpd").expect("aiosmtpd"));
    command
        .arg(script)
        .env("SMTP_PORT", port.to_string())
        .env("SMTP_DIR", &out)
        .env("SMTP_USER", user)
        .env("SMTP_PASSWORD", password);
    if let Some(files) = tls_files {
        command
            .env("SMTP_CERT", &files.chain)
            .env("SMTP_KEY", &files.key);
    }
    let mut process = Process::spawn("smtp", command, dir, false);
    let started = Stopwatch::start();
    loop {
        process.assert_running();
        let ready =
            std::fs::read_to_string(&process.logs[0]).is_ok_and(|o| o.contains("\"ready\""));
        if ready && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "aiosmtpd did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    MailServer {
        process,
        port,
        dir: out,
    }
}

/// The accepted messages, oldest first.
pub fn messages(dir: &Path) -> Vec<String> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("mail folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("a message"))
        .collect()
}
