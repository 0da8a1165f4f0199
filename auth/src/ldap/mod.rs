//! Users in a directory (`authentication_backend.ldap`, docs/reference/ldap.md): the settings
//! and each implementation's defaults (`config`), the search filters with their placeholders
//! (`filter`, pure), TLS towards the directory (`tls`) and the directory client (`client`: the
//! user search, the bind, the groups, password changes).

mod client;
pub mod config;
mod directory;
pub mod filter;
mod referral;
mod tls;

pub use client::{DirectoryUser, LdapDirectory, LdapError, PasswordChangeMethod};
