//! `check-config`: load a configuration and its users file as `portcullis-verify` does.

use std::path::Path;

use portcullis_auth::users::UserDatabase;
use portcullis_server_core::tls_acceptor;
use portcullis_verify_server::config::ConfigWarning;

use crate::{CliError, Io, load_config};

/// `file:line: key: message`, the shape of configuration errors.
fn warning_line(file: &Path, warning: &ConfigWarning) -> String {
    let mut line = file.display().to_string();
    if let Some(n) = warning.line {
        line.push_str(&format!(":{n}"));
    }
    if !warning.key.is_empty() {
        line.push_str(&format!(": {}", warning.key));
    }
    format!("{line}: {}", warning.message)
}

/// `portcullis check-config`: warnings on standard error, then the error (returned, exit code 2)
/// or a one-line summary on standard output.
pub(crate) fn check_config(path: &Path, io: &mut Io<'_>) -> Result<u8, CliError> {
    let (config, warnings) = load_config(path)?;
    for warning in &warnings {
        writeln!(io.err, "warning: {}", warning_line(path, warning))?;
    }
    let users = UserDatabase::load(
        &config.users_path,
        config.case_insensitive,
        config.search_email,
    )
    .map_err(|e| CliError::invalid(e.to_string()))?;
    if let Some((certificate, key)) = &config.tls {
        tls_acceptor(certificate, key).map_err(|e| {
            CliError::invalid(format!("{}: server.tls: {e}", config.file.display()))
        })?;
    }
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    writeln!(
        io.out,
        "{}: valid ({}, {}, {}, {})",
        path.display(),
        plural(config.policy.rule_count(), "access rule"),
        plural(users.len(), "user"),
        plural(config.cookies.len(), "cookie domain"),
        plural(warnings.len(), "warning"),
    )?;
    Ok(0)
}
