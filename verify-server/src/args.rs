//! The command line of `portcullis-verify` (also used to render its man page).

use std::path::PathBuf;

use clap::Parser;

/// The Authelia-compatible forward-auth server.
#[derive(Parser, Debug)]
#[command(name = "portcullis-verify", version = env!("PORTCULLIS_VERSION"), about)]
pub struct Args {
    /// Authelia-style configuration files or folders, later ones winning (repeat, or separate
    /// with commas); also `X_AUTHELIA_CONFIG`.
    #[arg(short, long, env = "PORTCULLIS_CONFIG", value_delimiter = ',')]
    pub config: Vec<PathBuf>,
}
