//! The store against files the tests build themselves: a fresh one, and Authelia databases at
//! schema 24 and 26 whose encrypted values are the spec's vectors or are sealed here with the
//! cipher crates directly (docs/reference/second-factor.md §4.2–4.4), not with this crate's code.

use super::*;
use crate::totp::Digits;
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use rand::SeedableRng;
use sha2::{Digest, Sha256};
use std::net::IpAddr;

const KEY: &str = "a_not_so_secure_encryption_key";
const LEGACY_JOHN: &str = "000102030405060708090a0b8280293cb43efc6160f283b069a4b41598a9df39ca9e03bb62824d9d57d1f8b21ad902a4d3a821719bbe19cc1d9b7e75b7c46672d41c57d8a6ae8c0aae9a7778207393ed";
const ROW_SCOPED_JOHN: &str = "000102030405060708090a0b62552d16454d0ce2f2c1b8dfa4a68cb46fc7ad53c2ddf853da62af105e9a4b96163001290c635a17bad8bba8154caebd09462c7e10d69500ec879db07deda4c7945276c1";

fn rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(42)
}

/// AES-256-GCM as the spec describes it, written here independently of `encryption.rs`.
fn seal_independently(key: [u8; 32], nonce: [u8; 12], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(&key.into());
    let mut out = nonce.to_vec();
    out.extend(
        cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .unwrap(),
    );
    out
}

fn legacy_key() -> [u8; 32] {
    Sha256::digest(KEY.as_bytes()).into()
}

fn hkdf_key() -> [u8; 32] {
    let mut out = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(None, KEY.as_bytes())
        .expand(b"authelia:kdf:storage:encryption_key:v1", &mut out)
        .unwrap();
    out
}

/// An Authelia database at `schema`: a migrations history, the tables of §4.2, and john's TOTP.
fn authelia_database(path: &Path, schema: u32, john_secret: &str) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, applied DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
             version_before INTEGER NULL DEFAULT NULL, version_after INTEGER NOT NULL, application_version VARCHAR(128) NOT NULL);
         CREATE TABLE encryption (id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(100) NOT NULL, value BLOB NOT NULL, UNIQUE (name));
         CREATE TABLE totp_configurations (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
             last_used_at DATETIME NULL DEFAULT NULL, username VARCHAR(100) NOT NULL, issuer VARCHAR(100),
             algorithm VARCHAR(6) NOT NULL DEFAULT 'SHA1', digits INTEGER NOT NULL DEFAULT 6, period INTEGER NOT NULL DEFAULT 30,
             secret BLOB NOT NULL, UNIQUE (username));
         CREATE TABLE totp_history (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
             username VARCHAR(100) NOT NULL, step CHAR(64) NOT NULL);
         CREATE UNIQUE INDEX totp_history_username_step_key ON totp_history (username, step);
         CREATE TABLE user_preferences (id INTEGER PRIMARY KEY AUTOINCREMENT, username VARCHAR(100) UNIQUE NOT NULL,
             second_factor_method VARCHAR(11) NOT NULL);
         CREATE TABLE one_time_code (id INTEGER PRIMARY KEY AUTOINCREMENT, public_id CHAR(36) NOT NULL, signature VARCHAR(128) NOT NULL,
             issued DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, issued_ip VARCHAR(39) NOT NULL, expires DATETIME NOT NULL,
             username VARCHAR(100) NOT NULL, intent VARCHAR(100) NOT NULL, consumed DATETIME NULL DEFAULT NULL,
             consumed_ip VARCHAR(39) NULL DEFAULT NULL, revoked DATETIME NULL DEFAULT NULL, revoked_ip VARCHAR(39) NULL DEFAULT NULL,
             code BLOB NOT NULL);
         CREATE UNIQUE INDEX one_time_code_signature ON one_time_code (signature, username);
         CREATE TABLE webauthn_credentials (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
             last_used_at DATETIME NULL DEFAULT NULL, rpid VARCHAR(512) NOT NULL, username VARCHAR(100) NOT NULL,
             description VARCHAR(64) NOT NULL, kid VARCHAR(512) NOT NULL, public_key BLOB NOT NULL, UNIQUE (rpid, username, description));
         INSERT INTO webauthn_credentials (created_at, rpid, username, description, kid, public_key)
             VALUES ('2025-05-06 07:08:09+00:00', 'auth.example.com', 'john', 'YubiKey 5', 'AQIDBA==', x'00');",
    )
    .unwrap();
    for version in 1..=schema {
        c.execute(
            "INSERT INTO migrations (applied, version_before, version_after, application_version)
             VALUES ('2025-01-01 00:00:00+00:00', ?1, ?2, 'v4.39.20')",
            params![
                if version == 1 {
                    None
                } else {
                    Some(version - 1)
                },
                version
            ],
        )
        .unwrap();
    }
    let (key, check_aad, otp_aad): (_, &[u8], &[u8]) = if schema >= 26 {
        (
            hkdf_key(),
            b"authelia:storage:encryption:value:check",
            b"authelia:storage:encryption:value:hmac_key_otp",
        )
    } else {
        (legacy_key(), b"", b"")
    };
    let check = seal_independently(
        key,
        [9; 12],
        b"0b1d2c3e-0000-4000-8000-00000000abcd",
        check_aad,
    );
    let otp = seal_independently(key, [8; 12], &[0x41; 64], otp_aad);
    c.execute(
        "INSERT INTO encryption (name, value) VALUES ('check', ?1), ('hmac_key_otp', ?2)",
        params![check, otp],
    )
    .unwrap();
    c.execute(
        "INSERT INTO totp_configurations (created_at, username, issuer, algorithm, digits, period, secret)
         VALUES ('2025-03-04 05:06:07.123456789+00:00', 'john', 'Authelia', 'SHA1', 6, 30, ?1)",
        params![hex::decode(john_secret).unwrap()],
    )
    .unwrap();
}

