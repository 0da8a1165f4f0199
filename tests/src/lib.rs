//! End-to-end harness: `portcullis-verify` behind real reverse proxies (nginx, Caddy, HAProxy from
//! Debian's packages) and its portal in headless Chromium.
//!
//! A test builds a [`Stack`]: its own temporary directory, free ports, a per-run certificate for
//! `example.com` and `*.example.com`, a recording [`upstream::Upstream`] application, an in-process
//! `portcullis-verify` and one proxy started from the example configuration in `examples/proxies/`
//! (rendered by [`proxy`]). Processes stop when the stack is dropped, also when the test panics; the
//! programs' logs are printed when it panics.
//!
//! Missing programs: with the `CI` environment variable set the test fails; otherwise it prints
//! `SKIPPED (missing nginx): <test>` and appends the same line to the skip file
//! ([`process::skip_file`]), which `scripts/test` prints after the run.
//!
//! The parts compose for other set-ups (several replicas, Redis): [`process::Process`] runs any
//! program with its logs, [`process::free_port`] and [`tls::write`] prepare it, [`verify::Verify::serve`]
//! serves any `AppState` (another session store), [`proxy::render`] renders an example file, and
//! [`client::Client`] reaches a proxy port under the `example.com` names. [`outpost`] does the same
//! for portcullis-outpost and the examples of `examples/outpost/`.
//!
//! ```no_run
//! # async fn f() {
//! use portcullis_tests::{Proxy, Stack, StackOptions};
//! let Some(stack) = Stack::start(Proxy::Nginx, StackOptions::default()).await else { return };
//! let reply = stack.client.get("app", "/").send().await;
//! assert_eq!(reply.status, 302);
//! # }
//! ```

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
// Test code only: a failed expectation panics with its reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_debug_implementations
)]

pub mod browser;
pub mod client;
pub mod fake_directory;
pub mod ldap;
pub mod outpost;
pub mod outpost_support;
pub mod process;
pub mod proxy;
pub mod smtp;
pub mod stack;
pub mod tls;
pub mod upstream;
pub mod verify;

pub use client::{Client, Reply};
pub use proxy::Proxy;
pub use stack::{Stack, StackOptions};
pub use upstream::Seen;

/// The users of `examples/quickstart/users_database.yml`.
pub mod users {
    /// alice: groups `admins`, `dev`.
    pub const ALICE: (&str, &str) = ("alice", "alice-portcullis");
    /// bob: group `dev`.
    pub const BOB: (&str, &str) = ("bob", "bob-portcullis");
}
