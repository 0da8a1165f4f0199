//! `portcullis hash-password`, `crypto hash generate argon2` and `crypto hash validate`, run as
//! processes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;
use portcullis_auth::users::Digest;
use predicates::prelude::*;

/// Authelia's documented digest of "password" (argon2id, m=65536, t=3, p=4).
const AUTHELIA_DIGEST: &str = "$argon2id$v=19$m=65536,t=3,p=4$2ohUAfh9yetl+utr4tLcCQ$AsXx0VlwjvNnCsa70u4HKZvFkC8Gwajr2pHGKcND/xs";

fn portcullis() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.env_remove("PORTCULLIS_CONFIG");
    cmd
}

fn stdout_of(cmd: &mut Command) -> String {
    let output = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(output).unwrap()
}

/// `$argon2id$v=19$m=…,t=…,p=…$<salt>$<key>` split into its parts.
fn phc_parts(digest: &str) -> (String, String, Vec<u8>, Vec<u8>) {
    use base64::Engine;
    let parts: Vec<&str> = digest.split('$').collect();
    assert_eq!(parts.len(), 6, "{digest}");
    assert_eq!(parts[0], "");
    assert_eq!(parts[2], "v=19");
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    (
        parts[1].to_owned(),
        parts[3].to_owned(),
        b64.decode(parts[4]).unwrap(),
        b64.decode(parts[5]).unwrap(),
    )
}

