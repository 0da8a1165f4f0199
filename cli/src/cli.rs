//! The command line: commands, flags and the examples `--help` shows.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

const ROOT_EXAMPLES: &str = "\
Examples:
  portcullis hash-password
  portcullis check-config --config configuration.yml
  portcullis explain --config configuration.yml --url https://app.example.com/admin --username alice
  portcullis sessions revoke --config configuration.yml --username alice

Exit codes: 0 success; 1 failure or a negative answer (password does not match); 2 invalid input
(arguments, configuration, digest).";

const HASH_EXAMPLES: &str = "\
Examples:
  portcullis hash-password
  portcullis hash-password --password 'correct horse battery staple'
  portcullis hash-password --random --random.length 32
  portcullis hash-password --profile low-memory -i 4
  printf '%s\\n' \"$PASSWORD\" | portcullis hash-password

Without --password or --random, the password is asked twice without echo on a terminal, or read as
one line from standard input when it is not a terminal. Paste the digest into users_database.yml.";

const VALIDATE_EXAMPLES: &str = "\
Examples:
  portcullis crypto hash validate --password 'secret' -- '$argon2id$v=19$m=65536,t=3,p=4$…'

Exit code 0 when the password matches, 1 when it does not, 2 when the digest is invalid.";

const CHECK_EXAMPLES: &str = "\
Examples:
  portcullis check-config --config /etc/portcullis/configuration.yml

Loads the configuration and the users file exactly as portcullis-verify does and prints every
warning and error with its file, line and key. Exit code 0 when valid, 2 when not.";

const EXPLAIN_EXAMPLES: &str = "\
Examples:
  portcullis explain --config configuration.yml --url https://app.example.com/admin
  portcullis explain --config configuration.yml --url https://app.example.com/admin --username alice
  portcullis explain --config configuration.yml --url https://app.example.com/ --groups dev --level 2fa
  portcullis explain --config configuration.yml --url https://app.example.com/ --ip 192.0.2.7 --format json

Without --groups, the groups of --username come from the users file. With --username or --groups
and no --level, the identity has logged in with one factor.";

const CHECK_POLICY_EXAMPLES: &str = "\
Examples:
  portcullis access-control check-policy --config configuration.yml --url https://example.com
  portcullis access-control check-policy --config configuration.yml --url https://example.com --username john --method GET

Authelia's command path for `portcullis explain` (same flags).";

const SESSIONS_LIST_EXAMPLES: &str = "\
Examples:
  portcullis sessions list --config configuration.yml
  portcullis sessions list --config configuration.yml --username alice --format json

Session ids are never printed in full: only a short prefix.";

const SESSIONS_REVOKE_EXAMPLES: &str = "\
Examples:
  portcullis sessions revoke --config configuration.yml --username alice

A running portcullis-verify on the same storage file refuses the revoked sessions from its next
check (it looks for changes made by other processes once per second).";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  portcullis completions bash > /etc/bash_completion.d/portcullis
  portcullis completions zsh > \"${fpath[1]}/_portcullis\"
  portcullis completions fish > ~/.config/fish/completions/portcullis.fish";

