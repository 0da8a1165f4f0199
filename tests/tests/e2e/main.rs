//! End to end: portcullis-verify behind real nginx (`auth_request`, also with the legacy
//! `/api/verify`), Caddy (`forward_auth`: Debian's 2.6 and the current 2.11), Traefik 3.7
//! (`forwardAuth`) and HAProxy (Lua), configured with the files in
//! `examples/proxies/`, and the portal in headless Chromium.
//!
//! Each scenario runs once per proxy (`nginx::…`, `nginx_legacy::…`, `caddy::…`, `caddy_current::…`,
//! `traefik::…`, `haproxy::…`), each
//! with its own processes, ports and directory, so they run in parallel. A test whose program is
//! missing is reported as skipped (`SKIPPED (missing …): <test>`), or fails when `CI` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod browser;
mod directory;
mod scenarios;

/// One `#[tokio::test]` per scenario and proxy. Current-thread runtime: portcullis-verify runs on
/// the test's thread, so its logs are the test's own.
macro_rules! per_proxy {
    ($module:ident, $proxy:expr, [$($scenario:ident),* $(,)?]) => {
        per_proxy!($module, $proxy, scenarios, [$($scenario),*]);
    };
    ($module:ident, $proxy:expr, $file:ident, [$($scenario:ident),* $(,)?]) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $scenario() {
                    crate::$file::$scenario($proxy).await;
                }
            )*
        }
    };
}

macro_rules! all_scenarios {
    ($module:ident, $proxy:expr) => {
        per_proxy!(
            $module,
            $proxy,
            [
                anonymous_browser_goes_to_portal_and_xhr_gets_401,
                login_gives_upstream_the_identity,
                spoofed_identity_headers_never_reach_upstream,
                bypass_deny_and_group_rules,
                path_tricks_cannot_reach_protected_paths,
                forwarded_headers_from_clients_are_not_believed,
                logout_ends_access_at_once,
                expired_session_ends_access,
                basic_credentials_challenge_and_ban,
                websocket_needs_login_then_works,
                unreachable_verify_fails_closed,
            ]
        );
    };
}

all_scenarios!(nginx, portcullis_tests::Proxy::Nginx);
all_scenarios!(nginx_legacy, portcullis_tests::Proxy::NginxLegacy);
all_scenarios!(caddy, portcullis_tests::Proxy::Caddy);
all_scenarios!(caddy_current, portcullis_tests::Proxy::CaddyCurrent);
all_scenarios!(traefik, portcullis_tests::Proxy::Traefik);
all_scenarios!(haproxy, portcullis_tests::Proxy::Haproxy);

// Users in a directory: behind nginx, the proxy most Authelia users run.
per_proxy!(
    nginx_directory,
    portcullis_tests::Proxy::Nginx,
    directory,
    [directory_users_log_in_at_the_portal_and_with_basic]
);
