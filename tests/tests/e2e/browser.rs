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