/// The admin command of Portcullis: hash passwords, check a configuration, explain an access
/// decision, list and revoke sessions.
#[derive(Parser, Debug)]
#[command(name = "portcullis", version = portcullis_verify_server::VERSION, after_help = ROOT_EXAMPLES)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Hash a password with argon2 for users_database.yml (Authelia: crypto hash generate argon2).
    #[command(after_help = HASH_EXAMPLES)]
    HashPassword(HashArgs),
    /// Check that a configuration loads as portcullis-verify would load it.
    #[command(after_help = CHECK_EXAMPLES)]
    CheckConfig(ConfigArg),
    /// Check what breaks deployments most often, and say how to fix each.
    #[command(after_help = DOCTOR_EXAMPLES)]
    Doctor(DoctorArgs),
    /// Explain which access rule decides a request, and the answer for an identity.
    #[command(after_help = EXPLAIN_EXAMPLES)]
    Explain(ExplainArgs),
    /// Authelia's crypto commands: hash generate argon2, hash validate.
    #[command(
        after_help = "Examples:\n  portcullis crypto hash generate argon2\n  portcullis crypto hash validate -- '$argon2id$…'"
    )]
    Crypto {
        /// The crypto command.
        #[command(subcommand)]
        command: CryptoCommand,
    },
    /// Authelia's access-control commands: check-policy.
    #[command(
        after_help = "Examples:\n  portcullis access-control check-policy --config configuration.yml --url https://example.com"
    )]
    AccessControl {
        /// The access-control command.
        #[command(subcommand)]
        command: AccessControlCommand,
    },
    /// List and revoke the sessions in the server's store.
    #[command(
        after_help = "Examples:\n  portcullis sessions list --config configuration.yml\n  portcullis sessions revoke --config configuration.yml --username alice"
    )]
    Sessions {
        /// The sessions command.
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Create, list and revoke a user's app passwords (for Basic credentials and outposts).
    #[command(
        name = "app-password",
        after_help = "Examples:\n  portcullis app-password create --config configuration.yml --user alice --name ci --expires 90d\n  portcullis app-password list --config configuration.yml --user alice\n  portcullis app-password revoke --config configuration.yml --user alice --name ci"
    )]
    AppPassword {
        /// The app-password command.
        #[command(subcommand)]
        command: AppPasswordCommand,
    },
    /// Authelia's storage commands over the second-factor tables: schema-info, encryption
    /// check, user totp export/delete, user webauthn list/delete.
    #[command(
        after_help = "Examples:\n  portcullis storage schema-info --config configuration.yml\n  portcullis storage encryption check --config configuration.yml\n  portcullis storage user totp export --config configuration.yml --format uri\n  portcullis storage user totp delete --config configuration.yml --user alice\n  portcullis storage user webauthn list --config configuration.yml"
    )]
    Storage {
        /// The storage command.
        #[command(subcommand)]
        command: StorageCommand,
    },
    /// Print shell completions.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Write the man pages of `portcullis` (and each of its commands) and `portcullis-verify`
    /// into a folder (for packages).
    #[command(hide = true)]
    Man {
        /// The folder to write `*.1` files into.
        #[arg(long)]
        dir: std::path::PathBuf,
    },
}

/// `portcullis crypto …`.
#[derive(Subcommand, Debug)]
pub enum CryptoCommand {
    /// Password digests.
    #[command(
        after_help = "Examples:\n  portcullis crypto hash generate argon2 --password secret\n  portcullis crypto hash validate --password secret -- '$argon2id$…'"
    )]
    Hash {
        /// The hash command.
        #[command(subcommand)]
        command: HashCommand,
    },
}

/// `portcullis crypto hash …`.
#[derive(Subcommand, Debug)]
pub enum HashCommand {
    /// Generate a digest.
    #[command(after_help = "Examples:\n  portcullis crypto hash generate argon2 --password secret")]
    Generate {
        /// The algorithm.
        #[command(subcommand)]
        command: GenerateCommand,
    },
    /// Check a password against a digest.
    #[command(after_help = VALIDATE_EXAMPLES)]
    Validate(ValidateArgs),
}

/// `portcullis crypto hash generate …`.
#[derive(Subcommand, Debug)]
pub enum GenerateCommand {
    /// Generate an argon2 digest (the same as `portcullis hash-password`).
    #[command(after_help = HASH_EXAMPLES)]
    Argon2(HashArgs),
}

/// `portcullis access-control …`.
#[derive(Subcommand, Debug)]
pub enum AccessControlCommand {
    /// Check a request against the access rules (the same as `portcullis explain`).
    #[command(after_help = CHECK_POLICY_EXAMPLES)]
    CheckPolicy(ExplainArgs),
}

/// `portcullis sessions …`.
#[derive(Subcommand, Debug)]
pub enum SessionsCommand {
    /// List unexpired sessions.
    #[command(after_help = SESSIONS_LIST_EXAMPLES)]
    List(ListArgs),
    /// Delete every session of a user.
    #[command(after_help = SESSIONS_REVOKE_EXAMPLES)]
    Revoke(RevokeArgs),
}

