//! Delivering the authorization response to the client: parameters in the redirect URI's query,
//! or an auto-submitting form (OAuth 2.0 Form Post Response Mode).

use url::Url;

use crate::client::ResponseMode;

/// What the endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// 302 with this `Location`.
    Redirect(String),
    /// 200 with this HTML page.
    FormPost(String),
}

/// Deliver `params` to `redirect_uri` by `mode`. The URI's own query is kept and the response
/// parameters are appended (OAuth 2.0 §3.1.2: the query component MUST be retained).
pub fn deliver(redirect_uri: &str, mode: ResponseMode, params: &[(&str, &str)]) -> Delivery {
    match mode {
        ResponseMode::Query => Delivery::Redirect(append_query(redirect_uri, params)),
        ResponseMode::FormPost => Delivery::FormPost(form_post_page(redirect_uri, params)),
    }
}

/// `uri` with `params` appended to its query.
pub fn append_query(uri: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(uri) {
        Ok(mut url) => {
            {
                let mut pairs = url.query_pairs_mut();
                for (k, v) in params {
                    pairs.append_pair(k, v);
                }
            }
            url.to_string()
        }
        // Registered redirect URIs are absolute URLs (checked at start-up); anything else gets
        // the parameters appended by hand so the client still receives them.
        Err(_) => {
            let encoded: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params.iter())
                .finish();
            let sep = if uri.contains('?') { '&' } else { '?' };
            format!("{uri}{sep}{encoded}")
        }
    }
}

fn escape_html(s: &str) -> String {
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

/// The form-post page: a form with hidden inputs, submitted on load.
pub fn form_post_page(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let inputs: String = params
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape_html(k),
                escape_html(v)
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html><html><head><title>Submit This Form</title></head><body onload=\"javascript:document.forms[0].submit()\"><form method=\"post\" action=\"{}\">{inputs}<noscript><button type=\"submit\">Continue</button></noscript></form></body></html>",
        escape_html(redirect_uri)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_kept_and_parameters_encoded() {
        let loc = append_query(
            "https://app.example.com/cb?X-authentik-auth-callback=true",
            &[("code", "a b&c"), ("state", "s")],
        );
        assert_eq!(
            loc,
            "https://app.example.com/cb?X-authentik-auth-callback=true&code=a+b%26c&state=s"
        );
    }

    #[test]
    fn form_post_escapes() {
        let page = form_post_page("https://a.example/cb", &[("state", "\"><script>")]);
        assert!(page.contains("value=\"&quot;&gt;&lt;script&gt;\""));
        assert!(!page.contains("\"><script>"));
    }
}
