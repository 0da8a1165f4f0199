//! Build-time settings of the `portcullis-verify` binary:
//!
//! - the version string `--version` prints: the crate version and the git commit it was built from;
//! - the function order the linker lays the binary out in (`link-order.txt`, written by
//!   `scripts/link-order`): what start-up and the request paths run sits together, so the pages the
//!   kernel maps around them are few (BENCHMARKS.md "Fifth round").

fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!(
        "cargo:rustc-env=PORTCULLIS_VERSION={} (commit {commit})",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default()
    );
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs/heads");
    link_order();
}

/// Pass `link-order.txt` to the linker when the linker is the one that reads it: rustc's own lld,
/// the default for x86_64 Linux since Rust 1.90. A configured linker (`-C linker`, a
/// `CARGO_TARGET_*_LINKER`) may be GNU ld, which has no `--symbol-ordering-file`, so it gets the
/// default layout. `PORTCULLIS_LINK_ORDER=0` turns the order off.
fn link_order() {
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=PORTCULLIS_LINK_ORDER");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    let env = |key: &str| std::env::var(key).unwrap_or_default();
    let default_lld = env("TARGET") == "x86_64-unknown-linux-gnu"
        && env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_empty()
        && !env("CARGO_ENCODED_RUSTFLAGS").contains("linker");
    let order = std::path::PathBuf::from(env("CARGO_MANIFEST_DIR")).join("link-order.txt");
    let used = default_lld && env("PORTCULLIS_LINK_ORDER") != "0" && order.is_file();
    // tests/link_order.rs checks the layout, and fails when the order was not passed.
    println!(
        "cargo:rustc-env=PORTCULLIS_LINK_ORDER_USED={}",
        if used { "1" } else { "0" }
    );
    if !used {
        return;
    }
    println!(
        "cargo:rustc-link-arg-bin=portcullis-verify=-Wl,--symbol-ordering-file={}",
        order.display()
    );
    // The file names functions by their mangled names; one that no longer exists is skipped.
    println!("cargo:rustc-link-arg-bin=portcullis-verify=-Wl,--no-warn-symbol-ordering");
}
