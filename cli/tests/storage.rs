//! `portcullis storage …` against a database the test fills through the store: schema-info,
//! encryption check (and a wrong key), TOTP export as URIs and CSV, delete, WebAuthn list.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use portcullis_second_factor::sqlite::{SecondFactorStore, TotpRegistration};
use portcullis_second_factor::totp::{TotpParameters, TotpSecret};

const KEY: &str = "a_not_so_secure_encryption_key";

fn portcullis() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.env_remove("PORTCULLIS_CONFIG")
        .env_remove("PORTCULLIS_STORAGE_ENCRYPTION_KEY_FILE")
        .env_remove("AUTHELIA_STORAGE_ENCRYPTION_KEY_FILE");
    cmd
}

fn output(cmd: &mut Command, code: i32) -> (String, String) {
    let assert = cmd.assert().code(code);
    let output = assert.get_output();
    (
        String::from_utf8(output.stdout.clone()).unwrap(),
        String::from_utf8(output.stderr.clone()).unwrap(),
    )
}

/// The quickstart configuration with an encryption key and its database in `dir`.
fn setup(dir: &Path, key: &str) -> PathBuf {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart");
    std::fs::copy(
        folder.join("users_database.yml"),
        dir.join("users_database.yml"),
    )
    .unwrap();
    let text = std::fs::read_to_string(folder.join("configuration.yml"))
        .unwrap()
        .replace(
            "  encryption_key: 'quickstart-insecure-encryption-key-change-me'\n  local:\n    path: data/portcullis.sqlite3\n",
            &format!("  encryption_key: {key}\n  local:\n    path: db.sqlite3\n"),
        );
    assert!(
        text.contains(&format!("encryption_key: {key}\n")),
        "the quickstart's storage section changed"
    );
    let path = dir.join("configuration.yml");
    std::fs::write(&path, text).unwrap();
    path
}

fn seed(dir: &Path) {
    let store = SecondFactorStore::open(&dir.join("db.sqlite3"), KEY, &mut rand::rng()).unwrap();
    store
        .save_totp(
            &TotpRegistration {
                username: "john".into(),
                issuer: "Authelia".into(),
                parameters: TotpParameters::default(),
                secret: TotpSecret::from_bytes((0u8..32).collect()),
                created_at: 1_800_000_000,
                last_used_at: None,
            },
            &mut rand::rng(),
        )
        .unwrap();
}

#[test]
fn schema_info_and_the_encryption_check() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), KEY);
    // No database yet: said, not created.
    let (_, err) = output(
        portcullis()
            .args(["storage", "schema-info", "-c"])
            .arg(&config),
        1,
    );
    assert!(err.contains("no database at"), "{err}");
    assert!(!dir.path().join("db.sqlite3").exists());
    seed(dir.path());
    let (out, _) = output(
        portcullis()
            .args(["storage", "schema-info", "-c"])
            .arg(&config),
        0,
    );
    assert!(out.starts_with("Schema Version: Portcullis"), "{out}");
    assert!(
        out.contains("Schema Encryption: HKDF key, table, column and row"),
        "{out}"
    );
    assert!(out.contains("totp_configurations"), "{out}");
    let (out, _) = output(
        portcullis()
            .args(["storage", "encryption", "check", "-c"])
            .arg(&config),
        0,
    );
    assert_eq!(
        out,
        "Storage Encryption Key Validation: SUCCESS (1 TOTP registrations decrypt)\n"
    );
    // The same database with another key.
    let wrong = setup(dir.path(), "not_the_key_of_this_database");
    let (out, err) = output(
        portcullis()
            .args(["storage", "encryption", "check", "-c"])
            .arg(&wrong),
        1,
    );
    assert_eq!(out, "");
    assert!(
        err.contains("storage.encryption_key does not decrypt this database"),
        "{err}"
    );
}

#[test]
fn totp_export_as_uris_and_csv_then_delete() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), KEY);
    seed(dir.path());
    let (out, err) = output(
        portcullis()
            .args(["storage", "user", "totp", "export", "-c"])
            .arg(&config),
        0,
    );
    assert_eq!(
        out,
        "otpauth://totp/Authelia:john?algorithm=SHA1&digits=6&issuer=Authelia&period=30&secret=AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPQ\n"
    );
    assert!(err.contains("keep it private"), "{err}");
    let (out, _) = output(
        portcullis()
            .args(["storage", "user", "totp", "export", "--format", "csv", "-c"])
            .arg(&config),
        0,
    );
    assert_eq!(
        out,
        "issuer,username,algorithm,digits,period,secret\nAuthelia,john,SHA1,6,30,AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPQ\n"
    );
    let (out, _) = output(
        portcullis()
            .args(["storage", "user", "totp", "delete", "--user", "john", "-c"])
            .arg(&config),
        0,
    );
    assert_eq!(out, "deleted the TOTP registration of john\n");
    let (_, err) = output(
        portcullis()
            .args(["storage", "user", "totp", "delete", "--user", "john", "-c"])
            .arg(&config),
        1,
    );
    assert!(err.contains("john has no TOTP registration"), "{err}");
    let (out, _) = output(
        portcullis()
            .args(["storage", "user", "webauthn", "list", "-c"])
            .arg(&config),
        0,
    );
    assert_eq!(out, "USER\tDESCRIPTION\tRPID\tKID\tCREATED\tLAST USED\n");
}

#[test]
fn without_an_encryption_key_the_commands_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), KEY);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&format!("  encryption_key: {KEY}\n"), "");
    std::fs::write(&config, text).unwrap();
    let (_, err) = output(
        portcullis()
            .args(["storage", "schema-info", "-c"])
            .arg(&config),
        2,
    );
    assert!(err.contains("storage.encryption_key is not set"), "{err}");
}
