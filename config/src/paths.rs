//! Relative paths in a configuration file are taken from the file's folder, not from the working
//! directory the server happens to start in.

use std::path::{Path, PathBuf};

/// `path` as written in the configuration file `config_file`: absolute paths are kept, relative
/// ones are joined to the file's folder.
pub fn resolve_path(config_file: &Path, path: impl AsRef<Path>) -> PathBuf {
    let path = path.as_ref();
    if path.is_absolute() {
        return path.to_owned();
    }
    config_file
        .parent()
        .map_or_else(|| path.to_owned(), |folder| folder.join(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_to_the_configuration_folder() {
        let file = Path::new("/etc/portcullis/configuration.yml");
        assert_eq!(
            resolve_path(file, "users.yml"),
            Path::new("/etc/portcullis/users.yml")
        );
        assert_eq!(resolve_path(file, "/var/db"), Path::new("/var/db"));
        assert_eq!(
            resolve_path(Path::new("configuration.yml"), "./data/x"),
            Path::new("./data/x")
        );
    }
}
