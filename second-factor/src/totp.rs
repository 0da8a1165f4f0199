//! Time-based one-time passwords (RFC 6238 over RFC 4226), checked the way Authelia checks them
//! (docs/reference/second-factor.md §1.2): counters tried in the order `c, c+1, c-1, c+2, c-2, …`
//! up to the skew, the matched counter returned so that a replay can be refused, a code of the
//! wrong length an error rather than a mismatch, comparisons in constant time.

use std::fmt;

use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

use crate::SecondFactorError;

/// The HMAC behind the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC-SHA1, the default every authenticator app supports.
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl Algorithm {
    /// Parse Authelia's spelling, case-insensitively (the configuration upper-cases it).
    pub fn parse(text: &str) -> Result<Self, SecondFactorError> {
        match text.trim().to_ascii_uppercase().as_str() {
            "SHA1" => Ok(Self::Sha1),
            "SHA256" => Ok(Self::Sha256),
            "SHA512" => Ok(Self::Sha512),
            _ => Err(SecondFactorError::UnknownAlgorithm(text.to_owned())),
        }
    }

    /// `SHA1`, `SHA256` or `SHA512`, as stored in `totp_configurations.algorithm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The number of digits of a code: 6 or 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digits(u32);

impl Digits {
    /// Six digits, the default.
    pub const SIX: Self = Self(6);
    /// Eight digits.
    pub const EIGHT: Self = Self(8);

    /// 6 or 8; anything else is refused.
    pub fn new(digits: u32) -> Result<Self, SecondFactorError> {
        match digits {
            6 | 8 => Ok(Self(digits)),
            other => Err(SecondFactorError::Digits(other)),
        }
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }

    fn len(self) -> usize {
        if self.0 == 8 { 8 } else { 6 }
    }

    fn modulus(self) -> u32 {
        if self.0 == 8 { 100_000_000 } else { 1_000_000 }
    }
}

/// The length of a time step in seconds: at least 15.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period(u64);

impl Period {
    /// Thirty seconds, the default.
    pub const THIRTY: Self = Self(30);

    /// At least 15 seconds; shorter is refused.
    pub fn new(seconds: u64) -> Result<Self, SecondFactorError> {
        if seconds >= 15 {
            Ok(Self(seconds))
        } else {
            Err(SecondFactorError::Period(seconds))
        }
    }

    /// The seconds.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// How one user's codes are made: stored with the user's registration and used from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TotpParameters {
    /// The HMAC.
    pub algorithm: Algorithm,
    /// Digits per code.
    pub digits: Digits,
    /// Seconds per step.
    pub period: Period,
}

impl Default for TotpParameters {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Sha1,
            digits: Digits::SIX,
            period: Period::THIRTY,
        }
    }
}

/// A decoded TOTP key. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl TotpSecret {
    /// The key bytes themselves (for tests and the registration that generates them).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Decode a base32 secret as Authelia's library does: trimmed, padded with `=` to a multiple
    /// of 8, upper-cased, then standard base32. An empty secret is an error.
    pub fn from_base32(text: &str) -> Result<Self, SecondFactorError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(SecondFactorError::EmptySecret);
        }
        let mut padded = trimmed.to_ascii_uppercase();
        while !padded.len().is_multiple_of(8) {
            padded.push('=');
        }
        data_encoding::BASE32
            .decode(padded.as_bytes())
            .map(Self)
            .map_err(|_| SecondFactorError::SecretNotBase32)
    }

    /// Upper-case base32 without padding, as Authelia stores and shows it.
    pub fn to_base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.0)
    }

    /// The number of key bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for a key without bytes (never produced by [`TotpSecret::from_base32`]).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

fn mac_of(algorithm: Algorithm, key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so new_from_slice cannot fail; an empty result would
    // still produce no valid code.
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
        match <M as hmac::digest::KeyInit>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(message);
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }
    match algorithm {
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, message),
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, message),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, message),
    }
}

/// The RFC 4226 code for `counter`, zero-padded to the digits.
pub fn hotp(secret: &TotpSecret, counter: u64, algorithm: Algorithm, digits: Digits) -> String {
    let mac = mac_of(algorithm, secret.bytes(), &counter.to_be_bytes());
    let Some(last) = mac.last() else {
        return String::new();
    };
    let offset = usize::from(last & 0x0f);
    let word = match mac.get(offset..offset + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a & 0x7f, b, c, d]),
        _ => return String::new(),
    };
    format!("{:0width$}", word % digits.modulus(), width = digits.len())
}

