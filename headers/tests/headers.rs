//! Spec tables: docs/reference/forward-auth.md §6.1 / §14 item 2,
//! docs/reference/outpost.md §6 / §14 items 2 and 10, docs/reference/security.md §3.

use http::{HeaderMap, HeaderName, HeaderValue};
use portcullis_core::{AttributeValue, Attributes, AuthLevel, Identity, Secret};
use portcullis_headers::{
    AuthentikMeta, CustomProfile, HeadersError, Profile, ProfileConfig, RejectionReason,
    additional_headers, basic_upstream, canonical_name, emit, names, strip_names,
    strip_underscore_headers,
};
use proptest::prelude::*;

fn meta() -> AuthentikMeta {
    AuthentikMeta {
        jwks_url: "https://auth.example.com/application/o/app/jwks/".into(),
        outpost: "edge".into(),
        provider: "app-provider".into(),
        app: "app".into(),
        version: "1.2.3+abc".into(),
    }
}

fn alice() -> Identity {
    let mut id = Identity::user("alice", AuthLevel::TwoFactor)
        .with_groups(["admins", "dev,ops", "Readers"])
        .with_emails(["alice@example.com", "alice@example.org"])
        .with_display_name("Alice Liddell");
    id.entitlements = vec!["billing".into(), "reports".into()];
    id.uid = "3f2a9c".into();
    id.client_id = None;
    id.authenticated_at = Some(1_700_000_000);
    id.attributes
        .insert("team".into(), AttributeValue::String("blue".into()));
    id
}

