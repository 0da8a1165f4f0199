//! Where passwords come from when they are not flags: a terminal (no echo) or a pipe.

use std::collections::VecDeque;
use std::io::{self, BufRead, IsTerminal};

/// A source of passwords.
pub trait Input {
    /// Whether standard input is an interactive terminal.
    fn is_terminal(&self) -> bool;
    /// Show `prompt` on the terminal and read a line without echo.
    fn prompt_hidden(&mut self, prompt: &str) -> io::Result<String>;
    /// Read one line from standard input, without its line ending.
    fn read_line(&mut self) -> io::Result<String>;
}

/// The process's standard input; prompts go to the terminal, never to standard output.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdInput;

impl Input for StdInput {
    fn is_terminal(&self) -> bool {
        io::stdin().is_terminal()
    }

    fn prompt_hidden(&mut self, prompt: &str) -> io::Result<String> {
        rpassword::prompt_password(prompt)
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line)?;
        Ok(strip_line_ending(line))
    }
}

/// Canned answers, for tests and embedding: a pretend terminal or a pretend pipe.
#[derive(Debug, Clone)]
pub struct ScriptedInput {
    terminal: bool,
    lines: VecDeque<String>,
    /// The prompts shown so far.
    pub prompts: Vec<String>,
}

impl ScriptedInput {
    /// A terminal that answers the prompts with `lines`, in order.
    pub fn terminal<I, S>(lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            terminal: true,
            lines: lines.into_iter().map(Into::into).collect(),
            prompts: Vec::new(),
        }
    }

    /// A pipe holding `lines`.
    pub fn pipe<I, S>(lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            terminal: false,
            ..Self::terminal(lines)
        }
    }

    fn next(&mut self) -> io::Result<String> {
        self.lines
            .pop_front()
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no more input"))
    }
}

impl Input for ScriptedInput {
    fn is_terminal(&self) -> bool {
        self.terminal
    }

    fn prompt_hidden(&mut self, prompt: &str) -> io::Result<String> {
        self.prompts.push(prompt.to_owned());
        self.next()
    }

    fn read_line(&mut self) -> io::Result<String> {
        // An empty pipe reads as an empty line, like end of file on standard input.
        Ok(self.next().unwrap_or_default())
    }
}

fn strip_line_ending(mut line: String) -> String {
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_are_removed_once() {
        assert_eq!(strip_line_ending("pw\n".into()), "pw");
        assert_eq!(strip_line_ending("pw\r\n".into()), "pw");
        assert_eq!(strip_line_ending("pw".into()), "pw");
        assert_eq!(strip_line_ending("pw \n".into()), "pw ", "spaces are kept");
        assert_eq!(strip_line_ending("\n".into()), "");
    }
}
