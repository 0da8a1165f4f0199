//! Loading `configuration.yml`: Authelia's format, validated into domain types ("parse, don't
//! validate"). Every error names the file, the line (when it can be found) and the key path.
//!
//! - [`raw`](self) — the YAML shape (serde structs, unknown keys rejected);
//! - `validate` — the validator's core and the assembly of [`Config`];
//! - `server` — listen addresses and authz endpoints; `session` — cookie domains and Redis;
//! - `unimplemented` — the table of Authelia keys that are read but not acted on;
//! - `secrets` — secrets from `…_FILE` environment variables; `model` — the validated types.

mod model;
mod raw;
mod secrets;
mod server;
mod session;
mod unimplemented;
mod validate;

use std::path::Path;

pub use model::{Config, CookieDomain, Endpoint, Implementation, Refresh, Strategy, StrategyKind};
pub use portcullis_auth::regulation::RegulationConfig;
pub use portcullis_config::{ConfigError, ConfigWarning, locate, parse_duration};
pub use portcullis_server_core::telemetry::{LogFormat, LogLevel};
pub use secrets::{MIN_SESSION_SECRET_LENGTH, SecretSources};

/// Read and validate a configuration file.
pub fn load(
    path: &Path,
    secrets: &SecretSources,
) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::file(path, format!("cannot read: {e}")))?;
    parse(path, &source, secrets)
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
mod tests;
