//! `portcullis-verify --config FILE`: parse arguments, load configuration, build and run the server.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use portcullis_server_core::telemetry;
use portcullis_verify_server::config::{self, SecretSources};
use portcullis_verify_server::{App, StartError};

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
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(args: &Args) -> Result<(), StartError> {
    let secrets = SecretSources::from_env()?;
    let (config, warnings) = config::load(&args.config, &secrets)?;
    let crates = [
        "portcullis",
        "portcullis_verify_server",
        "portcullis_verify",
    ];
    telemetry::init(config.log_level, config.log_format, &crates);
    for w in &warnings {
        tracing::warn!(file = %args.config.display(), "{w}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    runtime.block_on(async {
        App::build(config).await?.serve().await;
        Ok(())
    })
}
