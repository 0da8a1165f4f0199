//! What a login looks like, step by step: assertions shared by the outpost tests.

use super::{Browser, OutpostStack, param};
use crate::client::Reply;

/// A URL the test browser may follow: the stack's own hosts (it resolves nothing else).
pub fn ours(url: &url::Url) -> bool {
    url.host_str().is_some_and(|h| {
        ["auth", "app", "wiki", "files"]
            .iter()
            .any(|n| h == format!("{n}.example.com"))
    })
}

/// Whether `url` is portcullis-verify's login page of an OpenID flow.
pub fn is_portal(url: &str, stack: &OutpostStack) -> bool {
    url.starts_with(&stack.url("auth", "/?flow=openid_connect&flow_id="))
}

/// From the provider's authorization URL on: the portal login as `user`, then the provider's
/// redirect to the callback. Returns the callback URL (not yet visited).
pub async fn provider_login(
    stack: &OutpostStack,
    b: &mut Browser,
    authorize: &str,
    user: (&str, &str),
) -> String {
    let r = b.get(authorize, &[]).await;
    assert_eq!(
        r.status, 302,
        "the provider sends an anonymous browser to its portal: {r:?}"
    );
    let portal = r.header("location").unwrap().to_owned();
    assert!(is_portal(&portal, stack), "{portal}");
    let back = b.portal_login(&portal, user).await;
    assert!(
        back.starts_with(&stack.url("auth", "/api/oidc/authorization?")),
        "{back}"
    );
    let r = b.get(&back, &[]).await;
    assert_eq!(
        r.status, 302,
        "the provider answers the logged-in browser with the code: {r:?}"
    );
    let callback = r.header("location").unwrap().to_owned();
    assert!(param(&callback, "code").is_some(), "{callback}");
    assert_eq!(
        param(&callback, "X-authentik-auth-callback").as_deref(),
        Some("true"),
        "{callback}"
    );
    assert_eq!(
        param(&callback, "iss").as_deref(),
        Some(stack.url("auth", "").as_str()),
        "{callback}"
    );
    callback
}

/// The authorization request the outpost sent: portcullis-verify's endpoint, this client, the
/// callback on `callback_host`, the configured scopes, PKCE S256.
pub fn assert_authorize(stack: &OutpostStack, authorize: &str, client: &str, callback_host: &str) {
    assert!(
        authorize.starts_with(&stack.url("auth", "/api/oidc/authorization?")),
        "{authorize}"
    );
    assert_eq!(param(authorize, "client_id").as_deref(), Some(client));
    assert_eq!(
        param(authorize, "redirect_uri"),
        Some(stack.url(
            callback_host,
            "/outpost.goauthentik.io/callback?X-authentik-auth-callback=true"
        ))
    );
    assert_eq!(param(authorize, "response_type").as_deref(), Some("code"));
    assert_eq!(
        param(authorize, "scope").as_deref(),
        Some("openid email profile entitlements ak_proxy groups")
    );
    assert_eq!(
        param(authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(
        param(authorize, "state").is_some_and(|s| s.split('.').count() == 3),
        "a signed state"
    );
}

/// The session cookie `reply` sets: `name=value`, with the attributes of spec §10.1.
pub fn session_cookie(reply: &Reply, name: &str, domain: Option<&str>) -> String {
    let line = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with(&format!("{name}=")) && !c.contains("Max-Age=0"))
        .unwrap_or_else(|| panic!("no {name} cookie set: {reply:?}"));
    for attribute in ["; Path=/", "; HttpOnly", "; Secure", "; SameSite=Lax"] {
        assert!(line.contains(attribute), "{attribute} in {line}");
    }
    match domain {
        Some(d) => assert!(line.contains(&format!("; Domain={d}")), "{line}"),
        None => assert!(!line.contains("Domain="), "a host-only cookie: {line}"),
    }
    line.split(';').next().unwrap().to_owned()
}

/// Whether `reply` deletes the cookie `name`.
pub fn deletes(reply: &Reply, name: &str) -> bool {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .any(|c| c.starts_with(&format!("{name}=")) && c.contains("Max-Age=0"))
}

/// A URL of the login itself: the outpost's endpoints and the provider's OpenID endpoints on
/// the stack's hosts (to follow a login without landing on the page it ends on).
pub fn login_hop(url: &url::Url) -> bool {
    ours(url)
        && (url.path().starts_with("/outpost.goauthentik.io/")
            || url.path().starts_with("/api/oidc/"))
}
