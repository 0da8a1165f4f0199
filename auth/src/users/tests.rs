//! The users file: loading, lookup and digests.

use super::*;

/// The digest of "password" that Authelia's documentation and test suites ship, produced by
/// `authelia crypto hash generate argon2` with its defaults (m=65536, t=3, p=4).
pub(crate) const ARGON2ID: &str = "$argon2id$v=19$m=65536,t=3,p=4$2ohUAfh9yetl+utr4tLcCQ$AsXx0VlwjvNnCsa70u4HKZvFkC8Gwajr2pHGKcND/xs";

/// The line and message of a users-file error.
#[derive(Debug)]
struct Failure {
    line: Option<usize>,
    message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.line, self.message)
    }
}

fn db(text: &str, ci: bool, email: bool) -> Result<UserDatabase, Failure> {
    UserDatabase::parse(Path::new("users.yml"), text, ci, email).map_err(|e| match e {
        AuthError::UsersFile { line, message, .. } => Failure { line, message },
        other => panic!("not a users-file error: {other}"),
    })
}

#[test]
fn rejects_unsupported_digests_naming_the_user() {
    let text =
        "users:\n  bob:\n    displayname: Bob\n    password: \"$pbkdf2-sha512$310000$abc$def\"\n";
    let e = db(text, false, false).unwrap_err();
    assert!(e.message.contains("\"bob\""), "{e}");
    assert!(e.message.contains("pbkdf2"), "{e}");
    assert_eq!(e.line, Some(2));
    let text = "users:\n  bob:\n    displayname: Bob\n    password: plaintext\n";
    assert!(
        db(text, false, false)
            .unwrap_err()
            .message
            .contains("not a crypt-style digest")
    );
}

#[test]
fn lookup_rules() {
    let text = format!(
        "users:\n  alice:\n    displayname: Alice\n    password: \"{ARGON2ID}\"\n    email: Alice@Example.com\n    groups: [admins]\n    given_name: Alice\n  carol:\n    displayname: Carol\n    password: \"{ARGON2ID}\"\n    disabled: true\n"
    );
    let plain = db(&text, false, false).unwrap();
    assert!(plain.lookup("alice").is_some());
    assert!(plain.lookup("Alice").is_none());
    assert!(plain.lookup("alice@example.com").is_none());
    assert!(
        plain.lookup("carol").is_none(),
        "disabled users are unknown"
    );
    let flexible = db(&text, true, true).unwrap();
    assert_eq!(flexible.lookup("ALICE").unwrap().username, "alice");
    assert_eq!(
        flexible.lookup("alice@EXAMPLE.com").unwrap().username,
        "alice"
    );
    assert_eq!(flexible.len(), 1);
}

#[test]
fn case_insensitive_requires_lower_case_names() {
    let text = format!("users:\n  Alice:\n    displayname: A\n    password: \"{ARGON2ID}\"\n");
    assert!(
        db(&text, true, false)
            .unwrap_err()
            .message
            .contains("lower-case")
    );
}

#[test]
fn verifies_each_family() {
    let argon = Digest::parse(ARGON2ID).unwrap();
    assert!(argon.verify("password"));
    assert!(!argon.verify("Password"));
    let bcrypt_digest = bcrypt::hash_with_salt("password", 4, [7u8; 16])
        .unwrap()
        .format_for_version(bcrypt::Version::TwoB);
    let bcrypt = Digest::parse(&bcrypt_digest).unwrap();
    assert!(bcrypt.verify("password"));
    assert!(!bcrypt.verify("wrong"));
    let y = bcrypt_digest.replacen("$2b$", "$2y$", 1);
    assert!(Digest::parse(&y).unwrap().verify("password"));
    // sha512crypt test vector from the original specification (Drepper), rounds=5000 default.
    let sha = Digest::parse("$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1").unwrap();
    assert!(sha.verify("Hello world!"));
    assert!(!sha.verify("Hello world"));
    assert_eq!(
        format!("{sha:?}"),
        "Digest(sha512crypt)",
        "Debug never shows the digest"
    );
}

#[test]
fn pbkdf2_digests_as_authelia_writes_them() {
    // Authelia's documentation: the digest of 'insecure_secret'
    // (docs/reference/oidc-provider.md §1.2 lists the formats).
    let d = Digest::parse("$pbkdf2-sha512$310000$c8p78n7pUMln0jzvd4aK4Q$JNRBzwAo0ek5qKn50cFzzvE9RXV88h1wJn5KGiHrD0YKtZaR/nCb2CJPOsKaPK0hjf.9yHxzQGZziziccp6Yng").unwrap();
    assert!(d.verify("insecure_secret"));
    assert!(!d.verify("insecure_secreT"));
    assert_eq!(format!("{d:?}"), "Digest(pbkdf2)");
    for bad in [
        "$pbkdf2-sha512$0$c2FsdA$a2V5",
        "$pbkdf2-sha512$x$c2FsdA$a2V5",
        "$pbkdf2-sha512$1$c2FsdA",
        "$pbkdf2-sha512$1$!!$a2V5",
    ] {
        assert!(Digest::parse(bad).is_err(), "{bad}");
    }
    assert!(Digest::parse("$pbkdf2-md5$1$c2FsdA$a2V5").is_err());
}

#[test]
fn extra_attributes_are_read_and_malformed_ones_refused() {
    let text = format!(
        "users:\n  john:\n    displayname: John\n    password: \"{ARGON2ID}\"\n    extra:\n      department: ops\n      level: 3\n      admin: true\n      entitlements: [billing, reports]\n"
    );
    let db = UserDatabase::parse(Path::new("u.yml"), &text, false, false).unwrap();
    let john = db.get("john").unwrap();
    use portcullis_core::AttributeValue;
    assert_eq!(
        john.attributes["department"],
        AttributeValue::String("ops".into())
    );
    assert_eq!(john.attributes["level"], AttributeValue::Integer(3));
    assert_eq!(john.attributes["admin"], AttributeValue::Bool(true));
    assert_eq!(
        john.attributes["entitlements"],
        AttributeValue::List(vec!["billing".into(), "reports".into()])
    );
    assert_eq!(
        john.identity(portcullis_core::AuthLevel::OneFactor, 1)
            .attributes,
        john.attributes
    );
    let bad = format!(
        "users:\n  john:\n    displayname: John\n    password: \"{ARGON2ID}\"\n    extra:\n      nested: {{ a: 1 }}\n"
    );
    assert!(UserDatabase::parse(Path::new("u.yml"), &bad, false, false).is_err());
}
