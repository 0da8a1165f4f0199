//! `portcullis check-config`, `explain` / `access-control check-policy`, `completions` and the help
//! texts, run as processes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn portcullis() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.env_remove("PORTCULLIS_CONFIG")
        .env_remove("PORTCULLIS_SESSION_SECRET_FILE")
        .env_remove("AUTHELIA_SESSION_SECRET_FILE");
    cmd
}

fn quickstart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart/configuration.yml")
}

fn output(cmd: &mut Command, code: i32) -> (String, String) {
    let assert = cmd.assert().code(code);
    let output = assert.get_output();
    (
        String::from_utf8(output.stdout.clone()).unwrap(),
        String::from_utf8(output.stderr.clone()).unwrap(),
    )
}

/// A copy of the quickstart configuration (and its users file) in a scratch folder, edited.
fn quickstart_copy(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let source = quickstart();
    let folder = source.parent().unwrap();
    std::fs::copy(
        folder.join("users_database.yml"),
        dir.join("users_database.yml"),
    )
    .unwrap();
    let text = std::fs::read_to_string(&source).unwrap();
    let path = dir.join("configuration.yml");
    std::fs::write(&path, edit(text)).unwrap();
    path
}

#[test]
fn check_config_accepts_the_quickstart() {
    let (out, err) = output(
        portcullis()
            .arg("check-config")
            .arg("--config")
            .arg(quickstart()),
        0,
    );
    assert!(
        out.ends_with(
            "configuration.yml: valid (6 access rules, 2 users, 1 cookie domain, 1 OpenID Connect client, 0 warnings)\n"
        ),
        "{out}"
    );
    assert_eq!(err, "");
}

#[test]
fn check_config_reports_malformed_yaml_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = quickstart_copy(dir.path(), |text| {
        text.replace(
            "  default_policy: deny\n",
            "  default_policy: deny\n   rules: [\n",
        )
    });
    let (out, err) = output(portcullis().arg("check-config").arg("-c").arg(&path), 2);
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "{err}");
    let prefix = format!("error: {}:", path.display());
    assert!(err.starts_with(&prefix), "{err}");
    let line: usize = err[prefix.len()..]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no line number: {err}"));
    assert!((20..=24).contains(&line), "line {line}: {err}");
}

#[test]
fn check_config_names_an_unknown_rule_field_with_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = quickstart_copy(dir.path(), |text| {
        text.replacen(
            "    - domain: public.example.com",
            "    - domian: public.example.com",
            1,
        )
    });
    let typo_line = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .position(|l| l.contains("domian"))
        .unwrap()
        + 1;
    let (out, err) = output(portcullis().arg("check-config").arg("-c").arg(&path), 2);
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "{err}");
    let expected = format!(
        "error: {}:{typo_line}: access_control.rules[0]",
        path.display()
    );
    assert!(err.starts_with(&expected), "{err}");
    assert!(err.contains("unknown field `domian`"), "{err}");
}

#[test]
fn check_config_warns_about_authelia_sections_and_stays_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = quickstart_copy(dir.path(), |text| {
        text + "duo_api:\n  hostname: api-123.duosecurity.com\n"
    });
    let notifier_line = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .position(|l| l == "duo_api:")
        .unwrap()
        + 1;
    let (out, err) = output(portcullis().arg("check-config").arg("-c").arg(&path), 0);
    assert!(out.contains(": valid ("), "{out}");
    assert!(out.contains("1 warning)"), "{out}");
    assert_eq!(
        err,
        format!(
            "warning: {}:{notifier_line}: duo_api: not implemented by Portcullis; ignored: Duo push is not offered as a second factor\n",
            path.display()
        )
    );
}