/// (header, expected value) in emission order, compared exactly.
fn assert_headers(set: &portcullis_headers::HeaderSet, expected: &[(&str, &str)]) {
    let got: Vec<(String, Vec<u8>)> = set
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let want: Vec<(String, Vec<u8>)> = expected
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn authelia_profile() {
    let machine = Identity {
        client_id: Some("ci".into()),
        level: AuthLevel::OneFactor,
        groups: vec!["bots".into()],
        ..Identity::default()
    };
    let no_email = Identity::user("bob", AuthLevel::OneFactor);
    let cases: Vec<(&str, Identity, [&str; 4])> = vec![
        (
            "full",
            alice(),
            [
                "alice",
                "admins,dev,ops,Readers",
                "Alice Liddell",
                "alice@example.com",
            ],
        ),
        ("anonymous", Identity::anonymous(), ["", "", "", ""]),
        ("machine client without username", machine, ["", "", "", ""]),
        ("no groups, no email", no_email, ["bob", "", "", ""]),
    ];
    for (label, identity, values) in cases {
        let set = emit(&Profile::Authelia, &identity, None);
        let expected: Vec<(&str, &str)> = names::AUTHELIA.into_iter().zip(values).collect();
        assert_headers(&set, &expected);
        assert!(set.rejected().is_empty(), "{label}");
    }
}

#[test]
fn authentik_profile() {
    let profile = Profile::Authentik(meta());
    let token = Secret::new("eyJhbGciOi.payload.sig");
    let meta_values = [
        "https://auth.example.com/application/o/app/jwks/",
        "edge",
        "app-provider",
        "app",
        "goauthentik.io/outpost/1.2.3+abc",
    ];
    let full = [
        "alice",
        "admins|dev,ops|Readers",
        "billing|reports",
        "alice@example.com",
        "Alice Liddell",
        "3f2a9c",
        "eyJhbGciOi.payload.sig",
    ];
    let cases: Vec<(&str, Identity, Option<&Secret>, [&str; 7])> = vec![
        ("full", alice(), Some(&token), full),
        ("no token", alice(), None, {
            let mut v = full;
            v[6] = "";
            v
        }),
        // §14 item 10: user-derived empty, meta kept, even if a token is passed.
        ("anonymous", Identity::anonymous(), Some(&token), [""; 7]),
    ];
    for (label, identity, token, user_values) in cases {
        let set = emit(&profile, &identity, token);
        let values = user_values.iter().chain(meta_values.iter()).copied();
        let expected: Vec<(&str, &str)> = names::AUTHENTIK.into_iter().zip(values).collect();
        assert_eq!(expected.len(), 12);
        assert_headers(&set, &expected);
        assert!(set.rejected().is_empty(), "{label}");
    }
}

#[test]
fn authentik_jwt_is_sensitive() {
    let token = Secret::new("very-secret-token");
    let set = emit(&Profile::Authentik(meta()), &alice(), Some(&token));
    assert!(set.get("X-authentik-jwt").unwrap().is_sensitive());
    assert!(!format!("{set:?}").contains("very-secret-token"));
}

#[test]
fn canonical_wire_names() {
    let got: Vec<String> = Profile::Authentik(meta())
        .header_names()
        .iter()
        .map(canonical_name)
        .collect();
    assert_eq!(got[0], "X-Authentik-Username");
    assert_eq!(got[11], "X-Authentik-Meta-Version");
    assert_eq!(
        Profile::Authelia.display_names(),
        [
            "Remote-User",
            "Remote-Groups",
            "Remote-Name",
            "Remote-Email"
        ]
    );
}

#[test]
fn control_bytes_become_empty_and_are_reported() {
    for bad in [
        "alice\r\nX-Admin: yes",
        "a\nb",
        "a\0b",
        "a\tb",
        "a\x7fb",
        "a\u{9b}b",
    ] {
        let mut id = alice();
        id.display_name = bad.into();
        id.groups = vec!["ok".into(), bad.into()];
        for profile in [Profile::Authelia, Profile::Authentik(meta())] {
            let set = emit(&profile, &id, None);
            let rejected: Vec<&str> = set.rejected().iter().map(|r| r.name.as_str()).collect();
            let (groups, name) = match profile {
                Profile::Authelia => ("remote-groups", "remote-name"),
                _ => ("x-authentik-groups", "x-authentik-name"),
            };
            assert_eq!(rejected, [groups, name], "{bad:?}");
            assert!(
                set.rejected()
                    .iter()
                    .all(|r| r.reason == RejectionReason::InvalidValue)
            );
            assert_eq!(set.get(groups).unwrap(), "");
            assert_eq!(set.get(name).unwrap(), "");
        }
    }
}

#[test]
fn non_ascii_is_opaque_bytes() {
    let id = alice().with_display_name("Zoë 日本");
    let set = emit(&Profile::Authelia, &id, None);
    assert_eq!(
        set.get("Remote-Name").unwrap().as_bytes(),
        "Zoë 日本".as_bytes()
    );
    assert!(set.rejected().is_empty());
}

#[test]
fn apply_overwrites_client_copies() {
    let mut request = HeaderMap::new();
    request.append("remote-user", HeaderValue::from_static("root"));
    request.append("remote-user", HeaderValue::from_static("admin"));
    emit(&Profile::Authelia, &Identity::anonymous(), None).apply_to(&mut request);
    assert_eq!(request.get_all("remote-user").iter().count(), 1);
    assert_eq!(request["remote-user"], "");
}

// ---- custom profile -------------------------------------------------------------------------

fn custom(pairs: &[(&str, &str)]) -> Result<CustomProfile, HeadersError> {
    CustomProfile::new(pairs.iter().map(|(k, v)| (k.to_string(), *v)), ",")
}

#[test]
fn custom_profile_values() {
    let profile = Profile::Custom(
        custom(&[
            ("X-User", "username"),
            ("X-Who", "{username} <{email}>"),
            ("X-Name", "name"),
            ("X-Display", "display_name"),
            ("X-Emails", "emails"),
            ("X-Groups", "groups"),
            ("X-Ent", "entitlements"),
            ("X-Uid", "uid"),
            ("X-Level", "level"),
            ("X-At", "authenticated_at"),
            ("X-Client", "client_id"),
            ("X-Team", "attributes.team"),
            ("X-Missing", "{attributes.nope}"),
            ("X-Braces", "{{{username}}}"),
        ])
        .unwrap(),
    );
    let full = [
        ("X-User", "alice"),
        ("X-Who", "alice <alice@example.com>"),
        ("X-Name", "Alice Liddell"),
        ("X-Display", "Alice Liddell"),
        ("X-Emails", "alice@example.com,alice@example.org"),
        ("X-Groups", "admins,dev,ops,Readers"),
        ("X-Ent", "billing,reports"),
        ("X-Uid", "3f2a9c"),
        ("X-Level", "2"),
        ("X-At", "1700000000"),
        ("X-Client", ""),
        ("X-Team", "blue"),
        ("X-Missing", ""),
        ("X-Braces", "{alice}"),
    ];
    assert_headers(&emit(&profile, &alice(), None), &full);
    let anonymous: Vec<(&str, &str)> = full.iter().map(|(n, _)| (*n, "")).collect();
    assert_headers(&emit(&profile, &Identity::anonymous(), None), &anonymous);
}

#[test]
fn custom_separator() {
    let profile = CustomProfile::new([("X-Groups", "groups")], "; ").unwrap();
    let set = emit(&Profile::Custom(profile), &alice(), None);
    assert_eq!(set.get("x-groups").unwrap(), "admins; dev,ops; Readers");
}

#[test]
fn custom_profile_errors() {
    let err = |name: &str| name.to_string();
    let cases: Vec<(Vec<(&str, &str)>, HeadersError)> = vec![
        (
            vec![("X User", "username")],
            HeadersError::InvalidName {
                name: err("X User"),
            },
        ),
        (
            vec![("", "username")],
            HeadersError::InvalidName { name: err("") },
        ),
        (
            vec![("X-Bad\r\n", "username")],
            HeadersError::InvalidName {
                name: err("X-Bad\r\n"),
            },
        ),
        (
            vec![("X_User", "username")],
            HeadersError::UnderscoreInName {
                name: err("X_User"),
            },
        ),
        (
            vec![("Content-Length", "uid")],
            HeadersError::ReservedName {
                name: err("Content-Length"),
            },
        ),
        (
            vec![("X-User", "username"), ("x-user", "email")],
            HeadersError::DuplicateName {
                name: err("x-user"),
            },
        ),
        (
            vec![("X-User", "password")],
            HeadersError::UnknownField {
                header: err("X-User"),
                field: err("password"),
            },
        ),
        (
            vec![("X-Who", "{username}@{mail}")],
            HeadersError::UnknownField {
                header: err("X-Who"),
                field: err("mail"),
            },
        ),
        (
            vec![("X-Who", "{username")],
            HeadersError::MalformedTemplate {
                header: err("X-Who"),
                template: err("{username"),
                reason: "unclosed '{' (write '{{' for a literal brace)",
            },
        ),
        (
            vec![("X-Who", "{username}\n")],
            HeadersError::InvalidValue {
                what: err("custom header \"X-Who\""),
            },
        ),
        (vec![], HeadersError::NoHeaders),
    ];
    for (pairs, expected) in cases {
        assert_eq!(custom(&pairs), Err(expected), "{pairs:?}");
    }
    assert!(matches!(
        CustomProfile::new([("X-G", "groups")], "\n"),
        Err(HeadersError::InvalidValue { .. })
    ));
}

#[test]
fn config_parsing() {
    let parse = |json: &str| serde_json::from_str::<Profile>(json);
    assert_eq!(parse(r#""authelia""#).unwrap(), Profile::Authelia);
    assert_eq!(
        parse(r#"{"profile":"authelia"}"#).unwrap(),
        Profile::Authelia
    );
    assert_eq!(
        parse(
            r#"{"profile":"authentik","jwks_url":"https://auth.example.com/application/o/app/jwks/",
               "outpost":"edge","provider":"app-provider","app":"app","version":"1.2.3+abc"}"#
        )
        .unwrap(),
        Profile::Authentik(meta())
    );
    let custom_profile = parse(
        r#"{"profile":"custom","separator":"|",
            "headers":{"X-User":"username","X-Who":"{username}@{email}","X-G":"groups"}}"#,
    )
    .unwrap();
    let set = emit(&custom_profile, &alice(), None);
    assert_eq!(set.get("x-who").unwrap(), "alice@alice@example.com");
    assert_eq!(set.get("x-g").unwrap(), "admins|dev,ops|Readers");
    assert!(strip_names(&custom_profile, &[]).should_strip("x_who"));

    // The bare map form of a custom profile.
    let bare: CustomProfile =
        serde_json::from_str(r#"{ "X-User": "username", "X-Who": "{username}@{email}" }"#).unwrap();
    assert_eq!(bare.separator(), ",");

    for bad in [
        r#""keycloak""#,
        r#""custom""#,
        r#"{"profile":"authelia","extra":1}"#,
        r#"{"profile":"authentik","outpots":"typo"}"#,
        r#"{"profile":"authentik","outpost":"a\u0000b"}"#,
        r#"{"profile":"custom","headers":{"X_User":"username"}}"#,
        r#"{"profile":"custom","headers":{"X-User":"pasword"}}"#,
        r#"{"profile":"custom","headers":{}}"#,
        r#"{"profile":"custom"}"#,
        r#"{"headers":{"X-User":"username"}}"#,
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
    // Errors name what is wrong.
    for (bad, needle) in [
        (r#"{"profile":"authentik","outpots":"typo"}"#, "outpots"),
        (r#"{"headers":{"X-User":"username"}}"#, "profile"),
        (
            r#"{"profile":"custom","headers":{"X-User":"pasword"}}"#,
            "pasword",
        ),
        (r#""keycloak""#, "keycloak"),
    ] {
        let message = parse(bad).unwrap_err().to_string();
        assert!(message.contains(needle), "{bad}: {message}");
    }
    assert!(serde_json::from_str::<CustomProfile>(r#"{"X-User":"nope"}"#).is_err());
    assert_eq!(
        Profile::try_from(ProfileConfig::Authentik(AuthentikMeta {
            app: "a\nb".into(),
            ..meta()
        })),
        Err(HeadersError::InvalidValue {
            what: "authentik.app".into()
        })
    );
}

// ---- stripping ------------------------------------------------------------------------------

#[test]
fn strip_list_matches_variants() {
    let additional = vec!["X-Team".to_string()];
    let authelia = strip_names(&Profile::Authelia, &additional);
    let authentik = strip_names(&Profile::Authentik(meta()), &additional).with_authorization();
    let cases: &[(&str, bool, bool)] = &[
        // name, stripped for authelia, stripped for authentik (+ Authorization)
        ("Remote_User", true, false),
        ("remote-user", true, false),
        ("REMOTE-USER", true, false),
        ("remote_groups", true, false),
        ("Remote-Email", true, false),
        ("X_authentik_username", false, true),
        ("x-AUTHENTIK-uid", false, true),
        ("X-Authentik-Meta-Version", false, true),
        ("x_authentik_jwt", false, true),
        ("x-team", true, true),
        ("X_TEAM", true, true),
        ("authorization", false, true),
        ("Accept", false, false),
        ("X-Remote-User", false, false),
        ("Remote-User-", false, false),
        ("X-authentik-usernames", false, false),
    ];
    for (name, in_authelia, in_authentik) in cases {
        assert_eq!(authelia.should_strip(name), *in_authelia, "authelia {name}");
        assert_eq!(
            authentik.should_strip(name),
            *in_authentik,
            "authentik {name}"
        );
    }
    for name in names::AUTHENTIK {
        assert!(authentik.should_strip(name));
    }
}

#[test]
fn strip_removes_all_variants_and_keeps_others() {
    let mut request = HeaderMap::new();
    for (name, value) in [
        ("remote-user", "root"),
        ("remote_user", "root"),
        ("REMOTE-USER", "root"),
        ("remote_groups", "admins"),
        ("x_authentik_username", "root"),
        ("X-AUTHENTIK-uid", "0"),
        ("accept", "text/html"),
        ("x-request-id", "42"),
        ("cookie", "a=b"),
    ] {
        request.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_static(value),
        );
    }
    let authelia = strip_names(&Profile::Authelia, &[]);
    assert_eq!(authelia.strip(&mut request), 3); // remote-user, remote_user, remote_groups
    let authentik = strip_names(&Profile::Authentik(meta()), &[]);
    assert_eq!(authentik.strip(&mut request), 2);
    let mut left: Vec<&str> = request.keys().map(|k| k.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, ["accept", "cookie", "x-request-id"]);
}

#[test]
fn underscore_headers_are_dropped() {
    let mut request = HeaderMap::new();
    for name in [
        "x_authentik_username",
        "x-authentik-username",
        "my_header",
        "accept",
    ] {
        request.insert(name, HeaderValue::from_static("v"));
    }
    assert_eq!(strip_underscore_headers(&mut request), 2);
    let mut left: Vec<&str> = request.keys().map(|k| k.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, ["accept", "x-authentik-username"]);
}

// ---- upstream Basic -------------------------------------------------------------------------

#[test]
fn basic_upstream_cases() {
    let with = |attrs: &[(&str, AttributeValue)]| {
        let mut id = alice();
        for (k, v) in attrs {
            id.attributes.insert(k.to_string(), v.clone());
        }
        id
    };
    let s = |v: &str| AttributeValue::String(v.into());
    let cases: Vec<(&str, Identity, Option<&str>)> = vec![
        (
            "user attribute string",
            with(&[("basic_user", s("svc")), ("basic_pass", s("p@ss:word"))]),
            // base64("svc:p@ss:word")
            Some("Basic c3ZjOnBAc3M6d29yZA=="),
        ),
        (
            "user attribute not a string: email",
            with(&[
                ("basic_user", AttributeValue::Integer(7)),
                ("basic_pass", s("pw")),
            ]),
            // base64("alice@example.com:pw")
            Some("Basic YWxpY2VAZXhhbXBsZS5jb206cHc="),
        ),
        (
            "no user attribute: email",
            with(&[("basic_pass", s("pw"))]),
            Some("Basic YWxpY2VAZXhhbXBsZS5jb206cHc="),
        ),
        ("missing password", with(&[("basic_user", s("svc"))]), None),
        (
            "non-string password",
            with(&[("basic_pass", AttributeValue::Integer(1234))]),
            None,
        ),
        (
            "list password",
            with(&[("basic_pass", AttributeValue::List(vec!["pw".into()]))]),
            None,
        ),
        ("empty password", with(&[("basic_pass", s(""))]), None),
        (
            "control byte in password",
            with(&[("basic_pass", s("pw\r\n"))]),
            None,
        ),
        (
            "control byte in user",
            with(&[("basic_user", s("svc\0")), ("basic_pass", s("pw"))]),
            None,
        ),
        (
            "colon in user",
            with(&[("basic_user", s("a:b")), ("basic_pass", s("pw"))]),
            None,
        ),
        (
            "anonymous",
            Identity {
                level: AuthLevel::None,
                ..with(&[("basic_pass", s("pw"))])
            },
            None,
        ),
    ];
    for (label, identity, expected) in cases {
        let got = basic_upstream(&identity, "basic_user", "basic_pass");
        assert_eq!(
            got.as_ref().map(|v| v.to_str().unwrap()),
            expected,
            "{label}"
        );
        if let Some(v) = got {
            assert!(v.is_sensitive(), "{label}");
            assert_eq!(format!("{v:?}"), "Sensitive");
        }
    }
}

// ---- additionalHeaders ----------------------------------------------------------------------

fn attrs(pairs: &[(&str, AttributeValue)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[test]
fn additional_headers_precedence_and_types() {
    let s = |v: &str| AttributeValue::String(v.into());
    let user = attrs(&[
        ("X-Team", s("user-team")),
        ("X-Quota", AttributeValue::Integer(-42)),
        ("X-Flag", AttributeValue::Bool(true)),
        ("X-List", AttributeValue::List(vec!["a".into()])),
        ("x_smuggle", s("v")),
        ("Bad Name", s("v")),
        ("Host", s("evil.example")),
        ("X-Inject", s("a\r\nSet-Cookie: x=y")),
    ]);
    let group_a = attrs(&[
        ("x-team", s("group-a")),
        ("X-Dept", s("a")),
        ("X-Floor", s("1")),
    ]);
    let group_b = attrs(&[("X-Dept", s("b"))]);
    let set = additional_headers(&user, &[&group_a, &group_b]);
    let expected = [
        ("x-dept", "b"),
        ("x-flag", ""),
        ("x-floor", "1"),
        ("x-inject", ""),
        ("x-list", ""),
        ("x-quota", "-42"),
        ("x-team", "user-team"),
    ];
    assert_headers(&set, &expected);
    let mut rejected: Vec<(&str, RejectionReason)> = set
        .rejected()
        .iter()
        .map(|r| (r.name.as_str(), r.reason))
        .collect();
    rejected.sort_unstable_by_key(|(n, _)| n.to_ascii_lowercase());
    assert_eq!(
        rejected,
        [
            ("Bad Name", RejectionReason::InvalidName),
            ("Host", RejectionReason::ReservedName),
            // A refused value is reported under the emitted (lower-case) name.
            ("x-inject", RejectionReason::InvalidValue),
            ("x_smuggle", RejectionReason::UnderscoreInName),
        ]
    );
}

#[test]
fn additional_headers_override_profile_headers() {
    let user = attrs(&[(
        "X-Authentik-Name",
        AttributeValue::String("Override".into()),
    )]);
    let mut set = emit(&Profile::Authentik(meta()), &alice(), None);
    set.extend(additional_headers(&user, &[]));
    assert_eq!(set.get("x-authentik-name").unwrap(), "Override");
    let mut request = HeaderMap::new();
    set.apply_to(&mut request);
    assert_eq!(request["x-authentik-name"], "Override");
    assert_eq!(request.len(), 12);
}

// ---- property -------------------------------------------------------------------------------

fn any_identity() -> impl Strategy<Value = Identity> {
    let s = || any::<String>();
    (
        s(),
        s(),
        proptest::collection::vec(s(), 0..3),
        proptest::collection::vec(s(), 0..3),
        proptest::collection::vec(s(), 0..3),
        s(),
        0u8..3,
        proptest::collection::btree_map(s(), s(), 0..3),
    )
        .prop_map(
            |(username, display_name, emails, groups, entitlements, uid, level, attributes)| {
                Identity {
                    username,
                    display_name,
                    emails,
                    groups,
                    entitlements,
                    uid,
                    level: AuthLevel::from_u8(level).unwrap_or_default(),
                    attributes: attributes
                        .into_iter()
                        .map(|(k, v)| (k, AttributeValue::String(v)))
                        .collect(),
                    ..Identity::default()
                }
            },
        )
}

proptest! {
    #[test]
    fn emitted_values_are_always_safe(identity in any_identity(), token in any::<String>()) {
        let custom_profile = Profile::Custom(
            custom(&[("X-Who", "{username} <{email}> {attributes.x}"), ("X-G", "groups")]).unwrap(),
        );
        let token = Secret::new(token);
        let mut sets = vec![
            emit(&Profile::Authelia, &identity, Some(&token)),
            emit(&Profile::Authentik(meta()), &identity, Some(&token)),
            emit(&custom_profile, &identity, Some(&token)),
            additional_headers(&identity.attributes, &[]),
        ];
        if let Some(v) = basic_upstream(&identity, "u", "p") {
            prop_assert!(v.as_bytes().iter().all(|b| b.is_ascii_graphic() || *b == b' '));
        }
        for set in sets.drain(..) {
            for (name, value) in &set {
                prop_assert!(!name.as_str().contains('_'));
                prop_assert!(HeaderValue::from_bytes(value.as_bytes()).is_ok());
                prop_assert!(!value.as_bytes().iter().any(|b| matches!(b, b'\r' | b'\n' | 0)));
                prop_assert!(!value.as_bytes().iter().any(|b| b.is_ascii_control()));
            }
        }
        let count = emit(&Profile::Authentik(meta()), &identity, None).len();
        prop_assert_eq!(count, 12);
    }
}
