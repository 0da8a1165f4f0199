//! One-time codes for session elevation (docs/reference/second-factor.md §3.2): drawn from
//! Authelia's unambiguous upper-case alphabet, typed back trimmed and upper-cased.

use base64::Engine;
use rand::Rng;

use crate::SecondFactorError;

/// Authelia's `CharSetUnambiguousUpper`: no `0 O 1 I 5 S`.
pub const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRTUVWYXZ2346789";

/// The longest code accepted back.
pub const MAXIMUM_LENGTH: usize = 20;

/// A fresh code of `length` characters (the configuration's `characters`, at most 20).
pub fn generate(rng: &mut impl Rng, length: usize) -> String {
    (0..length.min(MAXIMUM_LENGTH))
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A typed code as it is looked up: trimmed and upper-cased; longer than 20 characters is
/// refused.
pub fn normalize(typed: &str) -> Result<String, SecondFactorError> {
    let code = typed.trim().to_uppercase();
    if code.chars().count() > MAXIMUM_LENGTH {
        return Err(SecondFactorError::OneTimeCodeTooLong);
    }
    Ok(code)
}

/// The `delete_id` of a code: its public id's 16 bytes in base64url without padding
/// (22 characters), as the revocation link carries it.
pub fn delete_id(public_id: [u8; 16]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public_id)
}

/// The public id of a `delete_id`, or `None` for anything that is not one.
pub fn parse_delete_id(text: &str) -> Option<[u8; 16]> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn codes_use_only_the_unambiguous_alphabet() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for length in [6, 8, 12, 20, 40] {
            let code = generate(&mut rng, length);
            assert_eq!(code.len(), length.min(20));
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
        }
        for ambiguous in b"0O1I5S" {
            assert!(!ALPHABET.contains(ambiguous));
        }
        assert_eq!(ALPHABET.len(), 30);
    }

    #[test]
    fn typed_codes_are_trimmed_and_upper_cased() {
        assert_eq!(normalize("  abcd2346\n").unwrap(), "ABCD2346");
        assert_eq!(normalize(&"A".repeat(20)).unwrap().len(), 20);
        assert_eq!(
            normalize(&"A".repeat(21)),
            Err(SecondFactorError::OneTimeCodeTooLong)
        );
    }

    #[test]
    fn delete_ids_round_trip_and_refuse_anything_else() {
        let id = [0xfbu8; 16];
        let text = delete_id(id);
        assert_eq!(text.len(), 22);
        assert!(!text.contains('=') && !text.contains('+') && !text.contains('/'));
        assert_eq!(parse_delete_id(&text), Some(id));
        for bad in [
            "",
            "short",
            "-_-_-_-_-_-_-_-_-_-_-_-_-_",
            "++++++++++++++++++++++",
        ] {
            assert_eq!(parse_delete_id(bad), None, "{bad:?}");
        }
    }
}
