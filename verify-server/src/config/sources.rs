//! Where the configuration comes from, as Authelia assembles it: one or more files or folders
//! (`--config a.yml --config conf.d/`, later files win), each run through the configured filters
//! (`X_AUTHELIA_CONFIG_FILTERS`), then environment variables for any key (`AUTHELIA_LOG_LEVEL`)
//! and `_FILE` variables for secret keys, which win over the files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use portcullis_config::{ConfigError, Filter, FilterInputs, SecretFile, apply_filters, locate};
use serde_yaml_ng::{Mapping, Value};

use super::secrets::SecretSources;

/// Every key Authelia reads (list entries excluded): the names `AUTHELIA_*` variables map to.
const AUTHELIA_KEYS: &str = include_str!("authelia_keys.txt");

/// Last segments that make a key a secret, settable through `AUTHELIA_<KEY>_FILE`.
const SECRET_SUFFIXES: [&str; 5] = ["key", "secret", "password", "token", "certificate_chain"];
const NOT_SECRETS: [&str; 3] = [
    "server.tls.key",
    "authentication_backend.disable_reset_password",
    "tls_key",
];

/// The variables that name the filters, Portcullis's spelling first.
const FILTER_VARIABLES: [&str; 2] = ["PORTCULLIS_CONFIG_FILTERS", "X_AUTHELIA_CONFIG_FILTERS"];

/// Everything besides the files that shapes the configuration.
#[derive(Debug, Default, Clone)]
pub struct LoadOptions {
    /// Secrets from the `_FILE` variables the server reads itself (session secret, Redis).
    pub secrets: SecretSources,
    /// File filters, in order.
    pub filters: Vec<Filter>,
    /// `AUTHELIA_*` variables: (name, value), a value already read from its file for `_FILE`.
    pub variables: Vec<(String, String)>,
}

impl LoadOptions {
    /// Read the options from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        Self::from_variables(&vars)
    }

    /// Read the options from `vars` (the environment, or a table in tests).
    pub fn from_variables(vars: &[(String, String)]) -> Result<Self, ConfigError> {
        let lookup = |name: &str| {
            vars.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| std::ffi::OsString::from(v))
        };
        let environment = Path::new("environment");
        let secrets = SecretSources::from_lookup(lookup)
            .map_err(|e| ConfigError::file(environment, e.to_string()))?;
        let mut filters = Vec::new();
        if let Some((name, value)) = FILTER_VARIABLES
            .iter()
            .find_map(|name| vars.iter().find(|(n, _)| n == name))
        {
            filters = Filter::parse_list(value).map_err(|unknown| ConfigError {
                file: environment.to_owned(),
                line: None,
                key: name.clone(),
                message: format!("unknown filter {unknown:?}: use template or expand-env"),
            })?;
        }
        let handled = SecretSources::VARIABLES;
        let variables = vars
            .iter()
            .filter(|(name, _)| name.starts_with("AUTHELIA_") && !handled.contains(&name.as_str()))
            .cloned()
            .collect();
        Ok(Self {
            secrets,
            filters,
            variables,
        })
    }
}

/// The files `paths` name, folders expanded to their `.yml` and `.yaml` files in name order.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ConfigError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path)
                .map_err(|e| ConfigError::file(path, format!("cannot read the folder: {e}")))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        let first = paths
            .first()
            .map_or(Path::new("configuration.yml"), PathBuf::as_path);
        return Err(ConfigError::file(first, "no configuration file found"));
    }
    Ok(files)
}

/// One file after its filters: path and text.
pub(super) struct Source {
    pub(super) path: PathBuf,
    pub(super) text: String,
}

/// Read and filter each file.
pub(super) fn read_sources(
    files: &[PathBuf],
    filters: &[Filter],
    inputs: &dyn FilterInputs,
) -> Result<Vec<Source>, ConfigError> {
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::file(path, format!("cannot read: {e}")))?;
            let text = apply_filters(filters, path, &text, inputs)?;
            Ok(Source {
                path: path.clone(),
                text,
            })
        })
        .collect()
}

