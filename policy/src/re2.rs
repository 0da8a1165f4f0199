//! Go RE2 patterns on the Rust `regex` crate (docs/reference/forward-auth.md §10.4,
//! docs/reference/outpost.md §14 item 6).
//!
//! The two dialects share their syntax except for a few points, which [`translate`] rewrites before
//! compiling:
//!
//! - `\d`, `\w`, `\s` (and `\D`, `\W`, `\S`) are ASCII-only in Go: they become `[0-9]`,
//!   `[0-9A-Za-z_]`, `[\t\n\f\r ]` (nested classes when they appear inside a class);
//! - `\b` and `\B` are ASCII word boundaries in Go: they become `(?-u:\b)` and `(?-u:\B)`;
//! - `\Q…\E` quotes literal text in Go: it becomes the escaped literal;
//! - `\<` and `\>` are literal `<` and `>` in Go (word boundaries in Rust);
//! - a `{` that does not start a counted repetition is a literal in Go (an error in Rust);
//! - inside a class, `[`, `&` and `~` are literals in Go (nested classes and set operators in Rust).
//!
//! Only those constructs are touched, so non-ASCII literals and the Unicode meaning of `.` and `\pL`
//! stay as Go has them.

use regex_automata::meta;
use regex_automata::{Input, MatchKind, PatternID, PatternSet};
use regex_syntax::hir::Look;

/// Rewrite a Go RE2 pattern into a Rust `regex` pattern with the same meaning.
pub(crate) fn translate(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                let Some(&next) = chars.get(i + 1) else {
                    // A trailing backslash: let the regex parser report it.
                    out.push('\\');
                    i += 1;
                    continue;
                };
                i += 2;
                match next {
                    'Q' => {
                        let mut literal = String::new();
                        while i < chars.len() {
                            if chars[i] == '\\' && chars.get(i + 1) == Some(&'E') {
                                i += 2;
                                break;
                            }
                            literal.push(chars[i]);
                            i += 1;
                        }
                        out.push_str(&regex_syntax::escape(&literal));
                    }
                    'b' => out.push_str(r"(?-u:\b)"),
                    'B' => out.push_str(r"(?-u:\B)"),
                    '<' | '>' => out.push(next),
                    'p' | 'P' | 'x' if chars.get(i) == Some(&'{') => {
                        // `\p{Greek}`, `\x{10FFFF}`: the braces belong to the escape.
                        out.push('\\');
                        out.push(next);
                        while i < chars.len() {
                            out.push(chars[i]);
                            i += 1;
                            if chars[i - 1] == '}' {
                                break;
                            }
                        }
                    }
                    c => match perl_class(c) {
                        Some(class) => out.push_str(class),
                        None => {
                            out.push('\\');
                            out.push(c);
                        }
                    },
                }
            }
            '[' => i = translate_class(&chars, i, &mut out),
            '{' => match counted_repetition(&chars, i) {
                Some(end) => {
                    out.extend(&chars[i..=end]);
                    i = end + 1;
                }
                None => {
                    out.push_str(r"\{");
                    i += 1;
                }
            },
            '}' => {
                out.push_str(r"\}");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// The ASCII class Go gives a Perl class escape, written as a (nestable) bracket class.
fn perl_class(c: char) -> Option<&'static str> {
    Some(match c {
        'd' => "[0-9]",
        'D' => "[^0-9]",
        'w' => "[0-9A-Za-z_]",
        'W' => "[^0-9A-Za-z_]",
        's' => r"[\t\n\f\r ]",
        'S' => r"[^\t\n\f\r ]",
        _ => return None,
    })
}

/// `{n}`, `{n,}` or `{n,m}` starting at `start`: the index of the closing brace.
fn counted_repetition(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    let digits = |i: &mut usize| {
        let from = *i;
        while chars.get(*i).is_some_and(char::is_ascii_digit) {
            *i += 1;
        }
        *i > from
    };
    if !digits(&mut i) {
        return None;
    }
    if chars.get(i) == Some(&',') {
        i += 1;
        digits(&mut i);
    }
    (chars.get(i) == Some(&'}')).then_some(i)
}

