//! Header profiles and the emission of identity headers.

use http::HeaderName;
use portcullis_core::{Identity, Secret};
use serde::{Deserialize, Serialize};

use crate::custom::{CustomProfile, default_separator};
use crate::error::HeadersError;
use crate::set::{HeaderSet, is_clean};

/// Header names in the form the specifications and documentation write them.
///
/// HTTP compares names case-insensitively; [`HeaderSet`] carries them lower-case (as HTTP/2 requires)
/// and [`canonical_name`](crate::canonical_name) gives the Go canonical form
/// (`X-Authentik-Username`) the authentik outpost writes on HTTP/1.
pub mod names {
    /// Authelia: the canonical username.
    pub const REMOTE_USER: &str = "Remote-User";
    /// Authelia: the groups joined with `,`.
    pub const REMOTE_GROUPS: &str = "Remote-Groups";
    /// Authelia: the display name.
    pub const REMOTE_NAME: &str = "Remote-Name";
    /// Authelia: the first email.
    pub const REMOTE_EMAIL: &str = "Remote-Email";
    /// The four Authelia headers (docs/reference/forward-auth.md §6.1), in emission order.
    pub const AUTHELIA: [&str; 4] = [REMOTE_USER, REMOTE_GROUPS, REMOTE_NAME, REMOTE_EMAIL];

    /// authentik: claim `preferred_username`.
    pub const X_AUTHENTIK_USERNAME: &str = "X-authentik-username";
    /// authentik: claim `groups` joined with `|`.
    pub const X_AUTHENTIK_GROUPS: &str = "X-authentik-groups";
    /// authentik: claim `entitlements` joined with `|`.
    pub const X_AUTHENTIK_ENTITLEMENTS: &str = "X-authentik-entitlements";
    /// authentik: claim `email`.
    pub const X_AUTHENTIK_EMAIL: &str = "X-authentik-email";
    /// authentik: claim `name`.
    pub const X_AUTHENTIK_NAME: &str = "X-authentik-name";
    /// authentik: claim `sub`.
    pub const X_AUTHENTIK_UID: &str = "X-authentik-uid";
    /// authentik: the raw token.
    pub const X_AUTHENTIK_JWT: &str = "X-authentik-jwt";
    /// authentik: the provider's JWKS URL.
    pub const X_AUTHENTIK_META_JWKS: &str = "X-authentik-meta-jwks";
    /// authentik: the outpost name.
    pub const X_AUTHENTIK_META_OUTPOST: &str = "X-authentik-meta-outpost";
    /// authentik: the provider name.
    pub const X_AUTHENTIK_META_PROVIDER: &str = "X-authentik-meta-provider";
    /// authentik: the application slug.
    pub const X_AUTHENTIK_META_APP: &str = "X-authentik-meta-app";
    /// authentik: `goauthentik.io/outpost/<version>`.
    pub const X_AUTHENTIK_META_VERSION: &str = "X-authentik-meta-version";
    /// The twelve authentik headers (docs/reference/outpost.md §6.1), in emission order.
    pub const AUTHENTIK: [&str; 12] = [
        X_AUTHENTIK_USERNAME,
        X_AUTHENTIK_GROUPS,
        X_AUTHENTIK_ENTITLEMENTS,
        X_AUTHENTIK_EMAIL,
        X_AUTHENTIK_NAME,
        X_AUTHENTIK_UID,
        X_AUTHENTIK_JWT,
        X_AUTHENTIK_META_JWKS,
        X_AUTHENTIK_META_OUTPOST,
        X_AUTHENTIK_META_PROVIDER,
        X_AUTHENTIK_META_APP,
        X_AUTHENTIK_META_VERSION,
    ];

    /// The `Authorization` header, stripped when upstream Basic injection is on.
    pub const AUTHORIZATION: &str = "Authorization";
}

/// The prefix of `X-authentik-meta-version` (docs/reference/outpost.md §6.1).
pub const AUTHENTIK_VERSION_PREFIX: &str = "goauthentik.io/outpost/";

/// Which identity headers the upstream receives.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ProfileConfig")]
#[non_exhaustive]
pub enum Profile {
    /// `Remote-User`, `Remote-Groups`, `Remote-Name`, `Remote-Email`
    /// (docs/reference/forward-auth.md §6.1).
    Authelia,
    /// The twelve `X-authentik-*` headers (docs/reference/outpost.md §6.1).
    Authentik(AuthentikMeta),
    /// Operator-chosen header names, each carrying an identity field or a template.
    Custom(CustomProfile),
}