/// Merge the files (later wins) and apply the variables; the text of the result. A key that is a
/// section in one file and a value in another is an error naming both files.
pub(super) fn merge(
    sources: &[Source],
    variables: &[(String, String)],
) -> Result<String, ConfigError> {
    let mut merged = Value::Mapping(Mapping::new());
    let mut origin: BTreeMap<String, PathBuf> = BTreeMap::new();
    for source in sources {
        let value: Value = serde_yaml_ng::from_str(&source.text).map_err(|e| ConfigError {
            file: source.path.clone(),
            line: e.location().map(|l| l.line()),
            key: String::new(),
            message: e
                .to_string()
                .split(" at line ")
                .next()
                .unwrap_or("")
                .to_owned(),
        })?;
        match value {
            Value::Null => continue,
            Value::Mapping(_) => merge_into(&mut merged, value, "", source, &mut origin)?,
            _ => {
                return Err(ConfigError::file(
                    &source.path,
                    "the file is not a mapping of configuration keys",
                ));
            }
        }
    }
    let keys = known_keys();
    for (name, value) in variables {
        let (key, value) = if let Some(base) = name.strip_suffix("_FILE") {
            match keys.get(base) {
                Some(key) if is_secret(key) => {
                    let secret = SecretFile::read(name, PathBuf::from(value))
                        .map_err(|e| ConfigError::file(Path::new("environment"), e.to_string()))?;
                    (key, secret.value.expose().to_owned())
                }
                _ => return Err(unknown_variable(name)),
            }
        } else {
            match keys.get(name.as_str()) {
                Some(key) => (key, value.clone()),
                None => return Err(unknown_variable(name)),
            }
        };
        set(&mut merged, key, scalar(&value)).map_err(|section| ConfigError {
            file: Path::new("environment").to_owned(),
            line: None,
            key: key.to_string(),
            message: format!("{name} cannot set {key}: {section} is not a section"),
        })?;
    }
    serde_yaml_ng::to_string(&merged)
        .map_err(|e| ConfigError::file(Path::new("environment"), e.to_string()))
}

fn unknown_variable(name: &str) -> ConfigError {
    ConfigError {
        file: Path::new("environment").to_owned(),
        line: None,
        key: name.to_owned(),
        message: format!("environment variable {name} maps to no configuration key"),
    }
}

/// `AUTHELIA_LOG_LEVEL` → `log.level`, for every known key.
fn known_keys() -> BTreeMap<String, &'static str> {
    AUTHELIA_KEYS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|key| {
            (
                format!("AUTHELIA_{}", key.replace('.', "_").to_uppercase()),
                key,
            )
        })
        .collect()
}

fn is_secret(key: &str) -> bool {
    !NOT_SECRETS.contains(&key)
        && !key.starts_with("identity_providers.oidc.lifespans.")
        && SECRET_SUFFIXES.iter().any(|s| key.ends_with(s))
}

/// A variable's text as YAML would read it (`3` a number, `true` a boolean), else as a string.
fn scalar(text: &str) -> Value {
    match serde_yaml_ng::from_str::<Value>(text) {
        Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
        _ => Value::String(text.to_owned()),
    }
}

fn set(root: &mut Value, key: &str, value: Value) -> Result<(), String> {
    let mut node = root;
    let mut walked = String::new();
    let segments: Vec<&str> = key.split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(segment);
        let Value::Mapping(map) = node else {
            return Err(walked);
        };
        let name = Value::String((*segment).to_owned());
        if i + 1 == segments.len() {
            map.insert(name, value);
            return Ok(());
        }
        node = map
            .entry(name)
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if node.is_null() {
            *node = Value::Mapping(Mapping::new());
        }
    }
    Ok(())
}

fn merge_into(
    target: &mut Value,
    value: Value,
    path: &str,
    source: &Source,
    origin: &mut BTreeMap<String, PathBuf>,
) -> Result<(), ConfigError> {
    let (Value::Mapping(into), Value::Mapping(from)) = (&mut *target, value) else {
        return Ok(());
    };
    for (k, v) in from {
        let name = match &k {
            Value::String(s) => s.clone(),
            other => serde_yaml_ng::to_string(other)
                .unwrap_or_default()
                .trim()
                .to_owned(),
        };
        let key = if path.is_empty() {
            name
        } else {
            format!("{path}.{name}")
        };
        match into.get_mut(&k) {
            Some(existing)
                if existing.is_mapping() != v.is_mapping()
                    && !existing.is_null()
                    && !v.is_null() =>
            {
                let first = origin
                    .get(&key)
                    .map(|f| f.display().to_string())
                    .unwrap_or_default();
                return Err(ConfigError {
                    file: source.path.clone(),
                    line: locate(&source.text, &key),
                    message: format!(
                        "{key} is a section in one file and a value in the other ({first} and {})",
                        source.path.display()
                    ),
                    key,
                });
            }
            Some(existing) if existing.is_mapping() => {
                merge_into(existing, v, &key, source, origin)?;
            }
            _ => {
                origin.insert(key, source.path.clone());
                into.insert(k, v);
            }
        }
    }
    Ok(())
}

/// The file (and line) that defines `key`, the last one that does: where an error about the merged
/// configuration belongs.
pub(super) fn place(sources: &[Source], key: &str) -> Option<(PathBuf, Option<usize>)> {
    let mut path = key;
    loop {
        if let Some(found) = sources
            .iter()
            .rev()
            .find_map(|s| locate(&s.text, path).map(|line| (s.path.clone(), Some(line))))
        {
            return Some(found);
        }
        match path.rfind(['.', '[']) {
            Some(i) => path = &path[..i],
            None => return None,
        }
    }
}

#[cfg(test)]
mod tests;
