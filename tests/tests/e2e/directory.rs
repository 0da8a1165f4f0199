//! Users in a real OpenLDAP behind a real proxy (issue 15): the portal logs in by email and
//! gives the application the directory's identity, Basic credentials are checked against the
//! directory, and the directory's groups decide the group rule.

use portcullis_tests::client::basic;
use portcullis_tests::ldap::{PASSWORD, PROGRAMS, Slapd};
use portcullis_tests::process::require;
use portcullis_tests::{Proxy, Stack, StackOptions};

fn sorted(groups: Option<&str>) -> Vec<&str> {
    let mut g: Vec<&str> = groups.unwrap_or_default().split(',').collect();
    g.sort_unstable();
    g
}

pub async fn directory_users_log_in_at_the_portal_and_with_basic(proxy: Proxy) {
    if !require(PROGRAMS) {
        return;
    }
    let dir = tempfile::tempdir().expect("slapd folder");
    let slapd = Slapd::start(dir.path());
    let Some(stack) = Stack::start(
        proxy,
        StackOptions {
            also_needs: PROGRAMS.to_vec(),
            ldap: Some(slapd.verify_keys()),
            ..StackOptions::default()
        },
    )
    .await
    else {
        return;
    };
    let c = &stack.client;
    let john = c.login("john.doe@authelia.com", PASSWORD).await;
    let seen = c
        .get("app", "/admin/panel")
        .cookie(&john)
        .header("remote-user", "admin")
        .send()
        .await
        .seen();
    assert_eq!(seen.uri, "/admin/panel");
    assert_eq!(seen.all("remote-user"), ["john"]);
    assert_eq!(sorted(seen.one("remote-groups")), ["admins", "dev"]);
    assert_eq!(seen.one("remote-name"), Some("John Doe"));
    assert_eq!(seen.one("remote-email"), Some("john.doe@authelia.com"));
    let state = c.get("auth", "/api/state").cookie(&john).send().await;
    assert_eq!(state.json()["data"]["username"], "john", "{state:?}");

    // Basic: harry is in dev, not admins.
    let harry = basic("harry", PASSWORD);
    let seen = c
        .get("app", "/reports")
        .header("authorization", &harry)
        .send()
        .await
        .seen();
    assert_eq!(seen.one("remote-user"), Some("harry"));
    assert_eq!(seen.one("remote-groups"), Some("dev"));
    let before = stack.upstream.count();
    let reply = c
        .get("app", "/admin/panel")
        .header("authorization", &harry)
        .send()
        .await;
    assert_eq!(reply.status, 403, "{reply:?}");
    for (user, password) in [("harry", "wrong"), ("*", PASSWORD), ("nobody", PASSWORD)] {
        let reply = c
            .get("app", "/reports")
            .header("accept", "application/json")
            .header("authorization", &basic(user, password))
            .send()
            .await;
        assert_eq!(reply.status, 401, "{user}: {reply:?}");
    }
    assert_eq!(
        stack.upstream.count(),
        before,
        "nothing refused reached the application"
    );
}
