//! Changing a password in the users file (docs/reference/second-factor.md §3.4): a fresh argon2id
//! digest (Authelia's default parameters) written into the user's `password:` line, every other
//! byte of the file kept, the result checked by parsing it back, and the file replaced
//! atomically (a temporary file in the same folder, synced, then renamed over it).

use std::io::Write;
use std::path::Path;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::UserDatabase;
use crate::AuthError;

fn edit_error(path: &Path, line: Option<usize>, message: impl Into<String>) -> AuthError {
    AuthError::UsersFile {
        file: path.to_owned(),
        line,
        message: message.into(),
    }
}

/// An argon2id digest of `password` with Authelia's defaults (m=65536, t=3, p=4) and a salt
/// from `salt` (16 random bytes).
pub fn argon2id_digest(password: &str, salt: [u8; 16]) -> Result<String, AuthError> {
    let malformed = |e: &dyn std::fmt::Display| AuthError::MalformedDigest {
        family: "argon2",
        detail: Some(e.to_string()),
    };
    let params = Params::new(65_536, 3, 4, Some(32)).map_err(|e| malformed(&e))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| malformed(&e))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| malformed(&e))
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The key of a `key:` line (quotes removed), when the line is one with nothing after the colon
/// but an optional comment.
fn block_key(line: &str) -> Option<&str> {
    let trimmed = line.trim();
    let (key, rest) = trimmed.split_once(':')?;
    let rest = rest.trim();
    if !(rest.is_empty() || rest.starts_with('#')) {
        return None;
    }
    let key = key.trim();
    let unquoted = key
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .or_else(|| key.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')))
        .unwrap_or(key);
    Some(unquoted)
}

/// `text` with `username`'s `password:` value replaced by `digest` (double-quoted). Only the
/// block layout Authelia documents is edited (`users:`, then the user's key, then its
/// `password:` line one level deeper); anything else is an error naming the line, never a guess.
pub fn replace_digest(
    path: &Path,
    text: &str,
    username: &str,
    case_insensitive: bool,
    digest: &str,
) -> Result<String, AuthError> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let same = |a: &str| {
        if case_insensitive {
            a.eq_ignore_ascii_case(username)
        } else {
            a == username
        }
    };
    let users = lines
        .iter()
        .position(|l| indent_of(l) == 0 && block_key(l) == Some("users"))
        .ok_or_else(|| edit_error(path, None, "no top-level `users:` block to edit"))?;
    let mut user_line = None;
    let mut user_indent = None;
    for (i, line) in lines.iter().enumerate().skip(users + 1) {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let indent = indent_of(line);
        if indent == 0 {
            break;
        }
        let level = *user_indent.get_or_insert(indent);
        if indent == level && block_key(line).is_some_and(same) {
            user_line = Some(i);
            break;
        }
    }
    let user_line = user_line.ok_or_else(|| {
        edit_error(
            path,
            None,
            format!("no block for user {username:?} under `users:`"),
        )
    })?;
    let base = indent_of(lines[user_line]);
    let mut password_line = None;
    for (i, line) in lines.iter().enumerate().skip(user_line + 1) {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if indent_of(line) <= base {
            break;
        }
        if line.trim_start().starts_with("password:") {
            password_line = Some(i);
            break;
        }
    }
    let index = password_line.ok_or_else(|| {
        edit_error(
            path,
            Some(user_line + 1),
            format!("user {username:?} has no `password:` line to replace"),
        )
    })?;
    let old = lines[index];
    let newline = if old.ends_with("\r\n") {
        "\r\n"
    } else if old.ends_with('\n') {
        "\n"
    } else {
        ""
    };
    let replaced = format!(
        "{}password: \"{digest}\"{newline}",
        " ".repeat(indent_of(old))
    );
    let mut out = String::with_capacity(text.len() + digest.len());
    for (i, line) in lines.iter().enumerate() {
        out.push_str(if i == index { &replaced } else { line });
    }
    Ok(out)
}