fn migrations(path: &Path) -> Vec<(i64, String, Option<i64>, i64, String)> {
    let c = Connection::open(path).unwrap();
    let mut stmt = c
        .prepare("SELECT id, applied, version_before, version_after, application_version FROM migrations ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn johns_totp_from_an_authelia_schema_24_database_gives_the_spec_codes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    authelia_database(&path, 24, LEGACY_JOHN);
    let before = migrations(&path);
    let store = SecondFactorStore::open(&path, KEY, &mut rng()).unwrap();
    assert_eq!(store.origin(), Origin::Authelia { schema: 24 });
    assert_eq!(store.scheme(), Scheme::Legacy);
    let john = store.totp("john").unwrap().unwrap();
    assert_eq!(john.issuer, "Authelia");
    assert_eq!(john.parameters, TotpParameters::default());
    assert_eq!(john.created_at, 1_741_064_767);
    for (t, code) in [(59, "555770"), (2_000_000_000, "440276")] {
        assert_eq!(crate::totp::code_at(&john.secret, john.parameters, t), code);
    }
    // The history key is the database's: the spec's signature for 64 × 0x41.
    assert!(
        store
            .record_totp_window("john", 1_999_999_980, 2_000_000_000)
            .unwrap()
    );
    let step: String = Connection::open(&path)
        .unwrap()
        .query_row("SELECT step FROM totp_history", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        step,
        "a5b498ba2096f7c39a41106ef6c4b0559128b248fb7694073e6a830118af1e13"
    );
    // Writing keeps Authelia's format: a re-registration opens with the legacy key, no AAD.
    let mut again = john.clone();
    again.parameters.digits = Digits::EIGHT;
    store.save_totp(&again, &mut rng()).unwrap();
    let (sealed, digits, created): (Vec<u8>, i64, String) = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT secret, digits, created_at FROM totp_configurations WHERE username = 'john'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(digits, 8);
    assert_eq!(created, "2025-03-04 05:06:07+00:00");
    let opened = Aes256Gcm::new(&legacy_key().into())
        .decrypt(Nonce::from_slice(&sealed[..12]), &sealed[12..])
        .unwrap();
    assert_eq!(
        opened,
        b"AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPQ"
    );
    // Authelia's migrations are exactly as they were, and no table of ours was added to them.
    drop(store);
    assert_eq!(migrations(&path), before);
    let ours: i64 = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'portcullis_second_factor_schema'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ours, 0);
}

#[test]
fn a_schema_26_database_opens_with_the_row_scoped_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    authelia_database(&path, 26, ROW_SCOPED_JOHN);
    let store = SecondFactorStore::open(&path, KEY, &mut rng()).unwrap();
    assert_eq!(store.scheme(), Scheme::RowScoped);
    let john = store.totp("john").unwrap().unwrap();
    assert_eq!(
        crate::totp::code_at(&john.secret, john.parameters, 59),
        "555770"
    );
    // The row-scoped value of john is not jane's: moving it to another row breaks it.
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE totp_configurations SET username = 'jane'", [])
        .unwrap();
    assert_eq!(
        store.totp("jane").unwrap_err(),
        SecondFactorError::Decryption
    );
}

