//! Programs: finding them (or skipping the test), running them with their output in log files, and
//! stopping them on drop.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// The virtual environment `scripts/test` installs the pinned proxies into
/// (`tests/proxies-requirements.txt`): `PORTCULLIS_PROXIES_VENV`, else `target/proxies-venv`.
pub fn proxies_venv() -> PathBuf {
    std::env::var_os("PORTCULLIS_PROXIES_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("proxies-venv")
        })
}

/// Find a program on `PATH`, also in the sbin folders (Debian's nginx and haproxy live in
/// `/usr/sbin`, which is not on every user's `PATH`). Two names come from the pinned wheels
/// instead: `traefik`, `caddy-current` (Caddy's current release; Debian's 2.6 keeps `caddy`), and
/// `aiosmtpd` (the venv's Python, which has it).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let pinned = match name {
        "traefik" => Some("traefik"),
        "caddy-current" => Some("caddy"),
        // The venv's Python, which has aiosmtpd (tests/smtp/server.py).
        "aiosmtpd" => Some("python3"),
        _ => None,
    };
    if let Some(binary) = pinned {
        let candidate = proxies_venv().join("bin").join(binary);
        return candidate.is_file().then_some(candidate);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The name of the running test (libtest names each test's thread after it).
pub fn current_test_name() -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("unnamed test")
        .to_owned()
}

/// Where skipped tests are listed: `PORTCULLIS_TESTS_SKIPPED`, else
/// `target/portcullis-tests-skipped.txt` in the workspace.
pub fn skip_file() -> PathBuf {
    std::env::var_os("PORTCULLIS_TESTS_SKIPPED")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("portcullis-tests-skipped.txt")
        })
}

/// True when every program is installed. Otherwise: with `CI` set, panic (a missing program fails
/// the run); without it, report the test as skipped by name and return false.
pub fn require(programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| find_program(p).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let test = current_test_name();
    let missing = missing.join(", ");
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {missing} not installed and CI is set (scripts/test installs it)");
    }
    let line = format!("SKIPPED (missing {missing}): {test}");
    // Straight to the stderr stream: libtest hides eprintln! output of passing tests.
    let _ = writeln!(std::io::stderr(), "{line}");
    let file = skip_file();
    if let Some(parent) = file.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(&file) {
        let _ = writeln!(f, "{line}");
    }
    false
}

/// A free port for a program the harness starts, below the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`, 32768–60999 by default). A port from that range, once
/// released, can be handed to any outgoing connection as its source port before the program
/// binds it — the program then fails with "address already in use", or a client polling it
/// connects to itself. Ports below the range are never picked by the kernel; each one is handed
/// out once per test process (a per-process starting point keeps concurrent test processes
/// apart) and only after a bind on all interfaces succeeded (Caddy listens on `:port`).
pub fn free_port() -> u16 {
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(u32::MAX);
    let start = std::process::id().wrapping_mul(7_919) % COUNT;
    let _ = NEXT.compare_exchange(
        u32::MAX,
        start,
        std::sync::atomic::Ordering::Relaxed,
        std::sync::atomic::Ordering::Relaxed,
    );
    for _ in 0..COUNT {
        let offset = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % COUNT;
        let Ok(port) = u16::try_from(FIRST + offset) else {
            continue;
        };
        let free = TcpListener::bind(("0.0.0.0", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + COUNT)
}

/// A free loopback address.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A running program. Killed (with its process group when it has one of its own) on drop.
pub struct Process {
    name: String,
    child: Child,
    own_group: bool,
    /// Its stdout and stderr files.
    pub logs: Vec<PathBuf>,
}

impl Process {
    /// Start `command` with stdout and stderr in `<dir>/<name>.stdout.log` and `.stderr.log`.
    /// With `own_group`, the program gets its own process group and the whole group is killed on
    /// drop (chromedriver: the browser's processes go with it).
    pub fn spawn(name: &str, mut command: Command, dir: &Path, own_group: bool) -> Self {
        let out = dir.join(format!("{name}.stdout.log"));
        let err = dir.join(format!("{name}.stderr.log"));
        command
            .stdin(Stdio::null())
            .stdout(File::create(&out).expect("log file"))
            .stderr(File::create(&err).expect("log file"));
        if own_group {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        Self {
            name: name.to_owned(),
            child,
            own_group,
            logs: vec![out, err],
        }
    }

    /// The exit status if the program has stopped.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Panic (with its output) if the program has stopped.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.exited() {
            panic!(
                "{} exited early ({status}):\n{}",
                self.name,
                self.logs
                    .iter()
                    .map(|l| tail(l, 60))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.own_group {
            // The group id is the child's pid (process_group(0)); this ends the programs we started.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `lines` lines of a file, headed by its path.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("(unreadable: {e})"));
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    format!(
        "----- {} (last {} of {} lines) -----\n{}",
        path.display(),
        all.len() - start,
        all.len(),
        all[start..].join("\n")
    )
}

/// Log files printed to stderr on drop when the thread is panicking (a failed test).
#[derive(Default)]
pub struct FailureLogs {
    /// Files to print.
    pub files: Vec<PathBuf>,
}

impl Drop for FailureLogs {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for file in &self.files {
                eprintln!("{}", tail(file, 150));
            }
        }
    }
}

/// A throwaway `redis-server` on a free loopback port (no persistence), owned by the returned
/// process: it stops when that is dropped. Waits until it accepts connections.
pub fn redis_server(dir: &Path) -> (Process, u16) {
    let port = free_port();
    let mut command = Command::new(find_program("redis-server").expect("redis-server"));
    command.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    let process = Process::spawn("redis-server", command, dir, false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (process, port)
}
