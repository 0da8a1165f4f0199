//! LDAP search filters as Authelia builds them (docs/reference/ldap.md §5.2): the attribute
//! placeholders are replaced once at start, the per-request ones (`{input}`, `{username}`,
//! `{dn}`, `{memberof:dn}`, `{memberof:rdn}`, `{date-time:*}`) for each search, every value
//! escaped per RFC 4515 first. Pure: the time comes in as an argument.

/// The characters RFC 4515 requires escaped in an assertion value, and every byte outside ASCII,
/// written `\xx` (as go-ldap's `EscapeFilter`, which Authelia uses, writes them).
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'(' | b')' | b'*' | b'\\' | 0 | 0x80..=0xff => {
                out.push_str(&format!("\\{byte:02x}"));
            }
            _ => out.push(char::from(byte)),
        }
    }
    out
}

/// The attribute names the filters' start-time placeholders stand for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeNames {
    /// `{distinguished_name_attribute}`.
    pub distinguished_name: String,
    /// `{username_attribute}`.
    pub username: String,
    /// `{display_name_attribute}`.
    pub display_name: String,
    /// `{mail_attribute}`.
    pub mail: String,
    /// `{member_of_attribute}`.
    pub member_of: String,
}

/// Replace the attribute placeholders (once, at start).
pub fn with_attribute_names(filter: &str, names: &AttributeNames) -> String {
    filter
        .replace("{distinguished_name_attribute}", &names.distinguished_name)
        .replace("{username_attribute}", &names.username)
        .replace("{display_name_attribute}", &names.display_name)
        .replace("{mail_attribute}", &names.mail)
        .replace("{member_of_attribute}", &names.member_of)
}

/// Seconds between 1601-01-01 (the Windows NT epoch) and 1970-01-01.
const NT_EPOCH_OFFSET: u64 = 11_644_473_600;

fn generalized_time(now: u64) -> String {
    let days = now / 86_400;
    let secs = now % 86_400;
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}.0Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian), for the generalized time.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn with_date_time(filter: &str, now: u64) -> String {
    let mut out = filter.to_owned();
    if out.contains("{date-time:generalized}") {
        out = out.replace("{date-time:generalized}", &generalized_time(now));
    }
    if out.contains("{date-time:unix}") {
        out = out.replace("{date-time:unix}", &now.to_string());
    }
    if out.contains("{date-time:microsoft-nt}") {
        let ticks = u128::from(now + NT_EPOCH_OFFSET) * 10_000_000;
        out = out.replace("{date-time:microsoft-nt}", &ticks.to_string());
    }
    out
}

/// The users filter for the login `input` at `now`.
pub fn users_filter(filter: &str, input: &str, now: u64) -> String {
    with_date_time(filter, now).replace("{input}", &escape_filter_value(input))
}

/// What the groups filter may name of the user.
#[derive(Debug, Clone, Copy)]
pub struct GroupQuery<'a> {
    /// The login input.
    pub input: &'a str,
    /// The canonical username.
    pub username: &'a str,
    /// The user's DN.
    pub dn: &'a str,
    /// The user's `memberOf` values (DNs).
    pub member_of: &'a [String],
    /// The DN attribute name (for `{memberof:dn}`).
    pub dn_attribute: &'a str,
}

/// The first RDN's value of `dn` (`cn=admins,ou=groups,…` → `admins`), unescaped as far as the
/// filter needs (the value is escaped again for the filter).
fn first_rdn_value(dn: &str) -> Option<(&str, &str)> {
    let first = dn.split(',').next()?;
    let (attr, value) = first.split_once('=')?;
    Some((attr.trim(), value.trim()))
}

