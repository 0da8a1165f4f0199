//! Reloading the users file when it changes (`authentication_backend.file.watch`), and on SIGHUP
//! the users file and the OpenID Connect clients (Authelia #1275: clients without a restart).

use std::path::Path;
use std::time::SystemTime;

use portcullis_auth::users::UserDatabase;

use crate::state::AppState;

/// What identifies a version of the file: modification time and size.
fn fingerprint(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Load the users file again now; an invalid file keeps the previous users. Users in a
/// directory are read from it at every refresh instead: nothing to do.
async fn reload_users(state: &AppState, why: &'static str) {
    let Some(path) = state.config().users.file().map(Path::to_path_buf) else {
        return;
    };
    let (ci, email) = (state.config().case_insensitive, state.config().search_email);
    let p = path.clone();
    match tokio::task::spawn_blocking(move || UserDatabase::load(&p, ci, email)).await {
        Ok(Ok(users)) => {
            tracing::info!(users = users.len(), file = %path.display(), why, "users file reloaded");
            state.replace_users(users);
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, why, "users file not reloaded: keeping the previous users")
        }
        Err(e) => tracing::error!(error = %e, "users reload task failed"),
    }
}

/// Read the configuration file again and replace the OpenID Connect clients, keeping sessions,
/// codes and tokens. An invalid file, or one whose clients need keys the server does not have,
/// keeps the running clients. Nothing else of the configuration changes without a restart.
pub async fn reload_oidc_clients(state: &AppState, why: &'static str) {
    let Some(rt) = crate::oidc::runtime(state).cloned() else {
        return;
    };
    let config = state.config();
    let sources = if config.sources.is_empty() {
        vec![config.file.clone()]
    } else {
        config.sources.clone()
    };
    let loaded = tokio::task::spawn_blocking(move || {
        let options = crate::config::LoadOptions::from_env()?;
        crate::config::load_all(&sources, &options)
    })
    .await;
    let config = match loaded {
        Ok(Ok((config, _))) => config,
        Ok(Err(e)) => {
            tracing::error!(error = %e, why, "configuration not reloaded: keeping the running OpenID Connect clients");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "configuration reload task failed");
            return;
        }
    };
    let Some(provider) = config.oidc else {
        tracing::warn!(
            why,
            "the configuration has no identity_providers.oidc any more: the provider stays until a restart"
        );
        return;
    };
    match rt.reload_clients(provider) {
        Ok(n) => tracing::info!(clients = n, why, "OpenID Connect clients reloaded"),
        Err(e) => {
            tracing::error!(error = %e, why, "OpenID Connect clients not reloaded: keeping the running ones")
        }
    }
}

/// SIGHUP (systemd's `ExecReload`) reloads the users file and the OpenID Connect clients. The handler is registered when this
/// returns, before the server reports ready, so a reload never kills the process.
#[cfg(unix)]
pub fn reload_on_hangup() -> std::io::Result<impl FnOnce(AppState)> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    Ok(move |state: AppState| {
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                reload_users(&state, "SIGHUP").await;
                reload_oidc_clients(&state, "SIGHUP").await;
            }
        });
    })
}

/// Reload the users file whenever its modification time or size changes. An invalid new file keeps
/// the old users and logs the error.
pub fn watch_users(state: AppState) {
    let Some(path) = state.config().users.file().map(Path::to_path_buf) else {
        return;
    };
    let interval = state.tuning().users_poll_interval;
    tokio::spawn(async move {
        let mut last = fingerprint(&path);
        loop {
            tokio::time::sleep(interval).await;
            let now = fingerprint(&path);
            if now == last {
                continue;
            }
            last = now;
            reload_users(&state, "the file changed").await;
        }
    });
}
