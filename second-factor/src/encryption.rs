//! Authelia's storage encryption, both schemes (docs/reference/second-factor.md §4.3), so that
//! an Authelia `db.sqlite3` is read and written as Authelia itself would: AES-256-GCM, the stored
//! value `nonce(12) ‖ ciphertext ‖ tag(16)` with no prefix; the key SHA-256 of
//! `storage.encryption_key` up to schema 24 and HKDF-SHA256 from 25; no associated data up to 24,
//! `authelia:storage:<table>:<column>` at 25 and `…:<column>:<row>` from 26.

use std::fmt;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use sha2::{Digest, Sha256};

use crate::SecondFactorError;

/// The newest storage schema version this crate reads and writes.
pub const NEWEST_SCHEMA: u32 = 26;

/// The HKDF `info` of the schema 25+ key.
const HKDF_INFO: &[u8] = b"authelia:kdf:storage:encryption_key:v1";

/// The shortest `storage.encryption_key` Authelia accepts.
pub const MINIMUM_KEY_LENGTH: usize = 20;

/// How the values of one database are encrypted, chosen by its schema version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Schema ≤ 24 (Authelia 4.38 – 4.39.20): SHA-256 key, no associated data.
    Legacy,
    /// Schema 25: HKDF key, the table and column as associated data.
    ColumnScoped,
    /// Schema ≥ 26: HKDF key, the table, column and row as associated data.
    RowScoped,
}

impl Scheme {
    /// The scheme of a database at `version`; a version above [`NEWEST_SCHEMA`] is refused (its
    /// values may be encrypted in a way this code would misread).
    pub fn for_schema(version: u32) -> Result<Self, SecondFactorError> {
        match version {
            0..=24 => Ok(Self::Legacy),
            25 => Ok(Self::ColumnScoped),
            26 => Ok(Self::RowScoped),
            other => Err(SecondFactorError::UnknownSchema(other)),
        }
    }
}

/// Where a value lives: what the schemes bind it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location<'a> {
    /// A column of a table, with the row's identifier (`encryption.value` by `name`,
    /// `totp_configurations.secret` by `username`, `one_time_code.code` by `signature`, …).
    Row {
        /// The table.
        table: &'a str,
        /// The column.
        column: &'a str,
        /// The row's identifier.
        row: &'a str,
    },
    /// A column of `webauthn_credentials` (`public_key` or `attestation`), by credential id
    /// (standard base64, as in the `kid` column) and RP ID.
    WebAuthnCredential {
        /// The column.
        column: &'a str,
        /// The `kid` column.
        kid: &'a str,
        /// The `rpid` column.
        rpid: &'a str,
    },
}

impl Location<'_> {
    fn associated_data(&self, scheme: Scheme) -> Vec<u8> {
        let text = match (scheme, self) {
            (Scheme::Legacy, _) => return Vec::new(),
            (Scheme::ColumnScoped, Location::Row { table, column, .. }) => {
                format!("authelia:storage:{table}:{column}")
            }
            (Scheme::ColumnScoped, Location::WebAuthnCredential { column, rpid, .. }) => {
                format!("authelia:storage:webauthn_credentials:{rpid}:{column}")
            }
            (Scheme::RowScoped, Location::Row { table, column, row }) => {
                format!("authelia:storage:{table}:{column}:{row}")
            }
            (Scheme::RowScoped, Location::WebAuthnCredential { column, kid, rpid }) => {
                format!("authelia:storage:webauthn_credentials:{column}:{kid}:{rpid}")
            }
        };
        text.into_bytes()
    }
}

/// The key of one database under one scheme. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct StorageCipher {
    cipher: Aes256Gcm,
    scheme: Scheme,
}

impl fmt::Debug for StorageCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageCipher")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

