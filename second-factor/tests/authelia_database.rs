//! The "switch without re-enrolling" path on a database built the way Authelia 4.39.20 builds
//! it: its own 24 SQLite migrations (tests/fixtures/authelia-sqlite-migrations), its migration
//! rows, and rows encrypted by this test as docs/reference/second-factor.md §4.3 says (with
//! `aes-gcm` directly, not through the crate). john's TOTP gives the spec's codes, his passkey
//! signs in, new rows are written so that Authelia can read them, and the migration history is
//! never touched. Then the same at schema 26 (HKDF key, row-scoped associated data).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis_second_factor::sqlite::{NewWebAuthnCredential, SecondFactorStore};
use portcullis_second_factor::totp::{TotpParameters, code_at};
use portcullis_webauthn::ceremony::{
    AssertionResponse, Expectation, StoredCredential, verify_assertion,
};
use portcullis_webauthn::encoding::Challenge;
use portcullis_webauthn::software_authenticator::SoftwareAuthenticator;
use rand::SeedableRng;
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

const KEY: &str = "a_not_so_secure_encryption_key";
const RP: &str = "auth.example.com";
const ORIGIN: &str = "https://auth.example.com";
/// The spec's test secret, 0x00..0x1f, as base32.
const SECRET_BASE32: &str = "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPQ";
const JOHNS_HANDLE: &str = "Zx9!a#b$c%d&e'f(g)h*i+j,k-l.m/n:o;p<q=r>s?t@u[v]w^x_y`z{A|B}C~D0";

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

fn seal(key: [u8; 32], nonce: [u8; 12], msg: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut out = nonce.to_vec();
    out.extend(
        Aes256Gcm::new(&key.into())
            .encrypt(Nonce::from_slice(&nonce), Payload { msg, aad })
            .unwrap(),
    );
    out
}

fn open(key: [u8; 32], blob: &[u8], aad: &[u8]) -> Vec<u8> {
    Aes256Gcm::new(&key.into())
        .decrypt(
            Nonce::from_slice(&blob[..12]),
            Payload {
                msg: &blob[12..],
                aad,
            },
        )
        .expect("the row opens the way Authelia opens it")
}

fn johns_authenticator() -> SoftwareAuthenticator {
    let mut seed = [0u8; 32];
    seed[31] = 77;
    SoftwareAuthenticator::new(seed, vec![0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6])
}

