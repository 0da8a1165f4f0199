//! The provider's signatures: generated signing keys (kept sealed in the store, rotated by clock
//! epoch, the next one published ahead), signing for a client, and verifying what the provider
//! signed.

use portcullis_oidc::OidcError;
use portcullis_oidc::keys::{KeySet, SigningKey};
use portcullis_oidc::store::OidcStore;
use rand::RngCore;

use super::{OidcRuntime, runtime};
use crate::config::{OidcClient, OidcProvider};
use crate::state::AppState;

/// The name the generated signing key is kept under in the store.
const GENERATED_KEY: &str = "oidc signing key rs256 epoch";

/// The store name of the generated key of rotation epoch `epoch`: every replica derives the same
/// name from the clock, and `keep` answers the first key stored under it, so replicas agree on
/// each epoch's key without talking to each other.
fn generated_key_name(epoch: u64) -> String {
    format!("{GENERATED_KEY} {epoch}")
}

/// The generated keys for `now`: this epoch's (made and kept now when no replica has yet), then
/// the previous epoch's when it is kept (it still verifies tokens signed before the rotation).
/// With rotation off (`key_rotation` 0) there is one epoch for ever.
pub(super) async fn generated_keys(
    provider: &OidcProvider,
    store: &dyn OidcStore,
    now: u64,
) -> Result<KeySet, OidcError> {
    let secret = provider.hmac_secret.expose().as_bytes();
    let epoch = now.checked_div(provider.key_rotation).unwrap_or(0);
    let mut keys = vec![
        epoch_key(store, secret, epoch, true)
            .await?
            .ok_or_else(|| {
                OidcError::Key("the signing key of this epoch could not be kept".into())
            })?,
    ];
    if let Some(previous) = epoch.checked_sub(1)
        && let Some(key) = epoch_key(store, secret, previous, false).await?
    {
        keys.push(key);
    }
    // The next epoch's key is published before it signs (within two rotation checks of the
    // change), so relying parties that cache the JWKS know it when the first token arrives.
    let next_start = (epoch + 1).saturating_mul(provider.key_rotation);
    if provider.key_rotation > 0
        && now + 2 * ROTATION_CHECK.as_secs() >= next_start
        && let Some(key) = epoch_key(store, secret, epoch + 1, true).await?
    {
        keys.push(key);
    }
    Ok(KeySet::new(keys))
}

/// The kept key of `epoch`; made and kept now when `create` and no replica has yet.
async fn epoch_key(
    store: &dyn OidcStore,
    secret: &[u8],
    epoch: u64,
    create: bool,
) -> Result<Option<SigningKey>, OidcError> {
    let name = generated_key_name(epoch);
    let kept = match store.kept(&name).await? {
        Some(kept) => kept,
        None if !create => return Ok(None),
        None => {
            let fresh = tokio::task::spawn_blocking(|| {
                portcullis_oidc::keys::generate_rsa_pem(&mut getrandom::SysRng)
            })
            .await
            .map_err(|e| OidcError::Key(e.to_string()))??;
            // Another replica may have kept one meanwhile: `keep` answers the first.
            store.keep(&name, &seal(secret, &fresh)?).await?
        }
    };
    let pem = open_sealed(secret, &kept)?;
    Ok(Some(SigningKey::from_pem(
        &pem,
        portcullis_oidc::keys::Algorithm::RS256,
        None,
    )?))
}

/// How often the server looks whether a new key epoch began.
const ROTATION_CHECK: std::time::Duration = std::time::Duration::from_secs(3600);

/// Rotate generated signing keys when their epoch ends, while the server runs.
pub(crate) fn rotate_keys_periodically(state: AppState) {
    if !runtime(&state).is_some_and(|rt| rt.generated) {
        return;
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(ROTATION_CHECK).await;
            if let Some(rt) = runtime(&state)
                && let Err(e) = rt.rotate_keys(state.now()).await
            {
                tracing::error!(error = %e, "OpenID Connect signing key rotation failed: the current keys stay");
            }
        }
    });
}