/// `portcullis storage …`.
#[derive(Subcommand, Debug)]
pub enum StorageCommand {
    /// The schema version, the encryption scheme and the tables.
    SchemaInfo(StorageArgs),
    /// Encryption key commands.
    Encryption {
        /// The encryption command.
        #[command(subcommand)]
        command: EncryptionCommand,
    },
    /// Per-user second factors.
    User {
        /// The user command.
        #[command(subcommand)]
        command: StorageUserCommand,
    },
}

/// `portcullis storage encryption …`.
#[derive(Subcommand, Debug)]
pub enum EncryptionCommand {
    /// Check that `storage.encryption_key` opens the database and every stored secret.
    Check(StorageArgs),
}

/// `portcullis storage user …`.
#[derive(Subcommand, Debug)]
pub enum StorageUserCommand {
    /// TOTP registrations.
    Totp {
        /// The TOTP command.
        #[command(subcommand)]
        command: TotpCommand,
    },
    /// WebAuthn credentials (Authelia's table; Portcullis does not register them yet).
    Webauthn {
        /// The WebAuthn command.
        #[command(subcommand)]
        command: WebauthnCommand,
    },
}

/// `portcullis storage user totp …`.
#[derive(Subcommand, Debug)]
pub enum TotpCommand {
    /// Print every registration as `otpauth://` URIs or CSV (secrets included: keep it private).
    Export(TotpExportArgs),
    /// Delete a user's registration.
    Delete(StorageUserArgs),
}

/// `portcullis storage user webauthn …`.
#[derive(Subcommand, Debug)]
pub enum WebauthnCommand {
    /// List credentials (never their keys).
    List {
        /// The configuration and the database.
        #[command(flatten)]
        storage: StorageArgs,
        /// Only this user's credentials.
        #[arg(long)]
        user: Option<String>,
    },
    /// Delete a user's credential by its description.
    Delete {
        /// The configuration and the user.
        #[command(flatten)]
        user: StorageUserArgs,
        /// The credential's description.
        #[arg(long)]
        description: String,
    },
}

/// The configuration whose storage a `storage` command reads.
#[derive(Args, Debug, Clone)]
pub struct StorageArgs {
    /// Authelia-style configuration file.
    #[arg(
        short,
        long,
        env = "PORTCULLIS_CONFIG",
        default_value = "configuration.yml"
    )]
    pub config: PathBuf,
}

/// A `storage` command about one user.
#[derive(Args, Debug, Clone)]
pub struct StorageUserArgs {
    /// Authelia-style configuration file.
    #[arg(
        short,
        long,
        env = "PORTCULLIS_CONFIG",
        default_value = "configuration.yml"
    )]
    pub config: PathBuf,
    /// The user (as stored: the canonical username).
    #[arg(long)]
    pub user: String,
}

/// Flags of `storage user totp export`.
#[derive(Args, Debug, Clone)]
pub struct TotpExportArgs {
    /// Authelia-style configuration file.
    #[arg(
        short,
        long,
        env = "PORTCULLIS_CONFIG",
        default_value = "configuration.yml"
    )]
    pub config: PathBuf,
    /// `uri` (one `otpauth://` URI per line) or `csv`.
    #[arg(long, value_enum, default_value_t = TotpFormat::Uri)]
    pub format: TotpFormat,
}

/// The export formats.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpFormat {
    /// `otpauth://totp/…` URIs.
    Uri,
    /// `issuer,username,algorithm,digits,period,secret`.
    Csv,
}

/// `portcullis app-password …`.
#[derive(Subcommand, Debug)]
pub enum AppPasswordCommand {
    /// Create one and print it (once).
    Create(AppPasswordCreateArgs),
    /// List a user's app passwords (names and dates, never the passwords).
    List(AppPasswordArgs),
    /// Delete one.
    Revoke(AppPasswordArgs),
}

