//! The LDAP backend's settings, validated (docs/reference/ldap.md §5.1), and each
//! implementation's defaults, which fill only what the configuration leaves empty.

use std::time::Duration;

use portcullis_core::Secret;

use super::filter::AttributeNames;

/// `authentication_backend.ldap.implementation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// Nothing assumed: both filters are required.
    Custom,
    /// Microsoft Active Directory.
    ActiveDirectory,
    /// OpenLDAP and others with the RFC 2307bis schema.
    Rfc2307bis,
    /// FreeIPA.
    FreeIpa,
    /// lldap.
    Lldap,
    /// GLAuth.
    Glauth,
}

/// What an implementation fills in when the configuration is silent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// `users_filter`.
    pub users_filter: Option<&'static str>,
    /// `groups_filter`.
    pub groups_filter: Option<&'static str>,
    /// `attributes.distinguished_name`.
    pub distinguished_name: Option<&'static str>,
    /// `attributes.username`.
    pub username: &'static str,
    /// `attributes.display_name`.
    pub display_name: &'static str,
    /// `attributes.mail`.
    pub mail: &'static str,
    /// `attributes.member_of`.
    pub member_of: Option<&'static str>,
    /// `attributes.group_name`.
    pub group_name: &'static str,
    /// `additional_users_dn`.
    pub additional_users_dn: Option<&'static str>,
    /// `additional_groups_dn`.
    pub additional_groups_dn: Option<&'static str>,
    /// `timeout`.
    pub timeout: Duration,
}

impl Implementation {
    /// Parse the configuration's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "" | "custom" => Some(Self::Custom),
            "activedirectory" => Some(Self::ActiveDirectory),
            "rfc2307bis" => Some(Self::Rfc2307bis),
            "freeipa" => Some(Self::FreeIpa),
            "lldap" => Some(Self::Lldap),
            "glauth" => Some(Self::Glauth),
            _ => None,
        }
    }

    /// Authelia 4.39's defaults for this implementation (`schema/authentication.go`).
    pub fn defaults(self) -> Defaults {
        let base = Defaults {
            users_filter: None,
            groups_filter: None,
            distinguished_name: None,
            username: "uid",
            display_name: "displayName",
            mail: "mail",
            member_of: Some("memberOf"),
            group_name: "cn",
            additional_users_dn: None,
            additional_groups_dn: None,
            timeout: Duration::from_secs(5),
        };
        match self {
            Self::Custom => Defaults {
                member_of: None,
                timeout: Duration::from_secs(20),
                ..base
            },
            Self::ActiveDirectory => Defaults {
                users_filter: Some(
                    "(&(|({username_attribute}={input})({mail_attribute}={input}))(sAMAccountType=805306368)(!(userAccountControl:1.2.840.113556.1.4.803:=2))(!(pwdLastSet=0))(|(!(accountExpires=*))(accountExpires=0)(accountExpires>={date-time:microsoft-nt})))",
                ),
                groups_filter: Some(
                    "(&(member={dn})(|(sAMAccountType=268435456)(sAMAccountType=536870912)))",
                ),
                distinguished_name: Some("distinguishedName"),
                username: "sAMAccountName",
                ..base
            },
            Self::Rfc2307bis => Defaults {
                users_filter: Some(
                    "(&(|({username_attribute}={input})({mail_attribute}={input}))(|(objectClass=inetOrgPerson)(objectClass=organizationalPerson)))",
                ),
                groups_filter: Some(
                    "(&(|(member={dn})(uniqueMember={dn}))(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=groupOfMembers))(!(pwdReset=TRUE)))",
                ),
                ..base
            },
            Self::FreeIpa => Defaults {
                users_filter: Some(
                    "(&(|({username_attribute}={input})({mail_attribute}={input}))(objectClass=person)(!(nsAccountLock=TRUE))(krbPasswordExpiration>={date-time:generalized})(|(!(krbPrincipalExpiration=*))(krbPrincipalExpiration>={date-time:generalized})))",
                ),
                groups_filter: Some("(&(member={dn})(objectClass=groupOfNames))"),
                ..base
            },
            Self::Lldap => Defaults {
                users_filter: Some(
                    "(&(|({username_attribute}={input})({mail_attribute}={input}))(objectClass=person))",
                ),
                groups_filter: Some("(&(member={dn})(objectClass=groupOfUniqueNames))"),
                display_name: "cn",
                additional_users_dn: Some("OU=people"),
                additional_groups_dn: Some("OU=groups"),
                ..base
            },
            Self::Glauth => Defaults {
                users_filter: Some(
                    "(&(|({username_attribute}={input})({mail_attribute}={input}))(objectClass=posixAccount)(!(accountStatus=inactive)))",
                ),
                groups_filter: Some("(&(uniqueMember={dn})(objectClass=posixGroup))"),
                username: "cn",
                display_name: "description",
                ..base
            },
        }
    }
}

