//! The directory itself (docs/reference/ldap.md §5.3): service connections that reconnect by
//! themselves, the user search (size limit 1, the canonical username from the entry), the group
//! search in both modes, the password proven by binding as the user's DN on a fresh connection,
//! and password changes (Password Modify when advertised, `unicodePwd` for Active Directory,
//! `userPassword` as the last resort; the policy hints control when advertised), and referrals
//! with `permit_referrals` (§5.7 item 12). Every operation is bounded by `timeout`; every failure
//! is an error, never an empty answer that a caller could take for "no groups".

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapResult, Scope, SearchEntry};
use tokio::sync::Mutex;
use tokio_rustls::rustls;

use super::config::{GroupSearchMode, Implementation, LdapConfig, ProfileAttribute, ValueType};
use super::filter::{GroupQuery, groups_filter, users_filter};
use super::referral::{self, Referral};
use super::tls::client_config;

mod password;
mod search;
use password::POLICY_HINTS_OIDS;
use search::well_formed;

/// The Password Modify extended operation (RFC 3062).
const PASSWORD_MODIFY_OID: &str = "1.3.6.1.4.1.4203.1.11.1";

/// LDAP result codes this client tells apart (RFC 4511 appendix A).
mod rc {
    pub(super) const SUCCESS: u32 = 0;
    pub(super) const SIZE_LIMIT_EXCEEDED: u32 = 4;
    pub(super) const REFERRAL: u32 = 10;
    pub(super) const CONSTRAINT_VIOLATION: u32 = 19;
    pub(super) const NO_SUCH_OBJECT: u32 = 32;
    pub(super) const INAPPROPRIATE_AUTHENTICATION: u32 = 48;
    pub(super) const INVALID_CREDENTIALS: u32 = 49;
    pub(super) const UNWILLING_TO_PERFORM: u32 = 53;
    pub(super) const OBJECT_CLASS_VIOLATION: u32 = 65;
}

/// What the root DSE says the directory can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Discovery {
    password_modify: bool,
    /// The policy hints control's OID, when the directory knows one.
    policy_hints: Option<&'static str>,
}

impl Discovery {
    fn read(root: &[SearchEntry]) -> Self {
        let listed = |attribute: &str, oid: &str| {
            root.iter()
                .any(|e| all(e, attribute).iter().any(|value| value == oid))
        };
        Self {
            password_modify: listed("supportedExtension", PASSWORD_MODIFY_OID),
            policy_hints: POLICY_HINTS_OIDS
                .into_iter()
                .find(|oid| listed("supportedControl", oid)),
        }
    }
}

/// Why a directory operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdapError {
    /// The directory cannot be reached, did not answer in time, or refused the service account.
    #[error("the directory is unavailable: {0}")]
    Unavailable(String),
    /// No entry matches the login.
    #[error("no user matches")]
    NotFound,
    /// Several entries match the login.
    #[error("several users match")]
    Ambiguous,
    /// An entry without exactly one username value.
    #[error("the user entry is malformed: {0}")]
    Malformed(String),
    /// An empty password (refused before any bind).
    #[error("an empty password is refused")]
    EmptyPassword,
    /// The password is wrong (bind result 49).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The directory refused a new password (constraint, policy, unwilling to perform, …).
    #[error("the directory refused the new password: {0}")]
    PasswordRefused(String),
    /// Anything else the directory answered with.
    #[error("directory error: {0}")]
    Protocol(String),
}

fn unavailable(e: impl std::fmt::Display) -> LdapError {
    LdapError::Unavailable(e.to_string())
}

/// A user as the directory describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The entry's DN.
    pub dn: String,
    /// The canonical username (the username attribute's one value).
    pub username: String,
    /// The display name.
    pub display_name: String,
    /// Email addresses, the first one primary.
    pub emails: Vec<String>,
    /// The names of the user's groups.
    pub groups: Vec<String>,
    /// The profile and `extra` attributes the entry has (docs/reference/ldap.md §5.1).
    pub attributes: portcullis_core::Attributes,
}

