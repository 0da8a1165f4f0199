//! `portcullis-outpost --config FILE`: parse arguments, load the configuration, build and run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use portcullis_outpost::{App, StartError, config};
use portcullis_server_core::telemetry;

// mimalloc, as the verify server: glibc's malloc is a visible share of a check's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The authentik-compatible outpost.
#[derive(Debug, Parser)]
#[command(name = "portcullis-outpost", version)]
struct Args {
    /// The configuration file.
    #[arg(
        long,
        short,
        env = "PORTCULLIS_OUTPOST_CONFIG",
        default_value = "outpost.yml"
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
    let env = |name: &str| std::env::var(name).ok();
    let (config, warnings) = config::load(&args.config, &env)?;
    telemetry::init(config.log_level, config.log_format, &["portcullis"]);
    for w in &warnings {
        tracing::warn!(file = %config.file.display(), "{w}");
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