#[test]
fn a_wrong_key_or_an_unknown_schema_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    authelia_database(&path, 24, LEGACY_JOHN);
    assert_eq!(
        SecondFactorStore::open(&path, "not_the_key_of_this_database", &mut rng()).unwrap_err(),
        SecondFactorError::WrongEncryptionKey
    );
    // A schema newer than Portcullis knows may encrypt differently: refused, not guessed at.
    let newer = dir.path().join("newer.sqlite3");
    authelia_database(&newer, 27, LEGACY_JOHN);
    assert_eq!(
        SecondFactorStore::open(&newer, KEY, &mut rng()).unwrap_err(),
        SecondFactorError::UnknownSchema(27)
    );
    let empty = dir.path().join("empty-migrations.sqlite3");
    Connection::open(&empty)
        .unwrap()
        .execute_batch("CREATE TABLE migrations (id INTEGER PRIMARY KEY, version_after INTEGER);")
        .unwrap();
    assert_eq!(
        SecondFactorStore::open(&empty, KEY, &mut rng()).unwrap_err(),
        SecondFactorError::NotAutheliaDatabase
    );
    assert!(matches!(
        SecondFactorStore::open(&path, "short", &mut rng()).unwrap_err(),
        SecondFactorError::EncryptionKeyTooShort(5)
    ));
}

#[test]
fn a_fresh_file_keeps_registrations_and_its_key_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.sqlite3");
    let secret = TotpSecret::from_bytes(vec![5; 32]);
    {
        let store = SecondFactorStore::open(&path, KEY, &mut rng()).unwrap();
        assert_eq!(store.origin(), Origin::Portcullis);
        assert_eq!(store.scheme(), Scheme::RowScoped);
        assert_eq!(store.totp("john").unwrap(), None);
        store
            .save_totp(
                &TotpRegistration {
                    username: "john".into(),
                    issuer: "Portcullis".into(),
                    parameters: TotpParameters::default(),
                    secret: secret.clone(),
                    created_at: 1_800_000_000,
                    last_used_at: None,
                },
                &mut rng(),
            )
            .unwrap();
        assert!(store.record_totp_window("john", 30, 40).unwrap());
        store.touch_totp("john", 1_800_000_100).unwrap();
    }
    let store =
        SecondFactorStore::open(&path, KEY, &mut rand::rngs::StdRng::seed_from_u64(7)).unwrap();
    let john = store.totp("john").unwrap().unwrap();
    assert_eq!(john.secret, secret);
    assert_eq!(john.last_used_at, Some(1_800_000_100));
    // The history key survived the restart: the same window is still a replay.
    assert!(!store.record_totp_window("john", 30, 50).unwrap());
    assert!(store.totp_window_used("john", 30).unwrap());
    assert!(!store.totp_window_used("john", 60).unwrap());
    assert!(store.delete_totp("john").unwrap());
    assert!(!store.delete_totp("john").unwrap());
    assert_eq!(store.totp("john").unwrap(), None);
    drop(store);
    assert_eq!(
        SecondFactorStore::open(&path, "another_key_of_twenty_chars", &mut rng()).unwrap_err(),
        SecondFactorError::WrongEncryptionKey
    );
}

#[test]
fn one_time_codes_work_once_for_their_user_address_and_intent_until_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let store = SecondFactorStore::open(&dir.path().join("otc.sqlite3"), KEY, &mut rng()).unwrap();
    let here: IpAddr = "192.0.2.10".parse().unwrap();
    let there: IpAddr = "192.0.2.11".parse().unwrap();
    let mut random = rand::rngs::StdRng::seed_from_u64(9);
    let id = store
        .save_one_time_code("john", here, "use", "ABCD2346", 1_000, 1_300, &mut random)
        .unwrap();
    let stored = store.one_time_code(id).unwrap().unwrap();
    assert_eq!(
        (stored.expires, stored.consumed, stored.revoked),
        (1_300, false, false)
    );
    assert!(
        !store
            .consume_one_time_code("john", there, "use", "ABCD2346", 1_010)
            .unwrap()
    );
    assert!(
        !store
            .consume_one_time_code("jane", here, "use", "ABCD2346", 1_010)
            .unwrap()
    );
    assert!(
        !store
            .consume_one_time_code("john", here, "reset", "ABCD2346", 1_010)
            .unwrap()
    );
    assert!(
        !store
            .consume_one_time_code("john", here, "use", "ABCD2347", 1_010)
            .unwrap()
    );
    assert!(
        store
            .consume_one_time_code("john", here, "use", "ABCD2346", 1_010)
            .unwrap()
    );
    assert!(
        !store
            .consume_one_time_code("john", here, "use", "ABCD2346", 1_011)
            .unwrap()
    );
    assert!(store.one_time_code(id).unwrap().unwrap().consumed);
    // Expiry, and revocation by public id.
    let late = store
        .save_one_time_code("john", here, "use", "WXYZ7898", 2_000, 2_300, &mut random)
        .unwrap();
    assert!(
        !store
            .consume_one_time_code("john", here, "use", "WXYZ7898", 2_300)
            .unwrap()
    );
    assert!(store.revoke_one_time_code(late, there, 2_301).unwrap());
    assert!(!store.revoke_one_time_code(late, there, 2_302).unwrap());
    assert!(
        !store.revoke_one_time_code(id, here, 2_303).unwrap(),
        "a used code is not revoked"
    );
    assert!(!store.revoke_one_time_code([0; 16], here, 2_304).unwrap());
    // The code itself is stored encrypted, never in clear.
    let codes: Vec<Vec<u8>> = {
        let c = Connection::open(dir.path().join("otc.sqlite3")).unwrap();
        let mut s = c.prepare("SELECT code FROM one_time_code").unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert!(
        codes
            .iter()
            .all(|c| !c.windows(8).any(|w| w == b"ABCD2346" || w == b"WXYZ7898"))
    );
}

