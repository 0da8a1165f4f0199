//! Host canonicalisation and label-boundary domain matching (docs/reference/security.md R4.1, R4.6).

/// Canonical form of a host name for comparisons: ASCII-lower-cased, one trailing `.` removed.
///
/// The input is expected to be a host already validated by the target parser (IDNA applied); this
/// function only folds case and the root dot so that `App.Example.COM.` compares equal to
/// `app.example.com`.
pub fn canonical_host(host: &str) -> String {
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    trimmed.to_ascii_lowercase()
}

/// Canonical form of a configured cookie domain: like [`canonical_host`], and a leading `.` (the old
/// cookie spelling) removed.
pub fn canonical_domain(domain: &str) -> String {
    canonical_host(domain.strip_prefix('.').unwrap_or(domain))
}

/// True when `host` equals `domain` or is a subdomain of it on a label boundary
/// (`a.example.com` is under `example.com`; `notexample.com` is not). Case-insensitive; a trailing
/// dot on either side and a leading dot on `domain` are ignored. An empty domain matches nothing.
pub fn host_is_under(host: &str, domain: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let domain = domain.strip_prefix('.').unwrap_or(domain);
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty() || host.len() < domain.len() {
        return false;
    }
    if host.eq_ignore_ascii_case(domain) {
        return true;
    }
    let split = host.len() - domain.len();
    host.is_char_boundary(split)
        && host[split..].eq_ignore_ascii_case(domain)
        && host[..split].ends_with('.')
        && split > 1
}

/// Index of the first configured domain that `host` equals or lies under (docs/reference/forward-auth.md §3.3).
///
/// ```
/// use portcullis_core::domain::match_cookie_domain;
/// let domains = ["example.com", "example.org"];
/// assert_eq!(match_cookie_domain("App.Example.org", &domains), Some(1));
/// assert_eq!(match_cookie_domain("notexample.com", &domains), None);
/// ```
pub fn match_cookie_domain<S: AsRef<str>>(host: &str, domains: &[S]) -> Option<usize> {
    domains.iter().position(|d| host_is_under(host, d.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_boundary_table() {
        let cases = [
            ("example.com", "example.com", true),
            ("EXAMPLE.com", "example.COM", true),
            ("app.example.com", "example.com", true),
            ("a.b.example.com", "example.com", true),
            ("app.example.com.", "example.com", true),
            ("app.example.com", ".example.com", true),
            ("notexample.com", "example.com", false),
            ("example.com.evil.net", "example.com", false),
            ("xexample.com", "example.com", false),
            (".example.com", "example.com", false),
            ("com", "example.com", false),
            ("example.com", "", false),
            ("", "example.com", false),
            ("ex\u{e4}mple.com", "mple.com", false),
        ];
        for (host, domain, expected) in cases {
            assert_eq!(
                host_is_under(host, domain),
                expected,
                "{host} under {domain}"
            );
        }
    }

    #[test]
    fn first_configured_domain_wins() {
        let domains = ["example.com", "app.example.com"];
        assert_eq!(match_cookie_domain("x.app.example.com", &domains), Some(0));
        assert_eq!(match_cookie_domain("example.net", &domains), None);
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical_host("App.Example.COM."), "app.example.com");
        assert_eq!(canonical_host("app.example.com.."), "app.example.com.");
        assert_eq!(canonical_domain(".Example.com"), "example.com");
    }
}
