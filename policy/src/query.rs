//! Query parsing with Go's `url.ParseQuery` rules (what Authelia's `query` criterion sees).

/// The decoded `key=value` pairs of a raw query, in order.
///
/// Like Go: pairs are separated by `&`; a pair containing `;` is dropped; empty pairs are dropped; key
/// and value are decoded with form rules (`+` is a space, `%XX` a byte); a pair with a bad escape in
/// its key or value is dropped. Bytes that are not UTF-8 become U+FFFD, as Go's regexp reads them.
pub(crate) fn parse(query: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for pair in query.split('&') {
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if let (Some(key), Some(value)) = (unescape(key), unescape(value)) {
            pairs.push((key, value));
        }
    }
    pairs
}

/// Form-decode one component; `None` on a bad escape.
fn unescape(text: &str) -> Option<String> {
    if !text.contains(['%', '+']) {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16))?;
                let lo = bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16))?;
                // Two hex digits fit in a byte.
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn go_parse_query_table() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("", &[]),
            ("a=1", &[("a", "1")]),
            ("a=1&a=2&b", &[("a", "1"), ("a", "2"), ("b", "")]),
            ("a=x+y%20z", &[("a", "x y z")]),
            ("%61=%2B", &[("a", "+")]),
            ("a=1;b=2&c=3", &[("c", "3")]),
            ("a=%zz&b=2", &[("b", "2")]),
            ("&&a=&", &[("a", "")]),
            ("a=b=c", &[("a", "b=c")]),
            ("a=%ff", &[("a", "\u{fffd}")]),
        ];
        for (query, expected) in cases {
            assert_eq!(parse(query), pairs(expected), "{query:?}");
        }
    }
}