/// How groups are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSearchMode {
    /// Search the groups with the groups filter (it names the user: `{dn}`, `{username}`, …).
    Filter,
    /// Search the groups the user's `memberOf` lists (`{memberof:dn}` or `{memberof:rdn}`).
    MemberOf,
}

/// The attributes read from the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// The names the filters' placeholders stand for.
    pub names: AttributeNames,
    /// `attributes.distinguished_name`, when set (else the entry's DN is used).
    pub distinguished_name: Option<String>,
    /// `attributes.member_of`, when set.
    pub member_of: Option<String>,
    /// `attributes.group_name`.
    pub group_name: String,
    /// The extended profile attributes and `attributes.extra`: read from the user's entry into
    /// the user's attributes.
    pub profile: Vec<ProfileAttribute>,
}

/// A directory attribute carried into the user's attributes (the OpenID claims' source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileAttribute {
    /// The directory's attribute name.
    pub ldap: String,
    /// The name it is known by (a claim name, or `extra.*.name`).
    pub name: String,
    /// Every value as a list, instead of the first.
    pub multi_valued: bool,
    /// How each value is read.
    pub value_type: ValueType,
}

/// How an `extra` attribute's values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// As text.
    String,
    /// As a signed 64-bit integer.
    Integer,
    /// `TRUE` or `FALSE`, in any case.
    Boolean,
}

/// TLS towards the directory.
#[derive(Clone, Default)]
pub struct LdapTls {
    /// The name the certificate must carry (default: the address's host).
    pub server_name: Option<String>,
    /// No verification at all (warned about at start).
    pub skip_verify: bool,
    /// Trust anchors beyond the system's (PEM certificates from `certificates_directory`).
    pub roots: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// TLS 1.3 only (`minimum_version: TLS1.3`); else 1.2 and 1.3.
    pub tls13_only: bool,
    /// A client certificate chain and its key.
    pub client_auth: Option<(
        Vec<rustls_pki_types::CertificateDer<'static>>,
        std::sync::Arc<rustls_pki_types::PrivateKeyDer<'static>>,
    )>,
}

impl std::fmt::Debug for LdapTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapTls")
            .field("server_name", &self.server_name)
            .field("skip_verify", &self.skip_verify)
            .field("roots", &self.roots.len())
            .field("tls13_only", &self.tls13_only)
            .field("client_auth", &self.client_auth.is_some())
            .finish()
    }
}

/// `authentication_backend.ldap.pooling.{timeout,retries}`: a pooled service connection that
/// cannot be (re)made is tried again, `timeout / retries` apart, until `timeout` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolAcquire {
    /// How long an operation waits for a service connection.
    pub timeout: Duration,
    /// How many tries that time is divided into (at least 1).
    pub retries: u32,
}

/// `authentication_backend.ldap`, validated.
#[derive(Debug, Clone)]
pub struct LdapConfig {
    /// `ldap://host:port`, `ldaps://host:port` or `ldapi://…`.
    pub url: String,
    /// Which directory it is.
    pub implementation: Implementation,
    /// Dial and operation timeout.
    pub timeout: Duration,
    /// Upgrade `ldap://` with StartTLS.
    pub start_tls: bool,
    /// TLS settings (LDAPS and StartTLS).
    pub tls: LdapTls,
    /// Service connections kept open (1 when pooling is off).
    pub pool_size: usize,
    /// With pooling on, how a service connection is acquired: redial for up to `timeout`,
    /// `retries` times.
    pub pool_acquire: Option<PoolAcquire>,
    /// Where users are searched (`additional_users_dn,base_dn`).
    pub users_base: String,
    /// The users filter, attribute placeholders already replaced.
    pub users_filter: String,
    /// Where groups are searched.
    pub groups_base: String,
    /// The groups filter, attribute placeholders already replaced.
    pub groups_filter: String,
    /// How groups are found.
    pub group_search_mode: GroupSearchMode,
    /// The attributes read.
    pub attributes: Attributes,
    /// Follow referrals.
    pub permit_referrals: bool,
    /// The service account's DN (`None`: unauthenticated bind, when permitted).
    pub user: Option<String>,
    /// Its password.
    pub password: Option<Secret>,
}
