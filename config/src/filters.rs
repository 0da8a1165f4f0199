//! Authelia's configuration file filters, run on the text before it is parsed:
//! `expand-env` replaces `$VAR` and `${VAR}` with the environment's values, and `template` runs
//! Go-template actions (`{{ env "X" }}`, `{{ secret "/run/secrets/x" | mindent 10 "|" | msquote }}`)
//! with the functions Authelia's configuration files use. Errors name the file and the line of the
//! action.

use std::path::Path;

use base64::Engine;

use crate::ConfigError;

/// One filter, as named in `X_AUTHELIA_CONFIG_FILTERS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Filter {
    /// `expand-env`: `$VAR` / `${VAR}` from the environment.
    ExpandEnv,
    /// `template`: Go-template actions.
    Template,
}

impl Filter {
    /// Parse a comma-separated filter list (`template`, `expand-env`); `None` names the unknown one.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| match name {
                "expand-env" => Ok(Self::ExpandEnv),
                "template" => Ok(Self::Template),
                other => Err(other.to_owned()),
            })
            .collect()
    }
}

/// What the filters may read: environment variables and files.
pub trait FilterInputs {
    /// An environment variable.
    fn var(&self, name: &str) -> Option<String>;
    /// A file's contents.
    fn read(&self, path: &Path) -> std::io::Result<String>;
}

/// The process environment and file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessInputs;

impl FilterInputs for ProcessInputs {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// Run `filters` in order over `source`, the text of `file`.
pub fn apply_filters(
    filters: &[Filter],
    file: &Path,
    source: &str,
    inputs: &dyn FilterInputs,
) -> Result<String, ConfigError> {
    let mut text = source.to_owned();
    for filter in filters {
        text = match filter {
            Filter::ExpandEnv => expand_env(&text, inputs),
            Filter::Template => render(file, &text, inputs)?,
        };
    }
    Ok(text)
}

/// `$VAR` and `${VAR}` replaced; unset variables become empty, as Go's `os.ExpandEnv`.
fn expand_env(text: &str, inputs: &dyn FilterInputs) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if consumed == 0 || name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        out.push_str(&inputs.var(name).unwrap_or_default());
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

/// A value inside a template: text or a number.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Text(String),
    Number(i64),
}

impl Value {
    fn text(self) -> String {
        match self {
            Value::Text(t) => t,
            Value::Number(n) => n.to_string(),
        }
    }
}

struct Renderer<'a> {
    file: &'a Path,
    source: &'a str,
    inputs: &'a dyn FilterInputs,
    /// Byte offset of the action being evaluated, for the error's line.
    at: usize,
}

fn render(file: &Path, source: &str, inputs: &dyn FilterInputs) -> Result<String, ConfigError> {
    let mut r = Renderer {
        file,
        source,
        inputs,
        at: 0,
    };
    let mut out = String::with_capacity(source.len());
    let mut pos = 0;
    while let Some(open) = source[pos..].find("{{").map(|i| pos + i) {
        let mut text = &source[pos..open];
        r.at = open;
        let mut inner_start = open + 2;
        if source[inner_start..].starts_with('-') {
            text = text.trim_end();
            inner_start += 1;
        }
        out.push_str(text);
        let close = source[inner_start..]
            .find("}}")
            .map(|i| inner_start + i)
            .ok_or_else(|| r.error("unclosed template action: `{{` without `}}`"))?;
        let (inner_end, trim_after) = if source[..close].ends_with('-') && close > inner_start {
            (close - 1, true)
        } else {
            (close, false)
        };
        let action = source[inner_start..inner_end].trim();
        if !(action.starts_with("/*") && action.ends_with("*/")) {
            let value = r.pipeline(action)?;
            out.push_str(&value.text());
        }
        pos = close + 2;
        if trim_after {
            let rest = &source[pos..];
            pos += rest.len() - rest.trim_start().len();
        }
    }
    out.push_str(&source[pos..]);
    Ok(out)
}

