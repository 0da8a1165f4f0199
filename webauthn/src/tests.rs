//! The ceremonies against a software authenticator, every refusal of WebAuthn §7.1/§7.2 that
//! applies, and the three signature algorithms against independent signers (ring, rsa).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use ciborium::Value;
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

use crate::WebAuthnError;
use crate::attestation::AttestationType;
use crate::authenticator_data::AuthenticatorData;
use crate::ceremony::{
    AssertionResponse, Expectation, RegistrationResponse, StoredCredential, verify_assertion,
    verify_registration,
};
use crate::cose::PublicKey;
use crate::encoding::{Challenge, base64url, decode_binary};
use crate::options::{
    Conveyance, CredentialDescriptor, RelyingParty, Requirement, Selection, User, creation_options,
    request_options,
};
use crate::software_authenticator::SoftwareAuthenticator;

const RP: &str = "auth.example.com";
const ORIGIN: &str = "https://auth.example.com";

fn challenge() -> Challenge {
    Challenge::new([9; 32])
}

fn expect(challenge: &Challenge) -> Expectation<'_> {
    Expectation {
        challenge,
        rp_id: RP,
        origin: ORIGIN,
        user_verification: None,
    }
}

fn authenticator() -> SoftwareAuthenticator {
    let mut seed = [0u8; 32];
    seed[31] = 42;
    SoftwareAuthenticator::new(seed, vec![1, 2, 3, 4, 5, 6, 7, 8])
}

fn registration(json: Json) -> RegistrationResponse {
    serde_json::from_value(json).expect("registration JSON")
}

fn assertion(json: Json) -> AssertionResponse {
    serde_json::from_value(json).expect("assertion JSON")
}

#[test]
fn a_packed_self_attested_registration_verifies_and_yields_the_key() {
    let c = challenge();
    let a = authenticator();
    let r = registration(a.register(RP, ORIGIN, &c.to_base64url(), true));
    let cred = verify_registration(&r, &expect(&c)).expect("valid registration");
    assert_eq!(cred.credential_id, a.credential_id);
    assert_eq!(
        PublicKey::from_cose(&cred.public_key).unwrap(),
        a.public_key()
    );
    assert_eq!(cred.attestation_format, "packed");
    assert_eq!(cred.attestation_type, AttestationType::SelfAttestation);
    assert!(cred.discoverable);
    assert_eq!(cred.attachment, "cross-platform");
    assert_eq!(cred.transports, vec!["usb".to_owned()]);
    assert!(cred.flags.user_verified());
}

#[test]
fn registration_refuses_another_challenge_origin_rp_or_ceremony() {
    let c = challenge();
    let a = authenticator();
    let other = Challenge::new([8; 32]);
    let r = registration(a.register(RP, ORIGIN, &other.to_base64url(), false));
    assert_eq!(
        verify_registration(&r, &expect(&c)),
        Err(WebAuthnError::Challenge)
    );
    let r = registration(a.register(RP, "https://evil.example.com", &c.to_base64url(), false));
    assert_eq!(
        verify_registration(&r, &expect(&c)),
        Err(WebAuthnError::Origin("https://evil.example.com".into()))
    );
    let r = registration(a.register("evil.example.com", ORIGIN, &c.to_base64url(), false));
    assert_eq!(
        verify_registration(&r, &expect(&c)),
        Err(WebAuthnError::RpIdHash)
    );
    // An assertion's client data replayed into a registration.
    let mut json = a.register(RP, ORIGIN, &c.to_base64url(), false);
    let client_data =
        json!({"type": "webauthn.get", "challenge": c.to_base64url(), "origin": ORIGIN});
    json["response"]["clientDataJSON"] = base64url(client_data.to_string().as_bytes()).into();
    assert!(matches!(
        verify_registration(&registration(json), &expect(&c)),
        Err(WebAuthnError::CeremonyType { .. })
    ));
}

