//! Finding the line of a key path in a YAML document, so that semantic errors (found after serde has
//! finished) still name a line. Indentation-based; good for the block-style YAML configuration files
//! are written in. Flow-style mappings are not searched: the caller then reports no line.

/// A path segment: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// Split `session.cookies[0].domain` into segments.
pub(crate) fn parse_path(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            let key = &rest[..open];
            if !key.is_empty() {
                out.push(Segment::Key(key.to_owned()));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(i) = stripped[..close].parse() {
                    out.push(Segment::Index(i));
                }
                rest = &stripped[close + 1..];
            }
        } else if !rest.is_empty() {
            out.push(Segment::Key(rest.to_owned()));
        }
    }
    out
}

struct Line<'a> {
    number: usize,
    indent: usize,
    item: bool,
    content: &'a str,
}

fn lines(source: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    for (i, raw) in source.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = raw.len() - trimmed.len();
        if let Some(after) = trimmed
            .strip_prefix('-')
            .filter(|a| a.is_empty() || a.starts_with(' '))
        {
            let inner = after.trim_start();
            let inner_indent = indent + 1 + (after.len() - inner.len());
            out.push(Line {
                number: i + 1,
                indent,
                item: true,
                content: "",
            });
            if !inner.is_empty() {
                out.push(Line {
                    number: i + 1,
                    indent: inner_indent,
                    item: false,
                    content: inner,
                });
            }
        } else {
            out.push(Line {
                number: i + 1,
                indent,
                item: false,
                content: trimmed,
            });
        }
    }
    out
}

fn key_of(content: &str) -> Option<&str> {
    let (key, _) = content.split_once(':')?;
    Some(key.trim().trim_matches(['"', '\'']))
}

/// The 1-based line of `path` in `source`, when it can be found.
pub fn locate(source: &str, path: &str) -> Option<usize> {
    let all = lines(source);
    let (mut start, mut end) = (0usize, all.len());
    let mut found = None;
    for segment in parse_path(path) {
        let block = all.get(start..end)?;
        let min_indent = block.iter().map(|l| l.indent).min()?;
        let (pos, line) = match &segment {
            Segment::Key(k) => block
                .iter()
                .enumerate()
                .find(|(_, l)| !l.item && l.indent == min_indent && key_of(l.content) == Some(k))?,
            Segment::Index(n) => block
                .iter()
                .enumerate()
                .filter(|(_, l)| l.item && l.indent == min_indent)
                .nth(*n)?,
        };
        found = Some(line.number);
        let begin = start + pos + 1;
        let stop = all[begin..end]
            .iter()
            .position(|l| {
                l.indent <= line.indent
                    && !(matches!(segment, Segment::Key(_)) && l.item && l.indent == line.indent)
            })
            .map_or(end, |p| begin + p);
        start = begin;
        end = stop;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
server:
  address: 'tcp://:9091/'
# comment
session:
  secret: x
  cookies:
    - domain: example.com
      authelia_url: https://auth.example.com
    -
      domain: example.org
      name: other
access_control:
  rules:
    - domain: a.example.com
      policy: bypass
";

    #[test]
    fn finds_keys_and_items() {
        assert_eq!(locate(DOC, "server.address"), Some(2));
        assert_eq!(locate(DOC, "session.cookies[0].domain"), Some(7));
        assert_eq!(locate(DOC, "session.cookies[0].authelia_url"), Some(8));
        assert_eq!(locate(DOC, "session.cookies[1].name"), Some(11));
        assert_eq!(locate(DOC, "session.cookies[1]"), Some(9));
        assert_eq!(locate(DOC, "access_control.rules[0].policy"), Some(15));
        assert_eq!(locate(DOC, "session.missing"), None);
        assert_eq!(locate(DOC, "session.cookies[5]"), None);
    }
}
