//! The users' directory (`authentication_backend.ldap`) as the server uses it: checked before
//! the server reports ready (Authelia refuses to start without it, docs/reference/ldap.md §5.4),
//! and wrapped so that every operation is counted and timed; the `auth` crate reads no clock.

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_auth::ldap::config::LdapConfig;
use portcullis_auth::ldap::{LdapDirectory, PasswordChangeMethod};
use portcullis_auth::users::{Directory, DirectoryError, PasswordChangeError, User};
use portcullis_server_core::clock::Stopwatch;

use crate::config::UserSource;
use crate::error::StartError;
use crate::metrics::LdapMetrics;
use crate::state::AppState;

/// When the configuration keeps the users in a directory: connect to it (the service account
/// binds and the root DSE is read, or the server does not start) and
/// attach it, counted and timed, to `state`. Nothing to do for a users file.
pub async fn attach_configured_directory(state: &AppState) -> Result<(), StartError> {
    let UserSource::Ldap(config) = &state.config().users else {
        return Ok(());
    };
    let directory = open((**config).clone()).await?;
    state.attach_directory(Arc::new(Metered::new(directory, state.ldap_metrics())))
}

/// Connect to the directory of `config`: the service account binds and the root DSE is read,
/// or the server does not start. Warns when passwords would be written in plain text.
async fn open(config: LdapConfig) -> Result<Arc<LdapDirectory>, StartError> {
    let url = config.url.clone();
    let directory =
        LdapDirectory::new(config).map_err(|e| StartError::Directory(format!("{url}: {e}")))?;
    match directory.startup_check().await {
        Ok(PasswordChangeMethod::PlaintextUserPassword) => tracing::warn!(
            address = %url,
            "the directory does not advertise the Password Modify extended operation: password changes and resets replace userPassword with the plain text, which the directory may store unhashed"
        ),
        Ok(method) => tracing::info!(address = %url, ?method, "the users' directory answers"),
        Err(e) => return Err(StartError::Directory(format!("{url}: {e}"))),
    }
    Ok(Arc::new(directory))
}

/// A directory whose operations are counted by outcome and timed.
#[derive(Debug)]
pub(crate) struct Metered {
    inner: Arc<LdapDirectory>,
    metrics: LdapMetrics,
}

impl Metered {
    pub(crate) fn new(inner: Arc<LdapDirectory>, metrics: LdapMetrics) -> Self {
        metrics.pool.set(open_connections(&inner));
        Self { inner, metrics }
    }

    fn record(&self, kind: &'static str, outcome: &'static str, started: Stopwatch) {
        self.metrics
            .record(kind, outcome, started.elapsed().as_secs_f64());
        self.metrics.pool.set(open_connections(&self.inner));
    }
}

fn open_connections(directory: &LdapDirectory) -> i64 {
    i64::try_from(directory.open_connections()).unwrap_or(i64::MAX)
}

#[async_trait]
impl Directory for Metered {
    async fn find(&self, login: &str, now: u64) -> Result<Option<User>, DirectoryError> {
        let started = Stopwatch::start();
        let found = Directory::find(self.inner.as_ref(), login, now).await;
        let outcome = match &found {
            Ok(Some(_)) => "found",
            Ok(None) => "not_found",
            Err(_) => "unavailable",
        };
        self.record("find", outcome, started);
        found
    }

    async fn verify(&self, user: &User, password: &str) -> Result<bool, DirectoryError> {
        let started = Stopwatch::start();
        let verified = self.inner.verify(user, password).await;
        let outcome = match &verified {
            Ok(true) => "success",
            Ok(false) => "invalid_credentials",
            Err(_) => "unavailable",
        };
        self.record("bind", outcome, started);
        verified
    }

    async fn set_password(
        &self,
        user: &User,
        old: Option<&str>,
        new: &str,
    ) -> Result<(), PasswordChangeError> {
        let started = Stopwatch::start();
        let changed = Directory::set_password(self.inner.as_ref(), user, old, new).await;
        let outcome = match &changed {
            Ok(()) => "success",
            Err(PasswordChangeError::WrongPassword) => "invalid_credentials",
            Err(PasswordChangeError::Refused(_)) => "refused",
            Err(PasswordChangeError::Unavailable(_)) => "unavailable",
        };
        self.record("password", outcome, started);
        changed
    }
}