/// The groups filter for `query` at `now`.
pub fn groups_filter(filter: &str, query: GroupQuery<'_>, now: u64) -> String {
    let mut out = with_date_time(filter, now);
    if out.contains("{memberof:dn}") {
        let terms: String = query
            .member_of
            .iter()
            .map(|dn| format!("({}={})", query.dn_attribute, escape_filter_value(dn)))
            .collect();
        out = out.replace("{memberof:dn}", &terms);
    }
    if out.contains("{memberof:rdn}") {
        let terms: String = query
            .member_of
            .iter()
            .filter_map(|dn| first_rdn_value(dn))
            .map(|(attr, value)| format!("({attr}={})", escape_filter_value(value)))
            .collect();
        out = out.replace("{memberof:rdn}", &terms);
    }
    out.replace("{input}", &escape_filter_value(query.input))
        .replace("{username}", &escape_filter_value(query.username))
        .replace("{dn}", &escape_filter_value(query.dn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metacharacters_nul_and_non_ascii_are_escaped_so_input_cannot_change_the_filter() {
        assert_eq!(escape_filter_value("john"), "john");
        assert_eq!(escape_filter_value("*"), "\\2a");
        assert_eq!(escape_filter_value("john)(uid=*"), "john\\29\\28uid=\\2a");
        assert_eq!(escape_filter_value("a\\b"), "a\\5cb");
        assert_eq!(escape_filter_value("nul\0"), "nul\\00");
        assert_eq!(escape_filter_value("é"), "\\c3\\a9");
        let filter = "(&(|(uid={input})(mail={input}))(objectClass=person))";
        let rendered = users_filter(filter, "*)(objectClass=*", 0);
        assert_eq!(
            rendered,
            "(&(|(uid=\\2a\\29\\28objectClass=\\2a)(mail=\\2a\\29\\28objectClass=\\2a))(objectClass=person))"
        );
        // The parentheses of the result are exactly the template's.
        let count = |s: &str, c: char| s.chars().filter(|x| *x == c).count();
        assert_eq!(count(&rendered, '('), count(filter, '('));
        assert_eq!(count(&rendered, ')'), count(filter, ')'));
    }

    #[test]
    fn attribute_and_date_time_placeholders_are_replaced_as_authelia_does() {
        let names = AttributeNames {
            distinguished_name: "distinguishedName".into(),
            username: "sAMAccountName".into(),
            display_name: "displayName".into(),
            mail: "mail".into(),
            member_of: "memberOf".into(),
        };
        let filter = with_attribute_names(
            "(|({username_attribute}={input})({mail_attribute}={input}))",
            &names,
        );
        assert_eq!(filter, "(|(sAMAccountName={input})(mail={input}))");
        // 2024-02-29 12:34:56 UTC.
        let now = 1_709_210_096;
        assert_eq!(generalized_time(now), "20240229123456.0Z");
        assert_eq!(generalized_time(0), "19700101000000.0Z");
        assert_eq!(
            users_filter(
                "(a>={date-time:generalized})(b>={date-time:unix})(c>={date-time:microsoft-nt})",
                "x",
                now
            ),
            "(a>=20240229123456.0Z)(b>=1709210096)(c>=133536836960000000)"
        );
    }

    #[test]
    fn groups_filters_name_the_user_and_its_memberof_values_escaped() {
        let member_of = vec![
            "cn=admins,ou=groups,dc=example,dc=com".to_owned(),
            "cn=dev (team),ou=groups,dc=example,dc=com".to_owned(),
        ];
        let q = GroupQuery {
            input: "john.doe@example.com",
            username: "john",
            dn: "cn=John Doe (external),ou=users,dc=example,dc=com",
            member_of: &member_of,
            dn_attribute: "distinguishedName",
        };
        assert_eq!(
            groups_filter("(&(member={dn})(objectClass=groupOfNames))", q, 0),
            "(&(member=cn=John Doe \\28external\\29,ou=users,dc=example,dc=com)(objectClass=groupOfNames))"
        );
        assert_eq!(groups_filter("(uid={username})", q, 0), "(uid=john)");
        assert_eq!(
            groups_filter("(|{memberof:rdn})", q, 0),
            "(|(cn=admins)(cn=dev \\28team\\29))"
        );
        assert_eq!(
            groups_filter("(|{memberof:dn})", q, 0),
            "(|(distinguishedName=cn=admins,ou=groups,dc=example,dc=com)(distinguishedName=cn=dev \\28team\\29,ou=groups,dc=example,dc=com))"
        );
    }
}
