//! Reloading the users file when it changes (`authentication_backend.file.watch`).

use std::path::Path;
use std::time::SystemTime;

use portcullis_auth::users::UserDatabase;

use crate::state::AppState;

/// What identifies a version of the file: modification time and size.
fn fingerprint(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Load the users file again now; an invalid file keeps the previous users.
async fn reload_users(state: &AppState, why: &'static str) {
    let path = state.config().users_path.clone();
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

/// SIGHUP (systemd's `ExecReload`) reloads the users file. The handler is registered when this
/// returns, before the server reports ready, so a reload never kills the process.
#[cfg(unix)]
pub fn reload_on_hangup() -> std::io::Result<impl FnOnce(AppState)> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    Ok(move |state: AppState| {
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                reload_users(&state, "SIGHUP").await;
            }
        });
    })
}

/// Reload the users file whenever its modification time or size changes. An invalid new file keeps
/// the old users and logs the error.
pub fn watch_users(state: AppState) {
    let path = state.config().users_path.clone();
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
