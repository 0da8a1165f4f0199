//! The `otpauth://` URI an authenticator app scans, written byte for byte as Authelia writes it
//! (docs/reference/second-factor.md §1.3): the label `issuer:username` escaped as a URL path, the
//! query keys sorted and form-encoded.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::totp::{TotpParameters, TotpSecret};

/// What a URL path keeps unescaped: the unreserved characters and the sub-delimiters a path
/// may carry (`$ & + , / : ; = @`); everything else, `?` and `#` included, is escaped.
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b',')
    .remove(b'/')
    .remove(b':')
    .remove(b';')
    .remove(b'=')
    .remove(b'@');

/// A query value: everything but the unreserved characters escaped, a space as `+`.
fn query_value(value: &str) -> String {
    const QUERY: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b' ');
    utf8_percent_encode(value, QUERY)
        .to_string()
        .replace(' ', "+")
}

/// `otpauth://totp/<issuer>:<username>?algorithm=…&digits=…&issuer=…&period=…&secret=…`.
pub fn otpauth_uri(
    issuer: &str,
    username: &str,
    parameters: TotpParameters,
    secret: &TotpSecret,
) -> String {
    let label = format!("/{issuer}:{username}");
    format!(
        "otpauth://totp{}?algorithm={}&digits={}&issuer={}&period={}&secret={}",
        utf8_percent_encode(&label, PATH),
        parameters.algorithm.as_str(),
        parameters.digits.get(),
        query_value(issuer),
        parameters.period.get(),
        secret.to_base32(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::totp::{Algorithm, Digits, Period};

    fn secret() -> TotpSecret {
        TotpSecret::from_bytes((0u8..32).collect())
    }

    #[test]
    fn the_default_uri_is_authelias() {
        assert_eq!(
            otpauth_uri("Authelia", "john", TotpParameters::default(), &secret()),
            "otpauth://totp/Authelia:john?algorithm=SHA1&digits=6&issuer=Authelia&period=30&secret=AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPQ"
        );
    }

    #[test]
    fn spaces_and_reserved_characters_are_escaped_as_go_escapes_them() {
        let p = TotpParameters {
            algorithm: Algorithm::Sha512,
            digits: Digits::EIGHT,
            period: Period::new(60).unwrap(),
        };
        let uri = otpauth_uri("My Company & Co", "jane?doe#1@x", p, &secret());
        assert!(
            uri.starts_with(
                "otpauth://totp/My%20Company%20&%20Co:jane%3Fdoe%231@x?algorithm=SHA512&digits=8&issuer=My+Company+%26+Co&period=60&secret="
            ),
            "{uri}"
        );
        let uri = otpauth_uri("Ünïcode", "名前", TotpParameters::default(), &secret());
        assert!(
            uri.starts_with("otpauth://totp/%C3%9Cn%C3%AFcode:%E5%90%8D%E5%89%8D?"),
            "{uri}"
        );
        assert!(uri.contains("&issuer=%C3%9Cn%C3%AFcode&"), "{uri}");
    }
}