#[test]
fn registration_refuses_missing_presence_missing_required_verification_and_bad_statements() {
    let c = challenge();
    let mut a = authenticator();
    a.flags = 0x04;
    let r = registration(a.register(RP, ORIGIN, &c.to_base64url(), false));
    assert_eq!(
        verify_registration(&r, &expect(&c)),
        Err(WebAuthnError::UserNotPresent)
    );
    a.flags = 0x01;
    let r = registration(a.register(RP, ORIGIN, &c.to_base64url(), false));
    let mut strict = expect(&c);
    strict.user_verification = Some(Requirement::Required);
    assert_eq!(
        verify_registration(&r, &strict),
        Err(WebAuthnError::UserNotVerified)
    );
    assert!(
        verify_registration(&r, &expect(&c)).is_ok(),
        "UV only when required"
    );

    // The statement signed by another key.
    let a = authenticator();
    let mut seed = [0u8; 32];
    seed[31] = 43;
    let other = SoftwareAuthenticator::new(seed, a.credential_id.clone());
    let mut json = a.register(RP, ORIGIN, &c.to_base64url(), false);
    let forged = other.register(RP, ORIGIN, &c.to_base64url(), false);
    let mine = attestation_map(&json);
    let theirs = attestation_map(&forged);
    let mut object = mine.clone();
    set(&mut object, "attStmt", get(&theirs, "attStmt"));
    json["response"]["attestationObject"] = base64url(&cbor(&Value::Map(object))).into();
    assert!(matches!(
        verify_registration(&registration(json.clone()), &expect(&c)),
        Err(WebAuthnError::Attestation(_))
    ));
    // An unknown format, and a `none` statement that is not empty.
    let mut object = mine.clone();
    set(&mut object, "fmt", Value::Text("made-up".into()));
    json["response"]["attestationObject"] = base64url(&cbor(&Value::Map(object))).into();
    assert_eq!(
        verify_registration(&registration(json.clone()), &expect(&c)),
        Err(WebAuthnError::UnsupportedAttestation("made-up".into()))
    );
    let mut object = mine.clone();
    set(&mut object, "fmt", Value::Text("none".into()));
    json["response"]["attestationObject"] = base64url(&cbor(&Value::Map(object.clone()))).into();
    assert!(matches!(
        verify_registration(&registration(json.clone()), &expect(&c)),
        Err(WebAuthnError::Attestation(_))
    ));
    set(&mut object, "attStmt", Value::Map(vec![]));
    json["response"]["attestationObject"] = base64url(&cbor(&Value::Map(object))).into();
    let none = verify_registration(&registration(json.clone()), &expect(&c)).expect("none");
    assert_eq!(none.attestation_type, AttestationType::None);
    // The response names another credential than the authenticator data.
    json["id"] = base64url(&[9, 9]).into();
    json["rawId"] = base64url(&[9, 9]).into();
    assert_eq!(
        verify_registration(&registration(json), &expect(&c)),
        Err(WebAuthnError::CredentialId)
    );
}

fn attestation_map(json: &Json) -> Vec<(Value, Value)> {
    let bytes =
        decode_binary("t", json["response"]["attestationObject"].as_str().unwrap()).unwrap();
    match ciborium::from_reader::<Value, _>(bytes.as_slice()).unwrap() {
        Value::Map(m) => m,
        _ => panic!("not a map"),
    }
}

fn get(map: &[(Value, Value)], key: &str) -> Value {
    map.iter()
        .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
        .map(|(_, v)| v.clone())
        .unwrap()
}

fn set(map: &mut [(Value, Value)], key: &str, value: Value) {
    for (k, v) in map.iter_mut() {
        if matches!(k, Value::Text(t) if t == key) {
            *v = value.clone();
        }
    }
}

fn cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).unwrap();
    out
}

