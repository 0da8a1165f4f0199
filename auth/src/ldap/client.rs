//! The directory itself (docs/reference/ldap.md §5.3): service connections that reconnect by
//! themselves, the user search (size limit 1, the canonical username from the entry), the group
//! search in both modes, the password proven by binding as the user's DN on a fresh connection,
//! and password changes (Password Modify when advertised, `unicodePwd` for Active Directory,
//! `userPassword` as the last resort). Every operation is bounded by `timeout`; every failure is
//! an error, never an empty answer that a caller could take for "no groups".

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ldap3::exop::PasswordModify;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry, SearchOptions};
use tokio::sync::Mutex;
use tokio_rustls::rustls;

use super::config::{GroupSearchMode, Implementation, LdapConfig, ProfileAttribute, ValueType};
use super::filter::{GroupQuery, groups_filter, users_filter};
use super::tls::client_config;

/// The Password Modify extended operation (RFC 3062).
const PASSWORD_MODIFY_OID: &str = "1.3.6.1.4.1.4203.1.11.1";

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
    password_modify: Mutex<Option<bool>>,
}

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
            password_modify: Mutex::new(None),
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
        if self.config.implementation == Implementation::ActiveDirectory {
            // The service bind alone: Active Directory changes passwords through `unicodePwd`.
            let (_, _) = self.service().await?;
            return Ok(PasswordChangeMethod::UnicodePwd);
        }
        Ok(if self.supports_password_modify().await? {
            PasswordChangeMethod::PasswordModify
        } else {
            PasswordChangeMethod::PlaintextUserPassword
        })
    }

    /// A new connection (TLS per the URL and `start_tls`), not bound.
    async fn connect(&self) -> Result<Ldap, LdapError> {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.config.timeout)
            .set_config(self.tls.clone())
            .set_starttls(self.config.start_tls && self.config.url.starts_with("ldap://"));
        let dial = LdapConnAsync::with_settings(settings, &self.config.url);
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
        match (&self.config.user, &self.config.password) {
            (Some(user), Some(password)) if !password.expose().is_empty() => {
                ldap.simple_bind(user, password.expose())
                    .await
                    .map_err(unavailable)?
                    .success()
                    .map_err(|e| unavailable(format!("the service account was refused: {e}")))?;
            }
            // Unauthenticated bind: no service account at all (the configuration permits it).
            (None, _) => {}
            // A service account without a password would be an anonymous bind under its name:
            // refused, never sent.
            (Some(_), _) => {
                return Err(unavailable("the service account has no password"));
            }
        }
        *guard = Some(ldap.clone());
        Ok((slot, ldap))
    }

    /// Forget a service connection that failed, so the next operation reconnects.
    async fn drop_service(&self, slot: usize) {
        *self.service[slot].lock().await = None;
    }

    async fn search(
        &self,
        base: &str,
        filter: &str,
        attributes: &[&str],
        size_limit: i32,
    ) -> Result<Vec<SearchEntry>, LdapError> {
        let (slot, mut ldap) = self.service().await?;
        let mut options = SearchOptions::new();
        if size_limit > 0 {
            options = options.sizelimit(size_limit);
        }
        let answer = tokio::time::timeout(
            self.config.timeout,
            ldap.with_search_options(options).search(
                base,
                Scope::Subtree,
                filter,
                attributes.to_vec(),
            ),
        )
        .await;
        let result = match answer {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                self.drop_service(slot).await;
                return Err(unavailable(e));
            }
            Err(_) => {
                self.drop_service(slot).await;
                return Err(unavailable("the search timed out"));
            }
        };
        match result.1.rc {
            0 => Ok(result.0.into_iter().map(SearchEntry::construct).collect()),
            // Size limit exceeded: more than one entry matched.
            4 => Err(LdapError::Ambiguous),
            // No such object: the base does not exist, so nothing matches.
            32 => Ok(Vec::new()),
            rc => Err(LdapError::Protocol(format!(
                "search result {rc}: {}",
                result.1.text
            ))),
        }
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
        let mut ldap = self.connect().await?;
        let bound = tokio::time::timeout(self.config.timeout, ldap.simple_bind(dn, password))
            .await
            .map_err(|_| unavailable("the bind timed out"))?
            .map_err(unavailable)?;
        let _ = ldap.unbind().await;
        match bound.rc {
            0 => Ok(()),
            49 => Err(LdapError::InvalidCredentials),
            rc => Err(LdapError::Protocol(format!(
                "bind result {rc}: {}",
                bound.text
            ))),
        }
    }

    /// Whether the directory advertises Password Modify (read once from the root DSE).
    async fn supports_password_modify(&self) -> Result<bool, LdapError> {
        let mut known = self.password_modify.lock().await;
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
                vec!["supportedExtension"],
            ),
        )
        .await;
        let result = match answer {
            Ok(Ok(r)) => r,
            _ => {
                self.drop_service(slot).await;
                return Err(unavailable("the root DSE cannot be read"));
            }
        };
        let supported = result.0.into_iter().map(SearchEntry::construct).any(|e| {
            all(&e, "supportedExtension")
                .iter()
                .any(|oid| oid == PASSWORD_MODIFY_OID)
        });
        *known = Some(supported);
        Ok(supported)
    }

    /// Set the password of the user at `dn`: a reset by the service account (`old` is `None`)
    /// or a change after the old password binds.
    pub async fn set_password(
        &self,
        dn: &str,
        old: Option<&str>,
        new: &str,
    ) -> Result<(), LdapError> {
        if new.is_empty() {
            return Err(LdapError::PasswordRefused("empty".into()));
        }
        if let Some(old) = old {
            if old == new {
                return Err(LdapError::PasswordRefused(
                    "the new password is the old one".into(),
                ));
            }
            self.bind_as(dn, old).await?;
        }
        let (slot, mut ldap) = self.service().await?;
        let result = if self.config.implementation == Implementation::ActiveDirectory {
            let quoted: Vec<u8> = format!("\"{new}\"")
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect();
            let mods = vec![Mod::Replace(
                b"unicodePwd".to_vec(),
                HashSet::from([quoted]),
            )];
            tokio::time::timeout(self.config.timeout, ldap.modify(dn, mods))
                .await
                .map(|r| r.map(|l| (l.rc, l.text)))
        } else if self.supports_password_modify().await? {
            let exop = PasswordModify {
                user_id: Some(dn),
                old_pass: old,
                new_pass: Some(new),
            };
            tokio::time::timeout(self.config.timeout, ldap.extended(exop))
                .await
                .map(|r| r.map(|e| (e.1.rc, e.1.text)))
        } else {
            let mods = vec![Mod::Replace(
                b"userPassword".to_vec(),
                HashSet::from([new.as_bytes().to_vec()]),
            )];
            tokio::time::timeout(self.config.timeout, ldap.modify(dn, mods))
                .await
                .map(|r| r.map(|l| (l.rc, l.text)))
        };
        match result {
            Ok(Ok((0, _))) => Ok(()),
            // Constraint violation, object class violation, unwilling to perform: a weak or
            // refused password (docs/reference/ldap.md §5.4).
            Ok(Ok((rc @ (19 | 53 | 65), text))) => {
                Err(LdapError::PasswordRefused(format!("result {rc}: {text}")))
            }
            Ok(Ok((49 | 48, _))) => Err(LdapError::InvalidCredentials),
            Ok(Ok((rc, text))) => Err(LdapError::Protocol(format!("result {rc}: {text}"))),
            Ok(Err(e)) => {
                self.drop_service(slot).await;
                Err(unavailable(e))
            }
            Err(_) => {
                self.drop_service(slot).await;
                Err(unavailable("the password change timed out"))
            }
        }
    }
}
