use super::*;
use crate::client::{AuthMethod, ConsentMode, GrantType};
use crate::keys::Algorithm;

const S256: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn client(public: bool) -> Client {
    Client {
        id: "app".into(),
        name: "App".into(),
        public,
        redirect_uris: vec![
            "https://app.example.com/cb".into(),
            "https://app.example.com/other".into(),
        ],
        scopes: Scopes::parse("openid profile email groups offline_access").unwrap(),
        audience: vec!["https://api.example.com".into()],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        response_modes: vec![ResponseMode::FormPost, ResponseMode::Query],
        auth_method: if public {
            AuthMethod::None
        } else {
            AuthMethod::ClientSecretBasic
        },
        require_pkce: false,
        pkce_method: None,
        consent_mode: ConsentMode::Explicit,
        id_token_alg: Algorithm::RS256,
        access_token_alg: None,
        authorization_policy: "two_factor".into(),
        id_token_claims: vec![],
        access_token_claims: vec![],
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: None,
    }
}

const SETTINGS: AuthorizeSettings = AuthorizeSettings {
    enforce_pkce: EnforcePkce::PublicClientsOnly,
    allow_plain_pkce: false,
    min_entropy: Some(8),
};

fn pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn run(c: &Client, query: &str) -> Result<AuthorizationRequest, AuthorizeError> {
    run_with(c, query, &SETTINGS)
}

fn run_with(
    c: &Client,
    query: &str,
    s: &AuthorizeSettings,
) -> Result<AuthorizationRequest, AuthorizeError> {
    parse_authorization_request(&pairs(query), s, |id| (id == c.id).then_some(c)).map(|(_, r)| r)
}

const GOOD: &str = "response_type=code&client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&scope=openid%20profile&state=abcdefgh&nonce=12345678";

#[test]
fn a_good_request_parses() {
    let r = run(&client(false), GOOD).unwrap();
    assert_eq!(r.redirect_uri, "https://app.example.com/cb");
    assert_eq!(r.scopes.to_param(), "openid profile");
    assert_eq!(r.state.as_deref(), Some("abcdefgh"));
    assert_eq!(r.response_mode, ResponseMode::Query);
    assert!(r.redirect_uri_given);
}

fn unredirectable(r: Result<AuthorizationRequest, AuthorizeError>) -> ErrorCode {
    match r {
        Err(AuthorizeError::Unredirectable(e)) => e.code,
        other => panic!("expected an unredirectable error, got {other:?}"),
    }
}

fn redirected(r: Result<AuthorizationRequest, AuthorizeError>) -> (ErrorTarget, ErrorCode) {
    match r {
        Err(AuthorizeError::Redirect(t, e)) => (t, e.code),
        other => panic!("expected a redirected error, got {other:?}"),
    }
}

#[test]
fn client_and_redirect_uri_errors_are_never_redirected() {
    let c = client(false);
    assert_eq!(
        unredirectable(run(&c, &GOOD.replace("client_id=app", "client_id=nope"))),
        ErrorCode::InvalidClient
    );
    assert_eq!(
        unredirectable(run(&c, &GOOD.replace("client_id=app&", ""))),
        ErrorCode::InvalidRequest
    );
    // Not registered, a prefix of a registered one, different case, an added slash or query.
    for bad in [
        "https%3A%2F%2Fevil.example.com%2Fcb",
        "https%3A%2F%2Fapp.example.com%2Fc",
        "https%3A%2F%2FAPP.example.com%2Fcb",
        "https%3A%2F%2Fapp.example.com%2Fcb%2F",
        "https%3A%2F%2Fapp.example.com%2Fcb%3Fx%3D1",
    ] {
        let q = GOOD.replace("https%3A%2F%2Fapp.example.com%2Fcb", bad);
        assert_eq!(
            unredirectable(run(&c, &q)),
            ErrorCode::InvalidRequest,
            "{bad}"
        );
    }
    // Several registered URIs and none given.
    let q = GOOD.replace("redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&", "");
    assert_eq!(unredirectable(run(&c, &q)), ErrorCode::InvalidRequest);
    // A repeated client_id or redirect_uri.
    assert_eq!(
        unredirectable(run(&c, &format!("{GOOD}&client_id=app"))),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        unredirectable(run(
            &c,
            &format!("{GOOD}&redirect_uri=https%3A%2F%2Fapp.example.com%2Fother")
        )),
        ErrorCode::InvalidRequest
    );
}

#[test]
fn the_only_registered_uri_is_used_when_none_is_given() {
    let mut c = client(false);
    c.redirect_uris.truncate(1);
    let q = GOOD.replace("redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&", "");
    let r = run(&c, &q).unwrap();
    assert_eq!(r.redirect_uri, "https://app.example.com/cb");
    assert!(!r.redirect_uri_given);
}

