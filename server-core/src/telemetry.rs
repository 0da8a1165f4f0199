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

/// Whether text logs may carry ANSI colours: only on a terminal, and never with `NO_COLOR` set to
/// anything non-empty (<https://no-color.org> convention), so files and journald get plain text.
pub fn colours(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Query parameters whose values are secrets: their values are replaced in logged URLs.
const SECRET_PARAMETERS: [&str; 10] = [
    "token",
    "secret",
    "password",
    "passwd",
    "key",
    "code",
    "auth",
    "session",
    "signature",
    "credential",
];

/// `url` with the value of every query parameter whose name looks like a secret (contains `token`,
/// `secret`, `password`, `key`, `code`, `auth`, `session`, `signature`, …) replaced by `REDACTED`,
/// for logs.
///
/// ```
/// use portcullis_server_core::telemetry::redact_query;
/// assert_eq!(
///     redact_query("https://app.example.com/cb?code=abc&state=1&access_token=x"),
///     "https://app.example.com/cb?code=REDACTED&state=1&access_token=REDACTED"
/// );
/// assert_eq!(redact_query("https://app.example.com/a?b=1"), "https://app.example.com/a?b=1");
/// ```
pub fn redact_query(url: &str) -> std::borrow::Cow<'_, str> {
    let Some((base, query)) = url.split_once('?') else {
        return url.into();
    };
    let is_secret = |name: &str| {
        let name = name.to_ascii_lowercase();
        SECRET_PARAMETERS.iter().any(|s| name.contains(s))
    };
    if !query
        .split('&')
        .any(|pair| is_secret(pair.split('=').next().unwrap_or("")))
    {
        return url.into();
    }
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret(name) => format!("{name}=REDACTED"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", redacted.join("&")).into()
}

/// Install the global subscriber. A second call (tests, embedding) keeps the first subscriber.
/// Text logs are coloured only on a terminal without `NO_COLOR` ([`colours`]).
pub fn init(level: LogLevel, format: LogFormat, crates: &[&str]) {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = filter(
        std::env::var("RUST_LOG").ok().as_deref(),
        &directive(level, crates),
    );
    let ansi = colours(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().with_ansi(ansi))
            .try_init(),
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_ansi(ansi))
            .try_init(),
    };
}

/// The log filter: `RUST_LOG` when it is set and parses as `target=level` directives, otherwise
/// the configured level for Portcullis's crates.
///
/// Targets only, not `EnvFilter`: span and field directives would pull in a regex engine that
/// builds full DFAs, which is feature-unified into the access rules' regexes and multiplies the
/// time to compile them at start (BENCHMARKS.md, "Start to ready").
///
/// ```
/// use portcullis_server_core::telemetry::filter;
/// use tracing::Level;
/// use tracing_subscriber::filter::Targets;
///
/// let configured = "portcullis=info";
/// let from_env = filter(Some("warn,portcullis_policy=trace"), configured);
/// assert!(from_env.would_enable("portcullis_policy::rules", &Level::TRACE));
/// assert!(!from_env.would_enable("hyper", &Level::INFO));
/// let fallback = filter(Some("portcullis=[span{x=1}]"), configured);
/// assert!(fallback.would_enable("portcullis", &Level::INFO));
/// assert!(!fallback.would_enable("portcullis", &Level::DEBUG));
/// ```
pub fn filter(from_env: Option<&str>, configured: &str) -> tracing_subscriber::filter::Targets {
    from_env
        .filter(|value| !value.trim().is_empty())
        .and_then(|value| value.parse().ok())
        .or_else(|| configured.parse().ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(colours(true, None));
        assert!(
            colours(true, Some("".as_ref())),
            "an empty NO_COLOR does not count"
        );
        assert!(!colours(true, Some("1".as_ref())));
        assert!(
            !colours(false, None),
            "a file or journald gets no escape codes"
        );
    }

    #[test]
    fn secret_query_values_are_redacted() {
        let cases = [
            ("https://a/x?Token=1&b=2", "https://a/x?Token=REDACTED&b=2"),
            ("https://a/x?api_key=1", "https://a/x?api_key=REDACTED"),
            ("https://a/x?password", "https://a/x?password"),
            ("https://a/x?page=2&q=rust", "https://a/x?page=2&q=rust"),
            ("https://a/x", "https://a/x"),
        ];
        for (url, expected) in cases {
            assert_eq!(redact_query(url), expected, "{url}");
        }
    }

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