#[test]
fn check_config_loads_the_users_file_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = quickstart_copy(dir.path(), |text| text);
    let users = dir.path().join("users_database.yml");
    let text = std::fs::read_to_string(&users).unwrap();
    std::fs::write(
        &users,
        text.replacen("$argon2id$", "$pbkdf2-sha512$310000$", 1),
    )
    .unwrap();
    let (out, err) = output(portcullis().arg("check-config").arg("-c").arg(&path), 2);
    assert_eq!(out, "");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("users_database.yml"), "{err}");
    assert!(err.contains("alice"), "{err}");

    // A missing file is one error line too.
    let (_, err) = output(
        portcullis()
            .arg("check-config")
            .arg("-c")
            .arg(dir.path().join("missing.yml")),
        2,
    );
    assert!(err.starts_with("error: ") && err.contains("missing.yml: cannot read"));
}

/// Runs `explain` (or its Authelia alias) with `--format json` and returns the document.
fn explain_json(alias: bool, url: &str, extra: &[&str]) -> serde_json::Value {
    let mut cmd = portcullis();
    if alias {
        cmd.args(["access-control", "check-policy"]);
    } else {
        cmd.arg("explain");
    }
    cmd.arg("--config")
        .arg(quickstart())
        .args(["--url", url, "--format", "json"])
        .args(extra);
    let (out, _) = output(&mut cmd, 0);
    serde_json::from_str(&out).unwrap()
}

/// URL, extra flags, expected deciding rule, policy and decision.
type Case<'a> = (&'a str, &'a [&'a str], Option<u64>, &'a str, &'a str);

#[test]
fn explain_json_decides_like_the_quickstart_rules_say() {
    // Quickstart rules (examples/quickstart/configuration.yml), default deny:
    //   0 public.example.com -> bypass
    //   1 app.example.com ^/public/ -> bypass
    //   2 app.example.com ^/admin([/?].*)?$ group:admins -> one_factor
    //   3 app.example.com ^/admin([/?].*)?$ -> deny
    //   4 secure.example.com -> two_factor
    //   5 *.example.com -> one_factor
    let admin = "https://app.example.com/admin";
    let cases: &[Case] = &[
        // alice is in admins: rule 2 matches.
        (
            admin,
            &["--username", "alice"],
            Some(2),
            "one_factor",
            "allow",
        ),
        (
            admin,
            &["--username", "alice", "--groups", "admins"],
            Some(2),
            "one_factor",
            "allow",
        ),
        // bob (dev only) fails rule 2's subject and lands on the deny.
        (admin, &["--username", "bob"], Some(3), "deny", "forbidden"),
        // Anonymous: rule 2 could match once logged in (potential match): log in first.
        (admin, &[], Some(2), "one_factor", "redirect_to_login"),
        // Same anonymous request, via the Authelia flags for a different path.
        (
            "https://app.example.com/public/logo.png",
            &[],
            Some(1),
            "bypass",
            "allow",
        ),
        (
            "https://wiki.example.com/",
            &[],
            Some(5),
            "one_factor",
            "redirect_to_login",
        ),
        (
            "https://wiki.example.com/",
            &["--username", "bob"],
            Some(5),
            "one_factor",
            "allow",
        ),
        // The quickstart's two_factor host: one factor is not enough.
        (
            "https://secure.example.com/",
            &["--username", "bob"],
            Some(4),
            "two_factor",
            "redirect_to_login",
        ),
        // Outside every rule: the default policy.
        (
            "https://example.org/",
            &["--username", "alice"],
            None,
            "deny",
            "forbidden",
        ),
    ];
    for (i, &(url, extra, rule, policy, decision)) in cases.iter().enumerate() {
        let json = explain_json(i % 2 == 1, url, extra);
        let context = format!("{url} {extra:?}: {json}");
        assert_eq!(json["rule"].as_u64(), rule, "{context}");
        assert_eq!(json["policy"], policy, "{context}");
        assert_eq!(json["decision"], decision, "{context}");
        assert_eq!(json["rules"].as_array().unwrap().len(), 6, "{context}");
    }

    let bob = explain_json(false, admin, &["--username", "bob"]);
    assert_eq!(bob["identity"]["groups"], serde_json::json!(["dev"]));
    assert_eq!(bob["identity"]["groups_from"], "users_file");
    assert_eq!(bob["identity"]["level"], "1fa");
    assert_eq!(bob["rules"][2]["matched"], false);
    assert_eq!(bob["rules"][2]["failed"], "subject");
    assert_eq!(bob["rules"][0]["failed"], "domain");
    assert_eq!(bob["rules"][1]["failed"], "resources");
    assert_eq!(bob["decided_by"], serde_json::json!({"rule": 3}));

    let anonymous = explain_json(false, admin, &[]);
    assert_eq!(anonymous["rules"][2]["potential"], true);
    assert_eq!(anonymous["rule_has_subject"], true);
    assert_eq!(anonymous["identity"]["level"], "none");

    let default = explain_json(false, "https://example.org/", &[]);
    assert_eq!(default["decided_by"], "default");
}