#[test]
fn preferences_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = SecondFactorStore::open(&dir.path().join("p.sqlite3"), KEY, &mut rng()).unwrap();
    assert_eq!(store.preferred_method("john").unwrap(), None);
    store.set_preferred_method("john", "totp").unwrap();
    store.set_preferred_method("john", "webauthn").unwrap();
    assert_eq!(
        store.preferred_method("john").unwrap().as_deref(),
        Some("webauthn")
    );
    assert!(!store.has_webauthn("john").unwrap());
}

#[test]
fn registrations_and_webauthn_credentials_are_listed_for_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    authelia_database(&path, 24, LEGACY_JOHN);
    let store = SecondFactorStore::open(&path, KEY, &mut rng()).unwrap();
    store
        .save_totp(
            &TotpRegistration {
                username: "alice".into(),
                issuer: "Authelia".into(),
                parameters: TotpParameters::default(),
                secret: TotpSecret::from_bytes(vec![1; 20]),
                created_at: 1_800_000_000,
                last_used_at: None,
            },
            &mut rng(),
        )
        .unwrap();
    let all = store.totp_registrations().unwrap();
    let names: Vec<&str> = all.iter().map(|r| r.username.as_str()).collect();
    assert_eq!(names, ["alice", "john"]);
    let keys = store.webauthn_credentials(None).unwrap();
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(
        (
            k.username.as_str(),
            k.rpid.as_str(),
            k.description.as_str(),
            k.kid.as_str(),
            k.created_at,
            k.last_used_at
        ),
        (
            "john",
            "auth.example.com",
            "YubiKey 5",
            "AQIDBA==",
            Some(1_746_515_289),
            None
        )
    );
    assert!(
        store
            .webauthn_credentials(Some("alice"))
            .unwrap()
            .is_empty()
    );
    assert!(
        !store
            .delete_webauthn_credential("alice", "yubikey 5")
            .unwrap()
    );
    assert!(
        store
            .delete_webauthn_credential("john", "yubikey 5")
            .unwrap()
    );
    assert!(store.webauthn_credentials(None).unwrap().is_empty());
    assert!(store.tables().unwrap().contains(&"migrations".to_owned()));
}

#[test]
fn identity_verification_tokens_are_used_once_or_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let store = SecondFactorStore::open(&dir.path().join("iv.sqlite3"), KEY, &mut rng()).unwrap();
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    store
        .save_identity_verification(
            "11111111-2222-4333-8444-555555555555",
            "john",
            "ResetPassword",
            ip,
            100,
            400,
        )
        .unwrap();
    let jti = "11111111-2222-4333-8444-555555555555";
    assert_eq!(
        store
            .consume_identity_verification(jti, "jane", "ResetPassword", ip, 110)
            .unwrap(),
        TokenUse::Unknown
    );
    assert_eq!(
        store
            .consume_identity_verification(jti, "john", "Other", ip, 110)
            .unwrap(),
        TokenUse::Unknown
    );
    assert_eq!(
        store
            .consume_identity_verification(jti, "john", "ResetPassword", ip, 110)
            .unwrap(),
        TokenUse::Consumed
    );
    assert_eq!(
        store
            .consume_identity_verification(jti, "john", "ResetPassword", ip, 111)
            .unwrap(),
        TokenUse::AlreadyUsed
    );
    assert!(!store.revoke_identity_verification(jti, ip, 112).unwrap());
    store
        .save_identity_verification(
            "22222222-2222-4333-8444-555555555555",
            "john",
            "ResetPassword",
            ip,
            100,
            400,
        )
        .unwrap();
    let other = "22222222-2222-4333-8444-555555555555";
    assert!(store.revoke_identity_verification(other, ip, 120).unwrap());
    assert_eq!(
        store
            .consume_identity_verification(other, "john", "ResetPassword", ip, 121)
            .unwrap(),
        TokenUse::Revoked
    );
}