/// Translate the class opening at `start`; returns the index after it. An unterminated class is
/// copied as is for the regex parser to reject.
fn translate_class(chars: &[char], start: usize, out: &mut String) -> usize {
    let mut i = start + 1;
    let mut class = String::from("[");
    if chars.get(i) == Some(&'^') {
        class.push('^');
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        class.push_str(r"\]");
        i += 1;
    }
    while i < chars.len() {
        match chars[i] {
            ']' => {
                class.push(']');
                out.push_str(&class);
                return i + 1;
            }
            '[' if chars.get(i + 1) == Some(&':') => {
                // A POSIX class `[:alpha:]` (ASCII in both dialects) is kept verbatim.
                match find_posix_end(chars, i) {
                    Some(end) => {
                        class.extend(&chars[i..=end]);
                        i = end + 1;
                    }
                    None => {
                        class.push_str(r"\[");
                        i += 1;
                    }
                }
            }
            '[' | '&' | '~' => {
                class.push('\\');
                class.push(chars[i]);
                i += 1;
            }
            '\\' => {
                let Some(&next) = chars.get(i + 1) else {
                    class.push('\\');
                    i += 1;
                    continue;
                };
                i += 2;
                match perl_class(next) {
                    Some(nested) => class.push_str(nested),
                    None if next == '<' || next == '>' => class.push(next),
                    None => {
                        class.push('\\');
                        class.push(next);
                    }
                }
            }
            c => {
                class.push(c);
                i += 1;
            }
        }
    }
    out.push_str(&class);
    i
}

fn find_posix_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start + 2;
    while i + 1 < chars.len() {
        if chars[i] == ':' && chars[i + 1] == ']' {
            return Some(i + 1);
        }
        if !(chars[i].is_ascii_alphabetic() || chars[i] == '^') {
            return None;
        }
        i += 1;
    }
    None
}

/// A compiled pattern and the (translated) text it was compiled from.
///
/// Built on `regex_automata`'s meta engine rather than `regex::Regex` so that the fully compiled
/// DFA can be switched off: another dependency turns that engine on for every regex in the binary,
/// and building it for each of a thousand access rules made start-up several times slower
/// (BENCHMARKS.md, "Start to ready"), while the lazy DFA that remains searches these short
/// hosts, paths and query values as fast.
#[derive(Debug, Clone)]
pub(crate) struct Regex {
    regex: meta::Regex,
    source: String,
}

/// The meta engine configured as `regex::Regex` is, without the fully compiled DFA.
fn config(kind: MatchKind) -> meta::Config {
    meta::Config::new().match_kind(kind).dfa(false)
}

/// The parser's message for a pattern that does not compile.
fn message(error: &meta::BuildError) -> String {
    error
        .syntax_error()
        .map_or_else(|| error.to_string(), ToString::to_string)
}

/// Compile a Go RE2 pattern with Go's meaning; the error is the parser's message.
pub(crate) fn compile(pattern: &str) -> Result<Regex, String> {
    let source = translate(pattern);
    let regex = meta::Builder::new()
        .configure(config(MatchKind::LeftmostFirst))
        .build(&source)
        .map_err(|e| message(&e))?;
    Ok(Regex { regex, source })
}

impl Regex {
    /// The translated pattern this was compiled from.
    pub(crate) fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the pattern matches anywhere in `haystack`.
    pub(crate) fn is_match(&self, haystack: &str) -> bool {
        self.regex.is_match(haystack)
    }

    /// The names of the capture groups in order, `None` for an unnamed one (group 0 first).
    pub(crate) fn capture_names(&self) -> impl Iterator<Item = Option<&str>> {
        self.regex.group_info().pattern_names(PatternID::ZERO)
    }

    /// True when some successive non-overlapping match of the pattern in `haystack` satisfies
    /// `accept`, which is given the text of a capture group by its index (empty when the group
    /// did not take part).
    pub(crate) fn any_match<'h>(
        &self,
        haystack: &'h str,
        mut accept: impl FnMut(&dyn Fn(usize) -> &'h str) -> bool,
    ) -> bool {
        self.regex.captures_iter(haystack).any(|caps| {
            let group = |i: usize| caps.get_group(i).map_or("", |span| &haystack[span.range()]);
            accept(&group)
        })
    }
}

/// Several compiled patterns run together: which of them match a haystack.
#[derive(Debug, Clone)]
pub(crate) struct RegexSet {
    set: meta::Regex,
}

impl RegexSet {
    /// Combine already compiled patterns; fails only on size limits.
    pub(crate) fn new(patterns: &[&str]) -> Result<RegexSet, String> {
        let set = meta::Builder::new()
            .configure(config(MatchKind::All))
            .build_many(patterns)
            .map_err(|e| message(&e))?;
        Ok(RegexSet { set })
    }

