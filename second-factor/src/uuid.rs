//! UUIDs as Authelia's rows carry them (`one_time_code.public_id`, `identity_verification.jti`,
//! `webauthn_credentials.aaguid`): 36 characters, lower-case hex in the 8-4-4-4-12 groups.

use rand::Rng;

/// `bytes` as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn uuid_text(bytes: [u8; 16]) -> String {
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The 16 bytes of a UUID written with or without its dashes (any case); `None` for anything
/// else, including dashes in the wrong places.
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    if text.contains('-') {
        let groups: Vec<usize> = text.split('-').map(str::len).collect();
        if groups != [8, 4, 4, 4, 12] {
            return None;
        }
    }
    let compact: String = text.chars().filter(|c| *c != '-').collect();
    hex::decode(compact).ok()?.try_into().ok()
}

/// A random version-4 UUID from `rng`.
pub fn random_uuid(rng: &mut impl Rng) -> [u8; 16] {
    let mut bytes: [u8; 16] = rng.random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn uuids_round_trip_and_malformed_ones_are_refused() {
        let bytes = parse_uuid("CB69481E-8FF7-4039-93EC-0A2729A154A8").unwrap();
        assert_eq!(uuid_text(bytes), "cb69481e-8ff7-4039-93ec-0a2729a154a8");
        assert_eq!(parse_uuid("cb69481e8ff7403993ec0a2729a154a8"), Some(bytes));
        for bad in [
            "",
            "cb69481e-8ff7-4039-93ec-0a2729a154a",
            "cb69481e8-ff7-4039-93ec-0a2729a154a8",
            "zz69481e-8ff7-4039-93ec-0a2729a154a8",
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad}");
        }
        let v4 = random_uuid(&mut rand::rng());
        assert_eq!(v4[6] >> 4, 4);
        assert_eq!(v4[8] >> 6, 0b10);
    }
}
