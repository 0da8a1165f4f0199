//! The outpost's own answers: plain texts, the JSON of an unknown host, and its HTML pages.

use axum::body::Body;
use axum::response::Response;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderValue, StatusCode};
use portcullis_core::redirect::html_escape;

/// A `text/plain` answer.
pub(crate) fn text(status: StatusCode, body: &'static str) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// An empty answer.
pub(crate) fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// A redirect.
pub(crate) fn found(location: &str) -> Response {
    let mut r = empty(StatusCode::FOUND);
    match HeaderValue::from_str(location) {
        Ok(v) => {
            r.headers_mut().insert(LOCATION, v);
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(_) => text(StatusCode::BAD_REQUEST, "invalid redirect\n"),
    }
}

/// Add `Set-Cookie` values.
pub(crate) fn with_cookies(mut response: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            response.headers_mut().append(SET_COOKIE, v);
        }
    }
    response
}

/// The 400 for a host no provider serves (docs/reference/outpost.md §3.2 step 3.4): the
/// reference's tab-indented JSON.
pub(crate) fn unknown_host(host: &str) -> Response {
    let body = serde_json::json!({
        "Message": "no app for hostname",
        "Host": host,
        "Detail": format!("Check the outpost settings and make sure '{host}' is included."),
    });
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    let written = serde::Serialize::serialize(&body, &mut serializer).is_ok();
    let mut r = Response::new(Body::from(if written { out } else { Vec::new() }));
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// An HTML error page with the outpost's stylesheet.
pub(crate) fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title><link rel=\"stylesheet\" href=\"/outpost.goauthentik.io/static/outpost.css\"></head><body><main><h1>{t}</h1><p>{m}</p></main></body></html>",
        t = html_escape(title),
        m = html_escape(message),
    );
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'self'; frame-ancestors 'none'"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// `/outpost.goauthentik.io/static/…`: the pages' stylesheet.
pub(crate) fn static_asset(path: &str) -> Response {
    match path {
        "outpost.css" => {
            let mut r = Response::new(Body::from(STYLESHEET));
            let h = r.headers_mut();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            );
            h.insert(
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            );
            h.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            r
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}

const STYLESHEET: &str = "body{font-family:system-ui,sans-serif;background:#f4f4f5;color:#18181b;margin:0}main{max-width:32rem;margin:10vh auto;padding:2rem;background:#fff;border-radius:.5rem;box-shadow:0 1px 3px #0002}h1{font-size:1.4rem;margin-top:0}\n";