#[test]
fn an_assertion_verifies_and_a_counter_that_does_not_grow_is_a_clone_warning() {
    let c = challenge();
    let mut a = authenticator();
    a.sign_count = 4;
    let cose = a.public_key().to_cose();
    let r = assertion(a.assert(RP, ORIGIN, &c.to_base64url(), Some(b"user-handle")));
    assert_eq!(r.credential_id().unwrap(), a.credential_id);
    assert_eq!(
        r.user_handle().unwrap().as_deref(),
        Some(&b"user-handle"[..])
    );
    let stored = StoredCredential {
        public_key: &cose,
        sign_count: 4,
        app_id: None,
    };
    let ok = verify_assertion(&r, &expect(&c), stored).expect("valid assertion");
    assert_eq!(ok.sign_count, 5);
    assert!(!ok.clone_warning);
    let same = StoredCredential {
        sign_count: 5,
        ..stored
    };
    assert!(
        verify_assertion(&r, &expect(&c), same)
            .unwrap()
            .clone_warning
    );
    // An authenticator without a counter (always 0) never warns.
    a.counts = false;
    let r = assertion(a.assert(RP, ORIGIN, &c.to_base64url(), None));
    let zero = StoredCredential {
        sign_count: 0,
        ..stored
    };
    assert!(
        !verify_assertion(&r, &expect(&c), zero)
            .unwrap()
            .clone_warning
    );
    assert_eq!(r.user_handle().unwrap(), None);
}

#[test]
fn an_assertion_is_refused_for_a_changed_byte_another_key_or_another_rp() {
    let c = challenge();
    let mut a = authenticator();
    let cose = a.public_key().to_cose();
    let stored = StoredCredential {
        public_key: &cose,
        sign_count: 0,
        app_id: None,
    };
    let json = a.assert(RP, ORIGIN, &c.to_base64url(), None);
    let mut data =
        decode_binary("t", json["response"]["authenticatorData"].as_str().unwrap()).unwrap();
    data[36] ^= 1;
    let mut changed = json.clone();
    changed["response"]["authenticatorData"] = base64url(&data).into();
    assert_eq!(
        verify_assertion(&assertion(changed), &expect(&c), stored),
        Err(WebAuthnError::Signature)
    );
    let mut seed = [0u8; 32];
    seed[31] = 99;
    let other = SoftwareAuthenticator::new(seed, vec![1])
        .public_key()
        .to_cose();
    let wrong_key = StoredCredential {
        public_key: &other,
        ..stored
    };
    assert_eq!(
        verify_assertion(&assertion(json.clone()), &expect(&c), wrong_key),
        Err(WebAuthnError::Signature)
    );
    let r = assertion(a.assert("other.example.com", ORIGIN, &c.to_base64url(), None));
    assert_eq!(
        verify_assertion(&r, &expect(&c), stored),
        Err(WebAuthnError::RpIdHash)
    );
    // The U2F AppID is accepted only when the client says it used it and the credential has it.
    let app_id = "https://auth.example.com/app-id.json";
    let r = assertion(a.assert(app_id, ORIGIN, &c.to_base64url(), None));
    let with_app_id = StoredCredential {
        app_id: Some(app_id),
        ..stored
    };
    assert_eq!(
        verify_assertion(&r, &expect(&c), with_app_id),
        Err(WebAuthnError::RpIdHash)
    );
    let mut json = a.assert(app_id, ORIGIN, &c.to_base64url(), None);
    json["clientExtensionResults"] = json!({"appid": true});
    assert!(verify_assertion(&assertion(json.clone()), &expect(&c), with_app_id).is_ok());
    assert_eq!(
        verify_assertion(&assertion(json), &expect(&c), stored),
        Err(WebAuthnError::RpIdHash)
    );
    let mut json = a.assert(RP, ORIGIN, &c.to_base64url(), None);
    json["type"] = "password".into();
    assert!(matches!(
        verify_assertion(&assertion(json), &expect(&c), stored),
        Err(WebAuthnError::Malformed { .. })
    ));
}

type Signer = Box<dyn Fn(&[u8]) -> Vec<u8>>;

fn es256_and_eddsa_keys() -> Vec<(PublicKey, Signer)> {
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let ec =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let ec_key = PublicKey::Es256 {
        point: ec.public_key().as_ref().to_vec(),
    };
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let ed = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let ed_key = PublicKey::EdDsa {
        key: ed.public_key().as_ref().try_into().unwrap(),
    };
    vec![
        (
            ec_key,
            Box::new(move |m: &[u8]| {
                ec.sign(&ring::rand::SystemRandom::new(), m)
                    .unwrap()
                    .as_ref()
                    .to_vec()
            }),
        ),
        (
            ed_key,
            Box::new(move |m: &[u8]| ed.sign(m).as_ref().to_vec()),
        ),
    ]
}

