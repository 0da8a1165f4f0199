//! `portcullis`: parse arguments, run the command, map errors to exit codes (see the library).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use portcullis_cli::{Cli, Io, StdInput, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut err = std::io::stderr();
    let mut input = StdInput;
    let result = run(
        cli,
        &mut Io {
            out: &mut out,
            err: &mut err,
            input: &mut input,
        },
    );
    let _ = out.flush();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.code())
        }
    }
}
