//! `portcullis`: the admin command of Portcullis.
//!
//! - `hash-password` (Authelia's `crypto hash generate argon2`) and `crypto hash validate`;
//! - `check-config`: load a configuration exactly as `portcullis-verify` does;
//! - `explain` (Authelia's `access-control check-policy`): which rule decides a request, and the
//!   answer for an identity;
//! - `sessions list` / `sessions revoke`: the sessions in the server's store;
//! - `completions`: shell completions.
//!
//! `main.rs` only parses arguments and maps errors to exit codes; every command is a function of
//! this library that writes to the [`Io`] it is given, so it can be driven in tests.
//!
//! ```
//! use clap::Parser;
//! use portcullis_cli::{Cli, Io, ScriptedInput, run};
//!
//! // `portcullis hash-password -m 64 -i 1 -p 1`, the password arriving on a pipe.
//! let cli = Cli::try_parse_from(["portcullis", "hash-password", "-m", "64", "-i", "1", "-p", "1"])
//!     .unwrap();
//! let (mut out, mut err) = (Vec::new(), Vec::new());
//! let mut input = ScriptedInput::pipe(["hunter2"]);
//! let code = run(cli, &mut Io { out: &mut out, err: &mut err, input: &mut input }).unwrap();
//! assert_eq!(code, 0);
//! let out = String::from_utf8(out).unwrap();
//! assert!(out.starts_with("Digest: $argon2id$v=19$m=64,t=1,p=1$"));
//! ```
//!
//! Exit codes: 0 success; 1 a failure or a negative answer (a password that does not match, a
//! session store that cannot be opened); 2 invalid input (arguments, configuration, digest).

#![warn(missing_docs)]

mod app_password;
mod check;
mod cli;
mod doctor;
mod explain;
mod hash;
mod input;
mod man;
mod sessions;
mod storage;
mod users;

use std::fmt;
use std::io::Write;
use std::path::Path;

use clap::CommandFactory;
use portcullis_verify_server::config::{self, Config, ConfigWarning};

pub use cli::{
    AccessControlCommand, AppPasswordArgs, AppPasswordCommand, AppPasswordCreateArgs, Charset, Cli,
    Command, ConfigArg, CryptoCommand, DoctorArgs, ExplainArgs, Format, GenerateCommand, HashArgs,
    HashCommand, Level, ListArgs, Profile, RevokeArgs, SessionsCommand, ValidateArgs, Variant,
};
pub use cli::{
    EncryptionCommand, StorageArgs, StorageCommand, StorageUserArgs, StorageUserCommand,
    TotpCommand, TotpExportArgs, TotpFormat, WebauthnCommand,
};
pub use input::{Input, ScriptedInput, StdInput};

/// Where a command reads and writes.
pub struct Io<'a> {
    /// Results (standard output).
    pub out: &'a mut dyn Write,
    /// Warnings and diagnostics (standard error). Errors are returned, not written here.
    pub err: &'a mut dyn Write,
    /// Where passwords come from when they are not given as flags.
    pub input: &'a mut dyn Input,
}

impl fmt::Debug for Io<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Io").finish_non_exhaustive()
    }
}

/// Why a command failed: one line for the user and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    code: u8,
    message: String,
}

impl CliError {
    /// Invalid input: arguments, configuration, digest (exit code 2).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    /// Anything else that went wrong (exit code 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }

    /// The process exit code.
    pub fn code(&self) -> u8 {
        self.code
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::failed(format!("cannot write the output: {e}"))
    }
}

/// Run one command. `Ok` carries the exit code (non-zero for a negative answer that is not an
/// error, such as a password that does not match its digest).
pub fn run(cli: Cli, io: &mut Io<'_>) -> Result<u8, CliError> {
    match cli.command {
        Command::HashPassword(args)
        | Command::Crypto {
            command:
                CryptoCommand::Hash {
                    command:
                        HashCommand::Generate {
                            command: GenerateCommand::Argon2(args),
                        },
                },
        } => hash::generate(&args, io),
        Command::Crypto {
            command:
                CryptoCommand::Hash {
                    command: HashCommand::Validate(args),
                },
        } => hash::validate(&args, io),
        Command::CheckConfig(args) => check::check_config(&args.config, io),
        Command::Doctor(args) => doctor::doctor(&args, io),
        Command::Explain(args)
        | Command::AccessControl {
            command: AccessControlCommand::CheckPolicy(args),
        } => explain::explain(&args, io),
        Command::Sessions {
            command: SessionsCommand::List(args),
        } => sessions::list(&args, io),
        Command::Sessions {
            command: SessionsCommand::Revoke(args),
        } => sessions::revoke(&args, io),
        Command::AppPassword {
            command: AppPasswordCommand::Create(args),
        } => app_password::create(&args, io),
        Command::AppPassword {
            command: AppPasswordCommand::List(args),
        } => app_password::list(&args, io),
        Command::AppPassword {
            command: AppPasswordCommand::Revoke(args),
        } => app_password::revoke(&args, io),
        Command::Storage { command } => match command {
            StorageCommand::SchemaInfo(args) => storage::schema_info(&args, io),
            StorageCommand::Encryption {
                command: EncryptionCommand::Check(args),
            } => storage::encryption_check(&args, io),
            StorageCommand::User {
                command: StorageUserCommand::Totp { command },
            } => match command {
                TotpCommand::Export(args) => storage::totp_export(&args, io),
                TotpCommand::Delete(args) => storage::totp_delete(&args, io),
            },
            StorageCommand::User {
                command: StorageUserCommand::Webauthn { command },
            } => match command {
                WebauthnCommand::List { storage: s, user } => {
                    storage::webauthn_list(&s.config, user.as_deref(), io)
                }
                WebauthnCommand::Delete { user, description } => {
                    storage::webauthn_delete(&user, &description, io)
                }
            },
        },
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "portcullis", io.out);
            Ok(0)
        }
        Command::Man { dir } => man::write_all(&dir, io),
    }
}

/// Load a configuration exactly as `portcullis-verify` does (secrets from the same environment
/// variables). A configuration error is invalid input.
pub(crate) fn load_config(path: &Path) -> Result<(Config, Vec<ConfigWarning>), CliError> {
    // Exactly as portcullis-verify loads it: filters, AUTHELIA_* variables and secret files.
    let options = config::LoadOptions::from_env().map_err(|e| CliError::invalid(e.to_string()))?;
    config::load_all(&[path.to_owned()], &options).map_err(|e| CliError::invalid(e.to_string()))
}
