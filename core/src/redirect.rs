//! Where to send the browser: the portal redirection URL, the status to use, the anchor body, and the
//! post-login safe-redirect test (docs/reference/forward-auth.md §6.2–§6.5 and §7, docs/reference/security.md §1).

use http::{HeaderMap, HeaderName, Method, StatusCode};

use crate::domain::host_is_under;
use crate::target::TargetUrl;

// Made once: a lookup by `&str` parses the name each time.
static X_REQUESTED_WITH: HeaderName = HeaderName::from_static("x-requested-with");

/// Percent-encode like Go's `url.QueryEscape`: every byte outside `A–Z a–z 0–9 - _ . ~` becomes `%XX`,
/// and space becomes `+`.
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + value.len() / 2);
    for &b in value.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 0xf)] as char);
            }
        }
    }
    out
}

/// The portal URL with `rd` (the raw target) and `rm` (the method) merged into its query, re-encoded
/// like Go's `url.Values.Encode` (keys sorted, values in order).
///
/// ```
/// use portcullis_core::redirect::portal_redirect_url;
/// let url = portal_redirect_url("https://auth.example.com", "https://app.example.com/a?b=c", "GET");
/// assert_eq!(url, "https://auth.example.com/?rd=https%3A%2F%2Fapp.example.com%2Fa%3Fb%3Dc&rm=GET");
/// ```
pub fn portal_redirect_url(portal: &str, target: &str, method: &str) -> String {
    let portal = portal.split_once('#').map_or(portal, |(before, _)| before);
    let (base, query) = match portal.split_once('?') {
        Some((b, q)) => (b, q),
        None => (portal, ""),
    };
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k != "rd" && k != "rm")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.push(("rd".to_owned(), target.to_owned()));
    pairs.push(("rm".to_owned(), method.to_owned()));
    // Stable sort keeps the original order of repeated keys, as Go's Encode does.
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let encoded: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect();
    let base = with_root_path(base);
    format!("{base}?{}", encoded.join("&"))
}

/// `https://host` becomes `https://host/`; a URL with a path is left alone.
fn with_root_path(base: &str) -> String {
    match base.split_once("://") {
        Some((_, rest)) if !rest.contains('/') => format!("{base}/"),
        _ => base.to_owned(),
    }
}

/// True when the client asks for a page rather than data (docs/reference/forward-auth.md §6.4): some `Accept` item is
/// exactly `text/html`, or the first item is `*/*`.
pub fn accepts_html(headers: &HeaderMap) -> bool {
    let Some(accept) = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    accept.split(',').enumerate().any(|(i, item)| {
        let media: String = item
            .split(';')
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| *c != ' ')
            .collect();
        media == "text/html" || (i == 0 && media == "*/*")
    })
}

/// The status for sending an unauthenticated request to the portal (docs/reference/forward-auth.md §6.4): 401 for XHR
/// or clients that do not accept HTML, else 302 for GET/HEAD/OPTIONS and 303 for other methods.
///
/// ```
/// use http::{HeaderMap, Method, StatusCode};
/// use portcullis_core::redirect::redirect_status;
/// let mut headers = HeaderMap::new();
/// headers.insert("accept", "text/html".parse().unwrap());
/// assert_eq!(redirect_status(&headers, &Method::POST), StatusCode::SEE_OTHER);
/// ```
pub fn redirect_status(headers: &HeaderMap, target_method: &Method) -> StatusCode {
    let xhr = headers
        .get(&X_REQUESTED_WITH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("XMLHttpRequest"));
    if xhr || !accepts_html(headers) {
        return StatusCode::UNAUTHORIZED;
    }
    match target_method.as_str() {
        "GET" | "HEAD" | "OPTIONS" | "" => StatusCode::FOUND,
        _ => StatusCode::SEE_OTHER,
    }
}

