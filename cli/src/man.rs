//! `portcullis man --dir DIR`: the man pages packages install (`portcullis.1`, one page per
//! command such as `portcullis-check-config.1`, and `portcullis-verify.1`).

use std::path::Path;

use clap::CommandFactory;

use crate::{Cli, CliError, Io};

fn render(command: &clap::Command, dir: &Path, name: &str) -> Result<(), CliError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .title(name.to_owned())
        .render(&mut page)
        .map_err(|e| CliError::failed(format!("man page {name}: {e}")))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page).map_err(|e| CliError::failed(format!("{}: {e}", path.display())))
}

/// Write every page into `dir` (created when missing).
pub(crate) fn write_all(dir: &Path, io: &mut Io<'_>) -> Result<u8, CliError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::failed(format!("{}: {e}", dir.display())))?;
    let root = Cli::command();
    render(&root, dir, "portcullis")?;
    let mut written = 1;
    for sub in root.get_subcommands().filter(|c| !c.is_hide_set()) {
        let name = format!("portcullis-{}", sub.get_name());
        render(sub, dir, &name)?;
        written += 1;
    }
    render(
        &portcullis_verify_server::Args::command(),
        dir,
        "portcullis-verify",
    )?;
    writeln!(
        io.out,
        "{} man pages written to {}",
        written + 1,
        dir.display()
    )?;
    Ok(0)
}
