//! `hash-password` / `crypto hash generate argon2`, and `crypto hash validate`
//! (docs/reference/forward-auth.md §12.3).

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use portcullis_auth::users::Digest;
use rand::TryRngCore;
use rand::rngs::OsRng;
use rand::seq::IndexedRandom;

use crate::{Charset, CliError, HashArgs, Io, Profile, ValidateArgs, Variant};

/// argon2 parameters of one digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    pub variant: Variant,
    /// Passes (t).
    pub iterations: u32,
    /// KiB (m).
    pub memory: u32,
    /// Lanes (p).
    pub parallelism: u32,
    /// Output bytes.
    pub key_size: u32,
    /// Salt bytes.
    pub salt_size: u32,
}

/// Authelia's defaults (also RFC 9106's low-memory profile).
const DEFAULTS: Settings = Settings {
    variant: Variant::Argon2id,
    iterations: 3,
    memory: 65_536,
    parallelism: 4,
    key_size: 32,
    salt_size: 16,
};

/// Bounds of what a PHC string can carry (and `portcullis-verify` can read back).
const KEY_SIZES: std::ops::RangeInclusive<u32> = 10..=64;
const SALT_SIZES: std::ops::RangeInclusive<u32> = 8..=48;

impl Settings {
    /// The profile (or the defaults), then every flag given.
    pub(crate) fn from_args(args: &HashArgs) -> Result<Self, CliError> {
        let base = match args.profile {
            None | Some(Profile::LowMemory) => DEFAULTS,
            Some(Profile::Recommended) => Settings {
                iterations: 1,
                memory: 2 * 1024 * 1024,
                ..DEFAULTS
            },
        };
        let settings = Settings {
            variant: args.variant,
            iterations: args.iterations.unwrap_or(base.iterations),
            memory: args.memory.unwrap_or(base.memory),
            parallelism: args.parallelism.unwrap_or(base.parallelism),
            key_size: args.key_size.unwrap_or(base.key_size),
            salt_size: args.salt_size.unwrap_or(base.salt_size),
        };
        if !KEY_SIZES.contains(&settings.key_size) {
            return Err(CliError::invalid(format!(
                "--key-size {}: must be {} to {} bytes",
                settings.key_size,
                KEY_SIZES.start(),
                KEY_SIZES.end()
            )));
        }
        if !SALT_SIZES.contains(&settings.salt_size) {
            return Err(CliError::invalid(format!(
                "--salt-size {}: must be {} to {} bytes",
                settings.salt_size,
                SALT_SIZES.start(),
                SALT_SIZES.end()
            )));
        }
        if settings.iterations == 0 {
            return Err(CliError::invalid("--iterations must be at least 1"));
        }
        if settings.parallelism == 0 || settings.parallelism > Params::MAX_P_COST {
            return Err(CliError::invalid(format!(
                "--parallelism {}: must be 1 to {}",
                settings.parallelism,
                Params::MAX_P_COST
            )));
        }
        let min_memory = settings.parallelism.saturating_mul(8);
        if settings.memory < min_memory {
            return Err(CliError::invalid(format!(
                "--memory {}: must be at least 8 KiB per lane ({min_memory} with --parallelism {})",
                settings.memory, settings.parallelism
            )));
        }
        Ok(settings)
    }

    fn argon2(&self) -> Result<Argon2<'static>, CliError> {
        let algorithm = match self.variant {
            Variant::Argon2id => Algorithm::Argon2id,
            Variant::Argon2i => Algorithm::Argon2i,
            Variant::Argon2d => Algorithm::Argon2d,
        };
        let params = Params::new(
            self.memory,
            self.iterations,
            self.parallelism,
            Some(self.key_size as usize),
        )
        .map_err(|e| CliError::invalid(format!("argon2 parameters: {e}")))?;
        Ok(Argon2::new(algorithm, Version::V0x13, params))
    }
}

/// Hash `password` with `settings` and a salt from the operating system's CSPRNG.
pub(crate) fn hash(password: &str, settings: &Settings) -> Result<String, CliError> {
    let mut salt = vec![0u8; settings.salt_size as usize];
    OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| CliError::failed(format!("no random salt from the operating system: {e}")))?;
    hash_with_salt(password, settings, &salt)
}

fn hash_with_salt(password: &str, settings: &Settings, salt: &[u8]) -> Result<String, CliError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| CliError::invalid(format!("salt: {e}")))?;
    let digest = settings
        .argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| CliError::failed(format!("hashing failed: {e}")))?;
    Ok(digest.to_string())
}