#[test]
fn es256_eddsa_and_rs256_signatures_from_independent_signers_verify_through_cose() {
    for (key, sign) in es256_and_eddsa_keys() {
        let cose = key.to_cose();
        let parsed = PublicKey::from_cose(&cose).unwrap();
        assert_eq!(parsed, key);
        let sig = sign(b"message");
        assert_eq!(parsed.verify(b"message", &sig), Ok(()));
        assert_eq!(
            parsed.verify(b"massage", &sig),
            Err(WebAuthnError::Signature)
        );
    }
    use rsa::traits::PublicKeyParts;
    let private = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap();
    let public = private.to_public_key();
    let key = PublicKey::Rs256 {
        n: public.n().to_be_bytes().to_vec(),
        e: public.e().to_be_bytes().to_vec(),
    };
    let parsed = PublicKey::from_cose(&key.to_cose()).unwrap();
    let scheme = rsa::Pkcs1v15Sign {
        hash_len: Some(32),
        prefix: crate::cose::SHA256_DIGEST_INFO.to_vec().into_boxed_slice(),
    };
    let sig = private.sign(scheme, &Sha256::digest(b"message")).unwrap();
    assert_eq!(parsed.verify(b"message", &sig), Ok(()));
    assert_eq!(
        parsed.verify(b"massage", &sig),
        Err(WebAuthnError::Signature)
    );
}

#[test]
fn cose_keys_off_the_curve_or_of_unknown_types_are_refused() {
    let int = |i: i64| Value::Integer(i.into());
    let ec = |x: Vec<u8>| {
        cbor(&Value::Map(vec![
            (int(1), int(2)),
            (int(3), int(-7)),
            (int(-1), int(1)),
            (int(-2), Value::Bytes(x)),
            (int(-3), Value::Bytes(vec![1; 32])),
        ]))
    };
    assert!(matches!(
        PublicKey::from_cose(&ec(vec![1; 32])),
        Err(WebAuthnError::UnsupportedKey(_))
    ));
    assert!(matches!(
        PublicKey::from_cose(&ec(vec![1; 31])),
        Err(WebAuthnError::UnsupportedKey(_))
    ));
    let es384 = cbor(&Value::Map(vec![
        (int(1), int(2)),
        (int(3), int(-35)),
        (int(-1), int(2)),
    ]));
    assert!(matches!(
        PublicKey::from_cose(&es384),
        Err(WebAuthnError::UnsupportedKey(_))
    ));
    assert!(matches!(
        PublicKey::from_cose(b"\xff"),
        Err(WebAuthnError::Malformed { .. })
    ));
    let small_rsa = cbor(&Value::Map(vec![
        (int(1), int(3)),
        (int(3), int(-257)),
        (int(-1), Value::Bytes(vec![0xc5; 128])),
        (int(-2), Value::Bytes(vec![1, 0, 1])),
    ]));
    assert!(matches!(
        PublicKey::from_cose(&small_rsa),
        Err(WebAuthnError::UnsupportedKey(_))
    ));
}

#[test]
fn authenticator_data_that_is_short_truncated_or_has_trailing_bytes_is_refused() {
    assert!(AuthenticatorData::parse(&[0; 36]).is_err());
    let mut data = vec![0u8; 37];
    assert!(AuthenticatorData::parse(&data).is_ok());
    data.push(0);
    assert!(AuthenticatorData::parse(&data).is_err(), "trailing byte");
    let mut attested = vec![0u8; 37];
    attested[32] = 0x41;
    attested.extend_from_slice(&[0; 16]);
    attested.extend_from_slice(&[0, 200]);
    attested.extend_from_slice(&[1; 10]);
    assert!(
        AuthenticatorData::parse(&attested).is_err(),
        "id longer than the data"
    );
}

