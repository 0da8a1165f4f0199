//! `webauthn` (docs/reference/second-factor.md §2.1): Authelia's keys, defaults and rules. The
//! FIDO metadata service needs the internet, so `metadata` gives one warning and is otherwise
//! ignored.

use portcullis_config::ConfigError;
use portcullis_webauthn::options::{Attachment, Conveyance, Requirement, Selection};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::raw::RawDuration;
use super::validate::Validator;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebAuthn {
    pub disable: Option<bool>,
    pub enable_passkey_login: Option<bool>,
    pub experimental_enable_passkey_uv_two_factors: Option<bool>,
    pub experimental_enable_passkey_upgrade: Option<bool>,
    pub display_name: Option<String>,
    pub attestation_conveyance_preference: Option<String>,
    pub timeout: Option<RawDuration>,
    pub selection_criteria: Option<RawSelection>,
    pub filtering: Option<RawFiltering>,
    pub metadata: Option<IgnoredAny>,
    /// Deprecated in Authelia for `selection_criteria.user_verification`.
    pub user_verification: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSelection {
    pub attachment: Option<String>,
    pub discoverability: Option<String>,
    pub user_verification: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFiltering {
    pub permitted_aaguids: Option<Vec<String>>,
    pub prohibited_aaguids: Option<Vec<String>>,
    pub prohibit_backup_eligibility: Option<bool>,
}

/// `webauthn`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebAuthnConfig {
    /// `enable_passkey_login`: `/api/firstfactor/passkey` exists.
    pub passkey_login: bool,
    /// `experimental_enable_passkey_uv_two_factors`: a user-verified passkey login is two factors.
    pub passkey_uv_two_factors: bool,
    /// `experimental_enable_passkey_upgrade`: a non-discoverable credential may log in as a
    /// passkey and is then marked discoverable.
    pub passkey_upgrade: bool,
    /// The RP name.
    pub display_name: String,
    /// The attestation asked for.
    pub attestation: Conveyance,
    /// Seconds a ceremony may take (enforced by the server too).
    pub timeout: u64,
    /// How authenticators are chosen.
    pub selection: Selection,
    /// Only these authenticator models may register (lower-case UUIDs); empty: any.
    pub permitted_aaguids: Vec<String>,
    /// These may not.
    pub prohibited_aaguids: Vec<String>,
    /// Credentials that may be synced (BE flag) are refused.
    pub prohibit_backup_eligibility: bool,
}

/// A UUID in its canonical lower-case form.
fn canonical_uuid(text: &str) -> Option<String> {
    use portcullis_second_factor::uuid::{parse_uuid, uuid_text};
    parse_uuid(text).map(uuid_text)
}

impl Validator<'_> {
    fn requirement(
        &self,
        key: &str,
        value: Option<&str>,
    ) -> Result<Option<Requirement>, ConfigError> {
        match value {
            None | Some("") => Ok(None),
            Some(v) => Requirement::parse(v).map(Some).ok_or_else(|| {
                self.error(
                    key,
                    format!("must be one of discouraged, preferred or required, not {v:?}"),
                )
            }),
        }
    }

    fn aaguids(&self, key: &str, list: Option<&Vec<String>>) -> Result<Vec<String>, ConfigError> {
        list.into_iter()
            .flatten()
            .map(|a| {
                canonical_uuid(a).ok_or_else(|| self.error(key, format!("{a:?} is not a UUID")))
            })
            .collect()
    }

    /// `webauthn`; `None` when disabled.
    pub(super) fn webauthn(
        &mut self,
        raw: Option<&RawWebAuthn>,
    ) -> Result<Option<WebAuthnConfig>, ConfigError> {
        let default = RawWebAuthn::default();
        let raw = raw.unwrap_or(&default);
        let disabled = raw.disable.unwrap_or(false);
        let passkey_login = raw.enable_passkey_login.unwrap_or(false);
        let uv_two = raw
            .experimental_enable_passkey_uv_two_factors
            .unwrap_or(false);
        let upgrade = raw.experimental_enable_passkey_upgrade.unwrap_or(false);
        if passkey_login && disabled {
            return Err(self.error(
                "webauthn.enable_passkey_login",
                "must be false when webauthn.disable is true",
            ));
        }
        if !passkey_login && uv_two {
            return Err(self.error(
                "webauthn.experimental_enable_passkey_uv_two_factors",
                "must be false when webauthn.enable_passkey_login is false",
            ));
        }
        if !passkey_login && upgrade {
            return Err(self.error(
                "webauthn.experimental_enable_passkey_upgrade",
                "must be false when webauthn.enable_passkey_login is false",
            ));
        }
        if raw.metadata.is_some() {
            self.warn(
                "webauthn.metadata",
                "the FIDO metadata service needs the internet and is not used by Portcullis; ignored (attestation is not checked against it)",
            );
        }
        let attestation = match raw.attestation_conveyance_preference.as_deref() {
            None | Some("") => Conveyance::Indirect,
            Some(v) => Conveyance::parse(v).ok_or_else(|| {
                self.error(
                    "webauthn.attestation_conveyance_preference",
                    format!("must be one of none, indirect or direct, not {v:?}"),
                )
            })?,
        };
        let timeout = match self.duration("webauthn.timeout", &raw.timeout, 60)? {
            0 => 60,
            t => t,
        };
        let selection_raw = raw.selection_criteria.as_ref();
        let attachment = match selection_raw.and_then(|s| s.attachment.as_deref()) {
            None | Some("") => None,
            Some(v) => Some(Attachment::parse(v).ok_or_else(|| {
                self.error(
                    "webauthn.selection_criteria.attachment",
                    format!("must be one of platform or cross-platform, not {v:?}"),
                )
            })?),
        };
        let resident_key = self.requirement(
            "webauthn.selection_criteria.discoverability",
            selection_raw.and_then(|s| s.discoverability.as_deref()),
        )?;
        let mut user_verification = self.requirement(
            "webauthn.selection_criteria.user_verification",
            selection_raw.and_then(|s| s.user_verification.as_deref()),
        )?;
        if let Some(legacy) = &raw.user_verification {
            self.warn(
                "webauthn.user_verification",
                "is deprecated: use webauthn.selection_criteria.user_verification",
            );
            if user_verification.is_none() {
                user_verification = self.requirement("webauthn.user_verification", Some(legacy))?;
            }
        }
        if passkey_login && resident_key == Some(Requirement::Discouraged) {
            self.warn(
                "webauthn.selection_criteria.discoverability",
                "is discouraged while passkey login is on: use preferred or required, or new credentials cannot log in as passkeys",
            );
        }
        let filtering = raw.filtering.as_ref();
        let permitted_aaguids = self.aaguids(
            "webauthn.filtering.permitted_aaguids",
            filtering.and_then(|f| f.permitted_aaguids.as_ref()),
        )?;
        let prohibited_aaguids = self.aaguids(
            "webauthn.filtering.prohibited_aaguids",
            filtering.and_then(|f| f.prohibited_aaguids.as_ref()),
        )?;
        if !permitted_aaguids.is_empty() && !prohibited_aaguids.is_empty() {
            return Err(self.error(
                "webauthn.filtering",
                "permitted_aaguids and prohibited_aaguids cannot both be set",
            ));
        }
        if disabled {
            return Ok(None);
        }
        Ok(Some(WebAuthnConfig {
            passkey_login,
            passkey_uv_two_factors: uv_two,
            passkey_upgrade: upgrade,
            display_name: raw
                .display_name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "Authelia".to_owned()),
            attestation,
            timeout,
            selection: Selection {
                attachment,
                resident_key,
                user_verification,
            },
            permitted_aaguids,
            prohibited_aaguids,
            prohibit_backup_eligibility: filtering
                .and_then(|f| f.prohibit_backup_eligibility)
                .unwrap_or(false),
        }))
    }
}