fn charset(set: Charset) -> String {
    const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
    const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const DIGITS: &str = "0123456789";
    const SYMBOLS: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    const UNRESERVED: &str = "-._~";
    let parts: &[&str] = match set {
        Charset::Ascii => &[UPPER, LOWER, DIGITS, SYMBOLS],
        Charset::Alphanumeric => &[UPPER, LOWER, DIGITS],
        Charset::AlphanumericLower => &[LOWER, DIGITS],
        Charset::AlphanumericUpper => &[UPPER, DIGITS],
        Charset::Alphabetic => &[UPPER, LOWER],
        Charset::AlphabeticLower => &[LOWER],
        Charset::AlphabeticUpper => &[UPPER],
        Charset::Numeric => &[DIGITS],
        Charset::NumericHex => &[DIGITS, "ABCDEF"],
        Charset::Rfc3986 => &[UPPER, LOWER, DIGITS, UNRESERVED],
        Charset::Rfc3986Lower => &[LOWER, DIGITS, UNRESERVED],
        Charset::Rfc3986Upper => &[UPPER, DIGITS, UNRESERVED],
    };
    parts.concat()
}

/// A random password: `length` characters drawn uniformly from the chosen set by the thread's
/// CSPRNG (ChaCha, seeded from the operating system).
pub(crate) fn random_password(args: &HashArgs) -> Result<String, CliError> {
    let set = match &args.random_characters {
        Some(custom) => custom.clone(),
        None => charset(args.random_charset),
    };
    let mut chars: Vec<char> = set.chars().collect();
    chars.sort_unstable();
    chars.dedup();
    if chars.is_empty() {
        return Err(CliError::invalid("--random.characters is empty"));
    }
    let mut rng = rand::rng();
    (0..args.random_length)
        .map(|_| {
            chars
                .choose(&mut rng)
                .copied()
                .ok_or_else(|| CliError::invalid("--random.characters is empty"))
        })
        .collect()
}

/// The password of a command: the flag, or the terminal (asked once, or twice to confirm), or
/// one line of a pipe.
fn obtain_password(flag: Option<&str>, confirm: bool, io: &mut Io<'_>) -> Result<String, CliError> {
    let password = match flag {
        Some(password) => password.to_owned(),
        None if io.input.is_terminal() => {
            let read = |e: std::io::Error| {
                CliError::failed(format!("cannot read the password from the terminal: {e}"))
            };
            let first = io.input.prompt_hidden("Enter Password: ").map_err(read)?;
            if confirm && !first.is_empty() {
                let second = io.input.prompt_hidden("Confirm Password: ").map_err(read)?;
                if second != first {
                    return Err(CliError::invalid(
                        "the password did not match the confirmation password",
                    ));
                }
            }
            first
        }
        None => io.input.read_line().map_err(|e| {
            CliError::failed(format!("cannot read the password from standard input: {e}"))
        })?,
    };
    if password.is_empty() {
        return Err(CliError::invalid(
            "no password provided (use --password, --random, a terminal, or one line on standard input)",
        ));
    }
    Ok(password)
}

/// `portcullis hash-password`.
pub(crate) fn generate(args: &HashArgs, io: &mut Io<'_>) -> Result<u8, CliError> {
    let settings = Settings::from_args(args)?;
    let password = if args.random {
        random_password(args)?
    } else {
        obtain_password(args.password.as_deref(), !args.no_confirm, io)?
    };
    let digest = hash(&password, &settings)?;
    if args.random {
        writeln!(io.out, "Random Password: {password}")?;
    }
    writeln!(io.out, "Digest: {digest}")?;
    Ok(0)
}

