//! Several files, folders, filters and `AUTHELIA_*` variables, assembled as Authelia does.

use std::path::PathBuf;

use super::*;
use crate::config::{LogLevel, load_all};

const BASE: &str = "\
authentication_backend:
  file:
    path: users.yml
access_control:
  default_policy: one_factor
session:
  secret: a-long-enough-secret
  cookies:
    - domain: example.com
      authelia_url: https://auth.example.com
";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn options(vars: &[(&str, &str)]) -> LoadOptions {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    LoadOptions::from_variables(&vars).unwrap()
}

#[test]
fn later_files_win_and_folders_load_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "a.yml", BASE);
    let extra = write(
        dir.path(),
        "b.yml",
        "log:\n  level: debug\naccess_control:\n  default_policy: two_factor\n",
    );
    let (c, _) = load_all(&[base.clone(), extra.clone()], &options(&[])).unwrap();
    assert_eq!(c.log_level, LogLevel::Debug);
    assert_eq!(
        c.policy.default_level(),
        portcullis_core::RequiredLevel::TwoFactor
    );
    assert_eq!(
        c.users.file().expect("a users file"),
        dir.path().join("users.yml"),
        "paths from the first file's folder"
    );
    // The same two files as a folder: name order, so b.yml wins again.
    let folder = dir.path().join("conf.d");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(&base, folder.join("10-base.yml")).unwrap();
    std::fs::copy(&extra, folder.join("20-extra.yaml")).unwrap();
    std::fs::write(folder.join("notes.txt"), "not configuration").unwrap();
    assert_eq!(
        expand_paths(std::slice::from_ref(&folder)).unwrap().len(),
        2
    );
    let (c, _) = load_all(&[folder], &options(&[])).unwrap();
    assert_eq!(c.log_level, LogLevel::Debug);
}

#[test]
fn a_conflict_names_both_files_and_errors_name_the_defining_file() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "a.yml", BASE);
    let clash = write(dir.path(), "b.yml", "session: just-a-string\n");
    let e = load_all(&[base.clone(), clash.clone()], &options(&[])).unwrap_err();
    assert_eq!(e.key, "session");
    assert!(
        e.message.contains("a.yml") && e.message.contains("b.yml"),
        "{e}"
    );
    let typo = write(dir.path(), "c.yml", "log:\n  levl: debug\n");
    let e = load_all(&[base, typo.clone()], &options(&[])).unwrap_err();
    assert_eq!(e.file, typo, "{e}");
    assert_eq!(e.line, Some(2), "{e}");
}

#[test]
fn variables_set_any_key_and_win_over_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "a.yml", &format!("{BASE}log:\n  level: info\n"));
    let (c, warnings) = load_all(
        std::slice::from_ref(&base),
        &options(&[
            ("AUTHELIA_LOG_LEVEL", "debug"),
            ("AUTHELIA_REGULATION_MAX_RETRIES", "7"),
            ("AUTHELIA_SERVER_BUFFERS_READ", "8192"),
            ("HOME", "/root"),
        ]),
    )
    .unwrap();
    assert_eq!(c.log_level, LogLevel::Debug);
    assert_eq!(c.regulation.max_retries, 7);
    assert!(
        warnings.iter().any(|w| w.key == "server.buffers"),
        "an Authelia key Portcullis ignores is a warning, as in the file: {warnings:?}"
    );
    let e = load_all(
        std::slice::from_ref(&base),
        &options(&[("AUTHELIA_LOG_LEVL", "debug")]),
    )
    .unwrap_err();
    assert_eq!(e.key, "AUTHELIA_LOG_LEVL");
    assert!(e.message.contains("maps to no configuration key"), "{e}");
    let e = load_all(
        std::slice::from_ref(&base),
        &options(&[("AUTHELIA_LOG_LEVEL", "chatty")]),
    )
    .unwrap_err();
    assert_eq!(e.key, "log.level", "{e}");
}

#[test]
fn secret_keys_come_from_file_variables() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "a.yml", BASE);
    let jwt = write(dir.path(), "jwt", "a-jwt-secret-from-a-file\n");
    let jwt = jwt.to_str().unwrap();
    let (config, warnings) = load_all(
        std::slice::from_ref(&base),
        &options(&[(
            "AUTHELIA_IDENTITY_VALIDATION_RESET_PASSWORD_JWT_SECRET_FILE",
            jwt,
        )]),
    )
    .unwrap();
    // The secret arrives from the file, trimmed, and turns password reset on.
    assert!(warnings.is_empty(), "{warnings:?}");
    let reset = config.second_factor.reset.expect("password reset is on");
    assert_eq!(reset.secret.expose(), "a-jwt-secret-from-a-file");
    // Only secret keys have _FILE variables.
    let e = load_all(
        std::slice::from_ref(&base),
        &options(&[("AUTHELIA_LOG_LEVEL_FILE", jwt)]),
    )
    .unwrap_err();
    assert_eq!(e.key, "AUTHELIA_LOG_LEVEL_FILE");
    // The session secret's own variable is read by the secret sources, not as a key.
    let secret = write(dir.path(), "session", "a-session-secret-from-its-file\n");
    let o = options(&[("AUTHELIA_SESSION_SECRET_FILE", secret.to_str().unwrap())]);
    assert!(o.variables.is_empty());
    let (c, _) = load_all(std::slice::from_ref(&base), &o).unwrap();
    assert_eq!(
        c.session_secret.as_ref().map(|s| s.expose()),
        Some("a-session-secret-from-its-file")
    );
}

#[test]
fn filters_run_on_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(dir.path(), "policy", "two_factor\n");
    let text = BASE.replace(
        "default_policy: one_factor",
        &format!("default_policy: {{{{ secret \"{}\" }}}}", policy.display()),
    );
    let base = write(dir.path(), "a.yml", &text);
    let o = options(&[("X_AUTHELIA_CONFIG_FILTERS", "template")]);
    assert_eq!(o.filters, vec![Filter::Template]);
    let (c, _) = load_all(std::slice::from_ref(&base), &o).unwrap();
    assert_eq!(
        c.policy.default_level(),
        portcullis_core::RequiredLevel::TwoFactor
    );
    let broken = write(dir.path(), "b.yml", "log:\n  level: {{ nosuch }}\n");
    let e = load_all(&[base.clone(), broken.clone()], &o).unwrap_err();
    assert_eq!((e.file, e.line), (broken, Some(2)));
    let e = LoadOptions::from_variables(&[("X_AUTHELIA_CONFIG_FILTERS".into(), "jinja".into())])
        .unwrap_err();
    assert!(e.message.contains("unknown filter"), "{e}");
}
