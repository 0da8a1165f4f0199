//! Secrets that come from files named by environment variables instead of the configuration file
//! (`AUTHELIA_SESSION_SECRET_FILE` and the rest), as Authelia reads them.

use std::ffi::OsString;

use portcullis_config::{SecretFile, SecretFileError};

/// Shortest session secret accepted: the session and CSRF keys are derived from it.
pub const MIN_SESSION_SECRET_LENGTH: usize = 20;

/// The variables each secret may come from, Portcullis's spelling first.
const SESSION_SECRET: [&str; 2] = [
    "PORTCULLIS_SESSION_SECRET_FILE",
    "AUTHELIA_SESSION_SECRET_FILE",
];
const REDIS_PASSWORD: [&str; 2] = [
    "PORTCULLIS_SESSION_REDIS_PASSWORD_FILE",
    "AUTHELIA_SESSION_REDIS_PASSWORD_FILE",
];
const SENTINEL_PASSWORD: [&str; 2] = [
    "PORTCULLIS_SESSION_REDIS_HIGH_AVAILABILITY_SENTINEL_PASSWORD_FILE",
    "AUTHELIA_SESSION_REDIS_HIGH_AVAILABILITY_SENTINEL_PASSWORD_FILE",
];
const OIDC_HMAC_SECRET: [&str; 2] = [
    "PORTCULLIS_IDENTITY_PROVIDERS_OIDC_HMAC_SECRET_FILE",
    "AUTHELIA_IDENTITY_PROVIDERS_OIDC_HMAC_SECRET_FILE",
];
const OIDC_ISSUER_PRIVATE_KEY: [&str; 2] = [
    "PORTCULLIS_IDENTITY_PROVIDERS_OIDC_ISSUER_PRIVATE_KEY_FILE",
    "AUTHELIA_IDENTITY_PROVIDERS_OIDC_ISSUER_PRIVATE_KEY_FILE",
];

const SMTP_PASSWORD: [&str; 2] = [
    "PORTCULLIS_NOTIFIER_SMTP_PASSWORD_FILE",
    "AUTHELIA_NOTIFIER_SMTP_PASSWORD_FILE",
];
const LDAP_PASSWORD: [&str; 2] = [
    "PORTCULLIS_AUTHENTICATION_BACKEND_LDAP_PASSWORD_FILE",
    "AUTHELIA_AUTHENTICATION_BACKEND_LDAP_PASSWORD_FILE",
];
const STORAGE_ENCRYPTION_KEY: [&str; 2] = [
    "PORTCULLIS_STORAGE_ENCRYPTION_KEY_FILE",
    "AUTHELIA_STORAGE_ENCRYPTION_KEY_FILE",
];

/// Where secrets may come from besides the file (environment variables, read by the binary).
#[derive(Debug, Default, Clone)]
pub struct SecretSources {
    /// `…_SESSION_SECRET_FILE`.
    pub session_secret: Option<SecretFile>,
    /// `…_SESSION_REDIS_PASSWORD_FILE`.
    pub redis_password: Option<SecretFile>,
    /// `…_SESSION_REDIS_HIGH_AVAILABILITY_SENTINEL_PASSWORD_FILE`.
    pub sentinel_password: Option<SecretFile>,
    /// `…_IDENTITY_PROVIDERS_OIDC_HMAC_SECRET_FILE`.
    pub oidc_hmac_secret: Option<SecretFile>,
    /// `…_IDENTITY_PROVIDERS_OIDC_ISSUER_PRIVATE_KEY_FILE`.
    pub oidc_issuer_private_key: Option<SecretFile>,
    /// `…_STORAGE_ENCRYPTION_KEY_FILE`.
    pub storage_encryption_key: Option<SecretFile>,
    /// `…_NOTIFIER_SMTP_PASSWORD_FILE`.
    pub smtp_password: Option<SecretFile>,
    /// `…_AUTHENTICATION_BACKEND_LDAP_PASSWORD_FILE`.
    pub ldap_password: Option<SecretFile>,
}

impl SecretSources {
    /// Every variable these secrets are read from.
    pub const VARIABLES: [&'static str; 16] = [
        SESSION_SECRET[0],
        SESSION_SECRET[1],
        REDIS_PASSWORD[0],
        REDIS_PASSWORD[1],
        SENTINEL_PASSWORD[0],
        SENTINEL_PASSWORD[1],
        OIDC_HMAC_SECRET[0],
        OIDC_HMAC_SECRET[1],
        OIDC_ISSUER_PRIVATE_KEY[0],
        OIDC_ISSUER_PRIVATE_KEY[1],
        STORAGE_ENCRYPTION_KEY[0],
        STORAGE_ENCRYPTION_KEY[1],
        SMTP_PASSWORD[0],
        SMTP_PASSWORD[1],
        LDAP_PASSWORD[0],
        LDAP_PASSWORD[1],
    ];

    /// Read the secret files named by the process environment.
    pub fn from_env() -> Result<Self, SecretFileError> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// Read the secret files named by `lookup` (the environment, or a table in tests). A named
    /// file that cannot be read or is empty is an error.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Self, SecretFileError> {
        Ok(Self {
            session_secret: SecretFile::find(&SESSION_SECRET, &lookup)?,
            redis_password: SecretFile::find(&REDIS_PASSWORD, &lookup)?,
            sentinel_password: SecretFile::find(&SENTINEL_PASSWORD, &lookup)?,
            oidc_hmac_secret: SecretFile::find(&OIDC_HMAC_SECRET, &lookup)?,
            oidc_issuer_private_key: SecretFile::find(&OIDC_ISSUER_PRIVATE_KEY, &lookup)?,
            storage_encryption_key: SecretFile::find(&STORAGE_ENCRYPTION_KEY, &lookup)?,
            smtp_password: SecretFile::find(&SMTP_PASSWORD, &lookup)?,
            ldap_password: SecretFile::find(&LDAP_PASSWORD, &lookup)?,
        })
    }
}