/// The 32-byte key for `encryption_key` under `scheme`.
fn derive_key(encryption_key: &str, scheme: Scheme) -> [u8; 32] {
    match scheme {
        Scheme::Legacy => Sha256::digest(encryption_key.as_bytes()).into(),
        Scheme::ColumnScoped | Scheme::RowScoped => {
            let mut out = [0u8; 32];
            // 32 bytes is far below HKDF-SHA256's limit of 8160, so expand cannot fail.
            let _ = hkdf::Hkdf::<Sha256>::new(None, encryption_key.as_bytes())
                .expand(HKDF_INFO, &mut out);
            out
        }
    }
}

impl StorageCipher {
    /// The cipher for `encryption_key` (at least [`MINIMUM_KEY_LENGTH`] characters) under
    /// `scheme`.
    pub fn new(encryption_key: &str, scheme: Scheme) -> Result<Self, SecondFactorError> {
        let length = encryption_key.chars().count();
        if length < MINIMUM_KEY_LENGTH {
            return Err(SecondFactorError::EncryptionKeyTooShort(length));
        }
        let key = derive_key(encryption_key, scheme);
        Ok(Self {
            cipher: Aes256Gcm::new(&key.into()),
            scheme,
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Encrypt `plaintext` for `location` with `nonce` (12 random bytes, fresh for every value).
    pub fn seal(&self, nonce: [u8; 12], plaintext: &[u8], location: Location<'_>) -> Vec<u8> {
        let aad = location.associated_data(self.scheme);
        let mut out = nonce.to_vec();
        // AES-GCM encryption fails only for inputs over 64 GiB.
        if let Ok(sealed) = self.cipher.encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        ) {
            out.extend_from_slice(&sealed);
        }
        out
    }

    /// Decrypt a stored value of `location`: an error for a value too short to be one, for a
    /// wrong key, and for a value moved from another row or column.
    pub fn open(
        &self,
        stored: &[u8],
        location: Location<'_>,
    ) -> Result<Vec<u8>, SecondFactorError> {
        if stored.len() < 12 {
            return Err(SecondFactorError::MalformedCiphertext);
        }
        let (nonce, sealed) = stored.split_at(12);
        let aad = location.associated_data(self.scheme);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| SecondFactorError::Decryption)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "a_not_so_secure_encryption_key";
    const SECRET: &str = "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPQ";
    const NONCE: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

    fn john() -> Location<'static> {
        Location::Row {
            table: "totp_configurations",
            column: "secret",
            row: "john",
        }
    }

    #[test]
    fn the_keys_are_derived_as_the_spec_vectors_say() {
        assert_eq!(
            hex::encode(derive_key(KEY, Scheme::Legacy)),
            "2610978e16e6cee57ea16a0bff15d68eaf3451687bdb843e1b77dc7011eb237c"
        );
        for scheme in [Scheme::ColumnScoped, Scheme::RowScoped] {
            assert_eq!(
                hex::encode(derive_key(KEY, scheme)),
                "e44ec5277d676adf66598feb8064b3f523ad5c8f7287be127968800ae84e80da"
            );
        }
    }

    #[test]
    fn the_legacy_blob_matches_the_spec_vector_and_opens() {
        let cipher = StorageCipher::new(KEY, Scheme::Legacy).unwrap();
        let want = "000102030405060708090a0b8280293cb43efc6160f283b069a4b41598a9df39ca9e03bb62824d9d57d1f8b21ad902a4d3a821719bbe19cc1d9b7e75b7c46672d41c57d8a6ae8c0aae9a7778207393ed";
        let blob = cipher.seal(NONCE, SECRET.as_bytes(), john());
        assert_eq!(blob.len(), 80);
        assert_eq!(hex::encode(&blob), want);
        assert_eq!(
            cipher.open(&hex::decode(want).unwrap(), john()).unwrap(),
            SECRET.as_bytes()
        );
        // No associated data: the same value opens for any row.
        let other = Location::Row {
            table: "totp_configurations",
            column: "secret",
            row: "jane",
        };
        assert!(cipher.open(&blob, other).is_ok());
    }

    #[test]
    fn the_row_scoped_blob_matches_the_spec_vector_and_is_bound_to_its_row() {
        let cipher = StorageCipher::new(KEY, Scheme::RowScoped).unwrap();
        let want = "000102030405060708090a0b62552d16454d0ce2f2c1b8dfa4a68cb46fc7ad53c2ddf853da62af105e9a4b96163001290c635a17bad8bba8154caebd09462c7e10d69500ec879db07deda4c7945276c1";
        let blob = cipher.seal(NONCE, SECRET.as_bytes(), john());
        assert_eq!(hex::encode(&blob), want);
        let moved = Location::Row {
            table: "totp_configurations",
            column: "secret",
            row: "jane",
        };
        assert_eq!(
            cipher.open(&blob, moved),
            Err(SecondFactorError::Decryption)
        );
        assert_eq!(cipher.open(&blob, john()).unwrap(), SECRET.as_bytes());
    }

    #[test]
    fn a_wrong_key_a_changed_byte_or_a_short_value_never_decrypt() {
        let right = StorageCipher::new(KEY, Scheme::Legacy).unwrap();
        let wrong = StorageCipher::new("another_encryption_key_here", Scheme::Legacy).unwrap();
        let blob = right.seal(NONCE, b"check-value", john());
        assert_eq!(
            wrong.open(&blob, john()),
            Err(SecondFactorError::Decryption)
        );
        let mut changed = blob.clone();
        changed[14] ^= 1;
        assert_eq!(
            right.open(&changed, john()),
            Err(SecondFactorError::Decryption)
        );
        assert_eq!(
            right.open(&blob[..11], john()),
            Err(SecondFactorError::MalformedCiphertext)
        );
        assert_eq!(
            right.open(&blob[..12], john()),
            Err(SecondFactorError::Decryption)
        );
        // The same key under the newer scheme is a different key.
        let hkdf = StorageCipher::new(KEY, Scheme::RowScoped).unwrap();
        assert_eq!(hkdf.open(&blob, john()), Err(SecondFactorError::Decryption));
    }

    #[test]
    fn column_scoped_and_webauthn_locations_bind_what_the_spec_says() {
        let kid = "AQID";
        let at = |column| Location::WebAuthnCredential {
            column,
            kid,
            rpid: "auth.example.com",
        };
        assert_eq!(
            at("public_key").associated_data(Scheme::ColumnScoped),
            b"authelia:storage:webauthn_credentials:auth.example.com:public_key"
        );
        assert_eq!(
            at("public_key").associated_data(Scheme::RowScoped),
            b"authelia:storage:webauthn_credentials:public_key:AQID:auth.example.com"
        );
        assert_eq!(
            john().associated_data(Scheme::ColumnScoped),
            b"authelia:storage:totp_configurations:secret"
        );
        let cipher = StorageCipher::new(KEY, Scheme::ColumnScoped).unwrap();
        let blob = cipher.seal(NONCE, b"cose", at("public_key"));
        assert!(cipher.open(&blob, at("attestation")).is_err());
        assert_eq!(cipher.open(&blob, at("public_key")).unwrap(), b"cose");
    }

    #[test]
    fn schemes_and_key_lengths_are_checked() {
        assert_eq!(Scheme::for_schema(1).unwrap(), Scheme::Legacy);
        assert_eq!(Scheme::for_schema(24).unwrap(), Scheme::Legacy);
        assert_eq!(Scheme::for_schema(25).unwrap(), Scheme::ColumnScoped);
        assert_eq!(Scheme::for_schema(26).unwrap(), Scheme::RowScoped);
        assert_eq!(
            Scheme::for_schema(27),
            Err(SecondFactorError::UnknownSchema(27))
        );
        assert_eq!(
            StorageCipher::new("nineteen_characters", Scheme::Legacy).unwrap_err(),
            SecondFactorError::EncryptionKeyTooShort(19)
        );
        assert!(StorageCipher::new("twenty__characters__", Scheme::Legacy).is_ok());
        let cipher = StorageCipher::new(KEY, Scheme::Legacy).unwrap();
        assert!(!format!("{cipher:?}").contains(KEY));
    }
}
