//! authentik's unauthenticated paths and URLs, `skip_path_regex` (docs/reference/outpost.md §7 and
//! §14 item 6).

use portcullis_core::TargetUrl;

use crate::error::PolicyError;
use crate::path::PathForms;
use crate::re2::{self, Regex};

/// Compiled unauthenticated-path patterns: one RE2 pattern per line, matched unanchored.
///
/// ```
/// use portcullis_core::TargetUrl;
/// use portcullis_policy::SkipPaths;
/// let skip = SkipPaths::compile("^/health$\r\n\n^/static/").unwrap();
/// let url = |u: &str| TargetUrl::parse(u).unwrap();
/// assert!(skip.matches_path(&url("https://app.example.com/static/app.js?v=1")));
/// assert!(!skip.matches_path(&url("https://app.example.com/static/../admin")));
/// assert!(!skip.matches_path(&url("https://app.example.com/admin?x=/static/")));
/// ```
#[derive(Debug, Clone, Default)]
pub struct SkipPaths {
    patterns: Vec<Regex>,
}

impl SkipPaths {
    /// Compile the text of the field: split on `\n`, a trailing `\r` removed from each line, blank
    /// (empty or whitespace-only) lines ignored, every other line compiled as Go RE2 with ASCII
    /// `\d \w \s \b`.
    ///
    /// # Errors
    ///
    /// [`PolicyError::InvalidSkipPath`] naming the first line (1-based) that does not compile. A bad
    /// line is never skipped.
    pub fn compile(text: &str) -> Result<SkipPaths, PolicyError> {
        let mut patterns = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let regex = re2::compile(line).map_err(|message| PolicyError::InvalidSkipPath {
                line: i + 1,
                message,
            })?;
            patterns.push(regex);
        }
        Ok(SkipPaths { patterns })
    }

    /// The number of patterns.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// True when there is no pattern (nothing is unauthenticated).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when some pattern matches anywhere in `subject`.
    pub fn matches(&self, subject: &str) -> bool {
        self.patterns.iter().any(|p| p.is_match(subject))
    }

    /// Proxy and single-application forward modes: match the canonical path, without the query
    /// ([`crate::path`]).
    ///
    /// Every reading of the path (`;` parameters removed, cut at a decoded `#`/`?`, `\` as `/`) must
    /// match, so that a variant of a protected path is never let through; a path that cannot be
    /// normalised never matches.
    pub fn matches_path(&self, url: &TargetUrl) -> bool {
        if self.is_empty() {
            return false;
        }
        match PathForms::of(url.path(), true) {
            Ok(forms) => forms.all().all(|path| self.matches(path)),
            Err(_) => false,
        }
    }

    /// Domain forward mode: match the full URL `scheme://host[:port]/path[?query]`, with the
    /// canonical path (an empty path stays empty) and the raw query.
    ///
    /// As in [`matches_path`](Self::matches_path), every reading of the path must match and a path
    /// that cannot be normalised never matches.
    pub fn matches_url(&self, url: &TargetUrl) -> bool {
        if self.is_empty() {
            return false;
        }
        let Ok(forms) = PathForms::of(url.path(), true) else {
            return false;
        };
        let mut prefix = format!("{}://{}", url.scheme(), url.host());
        if let Some(port) = url.port() {
            prefix.push_str(&format!(":{port}"));
        }
        let query = url.query().filter(|q| !q.is_empty());
        forms.all().all(|path| {
            let mut full = prefix.clone();
            if !url.path().is_empty() {
                full.push_str(path);
            }
            if let Some(q) = query {
                full.push('?');
                full.push_str(q);
            }
            self.matches(&full)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> TargetUrl {
        TargetUrl::parse(text).unwrap()
    }

    #[test]
    fn compile_rules() {
        // docs/reference/outpost.md §14 item 6: trailing \r removed, blank lines ignored, bad line
        // is an error.
        let skip = SkipPaths::compile("^/a$\r\n\r\n   \n\n^/b$\n").unwrap();
        assert_eq!(skip.len(), 2);
        assert!(skip.matches("/a"), "the \\r is not part of the pattern");
        assert!(
            !skip.matches("/c"),
            "a blank line does not match everything"
        );
        assert!(SkipPaths::compile("").unwrap().is_empty());
        assert!(!SkipPaths::compile("\n\r\n").unwrap().matches("/anything"));

        let err = SkipPaths::compile("^/ok$\n\n^/bad(\n").unwrap_err();
        assert!(
            matches!(err, PolicyError::InvalidSkipPath { line: 3, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn unanchored_and_ascii_classes() {
        let skip = SkipPaths::compile(r"/api/v\d+/public").unwrap();
        assert!(skip.matches("/prefix/api/v2/public/x"));
        assert!(!skip.matches("/api/v٣/public"));
    }

    #[test]
    fn path_mode() {
        let skip = SkipPaths::compile("^/public/\n^/health$").unwrap();
        let cases = [
            ("https://a.example.com/public/x", true),
            ("https://a.example.com/health", true),
            ("https://a.example.com/health?probe=1", true),
            ("https://a.example.com//public/x", true),
            ("https://a.example.com/public/%2e%2e/admin", false),
            ("https://a.example.com/public/../admin", false),
            ("https://a.example.com/public/..%2fadmin", false),
            ("https://a.example.com/public/..;/admin", false),
            ("https://a.example.com/admin?x=/public/", false),
            ("https://a.example.com/admin#/public/", false),
            ("https://a.example.com/public/x%00", false),
            ("https://a.example.com/public/%ff", false),
            ("https://a.example.com/health;x", false),
            ("https://a.example.com/health%23", false),
            ("https://a.example.com/HEALTH", false),
            ("https://a.example.com", false),
        ];
        for (u, expected) in cases {
            assert_eq!(skip.matches_path(&url(u)), expected, "{u}");
        }
        assert!(!SkipPaths::default().matches_path(&url("https://a.example.com/")));
    }

    #[test]
    fn url_mode() {
        let skip = SkipPaths::compile(
            "^https://public\\.example\\.com/\n^https://app\\.example\\.com:8443/ok$",
        )
        .unwrap();
        let cases = [
            ("https://public.example.com/x?y=1", true),
            ("https://PUBLIC.example.com./x", true),
            ("https://app.example.com:8443/ok", true),
            ("https://app.example.com/ok", false),
            ("https://app.example.com:8443/ok?x", false),
            ("https://app.example.com:8443/x/../ok", true),
            ("http://public.example.com/", false),
            ("https://public.example.com/%00", false),
            ("https://public.example.com", false),
        ];
        for (u, expected) in cases {
            assert_eq!(skip.matches_url(&url(u)), expected, "{u}");
        }
        // The query is part of the URL in domain mode.
        let by_query = SkipPaths::compile(r"\?token=public$").unwrap();
        assert!(by_query.matches_url(&url("https://x.example.com/a?token=public")));
        assert!(!by_query.matches_path(&url("https://x.example.com/a?token=public")));
    }
}