/// The counter (time step) of `unix_seconds`: `floor(t / period)`, T0 = 0.
pub fn counter_at(unix_seconds: u64, period: Period) -> u64 {
    unix_seconds / period.get()
}

/// The code valid at `unix_seconds`.
pub fn code_at(secret: &TotpSecret, parameters: TotpParameters, unix_seconds: u64) -> String {
    hotp(
        secret,
        counter_at(unix_seconds, parameters.period),
        parameters.algorithm,
        parameters.digits,
    )
}

/// A code that matched: the counter it matched at. `step × period` is what the replay history
/// keeps (docs/reference/second-factor.md §1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    /// The matched counter.
    pub step: u64,
}

impl Matched {
    /// The Unix time at the start of the matched window.
    pub fn window_start(self, period: Period) -> u64 {
        self.step.saturating_mul(period.get())
    }
}

/// Check `code` at `unix_seconds` with `skew` steps either side. `Ok(None)` is a wrong code;
/// an error is a code that cannot be one (wrong length), which Authelia does not count as a
/// failed attempt.
pub fn validate(
    secret: &TotpSecret,
    parameters: TotpParameters,
    code: &str,
    unix_seconds: u64,
    skew: u32,
) -> Result<Option<Matched>, SecondFactorError> {
    let code = code.trim();
    let expected_len = parameters.digits.len();
    if code.len() != expected_len {
        return Err(SecondFactorError::CodeLength {
            expected: expected_len,
            got: code.chars().count(),
        });
    }
    let current = counter_at(unix_seconds, parameters.period);
    let mut found = None;
    // Every candidate is computed and compared, so the time taken does not say which one
    // matched.
    let mut check = |counter: u64| {
        let candidate = hotp(secret, counter, parameters.algorithm, parameters.digits);
        let equal: bool = candidate.as_bytes().ct_eq(code.as_bytes()).into();
        if equal && found.is_none() {
            found = Some(Matched { step: counter });
        }
    };
    check(current);
    for i in 1..=u64::from(skew) {
        if let Some(later) = current.checked_add(i) {
            check(later);
        }
        if current >= i {
            check(current - i);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc_secret(algorithm: Algorithm) -> TotpSecret {
        // RFC 6238 Appendix B: the ASCII seeds of 20, 32 and 64 bytes.
        let seed = b"12345678901234567890";
        let len = match algorithm {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        };
        TotpSecret::from_bytes(seed.iter().copied().cycle().take(len).collect())
    }

    #[test]
    fn rfc_6238_appendix_b_vectors() {
        let vectors = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (t, sha1, sha256, sha512) in vectors {
            for (algorithm, want) in [
                (Algorithm::Sha1, sha1),
                (Algorithm::Sha256, sha256),
                (Algorithm::Sha512, sha512),
            ] {
                let parameters = TotpParameters {
                    algorithm,
                    digits: Digits::EIGHT,
                    period: Period::THIRTY,
                };
                assert_eq!(
                    code_at(&rfc_secret(algorithm), parameters, t),
                    want,
                    "{algorithm} at {t}"
                );
            }
        }
    }

    #[test]
    fn rfc_4226_appendix_d_six_digit_codes() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let want = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in want.iter().enumerate() {
            assert_eq!(
                hotp(&secret, counter as u64, Algorithm::Sha1, Digits::SIX),
                *code
            );
        }
    }

    #[test]
    fn the_spec_vectors_for_the_authelia_test_secret() {
        // docs/reference/second-factor.md §4.3: secret bytes 0x00..0x1f.
        let secret =
            TotpSecret::from_base32("AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPQ")
                .unwrap();
        assert_eq!(secret.len(), 32);
        assert_eq!(secret.bytes(), (0u8..32).collect::<Vec<_>>().as_slice());
        let p = TotpParameters::default();
        for (t, code) in [
            (0, "414783"),
            (59, "555770"),
            (1_111_111_109, "678295"),
            (2_000_000_000, "440276"),
        ] {
            assert_eq!(code_at(&secret, p, t), code, "t={t}");
        }
        assert_eq!(
            secret.to_base32(),
            "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPQ"
        );
    }

    #[test]
    fn base32_secrets_are_trimmed_padded_and_case_folded() {
        let want = TotpSecret::from_bytes(b"hello".to_vec());
        for text in ["NBSWY3DP", " nbswy3dp\n", "NBSWY3DP", "nbSWy3dp"] {
            assert_eq!(TotpSecret::from_base32(text).unwrap(), want, "{text:?}");
        }
        // Unpadded input of a length that needs padding.
        assert_eq!(
            TotpSecret::from_base32("MFRGG").unwrap(),
            TotpSecret::from_bytes(b"abc".to_vec())
        );
        assert_eq!(
            TotpSecret::from_base32("  "),
            Err(SecondFactorError::EmptySecret)
        );
        for bad in ["NBSWY3D1", "NBSW!3DP", "ÄBCDEFGH"] {
            assert_eq!(
                TotpSecret::from_base32(bad),
                Err(SecondFactorError::SecretNotBase32),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_skew_window_is_searched_current_then_later_then_earlier() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let p = TotpParameters::default();
        let now = 1_000_000_020; // counter 33_333_334
        let c = counter_at(now, p.period);
        let code = |counter| hotp(&secret, counter, p.algorithm, p.digits);
        assert_eq!(
            validate(&secret, p, &code(c), now, 1).unwrap(),
            Some(Matched { step: c })
        );
        assert_eq!(
            validate(&secret, p, &code(c + 1), now, 1).unwrap(),
            Some(Matched { step: c + 1 })
        );
        assert_eq!(
            validate(&secret, p, &code(c - 1), now, 1).unwrap(),
            Some(Matched { step: c - 1 })
        );
        assert_eq!(validate(&secret, p, &code(c + 2), now, 1).unwrap(), None);
        assert_eq!(validate(&secret, p, &code(c - 2), now, 1).unwrap(), None);
        assert_eq!(
            validate(&secret, p, &code(c - 2), now, 2).unwrap(),
            Some(Matched { step: c - 2 })
        );
        // Skew 0: only the current window.
        assert_eq!(validate(&secret, p, &code(c + 1), now, 0).unwrap(), None);
        assert_eq!(
            validate(&secret, p, &format!(" {}\n", code(c)), now, 0).unwrap(),
            Some(Matched { step: c })
        );
    }

    #[test]
    fn at_the_epoch_no_earlier_window_is_tried() {
        let secret = TotpSecret::from_bytes(vec![7; 20]);
        let p = TotpParameters::default();
        let code = hotp(&secret, 1, p.algorithm, p.digits);
        assert_eq!(
            validate(&secret, p, &code, 0, 3).unwrap(),
            Some(Matched { step: 1 })
        );
        let far = u64::MAX;
        assert!(validate(&secret, p, "000000", far, 3).is_ok());
    }

    #[test]
    fn codes_of_the_wrong_length_are_errors_not_mismatches() {
        let secret = TotpSecret::from_bytes(vec![1; 20]);
        let p = TotpParameters::default();
        for bad in ["", "12345", "1234567", "12345678", "１２３４５６"] {
            assert!(
                matches!(
                    validate(&secret, p, bad, 100, 1),
                    Err(SecondFactorError::CodeLength { expected: 6, .. })
                ),
                "{bad:?}"
            );
        }
        // Six characters that are not digits are simply wrong.
        assert_eq!(validate(&secret, p, "abcdef", 100, 1).unwrap(), None);
    }

    #[test]
    fn parameters_parse_as_authelia_validates_them() {
        assert_eq!(Algorithm::parse("sha256").unwrap(), Algorithm::Sha256);
        assert!(Algorithm::parse("MD5").is_err());
        assert!(Digits::new(7).is_err());
        assert_eq!(Digits::new(8).unwrap(), Digits::EIGHT);
        assert!(Period::new(14).is_err());
        assert_eq!(Period::new(15).unwrap().get(), 15);
        assert_eq!(
            Matched { step: 66_666_666 }.window_start(Period::THIRTY),
            1_999_999_980
        );
    }

    #[test]
    fn a_secret_never_shows_in_debug() {
        let secret = TotpSecret::from_bytes(b"supersecret".to_vec());
        assert!(!format!("{secret:?}").contains("supersecret"));
        assert!(!format!("{:?}", secret.to_base32()).is_empty());
    }
}