/// The AES-256-GCM key that protects a generated signing key in the store, derived from
/// `hmac_secret` (which every replica shares), so that the database or Redis alone holds no
/// usable private key.
fn sealing_key(hmac_secret: &[u8]) -> Result<aes_gcm::Aes256Gcm, OidcError> {
    use aes_gcm::KeyInit;
    let mut key = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(b"portcullis"), hmac_secret)
        .expand(b"oidc kept signing key v1", &mut key)
        .map_err(|_| OidcError::Key("cannot derive the sealing key".into()))?;
    aes_gcm::Aes256Gcm::new_from_slice(&key)
        .map_err(|_| OidcError::Key("bad sealing key length".into()))
}

fn seal(hmac_secret: &[u8], pem: &str) -> Result<String, OidcError> {
    use aes_gcm::aead::Aead;
    use base64::Engine;
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = sealing_key(hmac_secret)?
        .encrypt(aes_gcm::Nonce::from_slice(&nonce), pem.as_bytes())
        .map_err(|_| OidcError::Key("cannot seal the signing key".into()))?;
    let mut bytes = nonce.to_vec();
    bytes.extend(sealed);
    Ok(format!(
        "v1:{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

fn open_sealed(hmac_secret: &[u8], kept: &str) -> Result<String, OidcError> {
    use aes_gcm::aead::Aead;
    use base64::Engine;
    let refuse = || {
        OidcError::Key(
            "the signing key kept in the storage cannot be opened: was identity_providers.oidc.hmac_secret changed? (configure jwks, or restore the secret)".into(),
        )
    };
    let bytes = kept
        .strip_prefix("v1:")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .filter(|b| b.len() > 12)
        .ok_or_else(refuse)?;
    let (nonce, sealed) = bytes.split_at(12);
    let pem = sealing_key(hmac_secret)?
        .decrypt(aes_gcm::Nonce::from_slice(nonce), sealed)
        .map_err(|_| refuse())?;
    String::from_utf8(pem).map_err(|_| refuse())
}

/// The store key of a JWT access token: its `jti`, apart from the HMACs of opaque tokens.
pub(crate) fn jwt_key(jti: &str) -> String {
    format!("jwt:{jti}")
}

/// Sign `claims` for `client` with `alg`: an HMAC keyed by the client's secret for HS*, else the
/// provider's key for the algorithm.
pub(crate) fn sign<T: serde::Serialize>(
    rt: &OidcRuntime,
    client: &OidcClient,
    alg: portcullis_oidc::keys::Algorithm,
    kid: Option<&str>,
    claims: &T,
    typ: Option<&str>,
) -> Result<String, OidcError> {
    use portcullis_oidc::keys::Algorithm;
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => match &client.secret {
            Some(crate::config::ClientSecret::Plain(secret)) => {
                portcullis_oidc::jwt::sign_with_secret(alg, secret.expose().as_bytes(), claims, typ)
            }
            // The configuration refuses HS* without a plaintext secret; refuse rather than sign
            // with anything else.
            _ => Err(OidcError::Key(format!(
                "client {} has no plaintext secret for {alg:?}",
                client.client.id
            ))),
        },
        _ => {
            let keys = rt.keys();
            match kid {
                Some(kid) => keys.by_kid(kid),
                None => keys.for_alg(alg),
            }
            .filter(|k| k.alg() == alg)
            .ok_or_else(|| OidcError::Key(format!("no key signs {alg:?}")))?
            .sign(claims, typ)
        }
    }
}

/// Verify a JWT access token this provider issued: its signature (the provider's key named by
/// `kid`, or the secret of the client named in it for HS*), `typ: at+jwt`, issuer and expiry.
/// Returns the store key to check it is still active.
pub(crate) fn verify_access_jwt(
    rt: &OidcRuntime,
    token: &str,
    issuer: Option<&str>,
    now: u64,
) -> Option<String> {
    use portcullis_oidc::keys::Algorithm;
    let header = portcullis_oidc::jwt::peek_header(token)?;
    let expect = |alg| portcullis_oidc::jwt::Expect {
        alg,
        issuer,
        typ: Some("at+jwt"),
        now,
        leeway: 0,
    };
    let claims = match header.alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            let unverified = portcullis_oidc::jwt::peek_claims(token)?;
            let client = rt.client(unverified.get("client_id")?.as_str()?)?;
            if client.client.access_token_alg != Some(header.alg) {
                return None;
            }
            let Some(crate::config::ClientSecret::Plain(secret)) = &client.secret else {
                return None;
            };
            let key = portcullis_oidc::jwt::secret_key(secret.expose().as_bytes()).ok()?;
            portcullis_oidc::jwt::verify(token, &key, &expect(header.alg)).ok()?
        }
        alg => verify_with_provider_key(rt, token, header.kid.as_deref(), &expect(alg))?,
    };
    Some(jwt_key(claims.get("jti")?.as_str()?))
}