/// `app-password create`.
#[derive(Args, Debug)]
pub struct AppPasswordCreateArgs {
    /// Authelia-style configuration file.
    #[arg(
        short,
        long,
        env = "PORTCULLIS_CONFIG",
        default_value = "configuration.yml"
    )]
    pub config: PathBuf,
    /// The user (as they log in).
    #[arg(long)]
    pub user: String,
    /// A name for it, unique per user.
    #[arg(long)]
    pub name: String,
    /// Lifetime (`90d`, `1y`); none: it never expires.
    #[arg(long)]
    pub expires: Option<String>,
}

/// `app-password list` and `revoke`.
#[derive(Args, Debug)]
pub struct AppPasswordArgs {
    /// Authelia-style configuration file.
    #[arg(
        short,
        long,
        env = "PORTCULLIS_CONFIG",
        default_value = "configuration.yml"
    )]
    pub config: PathBuf,
    /// The user (as they log in).
    #[arg(long)]
    pub user: String,
    /// The app password (revoke).
    #[arg(long)]
    pub name: Option<String>,
}

/// `portcullis doctor`.
#[derive(Args, Debug, Clone)]
pub struct DoctorArgs {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// A running portcullis-verify to check (its health, clock and TLS certificate), such as
    /// `https://auth.example.com` or `http://127.0.0.1:9091`.
    #[arg(long)]
    pub url: Option<String>,
}

const DOCTOR_EXAMPLES: &str = "\
Examples:
  portcullis doctor --config /etc/portcullis/configuration.yml
  portcullis doctor --config configuration.yml --url https://auth.example.com

Checks every portal URL (inside its cookie domain, resolvable), the trusted proxies (not wider than
needed), and with --url the server's /api/health, its clock against this machine's, and its TLS
certificate's expiry. Exit code 0 when nothing is wrong, 1 when a check failed, 2 when the
configuration is invalid.";

/// The configuration file.
#[derive(Args, Debug, Clone)]
pub struct ConfigArg {
    /// Authelia-style configuration file.
    #[arg(
        short,
        long,
        env = "PORTCULLIS_CONFIG",
        default_value = "configuration.yml"
    )]
    pub config: PathBuf,
}

/// argon2 variants.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// argon2id (recommended).
    #[value(name = "argon2id", alias = "id")]
    Argon2id,
    /// argon2i.
    #[value(name = "argon2i", alias = "i")]
    Argon2i,
    /// argon2d.
    #[value(name = "argon2d", alias = "d")]
    Argon2d,
}

/// Parameter profiles (RFC 9106 section 4, as Authelia's).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// t=3, m=64 MiB, p=4 (the defaults).
    LowMemory,
    /// t=1, m=2 GiB, p=4.
    Recommended,
}

/// Character sets of `--random` passwords (Authelia's names).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// Printable ASCII: letters, digits and symbols.
    Ascii,
    /// Letters and digits.
    Alphanumeric,
    /// Lower-case letters and digits.
    AlphanumericLower,
    /// Upper-case letters and digits.
    AlphanumericUpper,
    /// Letters.
    Alphabetic,
    /// Lower-case letters.
    AlphabeticLower,
    /// Upper-case letters.
    AlphabeticUpper,
    /// Digits.
    Numeric,
    /// Digits and A-F.
    NumericHex,
    /// Letters, digits and `-._~`.
    #[value(name = "rfc3986")]
    Rfc3986,
    /// Lower-case letters, digits and `-._~`.
    #[value(name = "rfc3986-lower")]
    Rfc3986Lower,
    /// Upper-case letters, digits and `-._~`.
    #[value(name = "rfc3986-upper")]
    Rfc3986Upper,
}

