//! The two ceremonies verified (WebAuthn §7.1 registration, §7.2 assertion): the browser's JSON
//! parsed, then every check of the specification that applies without attestation trust
//! anchors, in its order.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::WebAuthnError;
use crate::attestation::{AttestationObject, AttestationType};
use crate::authenticator_data::{AuthenticatorData, Flags};
use crate::client_data;
use crate::cose::PublicKey;
use crate::encoding::{Challenge, decode_binary};
use crate::options::Requirement;

/// What the client reports about the credential's properties.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClientExtensionResults {
    /// `credProps` (registration).
    #[serde(rename = "credProps", default)]
    pub cred_props: Option<CredProps>,
    /// `appid` (assertion): the U2F AppID was used instead of the RP ID.
    #[serde(default)]
    pub appid: Option<bool>,
}

/// The `credProps` extension output.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CredProps {
    /// Whether a discoverable (resident) credential was made.
    #[serde(default)]
    pub rk: Option<bool>,
}

/// `response` of a registration.
#[derive(Debug, Clone, Deserialize)]
pub struct AttestationResponse {
    /// base64url.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// base64url CBOR.
    #[serde(rename = "attestationObject")]
    pub attestation_object: String,
    /// How the authenticator can be reached.
    #[serde(default)]
    pub transports: Vec<String>,
}

/// A `PublicKeyCredential` from `navigator.credentials.create` in its JSON form.
#[derive(Debug, Clone, Deserialize)]
pub struct RegistrationResponse {
    /// The credential id, base64url.
    pub id: String,
    /// The same, base64url.
    #[serde(rename = "rawId")]
    pub raw_id: String,
    /// Always `public-key`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The attestation.
    pub response: AttestationResponse,
    /// Extension outputs.
    #[serde(rename = "clientExtensionResults", default)]
    pub extensions: ClientExtensionResults,
    /// `platform` or `cross-platform`, when the browser says.
    #[serde(rename = "authenticatorAttachment", default)]
    pub attachment: Option<String>,
}

/// `response` of an assertion.
#[derive(Debug, Clone, Deserialize)]
pub struct AssertionData {
    /// base64url.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// base64url.
    #[serde(rename = "authenticatorData")]
    pub authenticator_data: String,
    /// base64url.
    pub signature: String,
    /// base64url; present for discoverable credentials.
    #[serde(rename = "userHandle", default)]
    pub user_handle: Option<String>,
}

/// A `PublicKeyCredential` from `navigator.credentials.get` in its JSON form.
#[derive(Debug, Clone, Deserialize)]
pub struct AssertionResponse {
    /// The credential id, base64url.
    pub id: String,
    /// The same, base64url.
    #[serde(rename = "rawId")]
    pub raw_id: String,
    /// Always `public-key`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The assertion.
    pub response: AssertionData,
    /// Extension outputs.
    #[serde(rename = "clientExtensionResults", default)]
    pub extensions: ClientExtensionResults,
    /// `platform` or `cross-platform`, when the browser says.
    #[serde(rename = "authenticatorAttachment", default)]
    pub attachment: Option<String>,
}

fn credential_id(id: &str, raw_id: &str, kind: &str) -> Result<Vec<u8>, WebAuthnError> {
    if kind != "public-key" {
        return Err(WebAuthnError::malformed(
            "credential",
            "type is not public-key",
        ));
    }
    let raw = decode_binary("rawId", raw_id)?;
    let named = decode_binary("id", id)?;
    if raw != named || raw.is_empty() {
        return Err(WebAuthnError::CredentialId);
    }
    Ok(raw)
}

impl AssertionResponse {
    /// The credential used (to find its stored key before verifying).
    pub fn credential_id(&self) -> Result<Vec<u8>, WebAuthnError> {
        credential_id(&self.id, &self.raw_id, &self.kind)
    }

    /// The challenge the client says it signed (to find a ceremony kept by its challenge; the
    /// verification still compares it with the one issued).
    pub fn challenge(&self) -> Result<Vec<u8>, WebAuthnError> {
        let bytes = decode_binary("clientDataJSON", &self.response.client_data_json)?;
        client_data::challenge(&bytes)
    }

    /// The user handle, when the authenticator returned one (passkey login); empty counts as
    /// absent.
    pub fn user_handle(&self) -> Result<Option<Vec<u8>>, WebAuthnError> {
        match self.response.user_handle.as_deref() {
            None | Some("") => Ok(None),
            Some(h) => decode_binary("userHandle", h).map(Some),
        }
    }
}

/// What a ceremony must match: the challenge issued, the RP ID and the origin of the portal,
/// and whether the user must be verified.
#[derive(Debug, Clone)]
pub struct Expectation<'a> {
    /// The challenge issued for this ceremony.
    pub challenge: &'a Challenge,
    /// The RP ID.
    pub rp_id: &'a str,
    /// The origin, `https://host[:port]`.
    pub origin: &'a str,
    /// `Required` refuses an assertion or registration without the UV flag.
    pub user_verification: Option<Requirement>,
}