/// Apply Authelia's migrations V0001–V0024 and write its migration rows, as its Go code does
/// (one row per step), then the extra rows of schema 25 and 26 when asked.
fn authelia_database(path: &Path, schema: u32) -> Connection {
    let c = Connection::open(path).unwrap();
    // Authelia registers these two functions for its SQLite driver; V0002 uses one.
    c.create_scalar_function("BIN2B64", 1, FunctionFlags::SQLITE_DETERMINISTIC, |ctx| {
        Ok(STANDARD.encode(ctx.get::<Vec<u8>>(0)?))
    })
    .unwrap();
    c.create_scalar_function("B642BIN", 1, FunctionFlags::SQLITE_DETERMINISTIC, |ctx| {
        Ok(STANDARD.decode(ctx.get::<String>(0)?).unwrap_or_default())
    })
    .unwrap();
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/authelia-sqlite-migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        24,
        "Authelia 4.39.20 ships 24 SQLite migrations"
    );
    for (i, file) in files.iter().enumerate() {
        c.execute_batch(&std::fs::read_to_string(file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let version = i64::try_from(i + 1).unwrap();
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
    for version in 25..=schema {
        c.execute(
            "INSERT INTO migrations (applied, version_before, version_after, application_version)
             VALUES ('2026-09-01 00:00:00+00:00', ?1, ?2, 'v4.39.21')",
            params![version - 1, version],
        )
        .unwrap();
    }
    let (key, row_scoped) = if schema >= 26 {
        (hkdf_key(), true)
    } else {
        (legacy_key(), false)
    };
    let aad = |text: String| {
        if row_scoped {
            text.into_bytes()
        } else {
            Vec::new()
        }
    };
    let check = seal(
        key,
        [1; 12],
        b"2b1f8a1c-1111-4222-8333-444455556666",
        &aad("authelia:storage:encryption:value:check".into()),
    );
    c.execute(
        "INSERT INTO encryption (name, value) VALUES ('check', ?1)",
        params![check],
    )
    .unwrap();
    let secret = seal(
        key,
        [2; 12],
        SECRET_BASE32.as_bytes(),
        &aad("authelia:storage:totp_configurations:secret:john".into()),
    );
    c.execute(
        "INSERT INTO totp_configurations (created_at, username, issuer, algorithm, digits, period, secret)
         VALUES ('2025-03-04 05:06:07+00:00', 'john', 'Authelia', 'SHA1', 6, 30, ?1)",
        params![secret],
    )
    .unwrap();
    let a = johns_authenticator();
    let kid = STANDARD.encode(&a.credential_id);
    let cose = a.public_key().to_cose();
    let sealed_key = seal(
        key,
        [3; 12],
        &cose,
        &aad(format!(
            "authelia:storage:webauthn_credentials:public_key:{kid}:{RP}"
        )),
    );
    c.execute(
        "INSERT INTO webauthn_users (rpid, username, userid) VALUES (?1, 'john', ?2)",
        params![RP, JOHNS_HANDLE],
    )
    .unwrap();
    c.execute(
        "INSERT INTO webauthn_credentials (created_at, rpid, username, description, kid, aaguid, attestation_format,
             attachment, transport, sign_count, discoverable, present, verified, public_key, attestation_type)
         VALUES ('2025-05-06 07:08:09+00:00', ?1, 'john', 'YubiKey 5', ?2, '00000000-0000-0000-0000-000000000000',
             'packed', 'cross-platform', 'usb,nfc', 4, 1, 1, 1, ?3, 'self')",
        params![RP, kid, sealed_key],
    )
    .unwrap();
    c
}

fn migration_rows(c: &Connection) -> Vec<(i64, String, Option<i64>, i64, String)> {
    let mut stmt = c
        .prepare("SELECT id, applied, version_before, version_after, application_version FROM migrations ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn switch_and_back(schema: u32) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let authelia = authelia_database(&path, schema);
    let history = migration_rows(&authelia);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let store = SecondFactorStore::open(&path, KEY, &mut rng).expect("Authelia's database opens");

    // TOTP: the spec's codes for that secret.
    let totp = store.totp("john").unwrap().expect("john's TOTP");
    assert_eq!(
        code_at(&totp.secret, TotpParameters::default(), 59),
        "555770"
    );
    assert_eq!(
        code_at(&totp.secret, TotpParameters::default(), 1_111_111_109),
        "678295"
    );

    // The passkey: found by its user handle, its key decrypted, an assertion verified with it.
    assert_eq!(
        store
            .webauthn_user_by_handle(RP, JOHNS_HANDLE.as_bytes())
            .unwrap()
            .as_deref(),
        Some("john")
    );
    assert_eq!(
        store
            .webauthn_user_by_handle("other.example.com", JOHNS_HANDLE.as_bytes())
            .unwrap(),
        None
    );
    let mut a = johns_authenticator();
    a.sign_count = 4;
    let kid = STANDARD.encode(&a.credential_id);
    let stored = store
        .webauthn_credential_by_kid(RP, &kid)
        .unwrap()
        .expect("john's credential");
    assert_eq!(
        (
            stored.username.as_str(),
            stored.description.as_str(),
            stored.sign_count,
            stored.discoverable
        ),
        ("john", "YubiKey 5", 4, true)
    );
    assert_eq!(stored.transports, ["usb", "nfc"]);
    let challenge = Challenge::new([4; 32]);
    let response: AssertionResponse = serde_json::from_value(a.assert(
        RP,
        ORIGIN,
        &challenge.to_base64url(),
        Some(JOHNS_HANDLE.as_bytes()),
    ))
    .unwrap();
    let expected = Expectation {
        challenge: &challenge,
        rp_id: RP,
        origin: ORIGIN,
        user_verification: None,
    };
    let verified = verify_assertion(
        &response,
        &expected,
        StoredCredential {
            public_key: &stored.public_key,
            sign_count: stored.sign_count,
            app_id: None,
        },
    )
    .expect("john's imported passkey signs in");
    assert!(!verified.clone_warning);
    store
        .record_webauthn_use(stored.id, verified.sign_count, false, false, 1_800_000_000)
        .unwrap();

    // A credential registered by Portcullis, read back the way Authelia reads it.
    let new_key = SoftwareAuthenticator::new([5; 32], vec![9, 8, 7])
        .public_key()
        .to_cose();
    let new_kid = STANDARD.encode([9u8, 8, 7]);
    let handle = store.ensure_webauthn_user(RP, "harry", &mut rng).unwrap();
    assert_eq!(handle.len(), 64);
    assert!(handle.bytes().all(|b| b.is_ascii_graphic()));
    assert_eq!(
        store.ensure_webauthn_user(RP, "harry", &mut rng).unwrap(),
        handle,
        "made once"
    );
    store
        .save_webauthn_credential(
            &NewWebAuthnCredential {
                rpid: RP.into(),
                username: "harry".into(),
                description: "Phone".into(),
                kid: new_kid.clone(),
                aaguid: Some("00000000-0000-0000-0000-000000000000".into()),
                attestation_format: "none".into(),
                attestation_type: "none".into(),
                attachment: "platform".into(),
                transports: vec!["internal".into(), "hybrid".into()],
                sign_count: 0,
                discoverable: true,
                present: true,
                verified: true,
                backup_eligible: true,
                backup_state: true,
                public_key: new_key.clone(),
                created_at: 1_800_000_100,
            },
            &mut rng,
        )
        .unwrap();
    assert!(
        store
            .webauthn_description_taken(RP, "harry", "PHONE")
            .unwrap()
    );
    drop(store);

    // Back to Authelia: its rows as it reads them, and its history unchanged.
    let (key, row_scoped) = if schema >= 26 {
        (hkdf_key(), true)
    } else {
        (legacy_key(), false)
    };
    let (blob, sign_count, last_used, transport): (Vec<u8>, i64, Option<String>, String) = authelia
        .query_row(
            "SELECT public_key, sign_count, last_used_at, transport FROM webauthn_credentials WHERE kid = ?1",
            params![new_kid],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((sign_count, last_used), (0, None));
    let aad = if row_scoped {
        format!("authelia:storage:webauthn_credentials:public_key:{new_kid}:{RP}").into_bytes()
    } else {
        Vec::new()
    };
    assert_eq!(open(key, &blob, &aad), new_key);
    assert_eq!(transport, "internal,hybrid");
    let (sign_count, last_used): (i64, String) = authelia
        .query_row(
            "SELECT sign_count, last_used_at FROM webauthn_credentials WHERE kid = ?1",
            params![kid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(sign_count, 5);
    assert!(last_used.starts_with("2027-01-15 08:00:00"), "{last_used}");
    let userid: String = authelia
        .query_row(
            "SELECT userid FROM webauthn_users WHERE username = 'harry'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(userid, handle);
    assert_eq!(
        migration_rows(&authelia),
        history,
        "Authelia's migration rows are never rewritten"
    );
}

#[test]
fn an_authelia_4_39_20_database_keeps_totp_and_passkeys_and_can_go_back() {
    switch_and_back(24);
}

#[test]
fn a_schema_26_database_keeps_totp_and_passkeys_and_can_go_back() {
    switch_and_back(26);
}

#[test]
fn an_authelia_database_below_schema_24_refuses_webauthn_but_keeps_totp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let c = authelia_database(&path, 24);
    c.execute("DELETE FROM migrations WHERE version_after > 18", [])
        .unwrap();
    drop(c);
    let store =
        SecondFactorStore::open(&path, KEY, &mut rand::rngs::StdRng::seed_from_u64(1)).unwrap();
    assert!(store.totp("john").unwrap().is_some());
    assert!(store.webauthn_credential_by_kid(RP, "AA==").is_err());
    assert!(store.webauthn_user(RP, "john").is_err());
}