/// How the directory is asked to change a password (docs/reference/ldap.md §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordChangeMethod {
    /// Active Directory's `unicodePwd`.
    UnicodePwd,
    /// The Password Modify extended operation (RFC 3062): the directory hashes.
    PasswordModify,
    /// A plain `userPassword` replacement: the directory may store it unhashed.
    PlaintextUserPassword,
}

/// The directory: its settings and its service connections.
pub struct LdapDirectory {
    config: Arc<LdapConfig>,
    tls: Arc<rustls::ClientConfig>,
    service: Vec<Mutex<Option<Ldap>>>,
    next: AtomicUsize,
    discovery: Mutex<Option<Discovery>>,
    /// The servers that hold the entries found through referrals (lowercased DN → address),
    /// so that a user found there binds there: slapd answers a bind beneath a referral object
    /// with result 49, not with the referral.
    homes: std::sync::Mutex<HashMap<String, String>>,
}

/// At most this many entries found through referrals are remembered; past it, the memory starts
/// again (a user found again is remembered again).
const MAX_HOMES: usize = 4096;

impl std::fmt::Debug for LdapDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapDirectory")
            .field("url", &self.config.url)
            .field("pool", &self.service.len())
            .finish_non_exhaustive()
    }
}

fn first(entry: &SearchEntry, attribute: &str) -> Option<String> {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attribute))
        .and_then(|(_, v)| v.first().cloned())
}

fn all(entry: &SearchEntry, attribute: &str) -> Vec<String> {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attribute))
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// The profile attributes `entry` has, read as configured. A value that is not of its type is
/// left out (and logged), never guessed.
fn profile(entry: &SearchEntry, wanted: &[ProfileAttribute]) -> portcullis_core::Attributes {
    use portcullis_core::AttributeValue;
    let mut out = portcullis_core::Attributes::new();
    for attribute in wanted {
        let values = all(entry, &attribute.ldap);
        let read = |text: &str| match attribute.value_type {
            ValueType::String => Some(AttributeValue::String(text.to_owned())),
            ValueType::Integer => text.trim().parse().ok().map(AttributeValue::Integer),
            ValueType::Boolean => match text.trim().to_ascii_lowercase().as_str() {
                "true" => Some(AttributeValue::Bool(true)),
                "false" => Some(AttributeValue::Bool(false)),
                _ => None,
            },
        };
        let value = if attribute.multi_valued {
            (!values.is_empty()).then(|| AttributeValue::List(values.clone()))
        } else {
            values.first().and_then(|v| {
                let read = read(v);
                if read.is_none() {
                    tracing::warn!(dn = %entry.dn, attribute = %attribute.ldap, "a directory attribute is not of its configured type: left out");
                }
                read
            })
        };
        if let Some(value) = value {
            out.insert(attribute.name.clone(), value);
        }
    }
    out
}

