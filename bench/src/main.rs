//! `portcullis-bench`: the tools `scripts/bench` runs (not library code: errors end the process).
//!
//! ```text
//! portcullis-bench hyper ADDR                    bare hyper server answering 200 to everything
//! portcullis-bench seed DB COUNT                 add COUNT sessions to a portcullis-verify SQLite file
//! portcullis-bench config PORT RULES USERS DB CACHE   print a portcullis-verify configuration
//! portcullis-bench startup IDLE_MS -- CMD [ARGS]  time CMD from spawn to its ready line, then its VmHWM
//! portcullis-bench memory DB                   RSS of this process before and after opening DB as a SqliteStore
//! portcullis-bench free-port                     print a free loopback TCP port
//! portcullis-bench axum ADDR                     bare axum server: 200 with one header (the baseline)
//! portcullis-bench fake-idp ADDR                 an OpenID provider logging everyone in as `bench`
//! portcullis-bench outpost-seed DB COUNT NAME    add COUNT sessions of provider NAME to an outpost file
//! ```

// A benchmark driver measures wall-clock time by nature; the clock rule is for the servers.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod outpost;

use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use portcullis_bench::{VerifyConfig, filler_session, verify_config};
use portcullis_session::{Lifetime, SessionStore, SqliteOptions, SqliteStore};
use rand::SeedableRng;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    match strs.as_slice() {
        ["hyper", addr] => hyper_baseline(addr.parse().expect("ADDR is ip:port")),
        ["axum", addr] => outpost::bare_axum(addr.parse().expect("ADDR is ip:port")),
        ["fake-idp", addr] => outpost::fake_idp(addr.parse().expect("ADDR is ip:port")),
        ["outpost-seed", db, count, name] => outpost::seed(
            Path::new(db),
            count.parse().expect("COUNT is a number"),
            name,
        ),
        ["seed", db, count] => seed(Path::new(db), count.parse().expect("COUNT is a number")),
        ["config", port, rules, users, db, cache] => {
            let config = VerifyConfig {
                port: port.parse().expect("PORT is a number"),
                rules: rules.parse().expect("RULES is a number"),
                users,
                db,
                basic_auth_cache: cache,
            };
            print!("{}", verify_config(&config).expect("configuration renders"));
        }
        ["startup", idle_ms, "--", command @ ..] if !command.is_empty() => {
            startup(idle_ms.parse().expect("IDLE_MS is a number"), command)
        }
        ["memory", db] => memory(Path::new(db)),
        ["free-port"] => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            println!("{}", listener.local_addr().expect("local address").port());
        }
        _ => {
            eprintln!(
                "usage: portcullis-bench hyper ADDR | seed DB COUNT | config PORT RULES USERS DB CACHE | startup IDLE_MS -- CMD [ARGS] | free-port"
            );
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Where the memory of a loaded session store goes: RSS before, at peak, and after opening `db`.
fn memory(db: &Path) {
    let before = status_kib("VmRSS:");
    let store = SqliteStore::open_with(db, SqliteOptions::default(), unix_now()).expect("open");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let count = runtime.block_on(store.count(unix_now())).expect("count");
    let (after, peak) = (status_kib("VmRSS:"), status_kib("VmHWM:"));
    println!(
        "sessions={count} rss_before_kib={before} rss_after_kib={after} hwm_kib={peak} bytes_per_session={}",
        (after.saturating_sub(before) * 1024) / (count.max(1) as u64)
    );
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The floor under any Rust HTTP server here: bare hyper on a multi-threaded tokio runtime (one
/// worker per core, as `portcullis-verify`), keep-alive, `TCP_NODELAY`, answering every request with
/// the `200 OK` text body `portcullis-verify` sends on an allow; no router, no timeouts, no limits.
/// (`portcullis-verify-server`'s example `baseline` is the same stack as `portcullis-verify`.)
fn hyper_baseline(addr: SocketAddr) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        println!("hyper baseline ready on {addr}");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|_request| async {
                    let mut response = Response::new(Full::new(&b"200 OK"[..]));
                    *response.status_mut() = StatusCode::OK;
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    );
                    Ok::<_, Infallible>(response)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// Add `count` sessions to the SQLite file: the schema is created by `SqliteStore` itself, the rows
/// are inserted in one transaction with the statement `SqliteStore::put` uses, and the file is then
/// reopened with `SqliteStore` to check that every row loads.
fn seed(db: &Path, count: usize) {
    let started = Instant::now();
    let now = unix_now();
    // Twelve hours: nothing expires during a benchmark run.
    let lifetime = Lifetime {
        expiration: 12 * 3600,
        ..Lifetime::default()
    };
    drop(SqliteStore::open_with(db, SqliteOptions::default(), now).expect("open the store"));
    let mut conn = rusqlite::Connection::open(db).expect("open the file");
    let tx = conn.transaction().expect("begin");
    {
        let mut insert = tx
            .prepare(
                "INSERT OR REPLACE INTO portcullis_sessions (id, username, expires_at, last_activity, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .expect("the portcullis_sessions table");
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for i in 0..count {
            let session = filler_session(&mut rng, i, now, &lifetime);
            let data = serde_json::to_string(&session).expect("session encodes");
            insert
                .execute(rusqlite::params![
                    session.id.as_str(),
                    session.identity.username.to_lowercase(),
                    i64::try_from(session.expires_at).expect("fits"),
                    i64::try_from(session.last_activity).expect("fits"),
                    data,
                ])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
    drop(conn);
    let store = SqliteStore::open_with(db, SqliteOptions::default(), now).expect("reopen");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let loaded = runtime.block_on(store.count(now)).expect("count");
    assert!(loaded >= count, "only {loaded} of {count} sessions load");
    println!(
        "seeded {count} sessions into {} in {:.1} s ({loaded} load)",
        db.display(),
        started.elapsed().as_secs_f64()
    );
}

/// Spawn `command`, wait for the `portcullis-verify ready` line on its stdout, print the time from
/// spawn to that line, wait `idle_ms`, print its peak RSS (`VmHWM`), and kill it.
fn startup(idle_ms: u64, command: &[&str]) {
    let started = Instant::now();
    let mut child = Command::new(command[0])
        .args(&command[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    // Keep draining stdout after the ready line, so the server never writes to a closed pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("portcullis-verify ready") {
                let _ = tx.send(started.elapsed());
            }
        }
    });
    let Ok(ready) = rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = child.kill();
        panic!("{} gave no ready line within 60 s", command[0]);
    };
    std::thread::sleep(Duration::from_millis(idle_ms));
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .unwrap_or("0")
            .to_owned()
    };
    println!(
        "ready_ms={:.1} hwm_kib={} rss_kib={}",
        ready.as_secs_f64() * 1000.0,
        field("VmHWM:"),
        field("VmRSS:")
    );
    let _ = child.kill();
    let _ = child.wait();
}
