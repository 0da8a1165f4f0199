//! `portcullis doctor`: what breaks deployments most often, checked, each with how to fix it.

use std::time::Duration;

use portcullis_core::TargetUrl;
use portcullis_server_core::clock::unix_now;
use portcullis_verify_server::config::Config;

use crate::{CliError, DoctorArgs, Io, load_config};

/// How far the server's clock may be from this machine's before sessions and bans misbehave.
const MAX_CLOCK_SKEW: u64 = 5;
/// A certificate that expires sooner than this is a warning.
const CERTIFICATE_WARNING_DAYS: i64 = 14;
const TIMEOUT: Duration = Duration::from_secs(5);

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Finding {
    Ok(String),
    Warning(String),
    Error(String),
}

impl Finding {
    fn line(&self) -> String {
        match self {
            Self::Ok(m) => format!("ok: {m}"),
            Self::Warning(m) => format!("warning: {m}"),
            Self::Error(m) => format!("error: {m}"),
        }
    }
}

/// `portcullis doctor`: findings on standard output; exit code 1 when any is an error.
pub(crate) fn doctor(args: &DoctorArgs, io: &mut Io<'_>) -> Result<u8, CliError> {
    let (config, _warnings) = load_config(&args.config.config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the runtime: {e}")))?;
    let mut findings = runtime.block_on(portal_urls(&config));
    findings.extend(trusted_proxies(&config));
    if let Some(url) = &args.url {
        findings.extend(runtime.block_on(server(url)));
    }
    for finding in &findings {
        writeln!(io.out, "{}", finding.line())?;
    }
    Ok(u8::from(
        findings.iter().any(|f| matches!(f, Finding::Error(_))),
    ))
}

/// Every portal URL lies inside its cookie domain (the configuration refuses anything else) and its
/// host resolves, so a browser sent there can reach the portal.
async fn portal_urls(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    for cookie in &config.cookies {
        let Some(url) = &cookie.authelia_url else {
            out.push(Finding::Warning(format!(
                "cookie domain {} has no authelia_url: only the legacy /api/verify?rd= can send users to log in; set session.cookies[].authelia_url",
                cookie.domain
            )));
            continue;
        };
        out.push(Finding::Ok(format!(
            "portal {url} lies inside the cookie domain {}",
            cookie.domain
        )));
        let Ok(parsed) = TargetUrl::parse(url) else {
            continue;
        };
        let port = parsed.port().unwrap_or(443);
        let host = parsed
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        out.push(reachability(&host, port, url).await);
    }
    out
}

/// Whether `host` resolves and something accepts connections on `port` (the proxy in front of
/// the portal).
async fn reachability(host: &str, port: u16, url: &str) -> Finding {
    let resolved: Vec<std::net::SocketAddr> =
        tokio::time::timeout(TIMEOUT, tokio::net::lookup_host((host, port)))
            .await
            .ok()
            .and_then(Result::ok)
            .map(Iterator::collect)
            .unwrap_or_default();
    if resolved.is_empty() {
        return Finding::Warning(format!(
            "portal host {host} does not resolve from here: browsers sent to {url} may not reach it; add it to DNS (and point it at the proxy in front of portcullis-verify)"
        ));
    }
    for addr in &resolved {
        let connect = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(addr)).await;
        if matches!(connect, Ok(Ok(_))) {
            return Finding::Ok(format!(
                "portal host {host} resolves and accepts connections on port {port}"
            ));
        }
    }
    Finding::Warning(format!(
        "portal host {host} resolves but nothing accepts connections on port {port}: is the proxy in front of portcullis-verify running there?"
    ))
}

/// Trusted proxies no wider than needed: everyone or public networks let clients choose their own
/// target and IP.
fn trusted_proxies(config: &Config) -> Vec<Finding> {
    let proxies = &config.trusted_proxies;
    if proxies.trusts_everyone() {
        return vec![Finding::Warning(
            "portcullis.trusted_proxies trusts every address (0.0.0.0/0 or ::/0): any client can choose the target and IP Portcullis judges; list only your proxies' addresses".to_owned(),
        )];
    }
    let public: Vec<String> = proxies
        .networks()
        .iter()
        .filter(|net| !is_private(net.network()))
        .map(ToString::to_string)
        .collect();
    if public.is_empty() {
        vec![Finding::Ok(format!(
            "forwarded headers are believed only from private networks ({} entries)",
            proxies.networks().len()
        ))]
    } else {
        vec![Finding::Warning(format!(
            "portcullis.trusted_proxies includes public networks ({}): every host there can choose the target Portcullis judges; narrow them to your proxies",
            public.join(", ")
        ))]
    }
}

fn is_private(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local()
        }
    }
}