/// `portcullis crypto hash validate`.
pub(crate) fn validate(args: &ValidateArgs, io: &mut Io<'_>) -> Result<u8, CliError> {
    let digest = Digest::parse(args.digest.trim())
        .map_err(|e| CliError::invalid(format!("invalid digest: {e}")))?;
    let password = obtain_password(args.password.as_deref(), false, io)?;
    if digest.verify(&password) {
        writeln!(io.out, "The password matches the digest.")?;
        Ok(0)
    } else {
        writeln!(io.out, "The password does not match the digest.")?;
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command, ScriptedInput};
    use clap::Parser;

    fn args(extra: &[&str]) -> HashArgs {
        let mut argv = vec!["portcullis", "hash-password"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::HashPassword(args) => args,
            other => panic!("{other:?}"),
        }
    }

    /// Small parameters keep unit tests fast; the flags are what is under test.
    const FAST: [&str; 6] = ["-m", "64", "-i", "1", "-p", "1"];

    fn run_generate(extra: &[&str], input: &mut ScriptedInput) -> Result<String, CliError> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut io = Io {
            out: &mut out,
            err: &mut err,
            input,
        };
        let mut all = FAST.to_vec();
        all.extend_from_slice(extra);
        generate(&args(&all), &mut io)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn defaults_are_authelias() {
        assert_eq!(Settings::from_args(&args(&[])).unwrap(), DEFAULTS);
        assert_eq!(
            Settings::from_args(&args(&["--profile", "low-memory"])).unwrap(),
            DEFAULTS
        );
        let recommended = Settings::from_args(&args(&["--profile", "recommended"])).unwrap();
        assert_eq!(
            (
                recommended.iterations,
                recommended.memory,
                recommended.parallelism
            ),
            (1, 2_097_152, 4)
        );
        let overridden = Settings::from_args(&args(&[
            "--profile",
            "recommended",
            "-m",
            "1024",
            "-v",
            "i",
        ]))
        .unwrap();
        assert_eq!(
            (overridden.variant, overridden.iterations, overridden.memory),
            (Variant::Argon2i, 1, 1024)
        );
    }

    #[test]
    fn out_of_range_parameters_are_invalid_input() {
        for (flags, needle) in [
            (&["-k", "9"][..], "--key-size 9"),
            (&["-k", "65"], "--key-size 65"),
            (&["-s", "7"], "--salt-size 7"),
            (&["-s", "49"], "--salt-size 49"),
            (&["-i", "0"], "--iterations"),
            (&["-p", "0"], "--parallelism 0"),
            (&["-p", "4", "-m", "31"], "--memory 31"),
        ] {
            let err = Settings::from_args(&args(flags)).unwrap_err();
            assert_eq!(err.code(), 2);
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn known_answer_matches_the_reference_digest() {
        // Authelia's published digest of "password": same salt, same parameters, same key.
        let reference = "$argon2id$v=19$m=65536,t=3,p=4$2ohUAfh9yetl+utr4tLcCQ$AsXx0VlwjvNnCsa70u4HKZvFkC8Gwajr2pHGKcND/xs";
        let salt = argon2::PasswordHash::new(reference)
            .unwrap()
            .salt
            .unwrap()
            .to_string();
        let mut raw = [0u8; 16];
        let raw = argon2::password_hash::SaltString::from_b64(&salt)
            .unwrap()
            .decode_b64(&mut raw)
            .unwrap()
            .to_vec();
        assert_eq!(
            hash_with_salt("password", &DEFAULTS, &raw).unwrap(),
            reference
        );
    }

    #[test]
    fn terminal_asks_twice_and_refuses_a_mismatch() {
        let mut tty = ScriptedInput::terminal(["pw-1", "pw-1"]);
        let out = run_generate(&[], &mut tty).unwrap();
        assert_eq!(tty.prompts, ["Enter Password: ", "Confirm Password: "]);
        assert!(out.starts_with("Digest: $argon2id$"));

        let mut tty = ScriptedInput::terminal(["pw-1", "pw-2"]);
        let err = run_generate(&[], &mut tty).unwrap_err();
        assert!(err.to_string().contains("did not match"), "{err}");

        let mut tty = ScriptedInput::terminal(["pw-1"]);
        run_generate(&["--no-confirm"], &mut tty).unwrap();
        assert_eq!(tty.prompts, ["Enter Password: "]);

        let mut tty = ScriptedInput::terminal([""]);
        let err = run_generate(&[], &mut tty).unwrap_err();
        assert!(err.to_string().contains("no password provided"), "{err}");
    }

    #[test]
    fn a_pipe_gives_one_line_and_no_prompt() {
        let mut pipe = ScriptedInput::pipe(["from a pipe"]);
        let out = run_generate(&[], &mut pipe).unwrap();
        assert!(pipe.prompts.is_empty());
        let digest = out.strip_prefix("Digest: ").unwrap().trim_end();
        assert!(Digest::parse(digest).unwrap().verify("from a pipe"));
        let err = run_generate(&[], &mut ScriptedInput::pipe(Vec::<String>::new())).unwrap_err();
        assert_eq!(err.code(), 2);
    }

    #[test]
    fn random_passwords_use_the_charset_and_length() {
        for (flags, allowed) in [
            (&["--random.charset", "numeric"][..], "0123456789"),
            (&["--random.charset", "numeric-hex"], "0123456789ABCDEF"),
            (&["--random.characters", "xy"], "xy"),
            (
                &["--random.charset", "rfc3986-lower"],
                "abcdefghijklmnopqrstuvwxyz0123456789-._~",
            ),
        ] {
            let mut all = vec!["--random", "--random.length", "40"];
            all.extend_from_slice(flags);
            let password = random_password(&args(&all)).unwrap();
            assert_eq!(password.chars().count(), 40);
            assert!(password.chars().all(|c| allowed.contains(c)), "{password}");
        }
        let default = random_password(&args(&["--random"])).unwrap();
        assert_eq!(default.len(), 72);
        assert!(default.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(default, random_password(&args(&["--random"])).unwrap());
        assert_eq!(charset(Charset::Ascii).len(), 94);
    }
}
