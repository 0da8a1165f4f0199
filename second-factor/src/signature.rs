//! The keyed signatures Authelia stores instead of the values themselves
//! (docs/reference/second-factor.md §1.7, §3.2, §4.3): a used TOTP window in `totp_history.step`
//! and a one-time code in `one_time_code.signature`. The HMAC keys live encrypted in the
//! `encryption` table (`hmac_key_otp`, 64 bytes; `hmac_key_otc`, 128 bytes).

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};

/// The length of a generated `hmac_key_otp` (the SHA-256 block size).
pub const OTP_KEY_LENGTH: usize = 64;
/// The length of a generated `hmac_key_otc` (the SHA-512 block size).
pub const OTC_KEY_LENGTH: usize = 128;

/// `totp_history.step`: lowercase hex of HMAC-SHA256(`hmac_key_otp`, decimal(window start) ‖
/// username).
pub fn totp_history_signature(hmac_key_otp: &[u8], window_start: u64, username: &str) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(hmac_key_otp) else {
        return String::new();
    };
    mac.update(window_start.to_string().as_bytes());
    mac.update(username.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The 16-byte form of an address (an IPv4 address as `::ffff:a.b.c.d`), so that a code issued
/// over IPv4 matches however the address was parsed.
fn address_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6, |v4| v4.to_ipv6_mapped())
            .octets(),
    }
}

/// `one_time_code.signature`: lowercase hex of HMAC-SHA512(`hmac_key_otc`, username ‖ issuing
/// address ‖ intent ‖ code). A code therefore works only for its user, from the address that
/// asked for it, for its intent.
pub fn one_time_code_signature(
    hmac_key_otc: &[u8],
    username: &str,
    issued_from: IpAddr,
    intent: &str,
    code: &str,
) -> String {
    let Ok(mut mac) = <Hmac<Sha512> as Mac>::new_from_slice(hmac_key_otc) else {
        return String::new();
    };
    mac.update(username.as_bytes());
    mac.update(&address_bytes(issued_from));
    mac.update(intent.as_bytes());
    mac.update(code.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_signature_matches_the_spec_vector() {
        assert_eq!(
            totp_history_signature(&[0x41; 64], 1_999_999_980, "john"),
            "a5b498ba2096f7c39a41106ef6c4b0559128b248fb7694073e6a830118af1e13"
        );
        assert_ne!(
            totp_history_signature(&[0x41; 64], 1_999_999_980, "jane"),
            totp_history_signature(&[0x41; 64], 1_999_999_980, "john")
        );
    }

    #[test]
    fn a_one_time_code_signature_binds_user_address_intent_and_code() {
        let key = [7u8; 128];
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let base = one_time_code_signature(&key, "john", ip, "use", "ABCD2346");
        assert_eq!(base.len(), 128);
        assert_ne!(
            base,
            one_time_code_signature(&key, "jane", ip, "use", "ABCD2346")
        );
        assert_ne!(
            base,
            one_time_code_signature(
                &key,
                "john",
                "192.0.2.2".parse().unwrap(),
                "use",
                "ABCD2346"
            )
        );
        assert_ne!(
            base,
            one_time_code_signature(&key, "john", ip, "reset", "ABCD2346")
        );
        assert_ne!(
            base,
            one_time_code_signature(&key, "john", ip, "use", "ABCD2347")
        );
        // The same IPv4 address written as an IPv4-mapped IPv6 address is the same address.
        assert_eq!(
            base,
            one_time_code_signature(
                &key,
                "john",
                "::ffff:192.0.2.1".parse().unwrap(),
                "use",
                "ABCD2346"
            )
        );
    }
}
