//! `portcullis-verify --config FILE`: parse arguments, load configuration, run the server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use portcullis_session::SessionStore;
use portcullis_verify_server::config::{self, LogFormat, SecretSources};
use portcullis_verify_server::regulation::Regulator;
use portcullis_verify_server::users::UserDatabase;
use portcullis_verify_server::{AppState, Tuning, router, server, system_clock};

// mimalloc: the check path allocates small, short-lived values on two or more worker threads; glibc's
// malloc spends a tenth of the CPU of a check on them (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The Authelia-compatible forward-auth server.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    after_help = "Example:\n  portcullis-verify --config examples/quickstart/configuration.yml"
)]
struct Args {
    /// Authelia-style configuration file.
    #[arg(
        short,
        long,
        env = "PORTCULLIS_CONFIG",
        default_value = "configuration.yml"
    )]
    config: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let secrets = match SecretSources::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (config, warnings) = match config::load(&args.config, &secrets) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "portcullis={0},portcullis_verify_server={0},portcullis_verify={0}",
            config.log_level
        ))
    });
    match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
    }
    for w in &warnings {
        tracing::warn!(file = %args.config.display(), "{w}");
    }
    // The users file is configuration too: its errors exit with status 2 like the others.
    let users = match UserDatabase::load(
        &config.users_path,
        config.case_insensitive,
        config.search_email,
    ) {
        Ok(users) => users,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, users)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: config::Config, users: UserDatabase) -> Result<(), String> {
    let started = std::time::Instant::now();
    let clock = system_clock();
    let now = clock();
    let (store, regulator): (Arc<dyn SessionStore>, Regulator) = match &config.redis {
        Some(redis) => {
            let secret = config.session_secret.expose().as_bytes();
            let store = Arc::new(
                portcullis_session::RedisStore::new(redis.clone(), secret)
                    .map_err(|e| e.to_string())?,
            );
            if let Err(e) = store.health().await {
                tracing::warn!(error = %e, "Redis is not reachable yet: session checks fail closed until it is");
            }
            (store.clone(), Regulator::redis(config.regulation, store))
        }
        None => {
            let store = portcullis_session::SqliteStore::open(&config.storage_path)
                .map_err(|e| e.to_string())?;
            let regulator = Regulator::open(config.regulation, &config.storage_path, now)
                .map_err(|e| e.to_string())?;
            (Arc::new(store), regulator)
        }
    };
    let tls = match &config.tls {
        Some((cert, key)) => Some(server::tls_acceptor(cert, key).map_err(|e| e.to_string())?),
        None => None,
    };
    let listener = server::bind(config.listen)
        .await
        .map_err(|e| e.to_string())?;
    let metrics = match &config.metrics {
        Some((addr, path)) => Some((
            server::bind(*addr).await.map_err(|e| e.to_string())?,
            path.clone(),
        )),
        None => None,
    };
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let (user_count, rules, watch) = (users.len(), config.policy.rule_count(), config.users_watch);
    let state = AppState::new(config, users, store, regulator, clock, Tuning::default());
    if watch {
        server::watch_users(state.clone());
    }
    let shutdown = server::shutdown_signal();
    if let Some((listener, path)) = metrics {
        let router = portcullis_verify_server::metrics_router(state.clone(), &path);
        tokio::spawn(server::serve(listener, router, None, shutdown.clone()));
    }
    tracing::info!(
        %address,
        tls = tls.is_some(),
        users = user_count,
        rules,
        startup_ms = started.elapsed().as_millis() as u64,
        "portcullis-verify ready"
    );
    server::serve(listener, router(state), tls, shutdown).await;
    Ok(())
}
