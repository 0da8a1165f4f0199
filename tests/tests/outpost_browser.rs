//! The outpost's browser login in headless Chromium (tests/src/browser.rs): an outpost in proxy
//! mode (built by `App::build`, served on a real socket) in front of a real application, against
//! panva's oidc-provider (`tests/oidc-rp/idp.mjs`). Chromium opens the application, is sent to
//! the provider's login page, signs in there, comes back through the outpost's callback to the
//! application page naming the user, signs out through the outpost and the provider's logout
//! confirmation, and is then asked to log in again.
//!
//! Names: the browser maps `*.example.com` to loopback (`--host-resolver-rules`), so the
//! application is `http://app.example.com:<outpost port>` and the provider
//! `http://auth.example.com:<its port>`: two host names as in a real set-up (the cookies of one
//! are never the other's), with the ports in the URLs. Plain HTTP: the outpost's cookie has
//! `Secure` only for an `https` external host (docs/reference/outpost.md §10.1), so Chromium sends
//! it back here; the outpost reaches the provider through `back_channel_resolve`.

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fantoccini::{Client, Locator};
use portcullis_tests::browser::{self, wait_for, wait_for_url};
use portcullis_tests::outpost_support::{
    APP_HOST, App, EMAIL, IDP_HOST, Idp, Outpost, PASSWORD, USERNAME, init_logs, outpost_config,
    redirect_uri, require_idp,
};
use portcullis_tests::process::{FailureLogs, free_port};

/// Wait for the provider's login page, then sign in there as the fixed user.
async fn sign_in_at_the_provider(page: &Client) {
    wait_for_url(page, "the provider's login page", |u| {
        u.host_str() == Some(IDP_HOST) && u.path().starts_with("/interaction/")
    })
    .await;
    wait_for(page, "#username")
        .await
        .send_keys(USERNAME)
        .await
        .expect("type the username");
    page.find(Locator::Css("#password"))
        .await
        .expect("the password field")
        .send_keys(PASSWORD)
        .await
        .expect("type the password");
    page.find(Locator::Css("#sign-in"))
        .await
        .expect("the Sign in button")
        .click()
        .await
        .expect("click Sign in");
}

/// Whether the browser holds the outpost's cookie for the page it is on.
async fn has_cookie(page: &Client, name: &str) -> bool {
    page.get_all_cookies()
        .await
        .expect("the cookies")
        .iter()
        .any(|c| c.name() == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_logs_in_through_the_outpost_and_oidc_provider_and_signs_out() {
    if !require_idp(browser::PROGRAMS) {
        return;
    }
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let external = format!("http://{APP_HOST}:{port}");
    let idp = Idp::start(dir.path(), &[redirect_uri(&external)]).await;
    let app = App::start().await;
    let outpost = Outpost::start(&outpost_config(
        port,
        &external,
        &app,
        &idp,
        "storage:\n  memory: true\n",
    ))
    .await;
    let (page, driver) = browser::open_in(dir.path()).await;
    let mut files = idp.process.logs.clone();
    files.extend(driver.logs.clone());
    files.push(dir.path().join("chromedriver.log"));
    let _logs = FailureLogs { files };

    // The application, anonymous: to the provider's login page, and back with a session.
    page.goto(&format!("{external}/"))
        .await
        .expect("open the application");
    sign_in_at_the_provider(&page).await;
    wait_for_url(&page, "the application after the login", |u| {
        u.host_str() == Some(APP_HOST) && u.port() == Some(port) && u.path() == "/"
    })
    .await;
    let user = wait_for(&page, "#user").await.text().await.unwrap();
    assert_eq!(user, USERNAME, "the application names the user");
    let email = wait_for(&page, "#email").await.text().await.unwrap();
    assert_eq!(email, EMAIL);
    assert!(
        has_cookie(&page, &outpost.cookie_name).await,
        "the browser keeps the session cookie"
    );
    let cookie = page
        .get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name() == outpost.cookie_name)
        .unwrap();
    assert_eq!(cookie.http_only(), Some(true), "{cookie:?}");

    // Sign out: the outpost sends the browser to the provider's logout confirmation.
    page.find(Locator::Css("#sign-out"))
        .await
        .expect("the sign-out link")
        .click()
        .await
        .expect("click Sign out");
    wait_for_url(&page, "the provider's logout page", |u| {
        u.host_str() == Some(IDP_HOST) && u.path() == "/session/end"
    })
    .await;
    let title = wait_for(&page, "#logout-title").await.text().await.unwrap();
    assert!(
        title.contains(portcullis_tests::outpost_support::CLIENT_ID),
        "the provider recognised the outpost's id_token_hint: {title}"
    );
    page.find(Locator::Css("#logout-yes"))
        .await
        .expect("the confirmation button")
        .click()
        .await
        .expect("confirm the sign-out");
    wait_for_url(&page, "the provider's signed-out page", |u| {
        u.path() == "/session/end/success"
    })
    .await;
    wait_for(&page, "#logged-out").await;

    // The application again: the sessions at the outpost and at the provider are over, so the
    // browser lands on the provider's login page without reaching the application; a second
    // login works.
    let before = app.requests();
    page.goto(&format!("{external}/"))
        .await
        .expect("open the application again");
    wait_for_url(&page, "the provider's login page after the sign-out", |u| {
        u.host_str() == Some(IDP_HOST) && u.path().starts_with("/interaction/")
    })
    .await;
    assert_eq!(
        app.requests(),
        before,
        "nothing reached the application after the sign-out"
    );
    sign_in_at_the_provider(&page).await;
    wait_for_url(&page, "the application after the second login", |u| {
        u.host_str() == Some(APP_HOST) && u.path() == "/"
    })
    .await;
    assert_eq!(
        wait_for(&page, "#user").await.text().await.unwrap(),
        USERNAME
    );
    let _ = page.close().await;
    outpost.stop().await;
}
