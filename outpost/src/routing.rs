//! Which application a request is for, its cleaned path, and which redirect targets are
//! acceptable (docs/reference/outpost.md §3.2, §4.3, §14 item 3). Pure functions.

use portcullis_core::domain::{canonical_host, host_is_under};

use crate::config::{Mode, Provider};

/// The provider for `host` (`host[:port]`, from `X-Forwarded-Host` or `Host`): an exact match of
/// an external host's authority in any mode, else the forward_domain provider with the longest
/// cookie domain the host is under (on a dot boundary), else the only provider.
pub(crate) fn select(providers: &[Provider], host: &str) -> Option<usize> {
    let wanted = canonical_host(host);
    if let Some(i) = providers.iter().position(|p| p.authority() == wanted) {
        return Some(i);
    }
    let bare = strip_port(&wanted);
    let domain = providers
        .iter()
        .enumerate()
        .filter(|(_, p)| p.mode == Mode::ForwardDomain && host_is_under(bare, &p.cookie_domain))
        .max_by_key(|(_, p)| p.cookie_domain.len())
        .map(|(i, _)| i);
    if domain.is_some() {
        return domain;
    }
    (providers.len() == 1).then_some(0)
}

/// `host` without its `:port` (IPv6 literals keep their brackets).
pub(crate) fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.find(']').map_or(host, |end| &host[..end + 2]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// Go's `path.Clean` as a router applies it: repeated slashes collapsed, `.` and `..` resolved,
/// a trailing slash kept. `None` when the path is already clean.
pub(crate) fn clean_path(path: &str) -> Option<String> {
    if path.is_empty() {
        return Some("/".into());
    }
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut cleaned = format!("/{}", parts.join("/"));
    if path.ends_with('/') && cleaned != "/" {
        cleaned.push('/');
    }
    (cleaned != path).then_some(cleaned)
}

/// Whether the query has `name=true` (name compared case-insensitively, as the reference's
/// signature check).
pub(crate) fn query_flag(query: Option<&str>, name: &str) -> bool {
    query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes())
            .any(|(k, v)| k.eq_ignore_ascii_case(name) && v.eq_ignore_ascii_case("true"))
    })
}

/// A query parameter's first value.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    })
}

/// The redirect target `rd` accepted for `provider`, or `None` (then the user lands on the
/// external host). proxy and forward_single: a relative `rd` is re-based onto the external
/// host's scheme and authority; an absolute one must have exactly its authority. forward_domain:
/// an http(s) URL whose host is the cookie domain or under it on a dot boundary.
pub(crate) fn accept_redirect(provider: &Provider, rd: &str) -> Option<String> {
    if rd.is_empty() || rd.chars().any(|c| c.is_control() || c == '\\') {
        return None;
    }
    match provider.mode {
        Mode::Proxy | Mode::ForwardSingle => {
            let base = &provider.external_host;
            if rd.starts_with('/') && !rd.starts_with("//") {
                let joined = base.join(rd).ok()?;
                return (joined.origin() == base.origin()).then(|| joined.into());
            }
            let url = url::Url::parse(rd).ok()?;
            if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() {
                return None;
            }
            let authority = |u: &url::Url| {
                let host = u.host_str().unwrap_or("").to_ascii_lowercase();
                match u.port_or_known_default() {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                }
            };
            (authority(&url) == authority(base)).then(|| url.into())
        }
        Mode::ForwardDomain => {
            let url = url::Url::parse(rd).ok()?;
            if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() {
                return None;
            }
            let host = url.host_str()?.to_ascii_lowercase();
            host_is_under(&host, &provider.cookie_domain).then(|| url.into())
        }
    }
}

#[cfg(test)]
mod tests;
