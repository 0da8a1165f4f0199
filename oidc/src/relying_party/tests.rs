use serde_json::json;

use super::*;
use crate::keys::{KeySet, SigningKey};

const RS256_PEM: &str = include_str!("../../../verify-server/tests/fixtures/oidc-rs256.pem");
const ES256_PEM: &str = include_str!("../../../verify-server/tests/fixtures/oidc-es256.pem");
const ISSUER: &str = "https://idp.example.com";
const NOW: u64 = 1_700_000_000;

fn rsa() -> SigningKey {
    SigningKey::from_pem(RS256_PEM, Algorithm::RS256, Some("rsa-1")).unwrap()
}

fn jwks_of(keys: Vec<SigningKey>) -> IdpKeys {
    let set = serde_json::to_vec(&KeySet::new(keys).jwks()).unwrap();
    IdpKeys::from_jwks(&set).unwrap()
}

fn check() -> TokenCheck<'static> {
    TokenCheck {
        issuer: ISSUER,
        audiences: &["outpost"],
        now: NOW,
        leeway: 0,
    }
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": "outpost", "sub": "u1", "exp": NOW + 60, "iat": NOW})
}

#[test]
fn discovery_documents_are_checked() {
    let doc = json!({
        "issuer": ISSUER,
        "authorization_endpoint": "https://idp.example.com/authorize",
        "token_endpoint": "http://idp.internal/token",
        "jwks_uri": "https://idp.example.com/jwks",
        "id_token_signing_alg_values_supported": ["RS256", "HS256"],
        "code_challenge_methods_supported": ["plain", "S256"],
    });
    let body = serde_json::to_vec(&doc).unwrap();
    let meta = ProviderMetadata::from_discovery(&body, ISSUER).unwrap();
    assert_eq!(meta.token_endpoint, "http://idp.internal/token");
    assert!(meta.pkce_s256 && meta.signs_with_secret());
    assert_eq!(meta.end_session_endpoint, None);
    // OpenID Connect Discovery §4.3: the issuer must be exactly the configured one.
    let err = ProviderMetadata::from_discovery(&body, "https://idp.example.com/").unwrap_err();
    assert!(err.to_string().contains("issuer"), "{err}");
    let mut missing = doc.clone();
    missing.as_object_mut().unwrap().remove("token_endpoint");
    let err = ProviderMetadata::from_discovery(&serde_json::to_vec(&missing).unwrap(), ISSUER)
        .unwrap_err();
    assert!(err.to_string().contains("token_endpoint"), "{err}");
    let mut script = doc.clone();
    script["authorization_endpoint"] = json!("javascript:alert(1)");
    assert!(
        ProviderMetadata::from_discovery(&serde_json::to_vec(&script).unwrap(), ISSUER).is_err()
    );
    assert!(ProviderMetadata::from_discovery(b"<html>", ISSUER).is_err());
}

#[test]
fn tokens_of_the_provider_for_this_client_verify() {
    let key = rsa();
    let keys = jwks_of(vec![rsa()]);
    assert_eq!(keys.len(), 1);
    let token = key.sign(&claims(), None).unwrap();
    let verified = verify_token(&token, &keys, None, &check()).unwrap();
    assert_eq!(verified["sub"], "u1");
    // `aud` as a list holding this client.
    let mut listed = claims();
    listed["aud"] = json!(["other", "outpost"]);
    let token = key.sign(&listed, None).unwrap();
    assert!(verify_token(&token, &keys, None, &check()).is_ok());
}

#[test]
fn wrong_issuer_audience_expiry_or_key_are_refused() {
    let key = rsa();
    let keys = jwks_of(vec![rsa()]);
    let refused = |c: Value| {
        let token = key.sign(&c, None).unwrap();
        verify_token(&token, &keys, None, &check()).unwrap_err()
    };
    let mut c = claims();
    c["iss"] = json!("https://evil.example.com");
    assert!(refused(c).to_string().contains("issuer"));
    let mut c = claims();
    c["aud"] = json!("another-client");
    assert!(refused(c).to_string().contains("not for this client"));
    let mut c = claims();
    c.as_object_mut().unwrap().remove("aud");
    refused(c);
    let mut c = claims();
    c["exp"] = json!(NOW);
    assert!(refused(c).to_string().contains("expired"));
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert!(refused(c).to_string().contains("exp"));
    let mut c = claims();
    c["exp"] = json!("tomorrow");
    refused(c);
    for name in ["nbf", "iat"] {
        let mut c = claims();
        c[name] = json!("yesterday");
        assert!(refused(c).to_string().contains("not a number"), "{name}");
    }
    // Signed by a key the provider does not publish.
    let es = SigningKey::from_pem(ES256_PEM, Algorithm::ES256, Some("rsa-1")).unwrap();
    let token = es.sign(&claims(), None).unwrap();
    assert!(verify_token(&token, &keys, None, &check()).is_err());
    // An empty key set verifies nothing.
    let token = key.sign(&claims(), None).unwrap();
    assert!(verify_token(&token, &IdpKeys::default(), None, &check()).is_err());
    // A kid the set does not hold.
    let other_kid = SigningKey::from_pem(RS256_PEM, Algorithm::RS256, Some("rsa-2")).unwrap();
    let token = other_kid.sign(&claims(), None).unwrap();
    assert!(verify_token(&token, &keys, None, &check()).is_err());
}