/// Set `username`'s password in the users file at `path` to `new_password`: the new file is
/// parsed back and must give the user the new digest before it replaces the old one.
pub fn change_password(
    path: &Path,
    username: &str,
    case_insensitive: bool,
    search_email: bool,
    new_password: &str,
    salt: [u8; 16],
) -> Result<UserDatabase, AuthError> {
    let text = std::fs::read_to_string(path).map_err(|e| edit_error(path, None, e.to_string()))?;
    let digest = argon2id_digest(new_password, salt)?;
    let edited = replace_digest(path, &text, username, case_insensitive, &digest)?;
    let parsed = UserDatabase::parse(path, &edited, case_insensitive, search_email)?;
    let applied = parsed
        .lookup(username)
        .is_some_and(|u| u.digest.verify(new_password));
    if !applied {
        return Err(edit_error(
            path,
            None,
            "the edited file does not carry the new password; nothing was written",
        ));
    }
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temporary = folder.join(format!(
        ".{}.portcullis-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("users"),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        if let Ok(meta) = std::fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(edited.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        if let Ok(dir) = std::fs::File::open(folder) {
            let _ = dir.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        edit_error(path, None, format!("cannot write: {e}"))
    })?;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# Users of the quickstart.\nusers:\n  alice:\n    displayname: \"Alice\"   # the admin\n    password: \"$argon2id$v=19$m=65536,t=3,p=4$2ohUAfh9yetl+utr4tLcCQ$AsXx0VlwjvNnCsa70u4HKZvFkC8Gwajr2pHGKcND/xs\"\n    email: alice@example.com\n    groups: [admins]\n\n  'bob':\n    displayname: Bob\n    # a comment inside\n    password: '$argon2id$v=19$m=65536,t=3,p=4$2ohUAfh9yetl+utr4tLcCQ$AsXx0VlwjvNnCsa70u4HKZvFkC8Gwajr2pHGKcND/xs'\n    email: bob@example.com\n# the end of the file, kept\n";

    #[test]
    fn only_the_users_password_line_changes() {
        let p = Path::new("users.yml");
        let out = replace_digest(p, FILE, "BOB", true, "$argon2id$NEW").unwrap();
        let changed: Vec<(&str, &str)> = FILE
            .lines()
            .zip(out.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!(changed[0].1, "    password: \"$argon2id$NEW\"");
        assert!(changed[0].0.contains("'$argon2id$v=19"));
        assert_eq!(
            out.len(),
            FILE.len() - changed[0].0.len() + changed[0].1.len()
        );
        // Case matters when the file is case-sensitive.
        assert!(replace_digest(p, FILE, "BOB", false, "x").is_err());
        let alice = replace_digest(p, FILE, "alice", false, "$argon2id$A").unwrap();
        assert!(alice.contains("    password: \"$argon2id$A\"\n    email: alice@example.com"));
        assert!(alice.contains("displayname: \"Alice\"   # the admin"));
    }

    #[test]
    fn layouts_it_does_not_know_are_errors_naming_what_is_missing() {
        let p = Path::new("users.yml");
        for (text, what) in [
            ("people:\n  alice:\n    password: x\n", "users:"),
            ("users:\n  carol:\n    password: x\n", "no block for user"),
            (
                "users:\n  alice:\n    displayname: A\n  bob:\n    password: x\n",
                "no `password:` line",
            ),
            ("users: {alice: {password: x}}\n", "users:"),
        ] {
            let e = replace_digest(p, text, "alice", false, "d")
                .unwrap_err()
                .to_string();
            assert!(e.contains(what), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_file_is_replaced_whole_and_parses_with_the_new_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users_database.yml");
        std::fs::write(&path, FILE).unwrap();
        let db = change_password(&path, "alice", true, false, "a new passphrase", [7; 16]).unwrap();
        assert!(
            db.lookup("alice")
                .unwrap()
                .digest
                .verify("a new passphrase")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# Users of the quickstart.\n"));
        assert!(text.ends_with("# the end of the file, kept\n"));
        assert!(text.contains("password: \"$argon2id$v=19$m=65536,t=3,p=4$"));
        let reread = UserDatabase::load(&path, true, false).unwrap();
        assert!(
            reread
                .lookup("alice")
                .unwrap()
                .digest
                .verify("a new passphrase")
        );
        assert!(
            reread.lookup("bob").unwrap().digest.verify("password"),
            "bob keeps his"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }
}