#[test]
fn other_errors_go_to_the_client_with_state() {
    let c = client(false);
    let cases = [
        (
            GOOD.replace("response_type=code", "response_type=token"),
            ErrorCode::UnsupportedResponseType,
        ),
        (
            GOOD.replace("response_type=code&", ""),
            ErrorCode::InvalidRequest,
        ),
        (
            format!("{GOOD}&response_mode=fragment"),
            ErrorCode::UnsupportedResponseMode,
        ),
        (
            GOOD.replace("scope=openid%20profile", "scope=openid%20admin"),
            ErrorCode::InvalidScope,
        ),
        (
            GOOD.replace("nonce=12345678", "nonce=1234567"),
            ErrorCode::InsufficientEntropy,
        ),
        (
            format!("{GOOD}&prompt=none%20login"),
            ErrorCode::InvalidRequest,
        ),
        (format!("{GOOD}&prompt=bogus"), ErrorCode::InvalidRequest),
        (format!("{GOOD}&max_age=-1"), ErrorCode::InvalidRequest),
        (
            format!("{GOOD}&request=eyJ"),
            ErrorCode::RequestNotSupported,
        ),
        (
            format!("{GOOD}&request_uri=urn%3Ax"),
            ErrorCode::InvalidRequestUri,
        ),
        (
            format!("{GOOD}&audience=https%3A%2F%2Fother.example.com"),
            ErrorCode::InvalidRequest,
        ),
        (format!("{GOOD}&scope=openid"), ErrorCode::InvalidRequest),
    ];
    for (q, code) in cases {
        let (target, got) = redirected(run(&c, &q));
        assert_eq!(got, code, "{q}");
        assert_eq!(target.redirect_uri, "https://app.example.com/cb");
        assert_eq!(target.state.as_deref(), Some("abcdefgh"));
    }
}

#[test]
fn state_entropy() {
    let c = client(false);
    let (target, code) = redirected(run(&c, &GOOD.replace("state=abcdefgh", "state=abcdefg")));
    assert_eq!(code, ErrorCode::InvalidState);
    assert_eq!(target.state.as_deref(), Some("abcdefg"));
    assert_eq!(
        redirected(run(&c, &GOOD.replace("&state=abcdefgh", ""))).1,
        ErrorCode::InvalidState
    );
    let off = AuthorizeSettings {
        min_entropy: None,
        ..SETTINGS
    };
    assert!(run_with(&c, &GOOD.replace("&state=abcdefgh", ""), &off).is_ok());
}

#[test]
fn a_valid_form_post_mode_is_used_for_errors_too() {
    let c = client(false);
    let q = format!(
        "{}&response_mode=form_post",
        GOOD.replace("scope=openid%20profile", "scope=admin")
    );
    let (target, _) = redirected(run(&c, &q));
    assert_eq!(target.response_mode, ResponseMode::FormPost);
}

#[test]
fn pkce_rules() {
    let public = client(true);
    assert_eq!(
        redirected(run(&public, GOOD)).1,
        ErrorCode::InvalidRequest,
        "public clients need PKCE"
    );
    let ok = format!("{GOOD}&code_challenge={S256}&code_challenge_method=S256");
    assert_eq!(
        run(&public, &ok).unwrap().challenge.unwrap().method,
        ChallengeMethod::S256
    );
    // plain (explicit or by default) only when enabled.
    let plain = format!("{GOOD}&code_challenge={S256}");
    assert_eq!(
        redirected(run(&public, &plain)).1,
        ErrorCode::InvalidRequest
    );
    let allow = AuthorizeSettings {
        allow_plain_pkce: true,
        ..SETTINGS
    };
    assert_eq!(
        run_with(&public, &plain, &allow)
            .unwrap()
            .challenge
            .unwrap()
            .method,
        ChallengeMethod::Plain
    );
    // A malformed challenge, an unknown method.
    assert_eq!(
        redirected(run(
            &public,
            &format!("{GOOD}&code_challenge=short&code_challenge_method=S256")
        ))
        .1,
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        redirected(run(
            &public,
            &format!("{GOOD}&code_challenge={S256}&code_challenge_method=S512")
        ))
        .1,
        ErrorCode::InvalidRequest
    );
    // Confidential clients: optional by default, required with enforce_pkce=always or require_pkce.
    let conf = client(false);
    assert!(run(&conf, GOOD).unwrap().challenge.is_none());
    let always = AuthorizeSettings {
        enforce_pkce: EnforcePkce::Always,
        ..SETTINGS
    };
    assert_eq!(
        redirected(run_with(&conf, GOOD, &always)).1,
        ErrorCode::InvalidRequest
    );
    let mut req = client(false);
    req.require_pkce = true;
    assert_eq!(redirected(run(&req, GOOD)).1, ErrorCode::InvalidRequest);
    let never = AuthorizeSettings {
        enforce_pkce: EnforcePkce::Never,
        ..SETTINGS
    };
    assert!(run_with(&public, GOOD, &never).is_ok());
}

#[test]
fn prompt_and_max_age() {
    let c = client(false);
    let r = run(&c, &format!("{GOOD}&prompt=login%20consent&max_age=0")).unwrap();
    assert!(r.prompt.login && r.prompt.consent && !r.prompt.none);
    assert_eq!(r.max_age, Some(0));
}
