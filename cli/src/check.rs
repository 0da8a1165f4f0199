//! `check-config`: load a configuration and its users file as `portcullis-verify` does.

use std::path::Path;

use portcullis_server_core::tls_acceptor;
use portcullis_verify_server::config::{Config, ConfigWarning};

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
    // A directory is not asked: the check reads files only, as Authelia's validate-config.
    let users = crate::users::load_file(&config)?;
    if let Some((certificate, key)) = &config.tls {
        tls_acceptor(certificate, key).map_err(|e| {
            CliError::invalid(format!("{}: server.tls: {e}", config.file.display()))
        })?;
    }
    if !config.portcullis_section {
        for line in migration_report(&config, &warnings) {
            writeln!(io.out, "{line}")?;
        }
    }
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let clients = config
        .oidc
        .as_ref()
        .map(|p| format!(", {}", plural(p.clients.len(), "OpenID Connect client")))
        .unwrap_or_default();
    writeln!(
        io.out,
        "{}: valid ({}, {}, {}{clients}, {})",
        path.display(),
        plural(config.policy.rule_count(), "access rule"),
        users.map_or_else(
            || format!("users in {}", crate::users::source_name(&config)),
            |u| plural(u.len(), "user")
        ),
        plural(config.cookies.len(), "cookie domain"),
        plural(warnings.len(), "warning"),
    )?;
    Ok(0)
}

/// For an Authelia file (no `portcullis:` section): what Portcullis will do differently with it,
/// and what the user might want to set.
fn migration_report(config: &Config, warnings: &[ConfigWarning]) -> Vec<String> {
    let mut out =
        vec!["Migrating from Authelia: what Portcullis does differently with this file".to_owned()];
    let mut ignored: Vec<&str> = warnings
        .iter()
        .filter(|w| w.message.starts_with("not implemented"))
        .map(|w| w.key.as_str())
        .collect();
    ignored.dedup();
    if !ignored.is_empty() {
        out.push(format!(
            "- ignored keys (see the warnings): {}",
            ignored.join(", ")
        ));
    }
    let networks: Vec<String> = config
        .trusted_proxies
        .networks()
        .iter()
        .map(ToString::to_string)
        .collect();
    out.push(format!(
        "- forwarded headers (X-Forwarded-*, X-Original-*, X-Authelia-URL) are believed only from {}; \
         Authelia believes every peer. Set portcullis.trusted_proxies to your proxies' addresses.",
        networks.join(", ")
    ));
    out.push(
        "- every allowed check carries Remote-User, Remote-Groups, Remote-Name and Remote-Email, \
         empty for anonymous bypasses, so proxies that copy them overwrite client-sent copies."
            .to_owned(),
    );
    out.push(match config.basic_auth_cache {
        0 => "- verified Basic credentials are not cached (portcullis.basic_auth_cache: 0)."
            .to_owned(),
        seconds => format!(
            "- verified Basic credentials are cached for {seconds} s: a Basic client pays for the \
             password hash once; set portcullis.basic_auth_cache: 0 to check every request."
        ),
    });
    if config.session_secret.is_none() {
        out.push(format!(
            "- session.secret is not set: one is generated at first start and kept in {}.",
            config.storage_path.display()
        ));
    }
    out.push(format!(
        "- relative paths are taken from the configuration's folder: users {}, storage {}.",
        crate::users::source_name(config),
        config.storage_path.display()
    ));
    out.push(
        "- invalid regexes, unknown policies and unknown network names are errors, and request \
         heads up to 16 KiB are accepted (server.buffers is ignored)."
            .to_owned(),
    );
    out
}