/// The values of the authentik `X-authentik-meta-*` headers. They describe the outpost, not the
/// user, so they keep their values on anonymous responses (docs/reference/outpost.md §14 item 10).
///
/// Values holding a control character are refused by [`Profile::try_from`]; when built directly,
/// such a value is emitted empty and reported like any other.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthentikMeta {
    /// `X-authentik-meta-jwks`: the provider's JWKS URL.
    #[serde(default)]
    pub jwks_url: String,
    /// `X-authentik-meta-outpost`: the outpost name.
    #[serde(default)]
    pub outpost: String,
    /// `X-authentik-meta-provider`: the provider name.
    #[serde(default)]
    pub provider: String,
    /// `X-authentik-meta-app`: the application slug.
    #[serde(default)]
    pub app: String,
    /// The version token of `X-authentik-meta-version`, emitted after
    /// [`AUTHENTIK_VERSION_PREFIX`] (for example `1.0.0` or `1.0.0+abc123`).
    #[serde(default)]
    pub version: String,
}

impl AuthentikMeta {
    fn validate(&self) -> Result<(), HeadersError> {
        let fields = [
            ("authentik.jwks_url", &self.jwks_url),
            ("authentik.outpost", &self.outpost),
            ("authentik.provider", &self.provider),
            ("authentik.app", &self.app),
            ("authentik.version", &self.version),
        ];
        for (what, value) in fields {
            if !is_clean(value) {
                return Err(HeadersError::InvalidValue { what: what.into() });
            }
        }
        Ok(())
    }
}

/// The configuration form of a [`Profile`], as read from YAML or JSON.
///
/// Either the bare profile name (`authelia`, `authentik`, `custom` — the last needs headers, so
/// it fails), or a map with a `profile` key and that profile's options:
///
/// ```yaml
/// profile: authelia
/// ---
/// profile: authentik
/// jwks_url: https://auth.example.com/application/o/app/jwks/
/// outpost: edge
/// provider: app-provider
/// app: app
/// version: 1.0.0
/// ---
/// profile: custom
/// separator: ","            # list separator for groups, emails, entitlements; default ","
/// headers:
///   X-User: username
///   X-Who: "{username} <{email}>"
/// ```
///
/// Unknown keys are errors. Convert with [`Profile::try_from`], which validates the options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "profile", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ProfileConfig {
    /// The Authelia headers; no options.
    Authelia,
    /// The authentik headers and their meta values.
    Authentik(AuthentikMeta),
    /// Custom headers.
    Custom(CustomProfileConfig),
}

/// The map form of [`ProfileConfig`]; serde's internally tagged enums accept only maps.
#[derive(Deserialize)]
#[serde(tag = "profile", rename_all = "lowercase", deny_unknown_fields)]
enum TaggedConfig {
    // A unit variant would accept (and ignore) any extra key.
    Authelia(NoOptions),
    Authentik(AuthentikMeta),
    Custom(CustomProfileConfig),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

impl<'de> Deserialize<'de> for ProfileConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ConfigVisitor;

        impl<'de> serde::de::Visitor<'de> for ConfigVisitor {
            type Value = ProfileConfig;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a header profile name or a map with a `profile` key")
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<ProfileConfig, E> {
                match name {
                    "authelia" => Ok(ProfileConfig::Authelia),
                    "authentik" => Ok(ProfileConfig::Authentik(AuthentikMeta::default())),
                    "custom" => Err(E::custom(
                        "the custom header profile needs `headers`; write it as a map",
                    )),
                    other => Err(E::unknown_variant(
                        other,
                        &["authelia", "authentik", "custom"],
                    )),
                }
            }

            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                map: M,
            ) -> Result<ProfileConfig, M::Error> {
                let tagged =
                    TaggedConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(match tagged {
                    TaggedConfig::Authelia(NoOptions {}) => ProfileConfig::Authelia,
                    TaggedConfig::Authentik(meta) => ProfileConfig::Authentik(meta),
                    TaggedConfig::Custom(custom) => ProfileConfig::Custom(custom),
                })
            }
        }

        deserializer.deserialize_any(ConfigVisitor)
    }
}

/// The options of the `custom` profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomProfileConfig {
    /// Header name → identity field or template (see [`CustomProfile`]).
    pub headers: std::collections::BTreeMap<String, String>,
    /// Separator for list fields (`groups`, `emails`, `entitlements`, list attributes).
    #[serde(default = "default_separator")]
    pub separator: String,
}

impl TryFrom<ProfileConfig> for Profile {
    type Error = HeadersError;

    fn try_from(config: ProfileConfig) -> Result<Self, Self::Error> {
        match config {
            ProfileConfig::Authelia => Ok(Profile::Authelia),
            ProfileConfig::Authentik(meta) => {
                meta.validate()?;
                Ok(Profile::Authentik(meta))
            }
            ProfileConfig::Custom(custom) => Ok(Profile::Custom(CustomProfile::new(
                custom.headers,
                custom.separator,
            )?)),
        }
    }
}

// Statics, so the names are checked once at compile time and not on every call.
fn authelia_names() -> [HeaderName; 4] {
    static NAMES: [HeaderName; 4] = [
        HeaderName::from_static("remote-user"),
        HeaderName::from_static("remote-groups"),
        HeaderName::from_static("remote-name"),
        HeaderName::from_static("remote-email"),
    ];
    NAMES.clone()
}

