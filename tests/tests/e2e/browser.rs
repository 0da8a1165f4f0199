//! Item 9: the portal in headless Chromium, through nginx.

use std::io::Write;

use fantoccini::Locator;
use portcullis_tests::browser::{self, wait_for, wait_for_url};
use portcullis_tests::users::ALICE;
use portcullis_tests::{Proxy, Stack, StackOptions};

#[tokio::test]
async fn portal_login_wrong_password_and_logout_in_chromium_through_nginx() {
    let options = StackOptions {
        also_needs: browser::PROGRAMS.to_vec(),
        ..StackOptions::default()
    };
    let Some(mut stack) = Stack::start(Proxy::Nginx, options).await else {
        return;
    };
    stack.keep_dir();
    let port = stack.client.port;
    let page = browser::open(&mut stack).await;
    let protected = format!("https://app.example.com:{port}/dashboard?from=browser");

    // A protected URL lands on the portal, with the target in rd.
    page.goto(&protected).await.expect("open the protected URL");
    let url = wait_for_url(&page, "the portal", |u| {
        u.host_str() == Some("auth.example.com")
    })
    .await;
    let rd = url
        .query_pairs()
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned());
    assert_eq!(rd.as_deref(), Some(protected.as_str()), "portal URL {url}");
    wait_for(&page, "#username").await;
    let screenshot = stack.dir.join("login-page.png");
    std::fs::write(&screenshot, page.screenshot().await.expect("screenshot"))
        .expect("write the screenshot");
    // Straight to stderr: libtest hides eprintln! output of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "login page screenshot: {}",
        screenshot.display()
    );

    // A wrong password shows the error and keeps the form.
    sign_in(&page, ALICE.0, "not-her-password").await;
    let error = wait_for(&page, "#error").await;
    assert_eq!(
        error.text().await.expect("error text").trim(),
        "Incorrect username or password."
    );

    // The right password ends on the protected page, showing the application's answer.
    sign_in(&page, ALICE.0, ALICE.1).await;
    let url = wait_for_url(&page, "the protected page", |u| {
        u.host_str() == Some("app.example.com")
    })
    .await;
    assert_eq!(url.as_str(), protected);
    let body = wait_for(&page, "body")
        .await
        .text()
        .await
        .expect("page text");
    let seen: portcullis_tests::Seen =
        serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(seen.uri, "/dashboard?from=browser");
    assert_eq!(seen.one("remote-user"), Some("alice"));
    assert_eq!(seen.one("remote-groups"), Some("admins,dev"));

    // The portal shows who is signed in; "Sign out" brings the login form back.
    page.goto(&format!("https://auth.example.com:{port}/"))
        .await
        .expect("open the portal");
    let whoami = wait_for(&page, "#whoami").await.text().await.expect("text");
    assert!(whoami.contains("alice"), "{whoami}");
    page.find(Locator::Css("#logout"))
        .await
        .expect("Sign out button")
        .click()
        .await
        .expect("click Sign out");
    wait_for(&page, "#username").await;
    let title = page.title().await.expect("title");
    assert!(title.starts_with("Sign in"), "{title}");

    // And the protected URL is guarded again.
    page.goto(&protected).await.expect("open the protected URL");
    wait_for_url(&page, "the portal after logout", |u| {
        u.host_str() == Some("auth.example.com")
    })
    .await;
    wait_for(&page, "#username").await;

    page.close().await.expect("close the browser");
}

async fn sign_in(page: &fantoccini::Client, user: &str, password: &str) {
    let username = wait_for(page, "#username").await;
    username.clear().await.expect("clear username");
    username.send_keys(user).await.expect("type username");
    let field = page
        .find(Locator::Css("#password"))
        .await
        .expect("password field");
    field.send_keys(password).await.expect("type password");
    page.find(Locator::Css("#sign-in"))
        .await
        .expect("Sign in button")
        .click()
        .await
        .expect("click Sign in");
}