#[test]
fn packed_and_fido_u2f_statements_with_a_certificate_verify_with_its_key() {
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
    let rng = ring::rand::SystemRandom::new();
    let cert_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&cert_key)
        .unwrap();
    let signer = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &cert_key.serialize_der(),
        &rng,
    )
    .unwrap();
    let c = challenge();
    let a = authenticator();
    for format in ["packed", "fido-u2f"] {
        let mut json = a.register(RP, ORIGIN, &c.to_base64url(), false);
        let mut object = attestation_map(&json);
        let Value::Bytes(auth_data) = get(&object, "authData") else {
            panic!()
        };
        let client_data =
            decode_binary("t", json["response"]["clientDataJSON"].as_str().unwrap()).unwrap();
        let hash = Sha256::digest(&client_data);
        let signed = if format == "packed" {
            [auth_data.clone(), hash.to_vec()].concat()
        } else {
            let PublicKey::Es256 { point } = a.public_key() else {
                panic!()
            };
            [
                vec![0],
                auth_data[..32].to_vec(),
                hash.to_vec(),
                a.credential_id.clone(),
                point,
            ]
            .concat()
        };
        let sig = signer.sign(&rng, &signed).unwrap().as_ref().to_vec();
        let mut statement = vec![
            (Value::Text("sig".into()), Value::Bytes(sig)),
            (
                Value::Text("x5c".into()),
                Value::Array(vec![Value::Bytes(cert.der().to_vec())]),
            ),
        ];
        if format == "packed" {
            statement.push((Value::Text("alg".into()), Value::Integer((-7).into())));
        }
        set(&mut object, "fmt", Value::Text(format.into()));
        set(&mut object, "attStmt", Value::Map(statement.clone()));
        json["response"]["attestationObject"] =
            base64url(&cbor(&Value::Map(object.clone()))).into();
        let cred = verify_registration(&registration(json.clone()), &expect(&c)).expect(format);
        assert_eq!(cred.attestation_type, AttestationType::Basic, "{format}");
        // The same statement over another challenge's client data is refused.
        let other = Challenge::new([1; 32]);
        let mut moved = json.clone();
        let client_data =
            json!({"type": "webauthn.create", "challenge": other.to_base64url(), "origin": ORIGIN});
        moved["response"]["clientDataJSON"] = base64url(client_data.to_string().as_bytes()).into();
        assert!(
            matches!(
                verify_registration(&registration(moved), &expect(&other)),
                Err(WebAuthnError::Attestation(_))
            ),
            "{format}"
        );
    }
}

#[test]
fn the_options_carry_what_the_browser_needs_in_base64url() {
    let c = challenge();
    let handle = [b'a'; 64];
    let options = creation_options(
        RelyingParty {
            id: RP,
            name: "Authelia",
        },
        User {
            handle: &handle,
            name: "john",
            display_name: "John Doe",
        },
        &c,
        60_000,
        &[CredentialDescriptor {
            id: vec![1, 2],
            transports: vec!["usb".into()],
        }],
        Selection {
            attachment: None,
            resident_key: Some(Requirement::Required),
            user_verification: Some(Requirement::Preferred),
        },
        Conveyance::Indirect,
    );
    assert_eq!(options["rp"], json!({"id": RP, "name": "Authelia"}));
    assert_eq!(
        decode_binary("t", options["user"]["id"].as_str().unwrap()).unwrap(),
        handle.to_vec()
    );
    assert_eq!(options["challenge"], c.to_base64url());
    assert_eq!(
        options["pubKeyCredParams"][0],
        json!({"type": "public-key", "alg": -7})
    );
    assert_eq!(
        options["excludeCredentials"],
        json!([{"type": "public-key", "id": "AQI", "transports": ["usb"]}])
    );
    assert_eq!(
        options["authenticatorSelection"]["requireResidentKey"],
        true
    );
    assert_eq!(options["attestation"], "indirect");
    assert_eq!(options["extensions"]["credProps"], true);
    let request = request_options(
        RP,
        &c,
        60_000,
        &[],
        Some(Requirement::Required),
        Some("https://x/app-id.json"),
    );
    assert_eq!(request["allowCredentials"], json!([]));
    assert_eq!(request["userVerification"], "required");
    assert_eq!(request["extensions"]["appid"], "https://x/app-id.json");
    assert_eq!(request["rpId"], RP);
}