#[test]
fn hash_password_prints_an_authelia_digest_that_verifies() {
    let out = stdout_of(portcullis().args(["hash-password", "--password", "correct horse"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    let digest = lines[0].strip_prefix("Digest: ").unwrap();
    let (variant, params, salt, key) = phc_parts(digest);
    assert_eq!(variant, "argon2id");
    assert_eq!(params, "m=65536,t=3,p=4");
    assert_eq!((salt.len(), key.len()), (16, 32));
    let parsed = Digest::parse(digest).unwrap();
    assert!(parsed.verify("correct horse"));
    assert!(!parsed.verify("correct horse "));

    // A fresh salt every time.
    let again = stdout_of(portcullis().args(["hash-password", "--password", "correct horse"]));
    assert_ne!(out, again);
}

#[test]
fn authelia_command_path_and_random_password() {
    let out = stdout_of(portcullis().args([
        "crypto",
        "hash",
        "generate",
        "argon2",
        "--random",
        "--random.length",
        "24",
        "--random.charset",
        "numeric",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let password = lines[0].strip_prefix("Random Password: ").unwrap();
    assert_eq!(password.len(), 24);
    assert!(password.bytes().all(|b| b.is_ascii_digit()), "{password}");
    let digest = lines[1].strip_prefix("Digest: ").unwrap();
    assert!(Digest::parse(digest).unwrap().verify(password));

    let default = stdout_of(portcullis().args(["hash-password", "--random"]));
    let password = default.lines().next().unwrap();
    let password = password.strip_prefix("Random Password: ").unwrap();
    assert_eq!(password.len(), 72);
    assert!(password.bytes().all(|b| b.is_ascii_alphanumeric()));
}

#[test]
fn variant_and_parameter_flags_are_in_the_phc_string() {
    for (flags, variant, params, salt_len, key_len) in [
        (
            &["-v", "argon2i", "-i", "2", "-m", "1024", "-p", "2"][..],
            "argon2i",
            "m=1024,t=2,p=2",
            16,
            32,
        ),
        (
            &[
                "--variant",
                "argon2d",
                "--iterations",
                "1",
                "--memory",
                "512",
                "--parallelism",
                "1",
                "--key-size",
                "64",
                "--salt-size",
                "8",
            ],
            "argon2d",
            "m=512,t=1,p=1",
            8,
            64,
        ),
        // The profile is the base, explicit flags override it (as Authelia's).
        (
            &["--profile", "recommended", "-m", "2048", "-s", "24"],
            "argon2id",
            "m=2048,t=1,p=4",
            24,
            32,
        ),
        (
            &[
                "--profile",
                "low-memory",
                "-i",
                "1",
                "-m",
                "256",
                "-k",
                "16",
            ],
            "argon2id",
            "m=256,t=1,p=4",
            16,
            16,
        ),
    ] {
        let out = stdout_of(
            portcullis()
                .args(["hash-password", "--password", "pw"])
                .args(flags),
        );
        let digest = out.trim_end().strip_prefix("Digest: ").unwrap();
        let (v, p, salt, key) = phc_parts(digest);
        assert_eq!((v.as_str(), p.as_str()), (variant, params), "{flags:?}");
        assert_eq!((salt.len(), key.len()), (salt_len, key_len), "{flags:?}");
        assert!(Digest::parse(digest).unwrap().verify("pw"), "{flags:?}");
    }
}

#[test]
fn bad_parameters_are_one_line_errors() {
    for (flags, needle) in [
        (&["-k", "8"][..], "--key-size 8"),
        (&["-s", "100"], "--salt-size 100"),
        (&["-p", "4", "-m", "16"], "--memory 16"),
    ] {
        let assert = portcullis()
            .args(["hash-password", "--password", "pw"])
            .args(flags)
            .assert()
            .code(2)
            .stdout("");
        let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
    portcullis()
        .args(["hash-password", "-v", "argon3"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("argon3"));
}

#[test]
fn a_piped_password_is_read_as_one_line() {
    let out = stdout_of(
        portcullis()
            .args(["hash-password", "-m", "256", "-i", "1"])
            .write_stdin("piped secret\nsecond line ignored\n"),
    );
    let digest = out.trim_end().strip_prefix("Digest: ").unwrap();
    let parsed = Digest::parse(digest).unwrap();
    assert!(parsed.verify("piped secret"));
    // No prompt on a pipe: standard output holds the digest only.
    assert_eq!(out.lines().count(), 1);

    portcullis()
        .args(["hash-password"])
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error: no password provided"));
}

#[test]
fn validate_match_mismatch_and_invalid_digest() {
    portcullis()
        .args(["crypto", "hash", "validate", "--password", "password", "--"])
        .arg(AUTHELIA_DIGEST)
        .assert()
        .success()
        .stdout("The password matches the digest.\n");
    portcullis()
        .args(["crypto", "hash", "validate", "--password", "Password", "--"])
        .arg(AUTHELIA_DIGEST)
        .assert()
        .code(1)
        .stdout("The password does not match the digest.\n");
    // The password from a pipe.
    portcullis()
        .args(["crypto", "hash", "validate", "--", AUTHELIA_DIGEST])
        .write_stdin("password\n")
        .assert()
        .success()
        .stdout("The password matches the digest.\n");
    for (digest, needle) in [
        ("plaintext", "not a crypt-style digest"),
        (
            "$argon2id$v=19$m=65536,t=3,p=4$!!$AAAA",
            "malformed argon2 digest",
        ),
        (
            "$scrypt$ln=16,r=8,p=1$c2FsdA$aGFzaA",
            "unsupported digest family",
        ),
    ] {
        let assert = portcullis()
            .args([
                "crypto",
                "hash",
                "validate",
                "--password",
                "x",
                "--",
                digest,
            ])
            .assert()
            .code(2)
            .stdout("");
        let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: invalid digest: "), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
}

#[test]
fn a_generated_digest_validates_with_the_validate_command() {
    let out =
        stdout_of(portcullis().args(["hash-password", "--password", "round trip", "-m", "512"]));
    let digest = out.trim_end().strip_prefix("Digest: ").unwrap().to_owned();
    portcullis()
        .args([
            "crypto",
            "hash",
            "validate",
            "--password",
            "round trip",
            "--",
        ])
        .arg(&digest)
        .assert()
        .success();
}

/// Read from `reader` until `needle` has been seen; returns everything read.
fn read_until(reader: &mut impl std::io::Read, seen: &mut Vec<u8>, needle: &str) {
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(seen).contains(needle) {
        let n = reader.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "end of output before {needle:?}: {}",
            String::from_utf8_lossy(seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn a_terminal_is_asked_twice_without_echo() {
    use std::io::Write;
    use std::process::{Command as Process, Stdio};
    // `script` (util-linux) runs the command on a pseudo-terminal.
    if Process::new("script").arg("--version").output().is_err() {
        eprintln!("script(1) not installed: skipping the terminal case");
        return;
    }
    let command = format!(
        "{} hash-password -m 256 -i 1",
        env!("CARGO_BIN_EXE_portcullis")
    );
    let mut child = Process::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    // The prompt is written just before echo is turned off (as in Authelia's and most prompts):
    // answer only after a pause, as a person would.
    let pause = std::time::Duration::from_millis(500);
    read_until(&mut stdout, &mut seen, "Enter Password: ");
    std::thread::sleep(pause);
    stdin.write_all(b"tty-secret\r").unwrap();
    read_until(&mut stdout, &mut seen, "Confirm Password: ");
    std::thread::sleep(pause);
    stdin.write_all(b"tty-secret\r").unwrap();
    read_until(&mut stdout, &mut seen, "Digest: ");
    std::io::Read::read_to_end(&mut stdout, &mut seen).unwrap();
    assert!(child.wait().unwrap().success());
    let text = String::from_utf8(seen).unwrap();
    assert!(
        !text.contains("tty-secret"),
        "the password was echoed: {text}"
    );
    let digest = text
        .split("Digest: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert!(Digest::parse(digest).unwrap().verify("tty-secret"));
}