    /// The indices of the patterns that match `haystack`, ascending.
    pub(crate) fn matches(&self, haystack: &str) -> Vec<usize> {
        if !self.set.is_match(haystack) {
            return Vec::new();
        }
        let mut matched = PatternSet::new(self.set.pattern_len());
        self.set
            .which_overlapping_matches(&Input::new(haystack), &mut matched);
        matched.iter().map(|id| id.as_usize()).collect()
    }
}

/// True when every match of the pattern must start at the beginning of the haystack (`^` or `\A`
/// in front of every alternative).
pub(crate) fn anchored_at_start(pattern: &str) -> bool {
    regex_syntax::Parser::new()
        .parse(&translate(pattern))
        .is_ok_and(|hir| hir.properties().look_set_prefix().contains(Look::Start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_table() {
        let cases = [
            (r"\d+", r"[0-9]+"),
            (r"\D", r"[^0-9]"),
            (r"\w", r"[0-9A-Za-z_]"),
            (r"\s", r"[\t\n\f\r ]"),
            (r"\bx\B", r"(?-u:\b)x(?-u:\B)"),
            (r"[\d_]", r"[[0-9]_]"),
            (r"[^\s]", r"[^[\t\n\f\r ]]"),
            (r"\\d", r"\\d"),
            (r"\[\d\]", r"\[[0-9]\]"),
            (r"[\]\d]", r"[\][0-9]]"),
            (r"[]a]", r"[\]a]"),
            (r"[^]a]", r"[^\]a]"),
            (r"[[:alpha:]]", r"[[:alpha:]]"),
            (r"[a[b]", r"[a\[b]"),
            (r"[a&&b]", r"[a\&\&b]"),
            (r"[~~]", r"[\~\~]"),
            (r"\Q.*+\E\d", r"\.\*\+[0-9]"),
            (r"\Qa.b", r"a\.b"),
            (r"\<a\>", r"<a>"),
            (r"a{2}b{1,}c{1,3}", r"a{2}b{1,}c{1,3}"),
            (r"/api/{id}", r"/api/\{id\}"),
            (r"a{,3}", r"a\{,3\}"),
            (r"(?P<User>\w+)\.é\d", r"(?P<User>[0-9A-Za-z_]+)\.é[0-9]"),
            (r"\p{Greek}\pL\x{41}", r"\p{Greek}\pL\x{41}"),
        ];
        for (go, rust) in cases {
            assert_eq!(translate(go), rust, "{go}");
        }
    }

    #[test]
    fn ascii_meaning_of_perl_classes() {
        // Expected from Go's regexp/syntax documentation: \d = [0-9], \w = [0-9A-Za-z_],
        // \s = [\t\n\f\r ], \b = ASCII word boundary.
        let cases = [
            (r"^\d+$", "٣", false),
            (r"^\d+$", "123", true),
            (r"^\w+$", "é", false),
            (r"^\w+$", "a_Z9", true),
            (r"^\s$", "\u{a0}", false),
            (r"^\s$", "\u{b}", false),
            (r"^\s$", "\t", true),
            (r"^[\d]+$", "٣", false),
            (r"^[^\d]$", "٣", true),
            (r"^\D$", "٣", true),
            (r"\bé", "xé", true), // é is not an ASCII word character: boundary between x and é
            (r"x\b", "xé", true),
            (r"\bé\b", "é", false), // Unicode \b would match here
            (r"^\w\b", "aé", true), // and not here
            (r"^é\d$", "é1", true),
            (r"^/api/{id}$", "/api/{id}", true),
            (r"^\Q/a.b\E$", "/a.b", true),
            (r"^\Q/a.b\E$", "/axb", false),
            (r"^[a&&b]+$", "a&b", true),
        ];
        for (pattern, input, expected) in cases {
            let re = compile(pattern).unwrap();
            assert_eq!(re.is_match(input), expected, "{pattern} on {input:?}");
        }
    }

    #[test]
    fn invalid_patterns_are_errors() {
        for pattern in ["(", "[a", r"a\", "(?=x)", r"\1"] {
            assert!(compile(pattern).is_err(), "{pattern}");
        }
    }

    #[test]
    fn start_anchoring() {
        let cases = [
            ("^/public/", true),
            (r"\A/public/", true),
            ("(?i)^/public/", true),
            ("^/a|^/b", true),
            ("^(/a|/b)", true),
            ("^/a|/b", false),
            ("/public/", false),
            ("public", false),
            ("(?m)^/a", false),
        ];
        for (pattern, expected) in cases {
            assert_eq!(anchored_at_start(pattern), expected, "{pattern}");
        }
    }
}
