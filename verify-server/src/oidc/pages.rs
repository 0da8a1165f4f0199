//! The provider's small server-rendered pages (consent, device code, logout, errors): one layout,
//! HTML escaping, and the headers every page carries.

use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};

/// The pages' policy: no script, forms to this origin only (pages whose form's redirects end at a
/// client add its origin: [`csp_with_form_action`]).
pub(super) const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// [`PAGE_CSP`] with `origin` allowed as a form target (and so as the end of its redirects).
pub(super) fn csp_with_form_action(origin: &str) -> String {
    PAGE_CSP.replacen(
        "form-action 'self'",
        &format!("form-action 'self' {origin}"),
        1,
    )
}

/// Text for HTML: `&`, `<`, `>`, `"` and `'` escaped.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page: `body` (already escaped HTML) in the layout, titled `title`, under `csp`.
pub(super) fn page(status: StatusCode, title: &str, body: &str, csp: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}input,button{{font-size:1rem;padding:.5rem 1rem}}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    );
    raw(status, html, csp)
}

/// An HTML answer as is (the form-post page) with the pages' headers.
pub(super) fn raw(status: StatusCode, html: String, csp: &str) -> Response {
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(CONTENT_SECURITY_POLICY, v);
    }
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn escaping_and_form_action() {
        assert_eq!(
            super::escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert!(
            super::csp_with_form_action("https://app.example.com")
                .contains("form-action 'self' https://app.example.com;")
        );
    }
}
