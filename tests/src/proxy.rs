//! The proxies under test, started from the example configurations in `examples/proxies/`. Each
//! example names, in its header comment, the literal values the harness replaces; [`render`] fails
//! when one is missing, so the examples cannot drift away from what is tested.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{Process, find_program, free_port};
use crate::tls::CertFiles;

/// Which proxy, and which Portcullis endpoint it asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxy {
    /// nginx `auth_request` → `/api/authz/auth-request`.
    Nginx,
    /// nginx `auth_request` → the legacy `/api/verify?rd=<portal>`.
    NginxLegacy,
    /// Debian's Caddy (2.6) `forward_auth` → `/api/authz/forward-auth`.
    Caddy,
    /// Caddy's current release (2.11, from its PyPI wheel), same Caddyfile.
    CaddyCurrent,
    /// Traefik 3.7 (from its PyPI wheel) `forwardAuth` → `/api/authz/forward-auth`.
    Traefik,
    /// HAProxy with `examples/proxies/portcullis.lua` → `/api/authz/forward-auth`.
    Haproxy,
}

impl Proxy {
    /// Programs it needs.
    pub fn programs(self) -> &'static [&'static str] {
        match self {
            Self::Nginx | Self::NginxLegacy => &["nginx"],
            Self::Caddy => &["caddy"],
            Self::CaddyCurrent => &["caddy-current"],
            Self::Traefik => &["traefik"],
            Self::Haproxy => &["haproxy"],
        }
    }

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::NginxLegacy => "nginx-legacy",
            Self::Caddy => "caddy",
            Self::CaddyCurrent => "caddy-current",
            Self::Traefik => "traefik",
            Self::Haproxy => "haproxy",
        }
    }
}

/// Where the examples are.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/proxies")
        .join(name)
}

/// Replace each `(from, to)` literal in the example file `name`; panic when a `from` is absent.
pub fn render(name: &str, replacements: &[(&str, String)]) -> String {
    let path = example(name);
    let mut text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    for (from, to) in replacements {
        assert!(
            text.contains(from),
            "{} no longer contains `{from}`, which the tests replace (see its header comment)",
            path.display()
        );
        text = text.replace(from, to);
    }
    text
}

/// What a proxy needs to know.
pub struct Wiring<'a> {
    /// The test's directory.
    pub dir: &'a Path,
    /// HTTPS port.
    pub port: u16,
    /// portcullis-verify.
    pub verify: SocketAddr,
    /// Further portcullis-verify replicas (nginx only: added to its `upstream portcullis`).
    pub more_verify: &'a [SocketAddr],
    /// The application.
    pub upstream: SocketAddr,
    /// Certificates.
    pub certs: &'a CertFiles,
}

/// Start `proxy`; returns the process and its log files (besides stdout and stderr).
pub fn start(proxy: Proxy, w: &Wiring<'_>) -> (Process, Vec<PathBuf>) {
    match proxy {
        Proxy::Nginx => nginx(w, false),
        Proxy::NginxLegacy => nginx(w, true),
        Proxy::Caddy => caddy(w, "caddy"),
        Proxy::CaddyCurrent => caddy(w, "caddy-current"),
        Proxy::Traefik => traefik(w),
        Proxy::Haproxy => haproxy(w),
    }
}

fn common(w: &Wiring<'_>) -> Vec<(&'static str, String)> {
    vec![
        ("127.0.0.1:9091", w.verify.to_string()),
        ("127.0.0.1:8080", w.upstream.to_string()),
        (
            "/etc/ssl/portcullis/example.com.crt",
            w.certs.chain.display().to_string(),
        ),
        (
            "/etc/ssl/portcullis/example.com.key",
            w.certs.key.display().to_string(),
        ),
    ]
}

const NGINX_AUTH_REQUEST: &str = "        proxy_pass http://portcullis/api/authz/auth-request;\n";
const NGINX_LEGACY: &str =
    "        # proxy_pass http://portcullis/api/verify?rd=https://auth.example.com/;\n";

fn nginx(w: &Wiring<'_>, legacy: bool) -> (Process, Vec<PathBuf>) {
    let dir = w.dir;
    let mut replacements = Vec::new();
    if !w.more_verify.is_empty() {
        // Several replicas: one `server` line each in `upstream portcullis` (replaced before the
        // address itself, which also appears in the header comment).
        let servers: String = std::iter::once(&w.verify)
            .chain(w.more_verify)
            .map(|a| format!("    server {a} max_fails=1 fail_timeout=1s;\n"))
            .collect();
        replacements.push(("    server 127.0.0.1:9091;\n", servers));
    }
    replacements.extend(common(w));
    replacements.push((
        "listen 443 ssl;",
        format!("listen 127.0.0.1:{} ssl;", w.port),
    ));
    if legacy {
        replacements.push((
            NGINX_AUTH_REQUEST,
            format!("        # {}", NGINX_AUTH_REQUEST.trim_start()),
        ));
        replacements.push((
            NGINX_LEGACY,
            format!(
                "        proxy_pass http://portcullis/api/verify?rd=https://auth.example.com:{}/;\n",
                w.port
            ),
        ));
    }
    let site = render("nginx.conf", &replacements);
    run_nginx(dir, "portcullis-nginx.conf", &site)
}

