//! `storage …`, Authelia's storage commands over the second-factor tables of the SQLite file
//! (`storage.local.path`, opened with `storage.encryption_key`): `schema-info`,
//! `encryption check`, `user totp export` / `delete`, `user webauthn list` / `delete`. A wrong
//! key or a database newer than Portcullis knows is an error, never garbage.

use portcullis_second_factor::datetime::rfc3339;
use portcullis_second_factor::encryption::Scheme;
use portcullis_second_factor::otpauth::otpauth_uri;
use portcullis_second_factor::sqlite::{Origin, SecondFactorStore};

use crate::{CliError, Io, StorageArgs, StorageUserArgs, TotpExportArgs, TotpFormat, load_config};

fn open(config_path: &std::path::Path) -> Result<SecondFactorStore, CliError> {
    let (config, _warnings) = load_config(config_path)?;
    let Some(key) = &config.second_factor.encryption_key else {
        return Err(CliError::invalid(
            "storage.encryption_key is not set: there are no second factors to read",
        ));
    };
    let path = &config.storage_path;
    if !path.is_file() {
        return Err(CliError::failed(format!(
            "no database at {} (storage.local.path)",
            path.display()
        )));
    }
    SecondFactorStore::open(path, key.expose(), &mut rand::rng())
        .map_err(|e| CliError::failed(format!("{}: {e}", path.display())))
}

fn write(io: &mut Io<'_>, text: &str) -> Result<(), CliError> {
    io.out
        .write_all(text.as_bytes())
        .map_err(|e| CliError::failed(format!("cannot write the output: {e}")))
}

/// `storage schema-info`.
pub(crate) fn schema_info(args: &StorageArgs, io: &mut Io<'_>) -> Result<u8, CliError> {
    let store = open(&args.config)?;
    let version = match store.origin() {
        Origin::Authelia { schema } => format!("{schema} (an Authelia database)"),
        Origin::Portcullis => {
            "Portcullis (Authelia's table layouts, made by Portcullis)".to_owned()
        }
    };
    let scheme = match store.scheme() {
        Scheme::Legacy => "SHA-256 key, no associated data (schema 24 and older)",
        Scheme::ColumnScoped => "HKDF key, table and column as associated data (schema 25)",
        Scheme::RowScoped => "HKDF key, table, column and row as associated data (schema 26)",
    };
    let tables = store
        .tables()
        .map_err(|e| CliError::failed(e.to_string()))?
        .join(", ");
    write(
        io,
        &format!(
            "Schema Version: {version}\nSchema Encryption: {scheme}\nSchema Encryption Key: valid\nSchema Tables: {tables}\n"
        ),
    )?;
    Ok(0)
}

/// `storage encryption check`.
pub(crate) fn encryption_check(args: &StorageArgs, io: &mut Io<'_>) -> Result<u8, CliError> {
    let store = open(&args.config)?;
    // Opening checked the `check` value and the HMAC keys; every stored secret must open too.
    let registrations = store
        .totp_registrations()
        .map_err(|e| CliError::failed(format!("a TOTP secret does not decrypt: {e}")))?;
    write(
        io,
        &format!(
            "Storage Encryption Key Validation: SUCCESS ({} TOTP registrations decrypt)\n",
            registrations.len()
        ),
    )?;
    Ok(0)
}

/// `storage user totp export`.
pub(crate) fn totp_export(args: &TotpExportArgs, io: &mut Io<'_>) -> Result<u8, CliError> {
    let store = open(&args.config)?;
    let registrations = store
        .totp_registrations()
        .map_err(|e| CliError::failed(e.to_string()))?;
    let mut text = String::new();
    if args.format == TotpFormat::Csv {
        text.push_str("issuer,username,algorithm,digits,period,secret\n");
    }
    for r in &registrations {
        match args.format {
            TotpFormat::Uri => {
                text.push_str(&otpauth_uri(
                    &r.issuer,
                    &r.username,
                    r.parameters,
                    &r.secret,
                ));
                text.push('\n');
            }
            TotpFormat::Csv => text.push_str(&format!(
                "{},{},{},{},{},{}\n",
                r.issuer,
                r.username,
                r.parameters.algorithm,
                r.parameters.digits.get(),
                r.parameters.period.get(),
                r.secret.to_base32()
            )),
        }
    }
    write(io, &text)?;
    let _ = writeln!(
        io.err,
        "exported {} TOTP registrations: the output holds secrets, keep it private",
        registrations.len()
    );
    Ok(0)
}

/// `storage user totp delete`.
pub(crate) fn totp_delete(args: &StorageUserArgs, io: &mut Io<'_>) -> Result<u8, CliError> {
    let store = open(&args.config)?;
    let deleted = store
        .delete_totp(&args.user)
        .map_err(|e| CliError::failed(e.to_string()))?;
    if !deleted {
        return Err(CliError::failed(format!(
            "{} has no TOTP registration",
            args.user
        )));
    }
    write(
        io,
        &format!("deleted the TOTP registration of {}\n", args.user),
    )?;
    Ok(0)
}

/// `storage user webauthn list`.
pub(crate) fn webauthn_list(
    config: &std::path::Path,
    user: Option<&str>,
    io: &mut Io<'_>,
) -> Result<u8, CliError> {
    let store = open(config)?;
    let credentials = store
        .webauthn_credentials(user)
        .map_err(|e| CliError::failed(e.to_string()))?;
    let mut text = String::from("USER\tDESCRIPTION\tRPID\tKID\tCREATED\tLAST USED\n");
    for c in &credentials {
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            c.username,
            c.description,
            c.rpid,
            c.kid,
            c.created_at.map_or_else(|| "-".to_owned(), rfc3339),
            c.last_used_at.map_or_else(|| "never".to_owned(), rfc3339),
        ));
    }
    write(io, &text)?;
    Ok(0)
}

/// `storage user webauthn delete`.
pub(crate) fn webauthn_delete(
    args: &StorageUserArgs,
    description: &str,
    io: &mut Io<'_>,
) -> Result<u8, CliError> {
    let store = open(&args.config)?;
    let deleted = store
        .delete_webauthn_credential(&args.user, description)
        .map_err(|e| CliError::failed(e.to_string()))?;
    if !deleted {
        return Err(CliError::failed(format!(
            "{} has no WebAuthn credential named {description:?}",
            args.user
        )));
    }
    write(
        io,
        &format!(
            "deleted the WebAuthn credential {description:?} of {}\n",
            args.user
        ),
    )?;
    Ok(0)
}
