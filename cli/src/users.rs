//! The users a configuration names, wherever they live: the users file, loaded as the server
//! loads it, or the directory, asked over the network.

use std::sync::Arc;

use portcullis_auth::ldap::LdapDirectory;
use portcullis_auth::users::{Directory, User, UserDatabase};
use portcullis_verify_server::config::{Config, UserSource};

use crate::CliError;

/// Where a user was found, for messages.
pub(crate) fn source_name(config: &Config) -> String {
    match &config.users {
        UserSource::File { path, .. } => path.display().to_string(),
        UserSource::Ldap(ldap) => ldap.url.clone(),
    }
}

/// The users file of `config`, loaded; `None` when the users are in a directory.
pub(crate) fn load_file(config: &Config) -> Result<Option<UserDatabase>, CliError> {
    let Some(path) = config.users.file() else {
        return Ok(None);
    };
    UserDatabase::load(path, config.case_insensitive, config.search_email)
        .map(Some)
        .map_err(|e| CliError::invalid(e.to_string()))
}

/// The user `login` names, as the server would find them (canonical name, groups).
pub(crate) fn find(config: &Config, login: &str, now: u64) -> Result<Option<Arc<User>>, CliError> {
    match &config.users {
        UserSource::File { .. } => Ok(load_file(config)?.and_then(|users| users.lookup(login))),
        UserSource::Ldap(ldap) => {
            let directory = LdapDirectory::new((**ldap).clone())
                .map_err(|e| CliError::invalid(format!("{}: {e}", ldap.url)))?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| CliError::failed(format!("cannot start the runtime: {e}")))?;
            runtime
                .block_on(Directory::find(&directory, login, now))
                .map(|user| user.map(Arc::new))
                .map_err(|e| CliError::failed(format!("{}: {e}", ldap.url)))
        }
    }
}
