//! Referrals (docs/reference/ldap.md §5.4): where an LDAP URL a directory refers to points. Pure:
//! no connection is made here.

/// Where a referral points: the server to dial and the entry to ask about there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Referral {
    /// `ldap://host:port` or `ldaps://host:port`.
    pub(super) address: String,
    /// The DN the URL names, if any (percent-decoded).
    pub(super) dn: Option<String>,
}

/// The referral an LDAP URL (RFC 4516) names, or `None` when it is not one a client can follow:
/// another scheme (`ldapi` would be a socket on this machine the remote directory chose), no host,
/// or a DN that is not UTF-8 once decoded.
pub(super) fn parse(url: &str) -> Option<Referral> {
    let parsed = url::Url::parse(url).ok()?;
    let default_port = match parsed.scheme() {
        "ldap" => 389,
        "ldaps" => 636,
        _ => return None,
    };
    let host = parsed.host_str().filter(|h| !h.is_empty())?;
    let port = parsed.port().unwrap_or(default_port);
    let dn = percent_encoding::percent_decode_str(parsed.path().trim_start_matches('/'))
        .decode_utf8()
        .ok()?;
    Some(Referral {
        address: format!("{}://{host}:{port}", parsed.scheme()),
        dn: (!dn.is_empty()).then(|| dn.into_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_referral_names_its_server_and_entry() {
        assert_eq!(
            parse("ldap://127.0.0.1:3890/ou=partners,dc=example,dc=com??sub"),
            Some(Referral {
                address: "ldap://127.0.0.1:3890".into(),
                dn: Some("ou=partners,dc=example,dc=com".into()),
            })
        );
        assert_eq!(
            parse("ldaps://dc2.example.com/cn=J%C3%BCrgen%2C%20Sr,dc=example"),
            Some(Referral {
                address: "ldaps://dc2.example.com:636".into(),
                dn: Some("cn=Jürgen, Sr,dc=example".into()),
            })
        );
        assert_eq!(
            parse("ldap://dc3.example.com"),
            Some(Referral {
                address: "ldap://dc3.example.com:389".into(),
                dn: None,
            })
        );
    }

    #[test]
    fn a_referral_a_client_cannot_follow_is_none() {
        for url in [
            "ldapi://%2Fvar%2Frun%2Fslapd%2Fldapi/dc=example",
            "http://example.com/dc=example",
            "ldap:///dc=example,dc=com",
            "not a url",
            "ldap://h/%FF",
            "",
        ] {
            assert_eq!(parse(url), None, "{url}");
        }
    }
}