/// The server at `url`: `/api/health`, its clock (the `Date` header) and its TLS certificate.
async fn server(url: &str) -> Vec<Finding> {
    let base = url.trim_end_matches('/');
    let health = format!("{base}/api/health");
    let client = |accept_any_certificate: bool| {
        reqwest::Client::builder()
            .timeout(TIMEOUT)
            .tls_info(true)
            .danger_accept_invalid_certs(accept_any_certificate)
            .build()
    };
    let mut out = Vec::new();
    let first = match client(false) {
        Ok(c) => c.get(&health).send().await,
        Err(e) => return vec![Finding::Error(format!("cannot build an HTTP client: {e}"))],
    };
    let response = match first {
        Ok(r) => r,
        Err(e) => {
            // A certificate this machine does not trust fails like a refused connection: look at
            // the server again without judging its certificate, to tell the two apart.
            let retry = match client(true) {
                Ok(c) if base.starts_with("https://") => c.get(&health).send().await.ok(),
                _ => None,
            };
            match retry {
                Some(r) => {
                    out.push(Finding::Error(format!(
                        "{health}: the server's certificate is not trusted here ({e}): install its authority, or use a certificate from a public one"
                    )));
                    r
                }
                None => {
                    return vec![Finding::Error(format!(
                        "{health} does not answer ({e}): is portcullis-verify running, and server.address reachable from here?"
                    ))];
                }
            }
        }
    };
    let status = response.status();
    if status.is_success() {
        out.push(Finding::Ok(format!("{health} answers {status}")));
    } else {
        out.push(Finding::Error(format!(
            "{health} answers {status}: is this portcullis-verify (and its path prefix, server.address)?"
        )));
    }
    if let Some(date) = response
        .headers()
        .get(http::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
    {
        let now = unix_now();
        let skew = now.abs_diff(date);
        if skew > MAX_CLOCK_SKEW {
            out.push(Finding::Warning(format!(
                "the server's clock is {skew} s off this machine's: sessions expire and bans end at the wrong time; run NTP on both"
            )));
        } else {
            out.push(Finding::Ok(format!(
                "the server's clock is within {MAX_CLOCK_SKEW} s of this machine's"
            )));
        }
    } else {
        out.push(Finding::Warning(
            "the answer has no Date header: the server's clock cannot be compared".to_owned(),
        ));
    }
    if let Some(info) = response.extensions().get::<reqwest::tls::TlsInfo>()
        && let Some(der) = info.peer_certificate()
    {
        out.push(certificate(der, unix_now()));
    }
    out
}

/// The expiry of a DER certificate at `now`.
fn certificate(der: &[u8], now: u64) -> Finding {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Finding::Warning("the server's certificate could not be read".to_owned());
    };
    let not_after = cert.validity().not_after.timestamp();
    let days = (not_after - i64::try_from(now).unwrap_or(i64::MAX)).div_euclid(86_400);
    if days < 0 {
        Finding::Error(format!(
            "the server's certificate expired {} days ago: renew it",
            -days
        ))
    } else if days < CERTIFICATE_WARNING_DAYS {
        Finding::Warning(format!(
            "the server's certificate expires in {days} days: renew it"
        ))
    } else {
        Finding::Ok(format!(
            "the server's certificate is valid for {days} more days"
        ))
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) as unix seconds.
fn parse_http_date(text: &str) -> Option<u64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as u64
        + 1;
    let (day, year): (u64, u64) = (day.parse().ok()?, year.parse().ok()?);
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    // Days from the civil date (Howard Hinnant's days_from_civil), years from 1970 on.
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 01 Dec 2026 10:00:00 GMT"),
            Some(1_796_119_200)
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[tokio::test]
    async fn portal_reachability() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().port();
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let found = reachability("127.0.0.1", open, "https://portal").await;
        assert!(
            matches!(&found, Finding::Ok(m) if m.contains("accepts connections")),
            "{found:?}"
        );
        let found = reachability("127.0.0.1", closed, "https://portal").await;
        assert!(
            matches!(&found, Finding::Warning(m) if m.contains("nothing accepts")),
            "{found:?}"
        );
        let found = reachability("no-such-host.invalid", 443, "https://portal").await;
        assert!(
            matches!(&found, Finding::Warning(m) if m.contains("does not resolve")),
            "{found:?}"
        );
        drop(listener);
    }

    #[test]
    fn certificate_expiry() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let der = cert.cert.der();
        let (_, parsed) = x509_parser::parse_x509_certificate(der).unwrap();
        let not_after = parsed.validity().not_after.timestamp() as u64;
        assert!(matches!(
            certificate(der, not_after - 100 * 86_400),
            Finding::Ok(_)
        ));
        assert!(matches!(
            certificate(der, not_after - 3 * 86_400),
            Finding::Warning(_)
        ));
        assert!(matches!(
            certificate(der, not_after + 2 * 86_400),
            Finding::Error(_)
        ));
    }
}
