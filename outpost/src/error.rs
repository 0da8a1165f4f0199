//! Why the outpost could not start, with its exit code.

/// A start failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration file is invalid.
    #[error("configuration error: {0}")]
    Config(#[from] portcullis_config::ConfigError),
    /// A provider could not be set up (its CA file, its internal host).
    #[error("configuration error: {0}")]
    Provider(#[from] crate::state::StateError),
    /// The session store could not be opened.
    #[error("error: session store: {0}")]
    Store(String),
    /// Binding, TLS or signals failed.
    #[error("error: {0}")]
    Serve(#[from] portcullis_server_core::ServeError),
    /// A listener's address could not be read.
    #[error("error: {0}")]
    Bind(String),
    /// The async runtime could not start.
    #[error("error: cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

impl StartError {
    /// 2 for configuration errors (as the verify server), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Config(_) | StartError::Provider(_) => 2,
            _ => 1,
        }
    }
}