/// A verified new credential, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredCredential {
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The COSE key bytes.
    pub public_key: Vec<u8>,
    /// The authenticator model.
    pub aaguid: [u8; 16],
    /// The first signature counter.
    pub sign_count: u32,
    /// The flags of the registration.
    pub flags: Flags,
    /// `none`, `packed`, `fido-u2f`, …
    pub attestation_format: String,
    /// How far the attestation was checked.
    pub attestation_type: AttestationType,
    /// What the browser reported.
    pub transports: Vec<String>,
    /// What the browser reported (`""` when it did not).
    pub attachment: String,
    /// Whether the credential is discoverable (`credProps.rk`; false when not reported).
    pub discoverable: bool,
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn check_flags(flags: Flags, expected: &Expectation<'_>) -> Result<(), WebAuthnError> {
    if !flags.user_present() {
        return Err(WebAuthnError::UserNotPresent);
    }
    if expected.user_verification == Some(Requirement::Required) && !flags.user_verified() {
        return Err(WebAuthnError::UserNotVerified);
    }
    Ok(())
}

fn same(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

/// Verify a registration (WebAuthn §7.1).
pub fn verify_registration(
    response: &RegistrationResponse,
    expected: &Expectation<'_>,
) -> Result<RegisteredCredential, WebAuthnError> {
    let id = credential_id(&response.id, &response.raw_id, &response.kind)?;
    let client_data_json = decode_binary("clientDataJSON", &response.response.client_data_json)?;
    client_data::check(
        &client_data_json,
        "webauthn.create",
        expected.challenge,
        expected.origin,
    )?;
    let object = AttestationObject::parse(&decode_binary(
        "attestationObject",
        &response.response.attestation_object,
    )?)?;
    let auth_data = AuthenticatorData::parse(&object.auth_data_bytes)?;
    if !same(&auth_data.rp_id_hash, &sha256(expected.rp_id.as_bytes())) {
        return Err(WebAuthnError::RpIdHash);
    }
    check_flags(auth_data.flags, expected)?;
    let attested = auth_data
        .attested
        .as_ref()
        .ok_or(WebAuthnError::NoCredentialData)?;
    if attested.credential_id != id {
        return Err(WebAuthnError::CredentialId);
    }
    let attestation_type = object.verify(&auth_data, &sha256(&client_data_json))?;
    Ok(RegisteredCredential {
        credential_id: id,
        public_key: attested.public_key_cose.clone(),
        aaguid: attested.aaguid,
        sign_count: auth_data.sign_count,
        flags: auth_data.flags,
        attestation_format: object.format.clone(),
        attestation_type,
        transports: response.response.transports.clone(),
        attachment: response.attachment.clone().unwrap_or_default(),
        discoverable: response
            .extensions
            .cred_props
            .as_ref()
            .and_then(|p| p.rk)
            .unwrap_or(false),
    })
}

/// A verified assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The new signature counter, to store.
    pub sign_count: u32,
    /// The flags.
    pub flags: Flags,
    /// The counter did not grow although the authenticator keeps one: the credential may have
    /// been cloned. The signature was valid; the caller decides (Authelia refuses).
    pub clone_warning: bool,
}

/// The stored side of a credential: its COSE key, its last signature counter, and the U2F
/// AppID it was registered under, if any.
#[derive(Debug, Clone, Copy)]
pub struct StoredCredential<'a> {
    /// The COSE key bytes.
    pub public_key: &'a [u8],
    /// The last counter seen.
    pub sign_count: u32,
    /// The AppID of a credential registered through the U2F API.
    pub app_id: Option<&'a str>,
}

/// Verify an assertion (WebAuthn §7.2) by the credential `stored`. The caller has looked the
/// credential up by [`AssertionResponse::credential_id`] among those allowed.
pub fn verify_assertion(
    response: &AssertionResponse,
    expected: &Expectation<'_>,
    stored: StoredCredential<'_>,
) -> Result<VerifiedAssertion, WebAuthnError> {
    response.credential_id()?;
    let client_data_json = decode_binary("clientDataJSON", &response.response.client_data_json)?;
    client_data::check(
        &client_data_json,
        "webauthn.get",
        expected.challenge,
        expected.origin,
    )?;
    let auth_data_bytes =
        decode_binary("authenticatorData", &response.response.authenticator_data)?;
    let auth_data = AuthenticatorData::parse(&auth_data_bytes)?;
    let rp_hash_ok = same(&auth_data.rp_id_hash, &sha256(expected.rp_id.as_bytes()))
        || (response.extensions.appid == Some(true)
            && stored
                .app_id
                .is_some_and(|app_id| same(&auth_data.rp_id_hash, &sha256(app_id.as_bytes()))));
    if !rp_hash_ok {
        return Err(WebAuthnError::RpIdHash);
    }
    check_flags(auth_data.flags, expected)?;
    let key = PublicKey::from_cose(stored.public_key)?;
    let signature = decode_binary("signature", &response.response.signature)?;
    let mut signed = auth_data_bytes;
    signed.extend_from_slice(&sha256(&client_data_json));
    key.verify(&signed, &signature)?;
    let counted = auth_data.sign_count != 0 || stored.sign_count != 0;
    Ok(VerifiedAssertion {
        sign_count: auth_data.sign_count,
        flags: auth_data.flags,
        clone_warning: counted && auth_data.sign_count <= stored.sign_count,
    })
}
