//! SIGHUP: read the configuration file again and replace the providers (docs/reference/outpost.md
//! §16). An invalid file keeps the running configuration; sessions stay.

use std::path::PathBuf;

use crate::state::AppState;

/// Read `file` again and replace the providers.
pub async fn reload(state: &AppState, file: &std::path::Path) -> Result<usize, String> {
    let env = |name: &str| std::env::var(name).ok();
    let (config, warnings) = crate::config::load(file, &env).map_err(|e| e.to_string())?;
    for w in &warnings {
        tracing::warn!(file = %file.display(), "{w}");
    }
    state
        .replace_providers(&config)
        .map_err(|e| e.to_string())?;
    let count = config.providers.len();
    state.discover_all().await;
    Ok(count)
}

#[cfg(unix)]
pub(crate) fn on_hangup(state: AppState, file: PathBuf) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::error!("SIGHUP cannot be watched: no reloads");
        return;
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match reload(&state, &file).await {
                Ok(n) => tracing::info!(providers = n, "configuration reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "configuration not reloaded: the running one stays")
                }
            }
        }
    });
}
