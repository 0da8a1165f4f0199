//! The directory client of `portcullis-auth` (feature `ldap`) against a real OpenLDAP
//! (`tests/src/ldap.rs`): login by username and by email with the canonical username from the
//! entry, groups through both search modes, wrong password, unknown user, duplicate entries,
//! filter injection, LDAPS and StartTLS with the per-run CA and `tls.server_name`, password
//! reset and change through the Password Modify operation, and the directory killed and frozen
//! (SIGSTOP): an error within the timeout, never an answer, and recovery by itself. Then the
//! same `PasswordCheck` the servers use: a Basic client costs one bind per cache lifetime, a cache
//! hit answers with the directory frozen, regulation bans as with the users file.
// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use portcullis_auth::ldap::config::{
    Attributes, GroupSearchMode, Implementation, LdapConfig, LdapTls,
};
use portcullis_auth::ldap::filter::{AttributeNames, with_attribute_names};
use portcullis_auth::ldap::{LdapDirectory, LdapError};
use portcullis_auth::regulation::{RegulationConfig, Regulator};
use portcullis_auth::users::UserDatabase;
use portcullis_auth::{BasicCache, Hasher, PasswordCheck, Rejection};
use portcullis_core::Secret;
use portcullis_tests::ldap::{
    BASE_DN, JOHN_DN, PASSWORD, PROGRAMS, SERVICE_DN, SERVICE_PASSWORD, Slapd,
};
use portcullis_tests::process::require;

const NOW: u64 = 1_800_000_000;

fn names() -> AttributeNames {
    AttributeNames {
        distinguished_name: "distinguishedName".into(),
        username: "uid".into(),
        display_name: "displayName".into(),
        mail: "mail".into(),
        member_of: "memberOf".into(),
    }
}

fn config(url: String, mode: GroupSearchMode, tls: LdapTls) -> LdapConfig {
    let names = names();
    let groups_filter = match mode {
        GroupSearchMode::Filter => "(&(member={dn})(objectClass=groupOfNames))",
        GroupSearchMode::MemberOf => "(&(|{memberof:rdn})(objectClass=groupOfNames))",
    };
    LdapConfig {
        url,
        implementation: Implementation::Custom,
        timeout: Duration::from_secs(2),
        start_tls: false,
        tls,
        pool_size: 2,
        pool_acquire: None,
        users_base: format!("ou=users,{BASE_DN}"),
        users_filter: with_attribute_names(
            "(&(|({username_attribute}={input})({mail_attribute}={input}))(objectClass=inetOrgPerson))",
            &names,
        ),
        groups_base: format!("ou=groups,{BASE_DN}"),
        groups_filter: with_attribute_names(groups_filter, &names),
        group_search_mode: mode,
        attributes: Attributes {
            names,
            distinguished_name: None,
            member_of: Some("memberOf".into()),
            group_name: "cn".into(),
            profile: Vec::new(),
        },
        permit_referrals: false,
        user: Some(SERVICE_DN.into()),
        password: Some(Secret::new(SERVICE_PASSWORD.to_owned())),
    }
}

fn plain(slapd: &Slapd, mode: GroupSearchMode) -> LdapDirectory {
    LdapDirectory::new(config(
        format!("ldap://127.0.0.1:{}", slapd.port),
        mode,
        LdapTls::default(),
    ))
    .unwrap()
}

fn test_ca(slapd: &Slapd) -> LdapTls {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let pem = std::fs::read(&slapd.ca).unwrap();
    LdapTls {
        server_name: Some("ldap.example.com".into()),
        roots: CertificateDer::pem_slice_iter(&pem)
            .map(|c| c.unwrap().into_owned())
            .collect(),
        ..LdapTls::default()
    }
}