/// Start nginx in the foreground with `site` (written to `dir/site_name`) in its `http` context,
/// everything (pid, logs, temporary files) inside `dir`. Returns the process and its logs.
pub fn run_nginx(dir: &Path, site_name: &str, site: &str) -> (Process, Vec<PathBuf>) {
    std::fs::write(dir.join(site_name), site).expect("write nginx site");
    let tmp = dir.join("nginx-tmp");
    std::fs::create_dir_all(&tmp).expect("nginx temp dir");
    let error_log = dir.join("nginx-error.log");
    let access_log = dir.join("nginx-access.log");
    // The test's main file: one foreground process, everything inside the test's directory.
    let main = format!(
        "daemon off;\nmaster_process off;\npid {dir}/nginx.pid;\nerror_log {error} info;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         \x20 log_format e2e '$remote_addr \"$request\" host=$host status=$status auth=$upstream_status';\n\
         \x20 access_log {access} e2e;\n\
         \x20 client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n\
         \x20 fastcgi_temp_path {tmp}/fastcgi;\n  uwsgi_temp_path {tmp}/uwsgi;\n  scgi_temp_path {tmp}/scgi;\n\
         \x20 include {dir}/{site_name};\n}}\n",
        dir = dir.display(),
        error = error_log.display(),
        access = access_log.display(),
        tmp = tmp.display(),
    );
    let conf = dir.join("nginx-main.conf");
    std::fs::write(&conf, main).expect("write nginx.conf");
    let mut command = Command::new(find_program("nginx").expect("nginx"));
    command
        .arg("-e")
        .arg(&error_log)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf);
    let process = Process::spawn("nginx", command, dir, false);
    (process, vec![error_log, access_log])
}

fn caddy(w: &Wiring<'_>, program: &str) -> (Process, Vec<PathBuf>) {
    let dir = w.dir;
    let mut replacements = Vec::new();
    if !w.more_verify.is_empty() {
        // Several replicas: one `server` line each in `upstream portcullis` (replaced before the
        // address itself, which also appears in the header comment).
        let servers: String = std::iter::once(&w.verify)
            .chain(w.more_verify)
            .map(|a| format!("    server {a} max_fails=1 fail_timeout=1s;\n"))
            .collect();
        replacements.push(("    server 127.0.0.1:9091;\n", servers));
    }
    replacements.extend(common(w));
    replacements.push(("admin localhost:2019", "admin off".to_owned()));
    replacements.push(("http_port 80", format!("http_port {}", free_port())));
    replacements.push(("https_port 443", format!("https_port {}", w.port)));
    let file = dir.join("Caddyfile");
    std::fs::write(&file, render("Caddyfile", &replacements)).expect("write Caddyfile");
    let home = dir.join("caddy-home");
    std::fs::create_dir_all(&home).expect("caddy home");
    let mut command = Command::new(find_program(program).expect("caddy"));
    command
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&file)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"));
    (Process::spawn("caddy", command, dir, false), Vec::new())
}

fn traefik(w: &Wiring<'_>) -> (Process, Vec<PathBuf>) {
    let dir = w.dir;
    let dynamic = dir.join("traefik-dynamic.yml");
    std::fs::write(&dynamic, render("traefik.yml", &common(w))).expect("write traefik.yml");
    let access_log = dir.join("traefik-access.log");
    // The static configuration: one entry point, the file provider, no telemetry.
    let static_config = format!(
        "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\n\
         entryPoints:\n  websecure:\n    address: \"127.0.0.1:{port}\"\n\
         providers:\n  file:\n    filename: \"{dynamic}\"\n    watch: false\n\
         log:\n  level: INFO\n\
         accessLog:\n  filePath: \"{access}\"\n",
        port = w.port,
        dynamic = dynamic.display(),
        access = access_log.display(),
    );
    let file = dir.join("traefik-static.yml");
    std::fs::write(&file, static_config).expect("write the static configuration");
    let mut command = Command::new(find_program("traefik").expect("traefik"));
    command.arg(format!("--configFile={}", file.display()));
    (
        Process::spawn("traefik", command, dir, false),
        vec![access_log],
    )
}

fn haproxy(w: &Wiring<'_>) -> (Process, Vec<PathBuf>) {
    let dir = w.dir;
    let lua = dir.join("portcullis.lua");
    std::fs::copy(example("portcullis.lua"), &lua).expect("copy portcullis.lua");
    let replacements = vec![
        ("127.0.0.1:9091", w.verify.to_string()),
        ("127.0.0.1:8080", w.upstream.to_string()),
        ("bind :443", format!("bind 127.0.0.1:{}", w.port)),
        (
            "/etc/ssl/portcullis/example.com.pem",
            w.certs.combined.display().to_string(),
        ),
        ("/etc/haproxy/portcullis.lua", lua.display().to_string()),
    ];
    let file = dir.join("haproxy.cfg");
    std::fs::write(&file, render("haproxy.cfg", &replacements)).expect("write haproxy.cfg");
    let mut command = Command::new(find_program("haproxy").expect("haproxy"));
    // -db: foreground, no daemon; logs go to stderr through the config's `log stderr`.
    command.arg("-db").arg("-f").arg(&file);
    (Process::spawn("haproxy", command, dir, false), Vec::new())
}