#[test]
fn no_algorithm_confusion_and_no_none() {
    let keys = jwks_of(vec![rsa()]);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap());
    // alg: none, with and without a signature part.
    for header in [json!({"alg": "none"}), json!({"alg": "None", "typ": "JWT"})] {
        let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
        assert!(verify_token(&format!("{h}.{payload}."), &keys, None, &check()).is_err());
        assert!(verify_token(&format!("{h}.{payload}"), &keys, None, &check()).is_err());
    }
    // HS256 keyed with the provider's public key material: refused without a client secret,
    // and with one it is checked against that secret, not the public key.
    let public_pem = {
        let jwks = serde_json::to_value(KeySet::new(vec![rsa()]).jwks()).unwrap();
        jwks["keys"][0]["n"].as_str().unwrap().to_owned()
    };
    let forged =
        crate::jwt::sign_with_secret(Algorithm::HS256, public_pem.as_bytes(), &claims(), None)
            .unwrap();
    assert!(verify_token(&forged, &keys, None, &check()).is_err());
    assert!(verify_token(&forged, &keys, Some(b"the-client-secret"), &check()).is_err());
    // A provider that signs with the client secret: HS256 with that secret verifies.
    let good =
        crate::jwt::sign_with_secret(Algorithm::HS256, b"the-client-secret", &claims(), None)
            .unwrap();
    assert!(verify_token(&good, &keys, Some(b"the-client-secret"), &check()).is_ok());
    assert!(verify_token(&good, &keys, None, &check()).is_err());
    // Garbage.
    for token in ["", "a.b.c", "not a token", "eyJhbGciOiJSUzI1NiJ9.e30.AAAA"] {
        assert!(
            verify_token(token, &keys, None, &check()).is_err(),
            "{token}"
        );
    }
}

#[test]
fn jwk_sets_keep_signature_keys_only() {
    let set = json!({"keys": [
        {"kty": "RSA", "use": "enc", "kid": "enc", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"},
        {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
        {"kty": "RSA", "kid": "bad", "n": "!!", "e": "AQAB"},
        {"kty": "RSA", "kid": "mislabelled", "alg": "ES256", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"},
    ]});
    let keys = IdpKeys::from_jwks(&serde_json::to_vec(&set).unwrap()).unwrap();
    assert!(keys.is_empty(), "{keys:?}");
    assert!(IdpKeys::from_jwks(b"{}").is_err());
    let both = jwks_of(vec![
        rsa(),
        SigningKey::from_pem(ES256_PEM, Algorithm::ES256, Some("ec-1")).unwrap(),
    ]);
    assert_eq!(both.len(), 2);
    assert!(both.has_kid("ec-1") && !both.has_kid("ec-2"));
}

fn login_state(exp: u64) -> LoginState {
    LoginState {
        iss: state_issuer("outpost"),
        sid: "session-1".into(),
        state: "random".into(),
        redirect: "https://app.example.com/x".into(),
        iat: NOW,
        exp,
    }
}

#[test]
fn login_states_are_bound_to_their_client_session_and_time() {
    let key = b"a-cookie-secret-of-32-bytes-or-more";
    let sealed = seal_state(key, &login_state(NOW + 600)).unwrap();
    let opened = open_state(key, "outpost", &sealed, "session-1", NOW).unwrap();
    assert_eq!(opened, login_state(NOW + 600));
    assert!(open_state(key, "outpost", &sealed, "session-2", NOW).is_err());
    assert!(open_state(key, "other-client", &sealed, "session-1", NOW).is_err());
    assert!(open_state(b"another-secret", "outpost", &sealed, "session-1", NOW).is_err());
    assert!(open_state(key, "outpost", &sealed, "session-1", NOW + 600).is_err());
    let mut tampered = sealed.clone();
    tampered.pop();
    tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
    assert!(open_state(key, "outpost", &tampered, "session-1", NOW).is_err());
    // Only HS256 with the outpost's key: an RS256 state is refused.
    let rs = rsa().sign(&login_state(NOW + 600), None).unwrap();
    assert!(open_state(key, "outpost", &rs, "session-1", NOW).is_err());
    // Without exp (authentik's own states have none) it is refused.
    let mut no_exp = serde_json::to_value(login_state(0)).unwrap();
    no_exp.as_object_mut().unwrap().remove("exp");
    let sealed = crate::jwt::sign_with_secret(Algorithm::HS256, key, &no_exp, None).unwrap();
    assert!(open_state(key, "outpost", &sealed, "session-1", NOW).is_err());
}

#[test]
fn pkce_verifiers_are_derived_and_well_formed() {
    let a = pkce_verifier(b"key", "state-1").unwrap();
    assert_eq!(a, pkce_verifier(b"key", "state-1").unwrap());
    assert_ne!(a, pkce_verifier(b"key", "state-2").unwrap());
    assert_ne!(a, pkce_verifier(b"other", "state-1").unwrap());
    assert_eq!(a.len(), 43);
    assert!(crate::pkce::is_well_formed(&a));
}

#[test]
fn authorization_urls_list_parameters_alphabetically() {
    let url = authorization_url(
        "https://idp.example.com/authorize?tenant=a",
        &[
            ("state", "s"),
            ("client_id", "outpost"),
            ("scope", "openid email"),
            ("redirect_uri", "https://app.example.com/outpost.goauthentik.io/callback?X-authentik-auth-callback=true"),
            ("response_type", "code"),
        ],
    )
    .unwrap();
    assert_eq!(
        url,
        "https://idp.example.com/authorize?tenant=a&client_id=outpost&redirect_uri=https%3A%2F%2Fapp.example.com%2Foutpost.goauthentik.io%2Fcallback%3FX-authentik-auth-callback%3Dtrue&response_type=code&scope=openid+email&state=s"
    );
    assert!(authorization_url("not a url", &[]).is_err());
}