/// Escape text for an HTML attribute the way Go's `html.EscapeString` does.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The body of redirect and 401-with-Location replies: `<a href="URL">CODE REASON</a>`.
pub fn anchor_body(location: &str, status: StatusCode) -> String {
    format!(
        "<a href=\"{}\">{} {}</a>",
        html_escape(location),
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
}

/// The post-login safe-redirect test (docs/reference/forward-auth.md §7, docs/reference/security.md R1.2–R1.3): the URL parses as a
/// browser would read it, has no control bytes, backslash or userinfo, its scheme is `https` or `wss`,
/// and its host equals or lies under one of `domains` on a label boundary.
///
/// ```
/// use portcullis_core::redirect::is_safe_redirect;
/// let domains = ["example.com"];
/// assert!(is_safe_redirect("https://app.example.com/x", &domains));
/// assert!(!is_safe_redirect("https://example.com.evil.net/", &domains));
/// assert!(!is_safe_redirect("https://app.example.com\\@evil.net/", &domains));
/// ```
pub fn is_safe_redirect<S: AsRef<str>>(candidate: &str, domains: &[S]) -> bool {
    safe_redirect_host(candidate)
        .is_some_and(|host| domains.iter().any(|d| host_is_under(&host, d.as_ref())))
}

/// The canonical host of `candidate` when it is an acceptable absolute redirect (before the domain
/// check); `None` otherwise.
pub fn safe_redirect_host(candidate: &str) -> Option<String> {
    // Our strict parser first (no control bytes, no backslash, no userinfo, no whitespace)…
    let ours = TargetUrl::parse(candidate).ok()?;
    if !ours.is_secure() {
        return None;
    }
    // …and the browser's reading must agree on the host, so no parser differential can move it.
    let browser = url::Url::parse(candidate).ok()?;
    let browser_host = browser.host_str()?;
    let browser_host = crate::domain::canonical_host(browser_host);
    if browser_host != ours.host() || !browser.username().is_empty() || browser.password().is_some()
    {
        return None;
    }
    Some(browser_host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn portal_url_shapes() {
        let cases = [
            (
                "https://auth.example.com/",
                "https://app.example.com/",
                "GET",
                "https://auth.example.com/?rd=https%3A%2F%2Fapp.example.com%2F&rm=GET",
            ),
            (
                "https://auth.example.com/portal/?theme=dark&rd=old",
                "https://app.example.com/x y%2F",
                "POST",
                "https://auth.example.com/portal/?rd=https%3A%2F%2Fapp.example.com%2Fx+y%252F&rm=POST&theme=dark",
            ),
            (
                "https://auth.example.com:8443?a=1&a=0",
                "https://app.example.com",
                "GET",
                "https://auth.example.com:8443/?a=1&a=0&rd=https%3A%2F%2Fapp.example.com&rm=GET",
            ),
        ];
        for (portal, target, method, expected) in cases {
            assert_eq!(portal_redirect_url(portal, target, method), expected);
        }
    }

    #[test]
    fn query_escape_matches_go() {
        assert_eq!(query_escape("a b:/?&=%~._-"), "a+b%3A%2F%3F%26%3D%25~._-");
        assert_eq!(query_escape("é"), "%C3%A9");
    }

    fn accept(value: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert("accept", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn accept_rules() {
        let cases = [
            (None, false),
            (Some("text/html"), true),
            (Some("application/json, text/html;q=0.9"), true),
            (Some("*/*"), true),
            (Some("*/* ; q=0.1"), true),
            (Some("application/json, */*"), false),
            (Some("application/json"), false),
            (Some("text/html5"), false),
            (Some(" text/html "), true),
        ];
        for (value, expected) in cases {
            assert_eq!(accepts_html(&accept(value)), expected, "{value:?}");
        }
    }

    #[test]
    fn status_rules() {
        let html = accept(Some("text/html"));
        assert_eq!(redirect_status(&html, &Method::GET), StatusCode::FOUND);
        assert_eq!(redirect_status(&html, &Method::HEAD), StatusCode::FOUND);
        assert_eq!(redirect_status(&html, &Method::OPTIONS), StatusCode::FOUND);
        assert_eq!(redirect_status(&html, &Method::POST), StatusCode::SEE_OTHER);
        assert_eq!(
            redirect_status(&html, &Method::DELETE),
            StatusCode::SEE_OTHER
        );
        assert_eq!(
            redirect_status(&accept(None), &Method::GET),
            StatusCode::UNAUTHORIZED
        );
        let mut xhr = html.clone();
        xhr.insert("x-requested-with", "xmlhttprequest".parse().unwrap());
        assert_eq!(
            redirect_status(&xhr, &Method::GET),
            StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn anchor_escapes() {
        assert_eq!(
            anchor_body("https://a/?x=1&y='\"<>", StatusCode::FOUND),
            "<a href=\"https://a/?x=1&amp;y=&#39;&#34;&lt;&gt;\">302 Found</a>"
        );
        assert_eq!(
            anchor_body("u", StatusCode::UNAUTHORIZED),
            "<a href=\"u\">401 Unauthorized</a>"
        );
    }

    #[test]
    fn open_redirect_classes_are_rejected() {
        let domains = ["example.com"];
        let unsafe_targets = [
            "http://app.example.com/",               // scheme
            "javascript:alert(1)",                   // scheme
            "//evil.net/",                           // scheme-relative
            "/\\evil.net/",                          // relative with backslash
            "https://evil.net/",                     // foreign host
            "https://notexample.com/",               // no label boundary
            "https://example.com.evil.net/",         // suffix trick
            "https://app.example.com@evil.net/",     // userinfo
            "https://evil.net\\@app.example.com/",   // backslash
            "https://evil.net\\.example.com/",       // backslash in host
            "https://app.example.com\r\n.evil.net/", // CR/LF
            "https://app.example.com\t/",            // tab
            "https://%65vil.net/",                   // encoded host
            "https://evil.net%2f.example.com/",      // encoded slash in host
            " https://app.example.com/",             // leading space
            "https:/app.example.com/",               // one slash
            "https:app.example.com",                 // no slashes
            "",
        ];
        for target in unsafe_targets {
            assert!(
                !is_safe_redirect(target, &domains),
                "{target:?} must be unsafe"
            );
        }
        let safe_targets = [
            "https://example.com",
            "https://APP.Example.com./path?q=1",
            "wss://ws.example.com/socket",
            "https://a.b.example.com:8443/",
        ];
        for target in safe_targets {
            assert!(
                is_safe_redirect(target, &domains),
                "{target:?} must be safe"
            );
        }
    }

    proptest! {
        /// Law: a redirect judged safe always lands under a configured cookie domain.
        #[test]
        fn safe_redirect_lands_under_a_domain(s in "[a-zA-Z0-9:/\\\\@%.?#-]{0,40}") {
            let domains = ["example.com"];
            for candidate in [s.clone(), format!("https://{s}"), format!("https://app.example.com{s}")] {
                if is_safe_redirect(&candidate, &domains) {
                    let browser = url::Url::parse(&candidate).unwrap();
                    let host = browser.host_str().unwrap();
                    prop_assert!(host_is_under(host, "example.com"), "{candidate} -> {host}");
                }
            }
        }
    }
}