#[test]
fn explain_text_lists_every_rule_then_the_decision_and_the_answer() {
    let (out, err) = output(
        portcullis()
            .arg("explain")
            .arg("--config")
            .arg(quickstart())
            .args([
                "--url",
                "https://app.example.com/admin",
                "--username",
                "bob",
            ]),
        0,
    );
    assert_eq!(err, "");
    assert_eq!(
        out,
        "request: GET https://app.example.com/admin (client IP unknown)\n\
         identity: bob, groups dev (from the users file), logged in with one factor\n\
         resource: /admin\n\
         rules[0] bypass: no match (domain)\n\
         rules[1] bypass: no match (resources)\n\
         rules[2] one_factor: no match (subject)\n\
         rules[3] deny: match\n\
         rules[4] two_factor: no match (domain)\n\
         rules[5] one_factor: match\n\
         decision: rules[3] -> deny\n\
         answer: forbidden (403)\n"
    );

    let (out, _) = output(
        portcullis()
            .args(["access-control", "check-policy", "--config"])
            .arg(quickstart())
            .args([
                "--url",
                "https://app.example.com/admin?x=1",
                "--method",
                "post",
                "--ip",
                "192.0.2.7",
                "--verbose",
            ]),
        0,
    );
    assert!(
        out.starts_with("request: POST https://app.example.com/admin?x=1 (client IP 192.0.2.7)\nidentity: anonymous\nresource: /admin?x=1\n"),
        "{out}"
    );
    assert!(
        out.contains("rules[2] one_factor: match (potential: anonymous)\n"),
        "{out}"
    );
    assert!(
        out.ends_with(
            "decision: rules[2] -> one_factor (rule has subject)\nanswer: redirect to login\n"
        ),
        "{out}"
    );
}

#[test]
fn explain_levels_and_bad_input() {
    // Two factors are not needed by one_factor rules; --level 2fa still allows.
    let json = explain_json(
        false,
        "https://wiki.example.com/",
        &["--groups", "dev", "--level", "2fa"],
    );
    assert_eq!(json["identity"]["level"], "2fa");
    assert_eq!(json["identity"]["username"], serde_json::Value::Null);
    assert_eq!(json["identity"]["groups_from"], "flag");
    assert_eq!(json["decision"], "allow");
    // An unknown user has no groups.
    let json = explain_json(
        false,
        "https://app.example.com/admin",
        &["--username", "mallory"],
    );
    assert_eq!(json["identity"]["groups_from"], "none");
    assert_eq!(json["decision"], "forbidden");

    for (args, needle) in [
        (&["--url", "not a url"][..], "--url not a url"),
        (
            &["--url", "https://a.example.com/", "--method", "G E T"],
            "--method",
        ),
        (
            &[
                "--url",
                "https://a.example.com/",
                "--username",
                "a",
                "--level",
                "none",
            ],
            "--level none",
        ),
    ] {
        let (out, err) = output(
            portcullis()
                .arg("explain")
                .arg("--config")
                .arg(quickstart())
                .args(args),
            2,
        );
        assert_eq!(out, "");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: ") && err.contains(needle), "{err}");
    }
    portcullis()
        .args(["explain", "--url", "https://a.example.com/", "--config"])
        .arg("/nonexistent/configuration.yml")
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "error: /nonexistent/configuration.yml: cannot read",
        ));
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_portcullis()"),
        ("zsh", "#compdef portcullis"),
        ("fish", "complete -c portcullis"),
    ] {
        let (out, _) = output(portcullis().args(["completions", shell]), 0);
        assert!(
            out.contains(marker),
            "{shell}: {}",
            &out[..out.len().min(200)]
        );
        assert!(out.contains("hash-password"), "{shell}");
        assert!(out.contains("check-policy"), "{shell}");
    }
    portcullis().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn every_command_help_shows_an_example() {
    let commands: &[&[&str]] = &[
        &[],
        &["hash-password"],
        &["check-config"],
        &["explain"],
        &["crypto"],
        &["crypto", "hash"],
        &["crypto", "hash", "generate"],
        &["crypto", "hash", "generate", "argon2"],
        &["crypto", "hash", "validate"],
        &["access-control"],
        &["access-control", "check-policy"],
        &["sessions"],
        &["sessions", "list"],
        &["sessions", "revoke"],
        &["completions"],
    ];
    for path in commands {
        let (out, _) = output(portcullis().args(*path).arg("--help"), 0);
        assert!(out.contains("Examples:\n  portcullis "), "{path:?}:\n{out}");
    }
}

