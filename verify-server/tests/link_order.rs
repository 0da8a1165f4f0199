//! The binary is laid out in the order of `link-order.txt` (verify-server/build.rs,
//! `scripts/link-order`): the functions it lists come first in the text, in the file's order. This
//! is what keeps the idle RSS low (BENCHMARKS.md "Fifth round"); a build that stopped passing the
//! file to the linker would scatter them again.
//!
//! Reads the symbol table with `nm` (binutils, which the C toolchain Rust links with brings).

#![allow(clippy::expect_used)]

use std::collections::HashMap;
use std::process::Command;

/// Function symbols of `binary`: name → address.
fn functions(binary: &str) -> HashMap<String, u64> {
    let out = Command::new("nm")
        .args(["--defined-only", binary])
        .output()
        .expect("nm (binutils) must be installed to check the layout");
    assert!(
        out.status.success(),
        "nm failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("nm prints UTF-8")
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (address, kind, name) = (fields.next()?, fields.next()?, fields.next()?);
            matches!(kind, "t" | "T" | "w" | "W")
                .then(|| Some((name.to_owned(), u64::from_str_radix(address, 16).ok()?)))
                .flatten()
        })
        .collect()
}

#[test]
fn listed_functions_come_first_in_the_files_order() {
    assert_eq!(
        env!("PORTCULLIS_LINK_ORDER_USED"),
        "1",
        "build.rs did not pass link-order.txt to the linker (another linker, or \
         PORTCULLIS_LINK_ORDER=0)"
    );
    let order = include_str!("../link-order.txt");
    let listed: Vec<&str> = order.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        listed.len() > 1000,
        "link-order.txt lists {} functions",
        listed.len()
    );

    let functions = functions(env!("CARGO_BIN_EXE_portcullis-verify"));
    let placed: Vec<u64> = listed
        .iter()
        .filter_map(|name| functions.get(*name).copied())
        .collect();
    // A debug build inlines differently, so it defines only some of the listed functions; a
    // release build defines all of them (scripts/link-order keeps only those).
    assert!(
        placed.len() >= 200,
        "only {} of the {} listed functions are in the binary",
        placed.len(),
        listed.len()
    );
    let ascending = placed.windows(2).filter(|w| w[0] <= w[1]).count();
    assert!(
        ascending * 100 >= (placed.len() - 1) * 99,
        "only {ascending} of {} consecutive listed functions are in the file's order",
        placed.len() - 1
    );
    // The listed functions lead the text: few unlisted ones sit below the last listed one.
    let last_listed = placed.iter().copied().max().unwrap_or(0);
    let listed_names: std::collections::HashSet<&str> = listed.iter().copied().collect();
    let unlisted = functions
        .iter()
        .filter(|(name, _)| !listed_names.contains(name.as_str()));
    let (below, total) = unlisted.fold((0usize, 0usize), |(below, total), (_, &address)| {
        (below + usize::from(address < last_listed), total + 1)
    });
    assert!(
        below * 20 < total,
        "{below} of {total} unlisted functions sit among the listed ones"
    );
}
