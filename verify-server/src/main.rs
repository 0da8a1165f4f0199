//! `portcullis-verify --config FILE`: parse arguments, load configuration, build and run the server.

use std::process::ExitCode;

use clap::Parser;
use portcullis_server_core::telemetry;
use portcullis_verify_server::config::{self, LoadOptions};
use portcullis_verify_server::{App, Args, StartError};

// mimalloc: glibc's malloc costs a tenth of a check's CPU (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(args: Args) -> Result<(), StartError> {
    let files = config::config_paths(args.config, std::env::var("X_AUTHELIA_CONFIG").ok());
    let (config, warnings) = config::load_all(&files, &LoadOptions::from_env()?)?;
    // A target directive is a prefix: `portcullis` covers every portcullis_* crate and this binary.
    telemetry::init(config.log_level, config.log_format, &["portcullis"]);
    for w in &warnings {
        tracing::warn!(file = %config.file.display(), "{w}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    runtime.block_on(async { App::build(config).await?.serve().await })
}
