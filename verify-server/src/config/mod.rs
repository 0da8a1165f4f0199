//! Loading `configuration.yml`: Authelia's format, validated into domain types ("parse, don't
//! validate"). Every error names the file, the line (when it can be found) and the key path.
//!
//! - [`raw`](self) — the YAML shape (serde structs, unknown keys rejected);
//! - `validate` — the validator's core and the assembly of [`Config`];
//! - `server` — listen addresses and authz endpoints; `session` — cookie domains and Redis;
//! - `unimplemented` — the table of Authelia keys that are read but not acted on;
//! - `secrets` — secrets from `…_FILE` environment variables; `model` — the validated types.

mod ldap;
mod model;
mod notifier;
mod oidc;
mod oidc_raw;
mod passwords;
mod raw;
mod second_factor;
mod secrets;
mod server;
mod session;
mod sources;
mod unimplemented;
mod validate;
mod webauthn;

use std::path::{Path, PathBuf};

use portcullis_config::ProcessInputs;

pub use model::{
    Config, CookieDomain, Endpoint, Implementation, Refresh, Strategy, StrategyKind, UserSource,
};
pub use notifier::{NotifierConfig, SmtpConfig, SmtpSecurity};
pub use oidc::{
    AuthorizationPolicy, AuthorizationRule, ClientSecret, Cors, Lifespans, OidcClient,
    OidcProvider, OidcRateLimits, PolicyLevel, Subject,
};
pub use passwords::{PasswordPolicy, ResetConfig};
pub use portcullis_auth::regulation::RegulationConfig;
pub use portcullis_config::{ConfigError, ConfigWarning, locate, parse_duration};
pub use portcullis_server_core::telemetry::{LogFormat, LogLevel};
pub use second_factor::{ElevationConfig, SecondFactorConfig, TotpConfig};
pub use secrets::{MIN_SESSION_SECRET_LENGTH, SecretSources};
pub use sources::{LoadOptions, expand_paths};
pub use webauthn::WebAuthnConfig;

/// Read and validate a configuration file.
pub fn load(
    path: &Path,
    secrets: &SecretSources,
) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::file(path, format!("cannot read: {e}")))?;
    parse(path, &source, secrets)
}

/// The configuration files to read: those given (`--config`), else `X_AUTHELIA_CONFIG`'s
/// comma-separated list, else `configuration.yml`.
pub fn config_paths(given: Vec<PathBuf>, authelia: Option<String>) -> Vec<PathBuf> {
    if !given.is_empty() {
        return given;
    }
    let listed: Vec<PathBuf> = authelia
        .iter()
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect();
    if listed.is_empty() {
        vec![PathBuf::from("configuration.yml")]
    } else {
        listed
    }
}

/// Read and validate the configuration as Authelia assembles it: the files and folders `paths`
/// (later files win), each through `options.filters`, then the `AUTHELIA_*` variables. Relative
/// paths are taken from the first file's folder; an error names the file and line that set the key
/// (or the variable).
pub fn load_all(
    paths: &[PathBuf],
    options: &LoadOptions,
) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let (mut config, warnings) = load_all_inner(paths, options)?;
    // SIGHUP reads the same files again.
    config.sources = paths.to_vec();
    Ok((config, warnings))
}

fn load_all_inner(
    paths: &[PathBuf],
    options: &LoadOptions,
) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let files = expand_paths(paths)?;
    let sources = sources::read_sources(&files, &options.filters, &ProcessInputs)?;
    if let [only] = sources.as_slice()
        && options.variables.is_empty()
    {
        return parse(&only.path, &only.text, &options.secrets);
    }
    let merged = sources::merge(&sources, &options.variables)?;
    let primary = files
        .first()
        .map_or(Path::new("configuration.yml"), PathBuf::as_path);
    let placed = |key: &str| sources::place(&sources, key);
    match parse(primary, &merged, &options.secrets) {
        Ok((config, mut warnings)) => {
            for w in &mut warnings {
                w.line = placed(&w.key).and_then(|(_, line)| line);
            }
            Ok((config, warnings))
        }
        Err(mut e) => {
            match placed(&e.key) {
                Some((file, line)) => (e.file, e.line) = (file, line),
                None => (e.file, e.line) = (PathBuf::from("environment"), None),
            }
            Err(e)
        }
    }
}

/// Validate configuration text (`path` names it in errors and anchors relative paths).
pub fn parse(
    path: &Path,
    source: &str,
    secrets: &SecretSources,
) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let raw: raw::RawConfig = portcullis_config::deserialize_yaml(path, source)?;
    let mut validator = validate::Validator::new(path, source);
    let config = validator.build(raw, secrets)?;
    Ok((config, validator.into_warnings()))
}

#[cfg(test)]
mod oidc_tests;
#[cfg(test)]
mod tests;