/// Flags of `hash-password` / `crypto hash generate argon2` (Authelia's names and defaults).
#[derive(Args, Debug, Clone)]
pub struct HashArgs {
    /// The password (otherwise asked on a terminal, or read as one line from standard input).
    #[arg(long, conflicts_with = "random")]
    pub password: Option<String>,
    /// Generate a random password and print it before the digest.
    #[arg(long)]
    pub random: bool,
    /// Length of the random password.
    #[arg(
        long = "random.length",
        default_value_t = 72,
        value_parser = clap::value_parser!(u32).range(1..=4096)
    )]
    pub random_length: u32,
    /// Character set of the random password.
    #[arg(long = "random.charset", value_enum, default_value_t = Charset::Alphanumeric)]
    pub random_charset: Charset,
    /// Characters of the random password (instead of --random.charset).
    #[arg(long = "random.characters", conflicts_with = "random_charset")]
    pub random_characters: Option<String>,
    /// Do not ask for the password a second time.
    #[arg(long)]
    pub no_confirm: bool,
    /// argon2 variant.
    #[arg(short, long, value_enum, default_value_t = Variant::Argon2id)]
    pub variant: Variant,
    /// Number of passes (t) [default: 3].
    #[arg(short, long)]
    pub iterations: Option<u32>,
    /// Memory in KiB (m) [default: 65536].
    #[arg(short, long)]
    pub memory: Option<u32>,
    /// Lanes (p) [default: 4].
    #[arg(short, long)]
    pub parallelism: Option<u32>,
    /// Key (hash output) size in bytes, 10 to 64 [default: 32].
    #[arg(short, long)]
    pub key_size: Option<u32>,
    /// Salt size in bytes, 8 to 48 [default: 16].
    #[arg(short, long)]
    pub salt_size: Option<u32>,
    /// Start from a parameter profile; -i, -m, -p, -k and -s override it.
    #[arg(long, value_enum)]
    pub profile: Option<Profile>,
}

/// Flags of `crypto hash validate`.
#[derive(Args, Debug, Clone)]
pub struct ValidateArgs {
    /// The password (otherwise asked on a terminal, or read as one line from standard input).
    #[arg(long)]
    pub password: Option<String>,
    /// The digest; put it after `--` and in single quotes.
    pub digest: String,
}

/// Authentication levels for `explain --level`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Anonymous.
    None,
    /// One factor (a password).
    #[value(name = "1fa")]
    OneFactor,
    /// Two factors.
    #[value(name = "2fa")]
    TwoFactor,
}

/// Output formats.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people.
    Text,
    /// For scripts.
    Json,
}

/// Flags of `explain` / `access-control check-policy` (Authelia's names).
#[derive(Args, Debug, Clone)]
pub struct ExplainArgs {
    /// Authelia-style configuration file.
    #[arg(
        short,
        long,
        env = "PORTCULLIS_CONFIG",
        default_value = "configuration.yml"
    )]
    pub config: PathBuf,
    /// The URL the request goes to.
    #[arg(long)]
    pub url: String,
    /// The request method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// The user (omit for an anonymous request).
    #[arg(long)]
    pub username: Option<String>,
    /// The user's groups, comma-separated (default: from the users file).
    #[arg(long, value_delimiter = ',')]
    pub groups: Option<Vec<String>>,
    /// The client IP (default: unknown, which matches no `networks`).
    #[arg(long)]
    pub ip: Option<IpAddr>,
    /// Authentication level [default: 1fa with --username or --groups, else none].
    #[arg(long, value_enum)]
    pub level: Option<Level>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Accepted for Authelia compatibility; the output always shows every rule.
    #[arg(long, hide = true)]
    pub verbose: bool,
}

/// Flags of `sessions list`.
#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    /// Authelia-style configuration file.
    #[arg(
        short,
        long,
        env = "PORTCULLIS_CONFIG",
        default_value = "configuration.yml"
    )]
    pub config: PathBuf,
    /// Only this user's sessions (case-insensitive).
    #[arg(long)]
    pub username: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Flags of `sessions revoke`.
#[derive(Args, Debug, Clone)]
pub struct RevokeArgs {
    /// Authelia-style configuration file.
    #[arg(
        short,
        long,
        env = "PORTCULLIS_CONFIG",
        default_value = "configuration.yml"
    )]
    pub config: PathBuf,
    /// The user whose sessions are deleted (case-insensitive).
    #[arg(long)]
    pub username: String,
}
