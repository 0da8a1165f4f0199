//! The proxies in front of the outpost, started from the example files of `examples/outpost/`
//! with the literal values of their header comments replaced.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Front, example, render};
use crate::process::{Process, find_program, free_port};
use crate::tls::CertFiles;

/// What a proxy needs to know.
pub(super) struct Wiring<'a> {
    pub(super) dir: &'a Path,
    pub(super) port: u16,
    pub(super) verify: SocketAddr,
    pub(super) outpost: SocketAddr,
    pub(super) upstream: SocketAddr,
    pub(super) certs: &'a CertFiles,
}

pub(super) fn start_front(front: Front, w: &Wiring<'_>) -> Option<(Process, Vec<PathBuf>)> {
    Some(match front {
        Front::NginxSingle => nginx(w, "nginx-single.conf"),
        Front::NginxDomain => nginx(w, "nginx-domain.conf"),
        Front::Caddy => caddy(w, "caddy"),
        Front::CaddyCurrent => caddy(w, "caddy-current"),
        Front::Traefik => traefik(w),
        Front::Haproxy => haproxy(w),
        Front::ProxyMode => return None,
    })
}

fn addresses(w: &Wiring<'_>) -> Vec<(&'static str, String)> {
    vec![
        ("127.0.0.1:9091", w.verify.to_string()),
        ("127.0.0.1:9000", w.outpost.to_string()),
        ("127.0.0.1:8080", w.upstream.to_string()),
    ]
}

fn cert_paths(w: &Wiring<'_>) -> Vec<(&'static str, String)> {
    vec![
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

fn nginx(w: &Wiring<'_>, file: &str) -> (Process, Vec<PathBuf>) {
    let dir = w.dir;
    let mut replacements = addresses(w);
    replacements.extend(cert_paths(w));
    replacements.push((
        "listen 443 ssl http2;",
        format!("listen 127.0.0.1:{} ssl http2;", w.port),
    ));
    if file == "nginx-domain.conf" {
        replacements.push((
            "https://auth.example.com/",
            format!("https://auth.example.com:{}/", w.port),
        ));
    }
    crate::proxy::run_nginx(dir, "outpost-nginx.conf", &render(file, &replacements))
}

fn caddy(w: &Wiring<'_>, program: &str) -> (Process, Vec<PathBuf>) {
    let dir = w.dir;
    let mut replacements = addresses(w);
    replacements.extend(cert_paths(w));
    replacements.push(("admin localhost:2019", "admin off".to_owned()));
    replacements.push(("http_port 80", format!("http_port {}", free_port())));
    replacements.push(("https_port 443", format!("https_port {}", w.port)));
    let file = dir.join("Caddyfile");
    std::fs::write(&file, render("Caddyfile", &replacements)).expect("write the Caddyfile");
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
    let mut replacements = addresses(w);
    replacements.extend(cert_paths(w));
    let dynamic = dir.join("traefik-dynamic.yml");
    std::fs::write(&dynamic, render("traefik.yml", &replacements)).expect("write traefik.yml");
    let access_log = dir.join("traefik-access.log");
    // The static configuration: one entry point (no trusted forwarders), the file provider, no
    // telemetry.
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
    let lua = dir.join("outpost.lua");
    std::fs::copy(example("outpost.lua"), &lua).expect("copy outpost.lua");
    let mut replacements = addresses(w);
    replacements.extend([
        ("bind :443", format!("bind 127.0.0.1:{}", w.port)),
        (
            "/etc/ssl/portcullis/example.com.pem",
            w.certs.combined.display().to_string(),
        ),
        ("/etc/haproxy/outpost.lua", lua.display().to_string()),
    ]);
    let file = dir.join("haproxy.cfg");
    std::fs::write(&file, render("haproxy.cfg", &replacements)).expect("write haproxy.cfg");
    let mut command = Command::new(find_program("haproxy").expect("haproxy"));
    // -db: foreground, no daemon; logs go to stderr through the config's `log stderr`.
    command.arg("-db").arg("-f").arg(&file);
    (Process::spawn("haproxy", command, dir, false), Vec::new())
}