fn sorted(mut groups: Vec<String>) -> Vec<String> {
    groups.sort();
    groups
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_by_username_and_email_give_the_canonical_user_and_groups_in_both_modes() {
    if !require(PROGRAMS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    for mode in [GroupSearchMode::Filter, GroupSearchMode::MemberOf] {
        let ldap = plain(&slapd, mode);
        for input in ["john", "JOHN", "john.doe@authelia.com"] {
            let user = ldap
                .authenticate(input, PASSWORD, NOW)
                .await
                .unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(
                user.username, "john",
                "{input}: the canonical username is the entry's"
            );
            assert_eq!(user.dn, JOHN_DN);
            assert_eq!(user.display_name, "John Doe");
            assert_eq!(user.emails, ["john.doe@authelia.com"]);
            assert_eq!(sorted(user.groups), ["admins", "dev"], "{mode:?}");
        }
        let harry = ldap.find("harry", NOW).await.unwrap();
        assert_eq!(harry.groups, ["dev"], "{mode:?}");
        // No displayName: the username stands in.
        let bob = ldap.find("bob", NOW).await.unwrap();
        assert_eq!((bob.display_name.as_str(), bob.groups.len()), ("bob", 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_unknown_users_duplicates_and_injection_are_refused() {
    if !require(PROGRAMS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    let ldap = plain(&slapd, GroupSearchMode::Filter);
    assert_eq!(
        ldap.authenticate("john", "wrong", NOW).await,
        Err(LdapError::InvalidCredentials)
    );
    assert_eq!(
        ldap.authenticate("john", "", NOW).await,
        Err(LdapError::EmptyPassword)
    );
    assert_eq!(
        ldap.authenticate("nobody", PASSWORD, NOW).await,
        Err(LdapError::NotFound)
    );
    assert_eq!(
        ldap.authenticate("dup", PASSWORD, NOW).await,
        Err(LdapError::Ambiguous)
    );
    for injection in [
        "*",
        "jo*",
        "john)(uid=*",
        "*)(objectClass=*",
        "john\0",
        "jöhn",
        "\\2a",
        "john)(|(uid=*",
    ] {
        let found = ldap.authenticate(injection, PASSWORD, NOW).await;
        assert_eq!(
            found,
            Err(LdapError::NotFound),
            "{injection:?} must match nothing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldaps_and_starttls_verify_the_directory_certificate() {
    if !require(PROGRAMS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    let ldaps = format!("ldaps://127.0.0.1:{}", slapd.tls_port);
    let ldap = LdapDirectory::new(config(
        ldaps.clone(),
        GroupSearchMode::Filter,
        test_ca(&slapd),
    ))
    .unwrap();
    assert_eq!(
        ldap.authenticate("john", PASSWORD, NOW)
            .await
            .unwrap()
            .username,
        "john"
    );
    let mut starttls = config(
        format!("ldap://127.0.0.1:{}", slapd.port),
        GroupSearchMode::Filter,
        test_ca(&slapd),
    );
    starttls.start_tls = true;
    let ldap = LdapDirectory::new(starttls).unwrap();
    assert_eq!(
        ldap.authenticate("john", PASSWORD, NOW)
            .await
            .unwrap()
            .username,
        "john"
    );
    // Without the CA, or with another name, the connection is refused.
    let untrusted = LdapTls {
        server_name: Some("ldap.example.com".into()),
        ..LdapTls::default()
    };
    let ldap =
        LdapDirectory::new(config(ldaps.clone(), GroupSearchMode::Filter, untrusted)).unwrap();
    assert!(matches!(
        ldap.authenticate("john", PASSWORD, NOW).await,
        Err(LdapError::Unavailable(_))
    ));
    let mut other_name = test_ca(&slapd);
    other_name.server_name = Some("ldap.example.org".into());
    let ldap = LdapDirectory::new(config(ldaps, GroupSearchMode::Filter, other_name)).unwrap();
    assert!(matches!(
        ldap.authenticate("john", PASSWORD, NOW).await,
        Err(LdapError::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_reset_and_changed_through_password_modify() {
    if !require(PROGRAMS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    let ldap = plain(&slapd, GroupSearchMode::Filter);
    let harry = ldap.find("harry", NOW).await.unwrap();
    // A reset by the service account.
    ldap.set_password(&harry.dn, None, "reset-by-the-service")
        .await
        .unwrap();
    assert_eq!(
        ldap.authenticate("harry", PASSWORD, NOW).await,
        Err(LdapError::InvalidCredentials)
    );
    ldap.authenticate("harry", "reset-by-the-service", NOW)
        .await
        .unwrap();
    // A change needs the old password.
    assert_eq!(
        ldap.set_password(&harry.dn, Some("not-it"), "changed-by-harry")
            .await,
        Err(LdapError::InvalidCredentials)
    );
    assert!(matches!(
        ldap.set_password(
            &harry.dn,
            Some("reset-by-the-service"),
            "reset-by-the-service"
        )
        .await,
        Err(LdapError::PasswordRefused(_))
    ));
    ldap.set_password(&harry.dn, Some("reset-by-the-service"), "changed-by-harry")
        .await
        .unwrap();
    ldap.authenticate("harry", "changed-by-harry", NOW)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_change_shows_at_the_next_lookup() {
    if !require(PROGRAMS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    let ldap = plain(&slapd, GroupSearchMode::Filter);
    assert_eq!(
        sorted(ldap.find("john", NOW).await.unwrap().groups),
        ["admins", "dev"]
    );
    slapd.ldapmodify(&format!(
        "dn: cn=dev,ou=groups,{BASE_DN}\nchangetype: modify\ndelete: member\nmember: {JOHN_DN}\n\n"
    ));
    assert_eq!(ldap.find("john", NOW).await.unwrap().groups, ["admins"]);
    slapd.ldapmodify(&format!(
        "dn: cn=Bob Dylan,ou=users,{BASE_DN}\nchangetype: delete\n\n"
    ));
    assert_eq!(ldap.find("bob", NOW).await, Err(LdapError::NotFound));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_and_extra_attributes_are_read_as_their_types() {
    use portcullis_auth::ldap::config::{ProfileAttribute, ValueType};
    use portcullis_core::AttributeValue;
    if !require(PROGRAMS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    slapd.ldapmodify(&format!(
        "dn: {JOHN_DN}\nchangetype: modify\nadd: employeeNumber\nemployeeNumber: 4711\n-\nadd: employeeType\nemployeeType: not-a-number\n-\nadd: givenName\ngivenName: John\n-\nadd: description\ndescription: TRUE\n-\nadd: cn\ncn: Johnny\n"
    ));
    let mut c = config(
        format!("ldap://127.0.0.1:{}", slapd.port),
        GroupSearchMode::Filter,
        LdapTls::default(),
    );
    let attribute =
        |ldap: &str, name: &str, multi_valued: bool, value_type: ValueType| ProfileAttribute {
            ldap: ldap.into(),
            name: name.into(),
            multi_valued,
            value_type,
        };
    c.attributes.profile = vec![
        attribute("sn", "family_name", false, ValueType::String),
        attribute("givenName", "given_name", false, ValueType::String),
        attribute("employeeNumber", "employee", false, ValueType::Integer),
        attribute("employeeType", "kind", false, ValueType::Integer),
        attribute("description", "active", false, ValueType::Boolean),
        attribute("cn", "names", true, ValueType::String),
        attribute("street", "street_address", false, ValueType::String),
    ];
    let ldap = LdapDirectory::new(c).unwrap();
    let john = ldap.authenticate("john", PASSWORD, NOW).await.unwrap();
    let a = &john.attributes;
    assert_eq!(
        a.get("family_name"),
        Some(&AttributeValue::String("Doe".into()))
    );
    assert_eq!(
        a.get("given_name"),
        Some(&AttributeValue::String("John".into()))
    );
    assert_eq!(a.get("employee"), Some(&AttributeValue::Integer(4711)));
    assert_eq!(a.get("active"), Some(&AttributeValue::Bool(true)));
    let Some(AttributeValue::List(names)) = a.get("names") else {
        panic!("{a:?}");
    };
    assert_eq!(sorted(names.clone()), ["John Doe (external)", "Johnny"]);
    assert_eq!(a.get("kind"), None, "not an integer: left out, not guessed");
    assert_eq!(a.get("street_address"), None, "john has no street");
    assert_eq!(a.len(), 5, "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ldapi_address_reaches_the_directory_over_its_unix_socket() {
    if !require(PROGRAMS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    let ldap = LdapDirectory::new(config(
        slapd.ldapi_url(),
        GroupSearchMode::Filter,
        LdapTls::default(),
    ))
    .unwrap();
    let john = ldap.authenticate("john", PASSWORD, NOW).await.unwrap();
    assert_eq!(john.dn, JOHN_DN);
    assert!(matches!(
        ldap.authenticate("john", "wrong", NOW).await,
        Err(LdapError::InvalidCredentials)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_retries_within_pooling_timeout_as_authelias_does() {
    use portcullis_auth::ldap::config::PoolAcquire;
    if !require(PROGRAMS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut slapd = Slapd::start(dir.path());
    let pooled = |timeout: Duration| {
        let mut c = config(
            format!("ldap://127.0.0.1:{}", slapd.port),
            GroupSearchMode::Filter,
            LdapTls::default(),
        );
        c.pool_acquire = Some(PoolAcquire {
            timeout,
            retries: 10,
        });
        std::sync::Arc::new(LdapDirectory::new(c).unwrap())
    };
    let patient = pooled(Duration::from_secs(4));
    let hasty = pooled(Duration::from_millis(600));
    slapd.kill();
    // Down for longer than pooling.timeout: an error, after about that long, not before.
    let started = Instant::now();
    assert!(matches!(
        hasty.find("john", NOW).await,
        Err(LdapError::Unavailable(_))
    ));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    // Back within pooling.timeout: the waiting operation succeeds.
    let waiting = tokio::spawn({
        let patient = patient.clone();
        async move { patient.find("john", NOW).await }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!waiting.is_finished(), "it kept trying");
    slapd.restart();
    let found = waiting
        .await
        .unwrap()
        .expect("found once the directory was back");
    assert_eq!(found.username, "john");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_or_frozen_directory_fails_within_the_timeout_and_recovers_by_itself() {
    if !require(PROGRAMS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut slapd = Slapd::start(dir.path());
    let ldap = plain(&slapd, GroupSearchMode::Filter);
    ldap.authenticate("john", PASSWORD, NOW).await.unwrap();
    // Frozen: connections hang; every answer is an error within the 2 s timeout (plus margin).
    slapd.freeze(true);
    for _ in 0..3 {
        let started = Instant::now();
        let answer = ldap.authenticate("john", PASSWORD, NOW).await;
        assert!(
            matches!(answer, Err(LdapError::Unavailable(_))),
            "{answer:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
    slapd.freeze(false);
    ldap.authenticate("john", PASSWORD, NOW)
        .await
        .expect("recovered after SIGCONT");
    // Killed: refused at once; back when slapd is back, without a new client.
    slapd.kill();
    let started = Instant::now();
    assert!(matches!(
        ldap.authenticate("john", PASSWORD, NOW).await,
        Err(LdapError::Unavailable(_))
    ));
    assert!(matches!(
        ldap.find("john", NOW).await,
        Err(LdapError::Unavailable(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
    slapd.restart();
    ldap.authenticate("john", PASSWORD, NOW)
        .await
        .expect("recovered after a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_check_costs_one_bind_per_cache_lifetime_and_regulation_applies() {
    if !require(PROGRAMS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path());
    let ldap = plain(&slapd, GroupSearchMode::Filter);
    let users = UserDatabase::parse("users.yml".as_ref(), "users: {}\n", false, false).unwrap();
    let hasher = Hasher::new(1, Duration::from_secs(30));
    let regulator = Regulator::in_memory(RegulationConfig {
        max_retries: 3,
        find_time: 120,
        ban_time: 300,
        by_user: true,
        by_ip: false,
    });
    let cache = BasicCache::new(&[3; 64]);
    let check = PasswordCheck {
        users: &users,
        hasher: &hasher,
        regulator: &regulator,
        cache: Some((&cache, 300)),
        app_passwords: None,
        directory: Some(&ldap),
    };
    let ip = Some(std::net::IpAddr::from([203, 0, 113, 7]));
    let first = check
        .check("john.doe@authelia.com", PASSWORD, ip, NOW)
        .await
        .unwrap();
    assert!(first.hashed, "the directory proved the password");
    assert_eq!(first.user.username, "john");
    assert_eq!(sorted(first.user.groups.clone()), ["admins", "dev"]);
    // Frozen directory: the same credentials are answered from the cache, at once.
    slapd.freeze(true);
    let started = Instant::now();
    let hit = check
        .check("john.doe@authelia.com", PASSWORD, ip, NOW + 10)
        .await
        .unwrap();
    assert!(!hit.hashed);
    assert_eq!(hit.user, first.user);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    // Anything else needs the directory: refused within the timeout, never allowed.
    for (login, password) in [("john.doe@authelia.com", "wrong"), ("harry", PASSWORD)] {
        let started = Instant::now();
        assert_eq!(
            check
                .check(login, password, ip, NOW + 11)
                .await
                .unwrap_err(),
            Rejection::Unavailable
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    slapd.freeze(false);
    // After the cache lifetime the directory is asked again.
    let again = check
        .check("john.doe@authelia.com", PASSWORD, ip, NOW + 400)
        .await
        .unwrap();
    assert!(again.hashed);
    // Regulation: three wrong passwords ban harry, whose right password is then refused too; an
    // outage did not count (the two refusals above).
    for _ in 0..3 {
        assert_eq!(
            check
                .check("harry", "wrong", ip, NOW + 500)
                .await
                .unwrap_err(),
            Rejection::WrongPassword
        );
    }
    assert_eq!(
        check
            .check("harry", PASSWORD, ip, NOW + 501)
            .await
            .unwrap_err(),
        Rejection::Banned
    );
    assert_eq!(
        check
            .check("nobody", PASSWORD, ip, NOW + 502)
            .await
            .unwrap_err(),
        Rejection::UnknownUser
    );
    assert_eq!(
        check.check("john", "", ip, NOW + 503).await.unwrap_err(),
        Rejection::Empty
    );
    assert_eq!(
        hasher.verifications(),
        0,
        "a directory's passwords never use the hashing pool"
    );
}

/// Two directories: `a`, the configured one, refers `ou=partners,ou=users` and `ou=partnergroups`
/// to `b`, which holds remy (in partners), a second harry, and the group partners (john, remy);
/// `b` refers `ou=loop,ou=partners,ou=users` back to `a`.
fn referring_directories(root: &std::path::Path) -> (Slapd, Slapd) {
    let a = Slapd::start(&root.join("a"));
    let b = Slapd::start(&root.join("b"));
    b.ldapadd(&format!(
        "dn: ou=partners,ou=users,{BASE_DN}\nobjectClass: organizationalUnit\nou: partners\n\n\
dn: {REMY_DN}\nobjectClass: inetOrgPerson\ncn: Remy\nsn: Remy\nuid: remy\nmail: remy@partner.example\nuserPassword: {PASSWORD}\n\n\
dn: uid=harry,ou=partners,ou=users,{BASE_DN}\nobjectClass: inetOrgPerson\ncn: Harry Other\nsn: Other\nuid: harry\nuserPassword: {PASSWORD}\n\n\
dn: ou=partnergroups,{BASE_DN}\nobjectClass: organizationalUnit\nou: partnergroups\n\n\
dn: cn=partners,ou=partnergroups,{BASE_DN}\nobjectClass: groupOfNames\ncn: partners\nmember: {JOHN_DN}\nmember: {REMY_DN}\n\n"
    ));
    a.ldapadd_referrals(&format!(
        "dn: ou=partners,ou=users,{BASE_DN}\nobjectClass: referral\nobjectClass: extensibleObject\nou: partners\nref: ldap://127.0.0.1:{port}/ou=partners,ou=users,{BASE_DN}\n\n\
dn: ou=partnergroups,{BASE_DN}\nobjectClass: referral\nobjectClass: extensibleObject\nou: partnergroups\nref: ldap://127.0.0.1:{port}/ou=partnergroups,{BASE_DN}\n\n",
        port = b.port
    ));
    // And b refers a subtree back to a: followed, this would loop.
    b.ldapadd_referrals(&format!(
        "dn: ou=loop,ou=partners,ou=users,{BASE_DN}\nobjectClass: referral\nobjectClass: extensibleObject\nou: loop\nref: ldap://127.0.0.1:{port}/ou=users,{BASE_DN}\n\n",
        port = a.port
    ));
    (a, b)
}

const REMY_DN: &str = "uid=remy,ou=partners,ou=users,dc=example,dc=com";

fn referring(a: &Slapd, permit: bool, groups_base: &str) -> LdapDirectory {
    let mut c = config(
        format!("ldap://127.0.0.1:{}", a.port),
        GroupSearchMode::Filter,
        LdapTls::default(),
    );
    c.permit_referrals = permit;
    c.groups_base = groups_base.to_owned();
    LdapDirectory::new(c).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrals_are_followed_one_hop_only_with_permit_referrals() {
    if !require(PROGRAMS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, _b) = referring_directories(dir.path());
    let partner_groups = format!("ou=partnergroups,{BASE_DN}");

    // Without permit_referrals: continuation references are ignored (the referred subtree's
    // users and groups do not exist), and a base held elsewhere is an error, never "no groups".
    let closed = referring(&a, false, BASE_DN);
    assert_eq!(
        closed.find("remy", NOW).await.unwrap_err(),
        LdapError::NotFound
    );
    let john = closed.authenticate("john", PASSWORD, NOW).await.unwrap();
    assert_eq!(sorted(john.groups), ["admins", "dev"]);
    assert_eq!(
        closed.find("harry", NOW).await.unwrap().dn,
        format!("cn=Harry Potter,ou=users,{BASE_DN}")
    );
    let refused = referring(&a, false, &partner_groups);
    assert!(
        matches!(refused.find("john", NOW).await, Err(LdapError::Protocol(ref m)) if m.contains("permit_referrals")),
        "{:?}",
        refused.find("john", NOW).await
    );

    // With it: the references are searched on the server they name, at the entry they name.
    let open = referring(&a, true, BASE_DN);
    let john = open.authenticate("john", PASSWORD, NOW).await.unwrap();
    assert_eq!(sorted(john.groups), ["admins", "dev", "partners"]);
    let remy = open.authenticate("remy", PASSWORD, NOW).await.unwrap();
    assert_eq!(
        (remy.username.as_str(), remy.dn.as_str()),
        ("remy", REMY_DN)
    );
    assert_eq!(remy.groups, ["partners"]);
    assert_eq!(
        open.authenticate("remy", "wrong", NOW).await.unwrap_err(),
        LdapError::InvalidCredentials
    );
    // One harry here and one there: two entries, so no one logs in as harry.
    assert_eq!(
        open.find("harry", NOW).await.unwrap_err(),
        LdapError::Ambiguous
    );
    // A base held elsewhere (result 10, referral) is searched there.
    let referred_base = referring(&a, true, &partner_groups);
    assert_eq!(
        referred_base.find("john", NOW).await.unwrap().groups,
        ["partners"]
    );

    // A reset by the service account is sent where the entry is held.
    open.set_password(REMY_DN, None, "partner-new")
        .await
        .unwrap();
    open.authenticate("remy", "partner-new", NOW).await.unwrap();
    assert_eq!(
        open.authenticate("remy", PASSWORD, NOW).await.unwrap_err(),
        LdapError::InvalidCredentials
    );
    // A change by the user: the old password binds there, and the new one is written there.
    assert_eq!(
        open.set_password(REMY_DN, Some("wrong"), "partner-third")
            .await
            .unwrap_err(),
        LdapError::InvalidCredentials
    );
    open.set_password(REMY_DN, Some("partner-new"), "partner-third")
        .await
        .unwrap();
    open.authenticate("remy", "partner-third", NOW)
        .await
        .unwrap();
}

/// What is written to an Active Directory, and to a directory without Password Modify: the
/// bytes as the in-process fake received them (slapd is neither).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_pwd_userpassword_and_the_policy_hints_control_are_sent_as_specified() {
    use portcullis_auth::ldap::PasswordChangeMethod;
    use portcullis_tests::fake_directory::{FakeDirectory, SentChange, SentControl};
    const HINTS: &str = "1.2.840.113556.1.4.2239";
    const HINTS_DEPRECATED: &str = "1.2.840.113556.1.4.2066";
    const PASSWORD_MODIFY: &str = "1.3.6.1.4.1.4203.1.11.1";
    // MS-ADTS 3.1.1.3.4.1.41: PolicyHintsRequestValue ::= SEQUENCE { Flags INTEGER } with
    // flags 1, critical.
    let hints = |oid: &str| SentControl {
        oid: oid.to_owned(),
        critical: true,
        value: Some(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
    };
    let dn = "CN=Jürgen,CN=Users,DC=example,DC=com";
    let new = "Nouveau-é1";

    let directory = |fake: &FakeDirectory, implementation: Implementation| {
        let mut c = config(
            fake.url.clone(),
            GroupSearchMode::Filter,
            LdapTls::default(),
        );
        c.implementation = implementation;
        LdapDirectory::new(c).unwrap()
    };

    // Active Directory advertising both OIDs: unicodePwd (MS-ADTS 3.1.1.3.1.5.1: the quoted
    // password in UTF-16LE), replaced, with the current hints OID.
    let ad = FakeDirectory::start(&[HINTS_DEPRECATED, HINTS], &[]).await;
    let client = directory(&ad, Implementation::ActiveDirectory);
    assert_eq!(
        client.startup_check().await.unwrap(),
        PasswordChangeMethod::UnicodePwd
    );
    client.set_password(dn, None, new).await.unwrap();
    let quoted_utf16: Vec<u8> = "\"Nouveau-é1\""
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert_eq!(quoted_utf16[..4], [0x22, 0x00, 0x4E, 0x00]);
    let [sent] = ad.modifies().try_into().unwrap();
    assert_eq!(sent.dn, dn);
    assert_eq!(
        sent.changes,
        [SentChange {
            operation: 2,
            attribute: "unicodePwd".into(),
            values: vec![quoted_utf16],
        }]
    );
    assert_eq!(sent.controls, [hints(HINTS)]);

    // An older domain controller knows only the deprecated OID.
    let old_ad = FakeDirectory::start(&[HINTS_DEPRECATED], &[]).await;
    directory(&old_ad, Implementation::ActiveDirectory)
        .set_password(dn, None, new)
        .await
        .unwrap();
    let [sent] = old_ad.modifies().try_into().unwrap();
    assert_eq!(sent.controls, [hints(HINTS_DEPRECATED)]);

    // Neither Active Directory nor Password Modify: userPassword replaced with the password
    // itself, and no control the directory did not advertise.
    let plain = FakeDirectory::start(&[], &[]).await;
    let client = directory(&plain, Implementation::Custom);
    assert_eq!(
        client.startup_check().await.unwrap(),
        PasswordChangeMethod::PlaintextUserPassword
    );
    client.set_password(dn, None, new).await.unwrap();
    let [sent] = plain.modifies().try_into().unwrap();
    assert_eq!(
        sent.changes,
        [SentChange {
            operation: 2,
            attribute: "userPassword".into(),
            values: vec![new.as_bytes().to_vec()],
        }]
    );
    assert!(sent.controls.is_empty(), "{:?}", sent.controls);

    // Password Modify advertised: the extended operation, never a modify (the fake refuses
    // the operation with 53, which reads as a refused password).
    let modern = FakeDirectory::start(&[HINTS], &[PASSWORD_MODIFY]).await;
    let client = directory(&modern, Implementation::Custom);
    assert_eq!(
        client.startup_check().await.unwrap(),
        PasswordChangeMethod::PasswordModify
    );
    assert!(matches!(
        client.set_password(dn, None, new).await,
        Err(LdapError::PasswordRefused(_))
    ));
    assert!(modern.modifies().is_empty());
}
