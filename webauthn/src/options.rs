//! The options a browser is given for a ceremony (`PublicKeyCredentialCreationOptions` and
//! `PublicKeyCredentialRequestOptions`, WebAuthn §5.4 and §5.5), as the JSON that
//! `navigator.credentials.create/get` receives after its binary fields are decoded.

use serde_json::{Value, json};

use crate::cose::SUPPORTED_ALGORITHMS;
use crate::encoding::{Challenge, base64url};

/// `required`, `preferred` or `discouraged` (user verification and resident keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Must.
    Required,
    /// Should.
    Preferred,
    /// Should not.
    Discouraged,
}

impl Requirement {
    /// Parse the configuration's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "required" => Some(Self::Required),
            "preferred" => Some(Self::Preferred),
            "discouraged" => Some(Self::Discouraged),
            _ => None,
        }
    }

    /// As WebAuthn spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Preferred => "preferred",
            Self::Discouraged => "discouraged",
        }
    }
}

/// Which authenticators may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachment {
    /// Built into the device.
    Platform,
    /// A roaming key.
    CrossPlatform,
}

impl Attachment {
    /// Parse the configuration's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "platform" => Some(Self::Platform),
            "cross-platform" => Some(Self::CrossPlatform),
            _ => None,
        }
    }

    /// As WebAuthn spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::CrossPlatform => "cross-platform",
        }
    }
}

/// The attestation asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conveyance {
    /// None.
    None,
    /// Whatever the client chooses to pass on.
    Indirect,
    /// The authenticator's own.
    Direct,
}

impl Conveyance {
    /// Parse the configuration's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "none" => Some(Self::None),
            "indirect" => Some(Self::Indirect),
            "direct" => Some(Self::Direct),
            _ => None,
        }
    }

    /// As WebAuthn spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Indirect => "indirect",
            Self::Direct => "direct",
        }
    }
}

/// How authenticators are chosen (`webauthn.selection_criteria`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Selection {
    /// Platform or roaming; `None` lets the user choose.
    pub attachment: Option<Attachment>,
    /// Whether a discoverable credential (passkey) is asked for.
    pub resident_key: Option<Requirement>,
    /// Whether the user must be verified; `None` is WebAuthn's default, `preferred`.
    pub user_verification: Option<Requirement>,
}

/// A credential named in the options: its id and how it can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialDescriptor {
    /// The credential id.
    pub id: Vec<u8>,
    /// `usb`, `nfc`, `ble`, `internal`, `hybrid`.
    pub transports: Vec<String>,
}

fn descriptors(list: &[CredentialDescriptor]) -> Vec<Value> {
    list.iter()
        .map(|c| {
            let mut d = json!({"type": "public-key", "id": base64url(&c.id)});
            if !c.transports.is_empty() {
                d["transports"] = json!(c.transports);
            }
            d
        })
        .collect()
}

/// The relying party.
#[derive(Debug, Clone, Copy)]
pub struct RelyingParty<'a> {
    /// The RP ID (the portal's host).
    pub id: &'a str,
    /// The name shown to the user (`webauthn.display_name`).
    pub name: &'a str,
}

/// The user a credential is made for.
#[derive(Debug, Clone, Copy)]
pub struct User<'a> {
    /// The user handle (Authelia: 64 ASCII characters).
    pub handle: &'a [u8],
    /// The username.
    pub name: &'a str,
    /// The display name.
    pub display_name: &'a str,
}

/// `publicKey` of the registration options.
pub fn creation_options(
    rp: RelyingParty<'_>,
    user: User<'_>,
    challenge: &Challenge,
    timeout_ms: u64,
    exclude: &[CredentialDescriptor],
    selection: Selection,
    attestation: Conveyance,
) -> Value {
    let mut selection_json = serde_json::Map::new();
    if let Some(a) = selection.attachment {
        selection_json.insert("authenticatorAttachment".into(), a.as_str().into());
    }
    if let Some(rk) = selection.resident_key {
        selection_json.insert("residentKey".into(), rk.as_str().into());
        selection_json.insert(
            "requireResidentKey".into(),
            (rk == Requirement::Required).into(),
        );
    }
    if let Some(uv) = selection.user_verification {
        selection_json.insert("userVerification".into(), uv.as_str().into());
    }
    json!({
        "rp": {"id": rp.id, "name": rp.name},
        "user": {"id": base64url(user.handle), "name": user.name, "displayName": user.display_name},
        "challenge": challenge.to_base64url(),
        "pubKeyCredParams": SUPPORTED_ALGORITHMS
            .iter()
            .map(|alg| json!({"type": "public-key", "alg": alg}))
            .collect::<Vec<_>>(),
        "timeout": timeout_ms,
        "excludeCredentials": descriptors(exclude),
        "authenticatorSelection": Value::Object(selection_json),
        "attestation": attestation.as_str(),
        "extensions": {"credProps": true},
    })
}

/// `publicKey` of the assertion options. An empty `allow` asks for a discoverable credential
/// (passkey login); `app_id` adds the U2F `appid` extension for credentials registered with it.
pub fn request_options(
    rp_id: &str,
    challenge: &Challenge,
    timeout_ms: u64,
    allow: &[CredentialDescriptor],
    user_verification: Option<Requirement>,
    app_id: Option<&str>,
) -> Value {
    let mut options = json!({
        "challenge": challenge.to_base64url(),
        "timeout": timeout_ms,
        "rpId": rp_id,
        "allowCredentials": descriptors(allow),
    });
    if let Some(uv) = user_verification {
        options["userVerification"] = uv.as_str().into();
    }
    if let Some(app_id) = app_id {
        options["extensions"] = json!({"appid": app_id});
    }
    options
}
