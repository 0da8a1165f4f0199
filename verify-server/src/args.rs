//! The command line of `portcullis-verify` (also used to render its man page).

use std::path::PathBuf;

use clap::Parser;

/// The version `--version` prints: the crate version and the git commit the workspace was built
/// from (`build.rs`), shared by every Portcullis binary.
pub const VERSION: &str = env!("PORTCULLIS_VERSION");

/// The Authelia-compatible forward-auth server.
#[derive(Parser, Debug)]
#[command(name = "portcullis-verify", version = VERSION, about)]
pub struct Args {
    /// Authelia-style configuration files or folders, later ones winning (repeat, or separate
    /// with commas); also `X_AUTHELIA_CONFIG`.
    #[arg(short, long, env = "PORTCULLIS_CONFIG", value_delimiter = ',')]
    pub config: Vec<PathBuf>,
}