async fn click(page: &fantoccini::Client, css: &str) {
    wait_for(page, css)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn type_into(page: &fantoccini::Client, css: &str, text: &str) {
    wait_for(page, css)
        .await
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
}

/// docs/reference/second-factor.md §7 item 9: a two_factor page through nginx; the TOTP app
/// registered on the settings page (mailed code, QR code, the app's first code) and the code
/// typed on the login page, all in Chromium without any script of ours.
#[tokio::test]
async fn totp_registered_on_the_settings_page_opens_a_two_factor_page_in_chromium() {
    use portcullis_second_factor::totp::{
        Algorithm, Digits, Period, TotpParameters, TotpSecret, hotp,
    };
    let options = StackOptions {
        also_needs: browser::PROGRAMS.to_vec(),
        second_factor: true,
        ..StackOptions::default()
    };
    let Some(mut stack) = Stack::start(Proxy::Nginx, options).await else {
        return;
    };
    let port = stack.client.port;
    let page = browser::open(&mut stack).await;
    let secure = format!("https://app.example.com:{port}/secure/area");

    // One factor is not enough: after the password the portal says no device is registered.
    page.goto(&secure).await.expect("open the two-factor page");
    sign_in(&page, ALICE.0, ALICE.1).await;
    wait_for(&page, "#no-second-factor").await;
    click(&page, "#settings").await;

    // Elevate with the code from the notification file, then register.
    click(&page, "#send-code").await;
    wait_for(&page, "#notice").await;
    let mail = std::fs::read_to_string(stack.dir.join("notification.txt")).expect("notification");
    let pattern = regex::Regex::new(r"-{40}\n\n([A-Z0-9]{6,20})\n\n-{40}").unwrap();
    let code = pattern.captures(&mail).expect("a code in the mail")[1].to_owned();
    type_into(&page, "#one-time-code", &code).await;
    click(&page, "#confirm-code").await;
    click(&page, "#totp-begin").await;
    let key = wait_for(&page, "#totp-secret")
        .await
        .text()
        .await
        .expect("key");
    wait_for(&page, "#totp-qr svg").await;
    let secret = TotpSecret::from_base32(key.trim()).expect("a base32 key");
    let p = TotpParameters {
        algorithm: Algorithm::Sha1,
        digits: Digits::SIX,
        period: Period::THIRTY,
    };
    let now = portcullis_server_core::clock::unix_now();
    let counter = now / 30;
    type_into(
        &page,
        "#totp-code",
        &hotp(&secret, counter, p.algorithm, p.digits),
    )
    .await;
    click(&page, "#totp-finish").await;
    let notice = wait_for(&page, "#notice")
        .await
        .text()
        .await
        .expect("notice");
    assert_eq!(notice.trim(), "The app is registered.");

    // The two-factor page now asks for the code and then opens. The registration used the
    // current window, so the next one is typed (one step of skew allows it).
    page.goto(&secure)
        .await
        .expect("open the two-factor page again");
    type_into(
        &page,
        "#totp-code",
        &hotp(&secret, counter + 1, p.algorithm, p.digits),
    )
    .await;
    click(&page, "#verify").await;
    let url = wait_for_url(&page, "the two-factor page", |u| {
        u.host_str() == Some("app.example.com")
    })
    .await;
    assert_eq!(url.as_str(), secure);
    let body = wait_for(&page, "body")
        .await
        .text()
        .await
        .expect("page text");
    let seen: portcullis_tests::Seen =
        serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(seen.uri, "/secure/area");
    assert_eq!(seen.one("remote-user"), Some("alice"));
}

/// Elevate the session on the settings page with the code from the notification file.
async fn elevate_on_settings(page: &fantoccini::Client, stack: &Stack) {
    click(page, "#send-code").await;
    wait_for(page, "#notice").await;
    let mail = std::fs::read_to_string(stack.dir.join("notification.txt")).expect("notification");
    let pattern = regex::Regex::new(r"-{40}\n\n([A-Z0-9]{6,20})\n\n-{40}").unwrap();
    let code = pattern
        .captures_iter(&mail)
        .last()
        .expect("a code in the mail")[1]
        .to_owned();
    type_into(page, "#one-time-code", &code).await;
    click(page, "#confirm-code").await;
}

async fn assert_on_secure_page(page: &fantoccini::Client, secure: &str) {
    let url = wait_for_url(page, "the two-factor page", |u| {
        u.host_str() == Some("app.example.com")
    })
    .await;
    assert_eq!(url.as_str(), secure);
    let body = wait_for(page, "body")
        .await
        .text()
        .await
        .expect("page text");
    let seen: portcullis_tests::Seen =
        serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(seen.uri, "/secure/area");
    assert_eq!(seen.one("remote-user"), Some("alice"));
}

async fn sign_out(page: &fantoccini::Client, port: u16) {
    page.goto(&format!("https://auth.example.com:{port}/"))
        .await
        .expect("open the portal");
    click(page, "#logout").await;
    wait_for(page, "#username").await;
}

/// docs/reference/second-factor.md §2 in a real browser: Chromium's WebDriver virtual
/// authenticator (CTAP2, resident keys, user verification) registers a passkey on the settings
/// page, then logs in with it (the password is the second factor of a passkey login) and opens a
/// two_factor page through nginx; then a password login with the same credential as the second
/// factor opens it too.
#[tokio::test]
async fn a_passkey_registered_in_chromium_logs_in_and_opens_a_two_factor_page() {
    let options = StackOptions {
        also_needs: browser::PROGRAMS.to_vec(),
        second_factor: true,
        ..StackOptions::default()
    };
    let Some(mut stack) = Stack::start(Proxy::Nginx, options).await else {
        return;
    };
    let port = stack.client.port;
    let page = browser::open(&mut stack).await;
    let authenticator = browser::add_virtual_authenticator(&page).await;
    let secure = format!("https://app.example.com:{port}/secure/area");

    // Register: password, elevation, then the passkey on the settings page.
    page.goto(&secure).await.expect("open the two-factor page");
    sign_in(&page, ALICE.0, ALICE.1).await;
    wait_for(&page, "#no-second-factor").await;
    click(&page, "#settings").await;
    elevate_on_settings(&page, &stack).await;
    type_into(&page, "#webauthn-description", "Laptop passkey").await;
    click(&page, "#webauthn-register-button").await;
    let notice = wait_for(&page, "#notice")
        .await
        .text()
        .await
        .expect("notice");
    assert_eq!(notice.trim(), "The security key is registered.");
    let listed = wait_for(&page, "#webauthn-list")
        .await
        .text()
        .await
        .expect("list");
    assert!(listed.contains("Laptop passkey (passkey)"), "{listed}");
    let held = browser::virtual_credentials(&page, &authenticator).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["rpId"], "auth.example.com");
    assert_eq!(held[0]["isResidentCredential"], true);

    // Log out; log in with the passkey; the password completes two factors.
    sign_out(&page, port).await;
    page.goto(&secure).await.expect("open the two-factor page");
    click(&page, "#passkey-sign-in").await;
    type_into(&page, "#second-password", ALICE.1).await;
    click(&page, "#verify-password").await;
    assert_on_secure_page(&page, &secure).await;

    // Log out; a password login takes the same credential as its second factor.
    sign_out(&page, port).await;
    page.goto(&secure).await.expect("open the two-factor page");
    sign_in(&page, ALICE.0, ALICE.1).await;
    click(&page, "#webauthn-sign-in").await;
    assert_on_secure_page(&page, &secure).await;
    let held = browser::virtual_credentials(&page, &authenticator).await;
    assert!(
        held[0]["signCount"].as_u64().unwrap_or(0) >= 2,
        "two assertions: {held:?}"
    );

    page.close().await.expect("close the browser");
}