fn authentik_names() -> [HeaderName; 12] {
    static NAMES: [HeaderName; 12] = [
        HeaderName::from_static("x-authentik-username"),
        HeaderName::from_static("x-authentik-groups"),
        HeaderName::from_static("x-authentik-entitlements"),
        HeaderName::from_static("x-authentik-email"),
        HeaderName::from_static("x-authentik-name"),
        HeaderName::from_static("x-authentik-uid"),
        HeaderName::from_static("x-authentik-jwt"),
        HeaderName::from_static("x-authentik-meta-jwks"),
        HeaderName::from_static("x-authentik-meta-outpost"),
        HeaderName::from_static("x-authentik-meta-provider"),
        HeaderName::from_static("x-authentik-meta-app"),
        HeaderName::from_static("x-authentik-meta-version"),
    ];
    NAMES.clone()
}

impl Profile {
    /// Every header this profile emits, in emission order.
    pub fn header_names(&self) -> Vec<HeaderName> {
        match self {
            Profile::Authelia => authelia_names().into(),
            Profile::Authentik(_) => authentik_names().into(),
            Profile::Custom(custom) => custom.header_names().cloned().collect(),
        }
    }

    /// Every header this profile emits, as documented (`Remote-User`, `X-authentik-username`) or,
    /// for a custom profile, as configured.
    pub fn display_names(&self) -> Vec<&str> {
        match self {
            Profile::Authelia => names::AUTHELIA.into(),
            Profile::Authentik(_) => names::AUTHENTIK.into(),
            Profile::Custom(custom) => custom.display_names().collect(),
        }
    }

    /// The identity headers for `identity`: see [`emit`].
    pub fn emit(&self, identity: &Identity, token: Option<&Secret>) -> HeaderSet {
        let mut set = HeaderSet::new();
        match self {
            Profile::Authelia => emit_authelia(identity, &mut set),
            Profile::Authentik(meta) => emit_authentik(meta, identity, token, &mut set),
            Profile::Custom(custom) => custom.emit(identity, &mut set),
        }
        set
    }
}

/// The identity headers of `profile` for `identity`.
///
/// **Every** header of the profile is present, whatever the identity, so a proxy that copies them
/// overwrites client-sent copies (docs/reference/forward-auth.md §14 item 2,
/// docs/reference/outpost.md §14 item 10):
///
/// - **Authelia**: all four values are empty when the identity is anonymous or has no username (a
///   machine client); otherwise `Remote-Groups` is the groups joined with `,` as is and
///   `Remote-Email` the first email.
/// - **authentik**: when the identity is anonymous, `username`, `groups`, `entitlements`, `email`,
///   `name`, `uid` and `jwt` are empty and the `meta-*` headers keep their values. `jwt` is `token`
///   (marked sensitive); lists are joined with `|`.
/// - **Custom**: every configured header; all values empty when the identity is anonymous.
///
/// A value holding a control character (CR, LF, NUL, tab, DEL, C1) is emitted **empty** and
/// listed in [`HeaderSet::rejected`] for the caller to log. Other non-ASCII UTF-8 is emitted as
/// opaque bytes. Never panics.
pub fn emit(profile: &Profile, identity: &Identity, token: Option<&Secret>) -> HeaderSet {
    profile.emit(identity, token)
}

fn emit_authelia(identity: &Identity, set: &mut HeaderSet) {
    let [user, groups, name, email] = authelia_names();
    if identity.is_anonymous() || identity.username.is_empty() {
        for header in [user, groups, name, email] {
            set.push(header, "");
        }
        return;
    }
    set.push(user, &identity.username);
    set.push(groups, &identity.groups.join(","));
    set.push(name, &identity.display_name);
    set.push(email, identity.primary_email());
}

fn emit_authentik(
    meta: &AuthentikMeta,
    identity: &Identity,
    token: Option<&Secret>,
    set: &mut HeaderSet,
) {
    let [
        username,
        groups,
        entitlements,
        email,
        name,
        uid,
        jwt,
        meta_jwks,
        meta_outpost,
        meta_provider,
        meta_app,
        meta_version,
    ] = authentik_names();
    if identity.is_anonymous() {
        for header in [username, groups, entitlements, email, name, uid, jwt] {
            set.push(header, "");
        }
    } else {
        set.push(username, &identity.username);
        set.push(groups, &identity.groups.join("|"));
        set.push(entitlements, &identity.entitlements.join("|"));
        set.push(email, identity.primary_email());
        set.push(name, &identity.display_name);
        set.push(uid, &identity.uid);
        set.push_sensitive(jwt, token.map(Secret::expose).unwrap_or(""));
    }
    set.push(meta_jwks, &meta.jwks_url);
    set.push(meta_outpost, &meta.outpost);
    set.push(meta_provider, &meta.provider);
    set.push(meta_app, &meta.app);
    set.push(
        meta_version,
        &format!("{AUTHENTIK_VERSION_PREFIX}{}", meta.version),
    );
}