/// An Authelia file (no `portcullis:` section) gets a migration report before the summary; a
/// Portcullis file (the quickstart above) does not.
#[test]
fn check_config_reports_what_differs_for_an_authelia_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = quickstart_copy(dir.path(), |text| {
        let cut = text.find("\nportcullis:").unwrap();
        let rest = &text[cut + 1..];
        let end = rest[1..]
            .find("\n\n")
            .or_else(|| rest[1..].find("\n#"))
            .map_or(rest.len(), |i| i + 2);
        format!(
            "{}{}ntp:\n  address: udp://time.cloudflare.com:123\n",
            &text[..=cut],
            &rest[end..]
        )
        .replace(
            "  secret: 'quickstart-insecure-session-secret-change-me'\n",
            "",
        )
    });
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("portcullis:"), "{text}");
    let (out, _err) = output(portcullis().arg("check-config").arg("-c").arg(&path), 0);
    assert!(out.starts_with("Migrating from Authelia"), "{out}");
    assert!(
        out.contains("- ignored keys (see the warnings): ntp"),
        "{out}"
    );
    assert!(out.contains("believed only from 127.0.0.0/8"), "{out}");
    assert!(out.contains("Remote-User, Remote-Groups"), "{out}");
    assert!(out.contains("cached for 300 s"), "{out}");
    assert!(out.contains("session.secret is not set"), "{out}");
    assert!(out.lines().last().unwrap().contains(": valid ("), "{out}");
}

/// The quickstart with its users in a directory nobody answers at.
fn quickstart_with_directory(dir: &Path) -> (PathBuf, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = quickstart_copy(dir, |text| {
        text.replace(
            "  file:\n    path: users_database.yml\n    watch: true\n    search:\n      email: true\n      case_insensitive: true\n",
            &format!("  ldap:\n    address: 'ldap://127.0.0.1:{port}'\n    implementation: rfc2307bis\n    timeout: 1s\n    base_dn: 'dc=example,dc=com'\n    user: 'cn=svc,dc=example,dc=com'\n    password: 'secret'\n"),
        )
    });
    (path, port)
}

#[test]
fn with_users_in_a_directory_check_config_reads_files_only_and_explain_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (path, port) = quickstart_with_directory(dir.path());
    let (out, _) = output(
        portcullis().arg("check-config").arg("--config").arg(&path),
        0,
    );
    assert!(
        out.contains(&format!(
            "valid (6 access rules, users in ldap://127.0.0.1:{port}, 1 cookie domain"
        )),
        "{out}"
    );
    // Who john is cannot be told without the directory: an error, never "not a user".
    let (_, err) = output(
        portcullis()
            .arg("explain")
            .arg("--config")
            .arg(&path)
            .args(["--url", "https://app.example.com/", "--username", "john"]),
        1,
    );
    assert!(err.contains(&format!("ldap://127.0.0.1:{port}")), "{err}");
    assert!(err.contains("unavailable"), "{err}");
}