impl Renderer<'_> {
    fn error(&self, message: impl Into<String>) -> ConfigError {
        let line = self.source[..self.at.min(self.source.len())]
            .matches('\n')
            .count()
            + 1;
        ConfigError {
            file: self.file.to_owned(),
            line: Some(line),
            key: String::new(),
            message: format!("template: {}", message.into()),
        }
    }

    /// `cmd | cmd | …`: each command after the first gets the previous value as its last argument.
    fn pipeline(&self, text: &str) -> Result<Value, ConfigError> {
        let mut value = None;
        for command in split_top_level(text, '|') {
            let tokens = self.tokens(command.trim())?;
            let Some((name, args)) = tokens.split_first() else {
                return Err(self.error("empty command in a pipeline"));
            };
            let mut args: Vec<Value> = args
                .iter()
                .map(|t| self.argument(t))
                .collect::<Result<_, _>>()?;
            if let Some(piped) = value.take() {
                args.push(piped);
            }
            value = Some(match name {
                Token::Word(word) => self.call(word, args)?,
                other if args.is_empty() => self.argument(other)?,
                _ => return Err(self.error("a value cannot take arguments")),
            });
        }
        value.ok_or_else(|| self.error("empty action"))
    }

    fn argument(&self, token: &Token) -> Result<Value, ConfigError> {
        match token {
            Token::Text(t) => Ok(Value::Text(t.clone())),
            Token::Number(n) => Ok(Value::Number(*n)),
            Token::Group(inner) => self.pipeline(inner),
            Token::Word(w) => self.call(w, Vec::new()),
        }
    }

    fn tokens(&self, text: &str) -> Result<Vec<Token>, ConfigError> {
        let mut tokens = Vec::new();
        let mut chars = text.char_indices().peekable();
        while let Some(&(start, c)) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
                continue;
            }
            match c {
                '"' => {
                    chars.next();
                    let mut value = String::new();
                    let mut closed = false;
                    while let Some((_, c)) = chars.next() {
                        match c {
                            '"' => {
                                closed = true;
                                break;
                            }
                            '\\' => match chars.next().map(|(_, e)| e) {
                                Some('n') => value.push('\n'),
                                Some('t') => value.push('\t'),
                                Some('r') => value.push('\r'),
                                Some(e @ ('\\' | '"' | '\'')) => value.push(e),
                                _ => return Err(self.error("unknown escape in a string")),
                            },
                            c => value.push(c),
                        }
                    }
                    if !closed {
                        return Err(self.error("unterminated string"));
                    }
                    tokens.push(Token::Text(value));
                }
                '`' => {
                    chars.next();
                    let rest = &text[start + 1..];
                    let end = rest
                        .find('`')
                        .ok_or_else(|| self.error("unterminated raw string"))?;
                    tokens.push(Token::Text(rest[..end].to_owned()));
                    for _ in 0..=rest[..end].chars().count() {
                        chars.next();
                    }
                }
                '(' => {
                    let mut depth = 0usize;
                    let mut end = None;
                    for (i, c) in text[start..].char_indices() {
                        match c {
                            '(' => depth += 1,
                            ')' => {
                                depth -= 1;
                                if depth == 0 {
                                    end = Some(start + i);
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                    let end = end.ok_or_else(|| self.error("unbalanced parenthesis"))?;
                    tokens.push(Token::Group(text[start + 1..end].to_owned()));
                    while chars.peek().is_some_and(|&(i, _)| i <= end) {
                        chars.next();
                    }
                }
                _ => {
                    let end = text[start..]
                        .find(|c: char| c.is_whitespace() || c == '(' || c == '"')
                        .map_or(text.len(), |i| start + i);
                    let word = &text[start..end];
                    tokens.push(match word.parse::<i64>() {
                        Ok(n) => Token::Number(n),
                        Err(_) => Token::Word(word.to_owned()),
                    });
                    while chars.peek().is_some_and(|&(i, _)| i < end) {
                        chars.next();
                    }
                }
            }
        }
        Ok(tokens)
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Result<Value, ConfigError> {
        let arity = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(self.error(format!("{name} takes {n} argument(s), got {}", args.len())))
            }
        };
        let text = |v: &Value| v.clone().text();
        let number = |v: &Value| match v {
            Value::Number(n) => usize::try_from(*n).map_err(|_| self.error("negative indent")),
            Value::Text(t) => t
                .parse()
                .map_err(|_| self.error(format!("{name}: {t:?} is not a number"))),
        };
        Ok(Value::Text(match name {
            "env" => {
                arity(1)?;
                self.inputs.var(&text(&args[0])).unwrap_or_default()
            }
            "mustEnv" => {
                arity(1)?;
                let var = text(&args[0]);
                self.inputs
                    .var(&var)
                    .ok_or_else(|| self.error(format!("environment variable {var} is not set")))?
            }
            "expandenv" => {
                arity(1)?;
                expand_env(&text(&args[0]), self.inputs)
            }
            "secret" | "fileContent" => {
                arity(1)?;
                let path = text(&args[0]);
                let content = self
                    .inputs
                    .read(Path::new(&path))
                    .map_err(|e| self.error(format!("{name} {path:?}: {e}")))?;
                if name == "secret" {
                    content.trim_end_matches(['\r', '\n']).to_owned()
                } else {
                    content
                }
            }
            "trim" => {
                arity(1)?;
                text(&args[0]).trim().to_owned()
            }
            "quote" => {
                arity(1)?;
                format!("{:?}", text(&args[0]))
            }
            "squote" => {
                arity(1)?;
                format!("'{}'", text(&args[0]))
            }
            // The m- forms leave a multi-line value alone (it goes into a YAML block scalar).
            "mquote" | "msquote" => {
                arity(1)?;
                let value = text(&args[0]);
                if value.contains('\n') {
                    value
                } else if name == "mquote" {
                    format!("{value:?}")
                } else {
                    format!("'{value}'")
                }
            }
            "indent" | "nindent" => {
                arity(2)?;
                let indented = indent(number(&args[0])?, &text(&args[1]));
                if name == "nindent" {
                    format!("\n{indented}")
                } else {
                    indented
                }
            }
            "mindent" => {
                arity(3)?;
                let value = text(&args[2]);
                if value.contains('\n') {
                    format!("{}\n{}", text(&args[1]), indent(number(&args[0])?, &value))
                } else {
                    value
                }
            }
            "b64enc" => {
                arity(1)?;
                base64::engine::general_purpose::STANDARD.encode(text(&args[0]))
            }
            "b64dec" => {
                arity(1)?;
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(text(&args[0]).trim())
                    .map_err(|e| self.error(format!("b64dec: {e}")))?;
                String::from_utf8(decoded).map_err(|_| self.error("b64dec: not UTF-8"))?
            }
            "default" => {
                arity(2)?;
                let value = text(&args[1]);
                if value.is_empty() {
                    text(&args[0])
                } else {
                    value
                }
            }
            other => return Err(self.error(format!("unknown function {other:?}"))),
        }))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Number(i64),
    Group(String),
}

/// Every line prefixed with `n` spaces.
fn indent(n: usize, text: &str) -> String {
    let pad = " ".repeat(n);
    text.split('\n')
        .map(|line| format!("{pad}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Split on `separator` outside strings and parentheses.
fn split_top_level(text: &str, separator: char) -> Vec<&str> {
    let (mut parts, mut start, mut depth, mut quote) = (Vec::new(), 0, 0usize, None);
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (None, '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth = depth.saturating_sub(1),
            (None, c) if c == separator && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
        escaped = false;
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests;
