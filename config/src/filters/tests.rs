//! The configuration filters: every function Authelia's files use, trim markers, and errors that
//! name the line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::*;

struct Fake {
    vars: HashMap<&'static str, &'static str>,
    files: HashMap<PathBuf, &'static str>,
}

impl FilterInputs for Fake {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).map(|v| (*v).to_owned())
    }
    fn read(&self, path: &Path) -> std::io::Result<String> {
        self.files
            .get(path)
            .map(|v| (*v).to_owned())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
    }
}

fn fake() -> Fake {
    Fake {
        vars: HashMap::from([
            ("SUITE_SUBNET", "192.168.240"),
            ("EMPTY", ""),
            ("HOST", "ldap"),
        ]),
        files: HashMap::from([
            (PathBuf::from("/run/secrets/jwt"), "s3cret\n"),
            (
                PathBuf::from("/run/secrets/key"),
                "-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
            ),
        ]),
    }
}

fn template(text: &str) -> Result<String, ConfigError> {
    apply_filters(&[Filter::Template], Path::new("c.yml"), text, &fake())
}

#[test]
fn functions_and_pipes() {
    let cases = [
        (
            r#"- '{{ env "SUITE_SUBNET" }}.202/32'"#,
            "- '192.168.240.202/32'",
        ),
        (r#"a: {{ env "UNSET" }}"#, "a: "),
        (r#"a: {{ mustEnv "HOST" }}"#, "a: ldap"),
        (r#"a: {{ secret "/run/secrets/jwt" }}"#, "a: s3cret"),
        (
            r#"a: {{ secret "/run/secrets/jwt" | squote }}"#,
            "a: 's3cret'",
        ),
        (
            r#"a: {{ secret "/run/secrets/jwt" | quote }}"#,
            "a: \"s3cret\"",
        ),
        (
            r#"a: {{ secret "/run/secrets/jwt" | mindent 4 "|" | msquote }}"#,
            "a: 's3cret'",
        ),
        (
            r#"a: {{ secret "/run/secrets/key" | mindent 4 "|" | msquote }}"#,
            "a: |\n    -----BEGIN KEY-----\n    abc\n    -----END KEY-----",
        ),
        (r#"a: {{ "x\ny" | indent 2 }}"#, "a:   x\n  y"),
        (r#"a: {{ "x" | nindent 2 }}"#, "a: \n  x"),
        (r#"a: {{ "  padded  " | trim }}"#, "a: padded"),
        (r#"a: {{ "hello" | b64enc }}"#, "a: aGVsbG8="),
        (r#"a: {{ "aGVsbG8=" | b64dec }}"#, "a: hello"),
        (
            r#"a: {{ env "EMPTY" | default "fallback" }}"#,
            "a: fallback",
        ),
        (r#"a: {{ env "HOST" | default "fallback" }}"#, "a: ldap"),
        (r#"a: {{ default "d" (env "UNSET") }}"#, "a: d"),
        (r#"a: {{ `raw "text"` }}"#, "a: raw \"text\""),
        (r#"a: {{ "${HOST}x" | expandenv }}"#, "a: ldapx"),
        ("a: {{/* a comment */}}b", "a: b"),
        ("key: |\n  {{- \"x\" }}", "key: |x"),
        ("a: {{ \"x\" -}}   \n  b", "a: xb"),
        (
            "no actions at all: {not one}",
            "no actions at all: {not one}",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(template(input).unwrap(), expected, "{input}");
    }
}

#[test]
fn errors_name_the_line() {
    let cases = [
        (
            "a: 1\nb: {{ nosuch \"x\" }}\n",
            2,
            "unknown function \"nosuch\"",
        ),
        (
            "a: 1\n\nc: {{ mustEnv \"UNSET_VAR\" }}\n",
            3,
            "UNSET_VAR is not set",
        ),
        ("a: {{ env \"X\"\n", 1, "unclosed"),
        ("a: {{ secret \"/run/secrets/none\" }}", 1, "no such file"),
        ("a: {{ env }}", 1, "takes 1 argument"),
        ("a: {{ \"open }}", 1, "unterminated string"),
        ("a: {{ (env \"X\" }}", 1, "unbalanced"),
    ];
    for (input, line, fragment) in cases {
        let e = template(input).unwrap_err();
        assert_eq!(e.line, Some(line), "{input}: {e}");
        assert_eq!(e.file, Path::new("c.yml"));
        assert!(e.message.contains(fragment), "{input}: {e}");
    }
}

#[test]
fn expand_env_and_the_filter_list() {
    let text = "a: $HOST\nb: ${SUITE_SUBNET}.1\nc: $UNSET.\nd: $$ and ${ and $";
    let out = apply_filters(&[Filter::ExpandEnv], Path::new("c.yml"), text, &fake()).unwrap();
    assert_eq!(out, "a: ldap\nb: 192.168.240.1\nc: .\nd: $$ and ${ and $");
    assert_eq!(
        Filter::parse_list("template, expand-env"),
        Ok(vec![Filter::Template, Filter::ExpandEnv])
    );
    assert_eq!(Filter::parse_list(""), Ok(vec![]));
    assert_eq!(
        Filter::parse_list("template,jinja"),
        Err("jinja".to_owned())
    );
    // Both, in order: the template's output is expanded afterwards.
    let out = apply_filters(
        &[Filter::Template, Filter::ExpandEnv],
        Path::new("c.yml"),
        r#"a: {{ "$HOST" }}"#,
        &fake(),
    )
    .unwrap();
    assert_eq!(out, "a: ldap");
}
