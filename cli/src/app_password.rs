//! `app-password create|list|revoke`: the app passwords in the store the server uses (Redis with
//! `session.redis`, else the SQLite file `storage.local.path`). The password is shown once, at
//! creation; the store keeps its SHA-256 digest.

use std::future::Future;
use std::sync::Arc;

use portcullis_auth::app_passwords::{self, AppPasswordStore};
use portcullis_auth::{OpenMode, SessionBackend, StoreSelection};
use portcullis_server_core::clock::unix_now;
use rand::RngCore;

use crate::sessions::utc;
use crate::{AppPasswordArgs, AppPasswordCreateArgs, CliError, Io, load_config};

fn with_store<T, F, Fut>(
    config_path: &std::path::Path,
    username: &str,
    work: F,
) -> Result<T, CliError>
where
    F: FnOnce(Arc<dyn AppPasswordStore>, String) -> Fut,
    Fut: Future<Output = Result<T, CliError>>,
{
    let (config, _warnings) = load_config(config_path)?;
    let Some(user) = crate::users::find(&config, username, unix_now())? else {
        return Err(CliError::invalid(format!(
            "no user {username:?} in {}",
            crate::users::source_name(&config)
        )));
    };
    let selection = StoreSelection {
        redis: config.redis.clone(),
        sqlite_path: config.storage_path.clone(),
        secret: config.session_secret.clone(),
    };
    if let Some(parent) = config.storage_path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| CliError::failed(format!("cannot create {}: {e}", parent.display())))?;
    }
    let backend = SessionBackend::open(&selection, OpenMode::CreateMissing, unix_now())
        .map_err(|e| CliError::failed(e.to_string()))?;
    let store = backend
        .app_passwords()
        .map_err(|e| CliError::failed(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(work(store, user.username.clone()))
}

fn failed(e: portcullis_auth::AuthError) -> CliError {
    match e {
        portcullis_auth::AuthError::AppPasswordExists(_) => CliError::invalid(e.to_string()),
        other => CliError::failed(other.to_string()),
    }
}

/// `app-password create`.
pub(crate) fn create(args: &AppPasswordCreateArgs, io: &mut Io<'_>) -> Result<u8, CliError> {
    if !app_passwords::valid_name(&args.name) {
        return Err(CliError::invalid(
            "--name must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-'",
        ));
    }
    let lifespan = match &args.expires {
        None => None,
        Some(d) => Some(
            portcullis_verify_server::config::parse_duration(d)
                .map_err(|e| CliError::invalid(format!("--expires: {e}")))?,
        ),
    };
    let (password, name) = with_store(&args.config, &args.user, |store, username| async move {
        let mut random = [0u8; 32];
        rand::rng().fill_bytes(&mut random);
        let now = unix_now();
        let (password, record) = app_passwords::generate(
            random,
            &username,
            &args.name,
            now,
            lifespan.map(|l| now + l),
        );
        store.create(&record).await.map_err(failed)?;
        Ok((password, record.name))
    })?;
    writeln!(io.out, "{}", password.expose())?;
    writeln!(
        io.err,
        "app password {name:?} created for {}: it is shown only this once",
        args.user
    )?;
    Ok(0)
}

/// `app-password list`.
pub(crate) fn list(args: &AppPasswordArgs, io: &mut Io<'_>) -> Result<u8, CliError> {
    let records = with_store(&args.config, &args.user, |store, username| async move {
        store.list(&username).await.map_err(failed)
    })?;
    let now = unix_now();
    for r in &records {
        let expires = match r.expires_at {
            None => "never".to_owned(),
            Some(e) if e <= now => format!("{} (expired)", utc(e)),
            Some(e) => utc(e),
        };
        writeln!(
            io.out,
            "{}\tcreated {}\texpires {expires}",
            r.name,
            utc(r.created_at)
        )?;
    }
    if records.is_empty() {
        writeln!(io.err, "no app passwords for {}", args.user)?;
    }
    Ok(0)
}

/// `app-password revoke`.
pub(crate) fn revoke(args: &AppPasswordArgs, io: &mut Io<'_>) -> Result<u8, CliError> {
    let Some(name) = &args.name else {
        return Err(CliError::invalid("--name is required"));
    };
    let name = name.clone();
    let removed = with_store(&args.config, &args.user, |store, username| {
        let name = name.clone();
        async move { store.revoke(&username, &name).await.map_err(failed) }
    })?;
    if removed {
        writeln!(io.out, "app password {name:?} of {} revoked", args.user)?;
        Ok(0)
    } else {
        Err(CliError::invalid(format!(
            "{} has no app password named {name:?}",
            args.user
        )))
    }
}
