//! Record encryption for the Redis stores: AES-256-GCM under a key derived from the session secret
//! with HKDF-SHA256, a fresh 96-bit nonce per record, the Redis key (and whatever else the store
//! binds) as associated data.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use sha2::Sha256;

use crate::StoreError;

const NONCE_LEN: usize = 12;

/// Seals and opens records with one derived key.
pub(crate) struct Sealer {
    cipher: Aes256Gcm,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    /// The key `HKDF-SHA256(salt, secret).expand(info)`; each store passes its own `salt` and
    /// `info`, so one secret never yields the same key for two kinds of record. An empty secret is
    /// refused.
    pub(crate) fn derive(secret: &[u8], salt: &[u8], info: &[u8]) -> Result<Self, StoreError> {
        if secret.is_empty() {
            return Err(StoreError::Backend("the session secret is empty".into()));
        }
        let hk = hkdf::Hkdf::<Sha256>::new(Some(salt), secret);
        let mut key = [0u8; 32];
        hk.expand(info, &mut key)
            .map_err(|_| StoreError::Backend("key derivation failed".into()))?;
        let cipher = Aes256Gcm::new_from_slice(&key)
            .map_err(|_| StoreError::Backend("bad key length".into()))?;
        Ok(Self { cipher })
    }

    /// `nonce ‖ AES-256-GCM(plain, aad)`.
    pub(crate) fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
            .map_err(|_| StoreError::Codec("encryption failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The plain text of a record [`seal`](Self::seal)ed with this key and `aad`; anything else
    /// (another key, another `aad`, a flipped bit) is a [`StoreError::Codec`].
    pub(crate) fn open(&self, aad: &[u8], data: &[u8]) -> Result<Vec<u8>, StoreError> {
        if data.len() < NONCE_LEN {
            return Err(StoreError::Codec("record too short".into()));
        }
        let (nonce, sealed) = data.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad })
            .map_err(|_| {
                StoreError::Codec("record failed authentication (wrong secret or tampered)".into())
            })
    }
}
