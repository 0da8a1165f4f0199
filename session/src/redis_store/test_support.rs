//! A real `redis-server` for tests, started on a free loopback port and killed on drop. When
//! `redis-server` is missing the test is skipped (said on stderr and in `PORTCULLIS_TESTS_SKIPPED`),
//! unless `CI` is set: then it fails.

// Tests wait for real processes and sockets on the wall clock; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::RedisConfig;

/// Record a skipped test in the list `scripts/test` prints (`PORTCULLIS_TESTS_SKIPPED`), so that a
/// skip is never silent.
pub(crate) fn report_skip(why: &str) {
    use std::io::Write;
    let name = std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_owned();
    eprintln!("SKIPPED: {name}: {why}");
    if let Some(path) = std::env::var_os("PORTCULLIS_TESTS_SKIPPED")
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(file, "{name} ({why})");
    }
}

pub(crate) struct RedisServer {
    child: Child,
    pub(crate) port: u16,
    _dir: std::path::PathBuf,
}

impl RedisServer {
    /// `None` (test skipped, said on stderr) when redis-server is missing and `CI` is not set.
    pub(crate) fn start_on(port: Option<u16>) -> Option<Self> {
        let Ok(path) = which("redis-server") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is required when CI is set"
            );
            report_skip("redis-server not installed");
            return None;
        };
        let port = port.unwrap_or_else(free_port);
        let dir =
            std::env::temp_dir().join(format!("portcullis-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(path)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
            ])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    pub(crate) fn config(&self) -> RedisConfig {
        RedisConfig {
            port: self.port,
            timeout: Duration::from_millis(500),
            ..RedisConfig::default()
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn which(program: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(program))
                .find(|p| p.is_file())
        })
        .ok_or(())
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
