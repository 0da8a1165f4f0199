//! Email addresses as `/api/user/info` shows them (docs/reference/second-factor.md §1.9): the
//! first and last character of the local part kept, the rest starred; a local part of two
//! characters or fewer all starred.

/// `john.doe@example.com` → `j******e@example.com`.
pub fn redact_email(address: &str) -> String {
    let (local, domain) = match address.rsplit_once('@') {
        Some((local, domain)) => (local, Some(domain)),
        None => (address, None),
    };
    let chars: Vec<char> = local.chars().collect();
    let redacted: String = if chars.len() <= 2 {
        "*".repeat(chars.len())
    } else {
        let mut out = String::new();
        out.push(chars[0]);
        out.push_str(&"*".repeat(chars.len() - 2));
        out.push(chars[chars.len() - 1]);
        out
    };
    match domain {
        Some(domain) => format!("{redacted}@{domain}"),
        None => redacted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_parts_are_starred_between_their_ends() {
        for (address, want) in [
            ("john.doe@authelia.com", "j******e@authelia.com"),
            ("abc@x.org", "a*c@x.org"),
            ("ab@x.org", "**@x.org"),
            ("a@x.org", "*@x.org"),
            ("@x.org", "@x.org"),
            ("jöhn@x.org", "j**n@x.org"),
        ] {
            assert_eq!(redact_email(address), want, "{address}");
        }
    }
}