/// Verify `token` with the provider's key named by `kid` (or the first of the expected algorithm):
/// the claims, when the key exists, signs with that algorithm and the signature and times hold.
pub(crate) fn verify_with_provider_key(
    rt: &OidcRuntime,
    token: &str,
    kid: Option<&str>,
    expect: &portcullis_oidc::jwt::Expect<'_>,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let keys = rt.keys();
    let key = match kid {
        Some(kid) => keys.by_kid(kid)?,
        None => keys.for_alg(expect.alg)?,
    };
    if key.alg() != expect.alg {
        return None;
    }
    portcullis_oidc::jwt::verify(token, key.decoding_key(), expect).ok()
}

/// A key whose certificate chain is not valid now refuses the start: a relying party that pins
/// the `x5c` would refuse every token, and an expired chain is what an operator must renew.
pub(super) fn check_certificate_validity(key: &SigningKey, now: u64) -> Result<(), OidcError> {
    let Some((not_before, not_after)) = key.validity() else {
        return Ok(());
    };
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    if now < not_before {
        return Err(OidcError::Key(format!(
            "the certificate_chain of key '{}' is not valid before {not_before} (unix time)",
            key.kid()
        )));
    }
    if now > not_after {
        return Err(OidcError::Key(format!(
            "the certificate_chain of key '{}' expired at {not_after} (unix time)",
            key.kid()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_kept_key_opens_only_with_the_same_secret() {
        // Spaces never occur in the sealed (base64) form, so finding none proves the text is not
        // in it, whatever the random nonce gives.
        let key = "a kept private key";
        let sealed = super::seal(b"secret-one", key).unwrap();
        assert!(!sealed.contains(' '), "{sealed}");
        assert_eq!(super::open_sealed(b"secret-one", &sealed).unwrap(), key);
        assert!(super::open_sealed(b"secret-two", &sealed).is_err());
        assert!(super::open_sealed(b"secret-one", "v1:AAAA").is_err());
        assert!(super::open_sealed(b"secret-one", "garbage").is_err());
    }

    #[test]
    fn a_certificate_chain_outside_its_window_refuses_the_start() {
        let pem = include_str!("../../tests/fixtures/oidc-rs256.pem");
        let chain = include_str!("../../tests/fixtures/oidc-rs256-chain.crt");
        let key = portcullis_oidc::keys::SigningKey::from_pem(
            pem,
            portcullis_oidc::keys::Algorithm::RS256,
            Some("main"),
        )
        .unwrap();
        assert!(
            super::check_certificate_validity(&key, 0).is_ok(),
            "no chain"
        );
        let key = key.with_certificate_chain(chain).unwrap();
        // The fixture is valid from 1796128839 to 4949728839 (`openssl x509 -dates`).
        assert!(super::check_certificate_validity(&key, 1_796_128_839).is_ok());
        assert!(super::check_certificate_validity(&key, 4_949_728_839).is_ok());
        let early = super::check_certificate_validity(&key, 1_796_128_838).unwrap_err();
        assert!(early.to_string().contains("not valid before"), "{early}");
        let late = super::check_certificate_validity(&key, 4_949_728_840).unwrap_err();
        assert!(late.to_string().contains("expired"), "{late}");
    }
}
