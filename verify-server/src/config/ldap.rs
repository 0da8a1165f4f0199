//! `authentication_backend.ldap` (docs/reference/ldap.md §5.1): every key of Authelia 4.39, each
//! implementation's defaults for what is left empty, and Authelia's validation rules as start
//! errors naming the key.

use std::collections::BTreeMap;
use std::time::Duration;

use portcullis_auth::ldap::config::{
    Attributes, GroupSearchMode, Implementation, LdapConfig, LdapTls, PoolAcquire,
    ProfileAttribute, ValueType,
};
use portcullis_auth::ldap::filter::{AttributeNames, with_attribute_names};
use portcullis_config::ConfigError;
use portcullis_core::Secret;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::raw::{RawDuration, RawSecret};
use super::validate::Validator;

const K: &str = "authentication_backend.ldap";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLdap {
    pub address: Option<String>,
    pub implementation: Option<String>,
    pub timeout: Option<RawDuration>,
    pub start_tls: Option<bool>,
    pub tls: Option<RawLdapTls>,
    pub pooling: Option<RawPooling>,
    pub base_dn: Option<String>,
    pub additional_users_dn: Option<String>,
    pub users_filter: Option<String>,
    pub additional_groups_dn: Option<String>,
    pub groups_filter: Option<String>,
    pub group_search_mode: Option<String>,
    pub attributes: Option<RawAttributes>,
    pub permit_referrals: Option<bool>,
    pub permit_unauthenticated_bind: Option<bool>,
    /// Removed in Authelia 4.39.16: a deprecation warning, no effect.
    pub permit_feature_detection_failure: Option<IgnoredAny>,
    pub user: Option<String>,
    pub password: Option<RawSecret>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLdapTls {
    pub server_name: Option<String>,
    pub skip_verify: Option<bool>,
    pub minimum_version: Option<String>,
    pub maximum_version: Option<String>,
    pub certificate_chain: Option<String>,
    pub private_key: Option<RawSecret>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPooling {
    pub enable: Option<bool>,
    pub count: Option<i64>,
    pub retries: Option<i64>,
    pub timeout: Option<RawDuration>,
}

/// The extended profile attributes (`family_name` … `country`) name the directory attributes
/// read into the user's attributes under the claim's name (docs/reference/ldap.md §5.1).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAttributes {
    pub distinguished_name: Option<String>,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    pub middle_name: Option<String>,
    pub nickname: Option<String>,
    pub gender: Option<String>,
    pub birthdate: Option<String>,
    pub website: Option<String>,
    pub profile: Option<String>,
    pub picture: Option<String>,
    pub zoneinfo: Option<String>,
    pub locale: Option<String>,
    pub phone_number: Option<String>,
    pub phone_extension: Option<String>,
    pub street_address: Option<String>,
    pub locality: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub mail: Option<String>,
    pub member_of: Option<String>,
    pub group_name: Option<String>,
    pub extra: Option<BTreeMap<String, RawExtraAttribute>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExtraAttribute {
    pub name: Option<String>,
    pub multi_valued: Option<bool>,
    pub value_type: Option<String>,
}

/// Names an `extra` attribute may not take (the claims and headers Portcullis fills itself).
const RESERVED: [&str; 8] = [
    "username",
    "display_name",
    "mail",
    "emails",
    "groups",
    "member_of",
    "distinguished_name",
    "group_name",
];

fn non_empty(value: Option<&String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty()).cloned()
}

impl Validator<'_> {
    fn ldap_url(&self, address: Option<&String>) -> Result<(String, Option<String>), ConfigError> {
        let key = format!("{K}.address");
        let Some(address) = non_empty(address) else {
            return Err(self.error(&key, "is required"));
        };
        let with_scheme = if address.contains("://") {
            address.clone()
        } else if address.starts_with('/') {
            format!("ldapi://{}", address.replace('/', "%2F"))
        } else {
            format!("ldaps://{address}")
        };
        let url = url::Url::parse(&with_scheme)
            .map_err(|e| self.error(&key, format!("{address:?} is not an address: {e}")))?;
        match url.scheme() {
            "ldap" | "ldaps" => {
                let host = url
                    .host_str()
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| self.error(&key, format!("{address:?} has no host")))?;
                if url.path() != "/" && !url.path().is_empty() {
                    return Err(self.error(&key, format!("{address:?} must not have a path")));
                }
                let port = url
                    .port()
                    .unwrap_or(if url.scheme() == "ldaps" { 636 } else { 389 });
                Ok((
                    format!("{}://{host}:{port}", url.scheme()),
                    Some(host.trim_matches(['[', ']']).to_owned()),
                ))
            }
            // Authelia writes the socket as the path (`ldapi:///run/slapd/ldapi`); the client
            // wants it percent-encoded in the host's place.
            "ldapi" if url.host_str().is_none_or(str::is_empty) && url.path().len() > 1 => {
                Ok((format!("ldapi://{}", url.path().replace('/', "%2F")), None))
            }
            "ldapi" if url.host_str().is_some_and(|h| h.starts_with("%2F")) => {
                Ok((with_scheme, None))
            }
            "ldapi" => Err(self.error(
                &key,
                format!("{address:?} names no socket: use ldapi:///absolute/path"),
            )),
            other => Err(self.error(
                &key,
                format!("scheme {other:?} is not one of ldap, ldaps or ldapi"),
            )),
        }
    }

    fn ldap_tls(
        &mut self,
        raw: Option<&RawLdapTls>,
        host: Option<String>,
        roots: &[std::path::PathBuf],
    ) -> Result<LdapTls, ConfigError> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let default = RawLdapTls::default();
        let raw = raw.unwrap_or(&default);
        let key = format!("{K}.tls");
        let version = |v: Option<&String>, name: &str| -> Result<Option<u8>, ConfigError> {
            match v.map(|s| s.to_ascii_uppercase().replace(['.', ' '], "")) {
                None => Ok(None),
                Some(s) if s.is_empty() => Ok(None),
                Some(s) if s == "TLS12" => Ok(Some(2)),
                Some(s) if s == "TLS13" => Ok(Some(3)),
                Some(s) if matches!(s.as_str(), "TLS10" | "TLS11" | "SSL30") => Err(self.error(
                    &format!("{key}.{name}"),
                    format!("{s} is not supported: TLS1.2 is the lowest version"),
                )),
                Some(s) => Err(self.error(
                    &format!("{key}.{name}"),
                    format!("{s:?} is not a TLS version (TLS1.2 or TLS1.3)"),
                )),
            }
        };
        let minimum = version(raw.minimum_version.as_ref(), "minimum_version")?;
        let maximum = version(raw.maximum_version.as_ref(), "maximum_version")?;
        if let (Some(min), Some(max)) = (minimum, maximum)
            && max < min
        {
            return Err(self.error(
                &format!("{key}.maximum_version"),
                "is lower than minimum_version",
            ));
        }
        if maximum == Some(2) {
            self.warn(
                &format!("{key}.maximum_version"),
                "TLS1.2 as the maximum is accepted; TLS1.3 is still offered when the directory has it",
            );
        }
        let skip_verify = raw.skip_verify.unwrap_or(false);
        if skip_verify {
            self.warn(
                &format!("{key}.skip_verify"),
                "the directory's certificate is not verified: anyone between Portcullis and it can read passwords",
            );
        }
        let mut anchors = Vec::new();
        for path in roots {
            let pem = std::fs::read(path).map_err(|e| {
                self.error("certificates_directory", format!("{}: {e}", path.display()))
            })?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                anchors.push(cert.map_err(|e| {
                    self.error("certificates_directory", format!("{}: {e}", path.display()))
                })?);
            }
        }
        let client_auth = match (&raw.certificate_chain, &raw.private_key) {
            (None, None) => None,
            (Some(chain), Some(private)) => {
                let certs: Result<Vec<_>, _> =
                    CertificateDer::pem_slice_iter(chain.as_bytes()).collect();
                let certs = certs
                    .map_err(|e| self.error(&format!("{key}.certificate_chain"), e.to_string()))?;
                if certs.is_empty() {
                    return Err(self.error(
                        &format!("{key}.certificate_chain"),
                        "holds no PEM certificate",
                    ));
                }
                let private = PrivateKeyDer::from_pem_slice(private.0.as_bytes())
                    .map_err(|e| self.error(&format!("{key}.private_key"), e.to_string()))?;
                Some((certs, std::sync::Arc::new(private)))
            }
            (Some(_), None) => {
                return Err(self.error(
                    &format!("{key}.private_key"),
                    "is required with certificate_chain",
                ));
            }
            (None, Some(_)) => {
                return Err(self.error(
                    &format!("{key}.certificate_chain"),
                    "is required with private_key",
                ));
            }
        };
        Ok(LdapTls {
            server_name: non_empty(raw.server_name.as_ref()).or(host),
            skip_verify,
            roots: anchors,
            tls13_only: minimum == Some(3),
            client_auth,
        })
    }

    /// `authentication_backend.ldap`, with `password_file` (`…_LDAP_PASSWORD_FILE`) and the
    /// trust anchors of `certificates_directory`; `password_reset` tells whether reset is on.
    pub(super) fn ldap(
        &mut self,
        raw: &RawLdap,
        password_file: Option<Secret>,
        roots: &[std::path::PathBuf],
        password_reset: bool,
    ) -> Result<LdapConfig, ConfigError> {
        let implementation = match raw.implementation.as_deref() {
            None => Implementation::Custom,
            Some(text) => Implementation::parse(text).ok_or_else(|| {
                self.error(
                    &format!("{K}.implementation"),
                    format!("{text:?} is not one of custom, activedirectory, rfc2307bis, freeipa, lldap or glauth"),
                )
            })?,
        };
        let defaults = implementation.defaults();
        let (url, host) = self.ldap_url(raw.address.as_ref())?;
        let timeout = match self.duration(&format!("{K}.timeout"), &raw.timeout, 0)? {
            0 => defaults.timeout,
            s => Duration::from_secs(s),
        };
        let tls = self.ldap_tls(raw.tls.as_ref(), host, roots)?;
        let pool_size = match &raw.pooling {
            Some(p) if p.enable == Some(true) => match p.count {
                None | Some(..=0) => 5,
                Some(n) => usize::try_from(n.min(64)).unwrap_or(5),
            },
            _ => 1,
        };
        // Authelia's defaults: two tries within ten seconds.
        let pool_acquire = match &raw.pooling {
            Some(p) if p.enable == Some(true) => Some(PoolAcquire {
                timeout: match self.duration(&format!("{K}.pooling.timeout"), &p.timeout, 10)? {
                    0 => Duration::from_secs(10),
                    s => Duration::from_secs(s),
                },
                retries: match p.retries {
                    None | Some(..=0) => 2,
                    Some(n) => u32::try_from(n.min(100)).unwrap_or(2),
                },
            }),
            _ => None,
        };
        if raw.permit_feature_detection_failure.is_some() {
            self.warn(
                &format!("{K}.permit_feature_detection_failure"),
                "was removed in Authelia 4.39.16 and has no effect",
            );
        }
        let attrs = raw.attributes.as_ref();
        let pick = |configured: Option<&String>, default: &str| {
            non_empty(configured).unwrap_or_else(|| default.to_owned())
        };
        let names = AttributeNames {
            distinguished_name: pick(
                attrs.and_then(|a| a.distinguished_name.as_ref()),
                defaults.distinguished_name.unwrap_or(""),
            ),
            username: pick(attrs.and_then(|a| a.username.as_ref()), defaults.username),
            display_name: pick(
                attrs.and_then(|a| a.display_name.as_ref()),
                defaults.display_name,
            ),
            mail: pick(attrs.and_then(|a| a.mail.as_ref()), defaults.mail),
            member_of: pick(
                attrs.and_then(|a| a.member_of.as_ref()),
                defaults.member_of.unwrap_or(""),
            ),
        };
        let mut profile: Vec<ProfileAttribute> = Vec::new();
        if let Some(a) = attrs {
            for (claim, ldap) in [
                ("family_name", &a.family_name),
                ("given_name", &a.given_name),
                ("middle_name", &a.middle_name),
                ("nickname", &a.nickname),
                ("gender", &a.gender),
                ("birthdate", &a.birthdate),
                ("website", &a.website),
                ("profile", &a.profile),
                ("picture", &a.picture),
                ("zoneinfo", &a.zoneinfo),
                ("locale", &a.locale),
                ("phone_number", &a.phone_number),
                ("phone_extension", &a.phone_extension),
                ("street_address", &a.street_address),
                ("locality", &a.locality),
                ("region", &a.region),
                ("postal_code", &a.postal_code),
                ("country", &a.country),
            ] {
                if let Some(ldap) = non_empty(ldap.as_ref()) {
                    profile.push(ProfileAttribute {
                        ldap,
                        name: claim.to_owned(),
                        multi_valued: false,
                        value_type: ValueType::String,
                    });
                }
            }
        }
        if let Some(extra) = attrs.and_then(|a| a.extra.as_ref()) {
            for (name, attribute) in extra {
                let key = format!("{K}.attributes.extra.{name}");
                if RESERVED.contains(&name.as_str())
                    || attribute
                        .name
                        .as_deref()
                        .is_some_and(|n| RESERVED.contains(&n))
                {
                    return Err(self.error(&key, format!("the name {name:?} is reserved")));
                }
                let value_type = match attribute.value_type.as_deref() {
                    Some("string") => ValueType::String,
                    Some("integer") => ValueType::Integer,
                    Some("boolean") => ValueType::Boolean,
                    None => return Err(self.error(&format!("{key}.value_type"), "is required")),
                    Some(other) => {
                        return Err(self.error(
                            &format!("{key}.value_type"),
                            format!("must be one of string, integer or boolean, not {other:?}"),
                        ));
                    }
                };
                profile.push(ProfileAttribute {
                    ldap: name.clone(),
                    name: non_empty(attribute.name.as_ref()).unwrap_or_else(|| name.clone()),
                    multi_valued: attribute.multi_valued.unwrap_or(false),
                    value_type,
                });
            }
        }
        let users_filter = non_empty(raw.users_filter.as_ref())
            .or_else(|| defaults.users_filter.map(str::to_owned))
            .ok_or_else(|| self.error(&format!("{K}.users_filter"), "is required"))?;
        let groups_filter = non_empty(raw.groups_filter.as_ref())
            .or_else(|| defaults.groups_filter.map(str::to_owned))
            .ok_or_else(|| self.error(&format!("{K}.groups_filter"), "is required"))?;
        for (key, filter, old, new) in [
            ("users_filter", &users_filter, "{0}", "{input}"),
            ("groups_filter", &groups_filter, "{0}", "{input}"),
            ("groups_filter", &groups_filter, "{1}", "{username}"),
        ] {
            if filter.contains(old) {
                return Err(self.error(
                    &format!("{K}.{key}"),
                    format!("has the placeholder {old}, which was replaced by {new}"),
                ));
            }
        }
        for (key, filter) in [
            ("users_filter", &users_filter),
            ("groups_filter", &groups_filter),
        ] {
            if !filter.starts_with('(') || !filter.ends_with(')') {
                return Err(self.error(
                    &format!("{K}.{key}"),
                    format!("{filter:?} must be enclosed in parentheses"),
                ));
            }
        }
        for placeholder in ["{username_attribute}", "{input}"] {
            if !users_filter.contains(placeholder) {
                return Err(self.error(
                    &format!("{K}.users_filter"),
                    format!("must contain the placeholder {placeholder}"),
                ));
            }
        }
        let group_search_mode = match raw.group_search_mode.as_deref() {
            None | Some("" | "filter") => GroupSearchMode::Filter,
            Some("memberof") => GroupSearchMode::MemberOf,
            Some(other) => {
                return Err(self.error(
                    &format!("{K}.group_search_mode"),
                    format!("{other:?} is not one of filter or memberof"),
                ));
            }
        };
        let member_dn = groups_filter.contains("{memberof:dn}");
        let member_rdn = groups_filter.contains("{memberof:rdn}");
        if group_search_mode == GroupSearchMode::MemberOf && !member_dn && !member_rdn {
            return Err(self.error(
                &format!("{K}.groups_filter"),
                "must contain {memberof:rdn} or {memberof:dn} with group_search_mode memberof",
            ));
        }
        if member_dn && names.distinguished_name.is_empty() {
            return Err(self.error(
                &format!("{K}.attributes.distinguished_name"),
                "is required by {memberof:dn}",
            ));
        }
        if (member_dn || member_rdn) && names.member_of.is_empty() {
            return Err(self.error(
                &format!("{K}.attributes.member_of"),
                "is required by {memberof:rdn} and {memberof:dn}",
            ));
        }
        let unauthenticated = raw.permit_unauthenticated_bind.unwrap_or(false);
        let password =
            password_file.or_else(|| raw.password.as_ref().map(|p| Secret::new(p.0.clone())));
        let user = non_empty(raw.user.as_ref());
        if unauthenticated {
            if password.as_ref().is_some_and(|p| !p.expose().is_empty()) {
                return Err(self.error(
                    &format!("{K}.permit_unauthenticated_bind"),
                    "cannot be enabled when a password is set",
                ));
            }
            if password_reset {
                return Err(self.error(
                    &format!("{K}.permit_unauthenticated_bind"),
                    "cannot be enabled while password reset is on (authentication_backend.password_reset.disable)",
                ));
            }
        } else {
            if user.is_none() {
                return Err(self.error(&format!("{K}.user"), "is required"));
            }
            if password.as_ref().is_none_or(|p| p.expose().is_empty()) {
                return Err(self.error(&format!("{K}.password"), "is required"));
            }
        }
        let base_dn = non_empty(raw.base_dn.as_ref()).unwrap_or_default();
        let join = |additional: Option<String>| match (additional, base_dn.is_empty()) {
            (Some(a), false) => format!("{a},{base_dn}"),
            (Some(a), true) => a,
            (None, _) => base_dn.clone(),
        };
        let users_base = join(
            non_empty(raw.additional_users_dn.as_ref())
                .or_else(|| defaults.additional_users_dn.map(str::to_owned)),
        );
        let groups_base = join(
            non_empty(raw.additional_groups_dn.as_ref())
                .or_else(|| defaults.additional_groups_dn.map(str::to_owned)),
        );
        let distinguished_name =
            (!names.distinguished_name.is_empty()).then(|| names.distinguished_name.clone());
        let member_of = (!names.member_of.is_empty()).then(|| names.member_of.clone());
        Ok(LdapConfig {
            url,
            implementation,
            timeout,
            start_tls: raw.start_tls.unwrap_or(false),
            tls,
            pool_size,
            pool_acquire,
            users_base,
            users_filter: with_attribute_names(&users_filter, &names),
            groups_base,
            groups_filter: with_attribute_names(&groups_filter, &names),
            group_search_mode,
            attributes: Attributes {
                group_name: pick(
                    attrs.and_then(|a| a.group_name.as_ref()),
                    defaults.group_name,
                ),
                names,
                distinguished_name,
                member_of,
                profile,
            },
            permit_referrals: raw.permit_referrals.unwrap_or(false),
            user,
            password,
        })
    }
}