impl LdapDirectory {
    /// The directory of `config`. Connects lazily: a directory that is down at start is not an
    /// error here (checks that need it fail until it is back).
    pub fn new(config: LdapConfig) -> Result<Self, LdapError> {
        let tls = client_config(&config.tls).map_err(LdapError::Protocol)?;
        let pool = config.pool_size.max(1);
        Ok(Self {
            config: Arc::new(config),
            tls,
            service: (0..pool).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            discovery: Mutex::new(None),
            homes: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The settings.
    pub fn config(&self) -> &LdapConfig {
        &self.config
    }

    /// Service connections open now (of `pooling.count`, or one without pooling).
    pub fn open_connections(&self) -> usize {
        self.service
            .iter()
            .filter(|slot| {
                slot.try_lock()
                    .is_ok_and(|mut c| c.as_mut().is_some_and(|l| !l.is_closed()))
            })
            .count()
    }

    /// What a server checks before it serves (Authelia's start-up check): the service account
    /// binds and the root DSE can be read. Answers how passwords will be changed.
    pub async fn startup_check(&self) -> Result<PasswordChangeMethod, LdapError> {
        let discovery = self.discovery().await?;
        Ok(
            if self.config.implementation == Implementation::ActiveDirectory {
                PasswordChangeMethod::UnicodePwd
            } else if discovery.password_modify {
                PasswordChangeMethod::PasswordModify
            } else {
                PasswordChangeMethod::PlaintextUserPassword
            },
        )
    }

    /// A new connection to the configured directory (TLS per the URL and `start_tls`), not bound.
    async fn connect(&self) -> Result<Ldap, LdapError> {
        self.connect_to(&self.config.url).await
    }

    /// A new connection to `address`, not bound.
    async fn connect_to(&self, address: &str) -> Result<Ldap, LdapError> {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.config.timeout)
            .set_config(self.tls.clone())
            .set_starttls(self.config.start_tls && address.starts_with("ldap://"));
        let dial = LdapConnAsync::with_settings(settings, address);
        let (conn, mut ldap) = tokio::time::timeout(self.config.timeout, dial)
            .await
            .map_err(|_| unavailable("connecting timed out"))?
            .map_err(unavailable)?;
        ldap3::drive!(conn);
        ldap.with_timeout(self.config.timeout);
        Ok(ldap)
    }

    /// A bound service connection, from the pool or made now. With pooling, a connection
    /// that cannot be made is tried again until `pooling.timeout` (Authelia's pool).
    async fn service(&self) -> Result<(usize, Ldap), LdapError> {
        let Some(acquire) = self.config.pool_acquire else {
            return self.service_once().await;
        };

        let pause = acquire.timeout / acquire.retries.max(1);
        // The deadline is a timer, not a clock reading: this crate reads no clock.
        let deadline = tokio::time::sleep(acquire.timeout);
        tokio::pin!(deadline);
        let mut last = None;
        let expired = |last: Option<LdapError>| {
            last.unwrap_or_else(|| unavailable("no service connection within pooling.timeout"))
        };
        loop {
            tokio::select! {
                () = &mut deadline => return Err(expired(last)),
                result = self.service_once() => match result {
                    Ok(connection) => return Ok(connection),
                    Err(e) => last = Some(e),
                },
            }
            tokio::select! {
                () = &mut deadline => return Err(expired(last)),
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One try at a service connection, bounded by `timeout` as a whole: waiting for the slot
    /// that another operation is reconnecting counts, so that under load an unanswering
    /// directory fails each operation within its timeout instead of queueing them one timeout
    /// after another.
    async fn service_once(&self) -> Result<(usize, Ldap), LdapError> {
        tokio::time::timeout(self.config.timeout, self.service_slot())
            .await
            .map_err(|_| unavailable("no service connection within the timeout"))?
    }

    async fn service_slot(&self) -> Result<(usize, Ldap), LdapError> {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.service.len();
        let mut guard = self.service[slot].lock().await;
        if let Some(ldap) = guard.as_mut()
            && !ldap.is_closed()
        {
            return Ok((slot, ldap.clone()));
        }
        let mut ldap = self.connect().await?;
        self.bind_service(&mut ldap).await?;
        *guard = Some(ldap.clone());
        Ok((slot, ldap))
    }

    /// Bind `ldap` as the service account (or not at all, when unauthenticated binds are
    /// permitted).
    async fn bind_service(&self, ldap: &mut Ldap) -> Result<(), LdapError> {
        match (&self.config.user, &self.config.password) {
            (Some(user), Some(password)) if !password.expose().is_empty() => {
                ldap.simple_bind(user, password.expose())
                    .await
                    .map_err(unavailable)?
                    .success()
                    .map_err(|e| unavailable(format!("the service account was refused: {e}")))?;
                Ok(())
            }
            // Unauthenticated bind: no service account at all (the configuration permits it).
            (None, _) => Ok(()),
            // A service account without a password would be an anonymous bind under its name:
            // refused, never sent.
            (Some(_), _) => Err(unavailable("the service account has no password")),
        }
    }

    /// A service connection to the server `referral` names, made for one operation and not
    /// pooled, as Authelia does.
    async fn referred(&self, referral: &Referral) -> Result<Ldap, LdapError> {
        let mut ldap = self.connect_to(&referral.address).await.map_err(|e| {
            unavailable(format!("the referred directory {}: {e}", referral.address))
        })?;
        self.bind_service(&mut ldap).await?;
        Ok(ldap)
    }

    fn remember_home(&self, dn: &str, address: &str) {
        let mut homes = self
            .homes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if homes.len() >= MAX_HOMES {
            homes.clear();
        }
        homes.insert(dn.to_lowercase(), address.to_owned());
    }

    /// The server that holds the entry at `dn`: the one a referral named when it was found
    /// there, otherwise the configured one.
    fn home_of(&self, dn: &str) -> String {
        self.homes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&dn.to_lowercase())
            .cloned()
            .unwrap_or_else(|| self.config.url.clone())
    }

    /// The first followable referral of `urls`, when referrals may be followed.
    fn followable(&self, urls: &[String]) -> Option<Referral> {
        if !self.config.permit_referrals {
            return None;
        }
        let referral = urls.iter().find_map(|u| referral::parse(u));
        if referral.is_none() {
            tracing::warn!(?urls, "a referral names no server that can be followed");
        }
        referral
    }

    /// Forget a service connection that failed, so the next operation reconnects.
    async fn drop_service(&self, slot: usize) {
        *self.service[slot].lock().await = None;
    }

    /// The user `input` names (a username or an email address) with their groups, at `now`.
    pub async fn find(&self, input: &str, now: u64) -> Result<DirectoryUser, LdapError> {
        let c = &self.config;
        let names = &c.attributes.names;
        let mut wanted = vec![
            names.username.as_str(),
            names.display_name.as_str(),
            names.mail.as_str(),
        ];
        if let Some(m) = &c.attributes.member_of {
            wanted.push(m);
        }
        if let Some(d) = &c.attributes.distinguished_name {
            wanted.push(d);
        }
        wanted.extend(c.attributes.profile.iter().map(|p| p.ldap.as_str()));
        let filter = users_filter(&c.users_filter, input, now);
        let mut entries = self.search(&c.users_base, &filter, &wanted, 1).await?;
        let entry = match entries.len() {
            0 => return Err(LdapError::NotFound),
            1 => entries.remove(0),
            _ => return Err(LdapError::Ambiguous),
        };
        let usernames = all(&entry, &names.username);
        let [username] = usernames.as_slice() else {
            return Err(LdapError::Malformed(format!(
                "{} has {} values of {}",
                entry.dn,
                usernames.len(),
                names.username
            )));
        };
        let display_name = first(&entry, &names.display_name)
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| username.clone());
        let member_of = c
            .attributes
            .member_of
            .as_deref()
            .map(|m| all(&entry, m))
            .unwrap_or_default();
        let dn = c
            .attributes
            .distinguished_name
            .as_deref()
            .and_then(|d| first(&entry, d))
            .unwrap_or_else(|| entry.dn.clone());
        let groups = self.groups(input, username, &dn, &member_of, now).await?;
        Ok(DirectoryUser {
            dn,
            username: username.clone(),
            display_name,
            emails: all(&entry, &names.mail),
            groups,
            attributes: profile(&entry, &c.attributes.profile),
        })
    }

    async fn groups(
        &self,
        input: &str,
        username: &str,
        dn: &str,
        member_of: &[String],
        now: u64,
    ) -> Result<Vec<String>, LdapError> {
        let c = &self.config;
        if c.group_search_mode == GroupSearchMode::MemberOf && member_of.is_empty() {
            return Ok(Vec::new());
        }
        let filter = groups_filter(
            &c.groups_filter,
            GroupQuery {
                input,
                username,
                dn,
                member_of,
                dn_attribute: c
                    .attributes
                    .distinguished_name
                    .as_deref()
                    .unwrap_or("distinguishedName"),
            },
            now,
        );
        let name = c.attributes.group_name.as_str();
        let entries = self.search(&c.groups_base, &filter, &[name], 0).await?;
        let listed: HashSet<String> = member_of.iter().map(|m| m.to_lowercase()).collect();
        let mut groups = Vec::new();
        for entry in entries {
            if c.group_search_mode == GroupSearchMode::MemberOf
                && !listed.contains(&entry.dn.to_lowercase())
            {
                continue;
            }
            let values = all(&entry, name);
            if let [group] = values.as_slice()
                && !group.is_empty()
                && !groups.contains(group)
            {
                groups.push(group.clone());
            }
        }
        Ok(groups)
    }

    /// Check `password` for the user `input` names: the user search, then a bind as their DN on
    /// a fresh connection. An empty password is refused before anything is sent.
    pub async fn authenticate(
        &self,
        input: &str,
        password: &str,
        now: u64,
    ) -> Result<DirectoryUser, LdapError> {
        if password.is_empty() {
            return Err(LdapError::EmptyPassword);
        }
        let user = self.find(input, now).await?;
        self.bind_as(&user.dn, password).await?;
        Ok(user)
    }

    /// Prove `password` is the one of the entry at `dn`: a bind on a fresh connection.
    pub async fn check_password(&self, dn: &str, password: &str) -> Result<(), LdapError> {
        self.bind_as(dn, password).await
    }

    async fn bind_as(&self, dn: &str, password: &str) -> Result<(), LdapError> {
        if password.is_empty() {
            return Err(LdapError::EmptyPassword);
        }
        let bound = self.bind_on(&self.home_of(dn), dn, password).await?;
        let bound = match (bound.rc, self.followable(&bound.refs)) {
            // The entry is held by another server: the bind is repeated there, once.
            (rc::REFERRAL, Some(referral)) => {
                tracing::debug!(address = %referral.address, "following a bind referral");
                self.bind_on(&referral.address, dn, password).await?
            }
            _ => bound,
        };
        match bound.rc {
            rc::SUCCESS => Ok(()),
            rc::INVALID_CREDENTIALS => Err(LdapError::InvalidCredentials),
            code => Err(LdapError::Protocol(format!(
                "bind result {code}: {}",
                bound.text
            ))),
        }
    }

    /// A bind as `dn` on a fresh connection to `address`, closed afterwards.
    async fn bind_on(
        &self,
        address: &str,
        dn: &str,
        password: &str,
    ) -> Result<LdapResult, LdapError> {
        let mut ldap = self.connect_to(address).await?;
        let bound = tokio::time::timeout(self.config.timeout, ldap.simple_bind(dn, password))
            .await
            .map_err(|_| unavailable("the bind timed out"))?
            .map_err(unavailable)?;
        let _ = ldap.unbind().await;
        Ok(bound)
    }

    /// What the directory can do, read once from its root DSE.
    async fn discovery(&self) -> Result<Discovery, LdapError> {
        let mut known = self.discovery.lock().await;
        if let Some(k) = *known {
            return Ok(k);
        }
        let (slot, mut ldap) = self.service().await?;
        let answer = tokio::time::timeout(
            self.config.timeout,
            ldap.search(
                "",
                Scope::Base,
                "(objectClass=*)",
                vec!["supportedExtension", "supportedControl"],
            ),
        )
        .await;
        let entries = match answer {
            Ok(Ok(r)) if r.0.iter().all(well_formed) => r.0,
            _ => {
                self.drop_service(slot).await;
                return Err(unavailable("the root DSE cannot be read"));
            }
        };
        let root: Vec<SearchEntry> = entries.into_iter().map(SearchEntry::construct).collect();
        let discovery = Discovery::read(&root);
        *known = Some(discovery);
        Ok(discovery)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_prefers_the_current_policy_hints_oid() {
        let root = |controls: &[&str]| SearchEntry {
            dn: String::new(),
            attrs: HashMap::from([
                (
                    "supportedControl".to_owned(),
                    controls.iter().map(|c| (*c).to_owned()).collect(),
                ),
                (
                    "supportedExtension".to_owned(),
                    vec![PASSWORD_MODIFY_OID.to_owned()],
                ),
            ]),
            bin_attrs: HashMap::new(),
        };
        let both = Discovery::read(&[root(&POLICY_HINTS_OIDS)]);
        assert_eq!(both.policy_hints, Some(POLICY_HINTS_OIDS[0]));
        assert!(both.password_modify);
        let old = Discovery::read(&[root(&[POLICY_HINTS_OIDS[1], "1.2.3"])]);
        assert_eq!(old.policy_hints, Some(POLICY_HINTS_OIDS[1]));
        assert_eq!(Discovery::read(&[root(&["1.2.3"])]).policy_hints, None);
    }
}
