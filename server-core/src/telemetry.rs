//! Tracing set-up: text or JSON lines on standard output, at the configured level for the named
//! crates, unless `RUST_LOG` says otherwise.

use std::fmt;

/// Log output format (`log.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A log level as configured (`log.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Decisions and details.
    Debug,
    /// Start, reloads, refusals.
    Info,
    /// Problems that do not stop the server.
    Warn,
    /// Failures.
    Error,
}

impl LogLevel {
    /// Parse Authelia's level names, in any case.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_lowercase().as_str() {
            "trace" => Self::Trace,
            "debug" => Self::Debug,
            "info" => Self::Info,
            "warn" => Self::Warn,
            "error" => Self::Error,
            _ => return None,
        })
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        })
    }
}

/// The filter directive: `crate=level` for each of `crates`.
pub fn directive(level: LogLevel, crates: &[&str]) -> String {
    crates
        .iter()
        .map(|c| format!("{c}={level}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Install the global subscriber. A second call (tests, embedding) keeps the first subscriber.
pub fn init(level: LogLevel, format: LogFormat, crates: &[&str]) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(directive(level, crates)));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directives() {
        assert_eq!(LogLevel::parse("DEBUG"), Some(LogLevel::Debug));
        assert_eq!(LogLevel::parse("verbose"), None);
        assert_eq!(
            directive(LogLevel::Warn, &["portcullis", "portcullis_auth"]),
            "portcullis=warn,portcullis_auth=warn"
        );
    }
}
