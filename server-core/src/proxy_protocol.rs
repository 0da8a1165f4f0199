//! HAProxy's PROXY protocol (v1 text, v2 binary) from trusted load balancers: the client address
//! the balancer saw replaces the TCP peer (docs/reference/outpost.md §3.1, §12). Only a peer the
//! caller trusts may send it; from anyone else the bytes reach HTTP parsing and fail there.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ppp::{HeaderResult, PartialResult as _};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

/// The longest header read (v2 allows TLVs up to 64 KiB; balancers send far less).
const MAX_HEADER: usize = 4096;
const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// Who may send the PROXY protocol.
pub type ProxyProtocolPeers = std::sync::Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// Whether `data` (the first bytes of a connection) starts, or could start, a PROXY header.
fn may_be_header(data: &[u8]) -> bool {
    let starts = |sig: &[u8]| {
        let n = data.len().min(sig.len());
        data[..n] == sig[..n]
    };
    starts(V1_PREFIX) || starts(V2_SIGNATURE)
}

/// What a parsed header says: `Some` client address, or `None` when it gives none (v2 `LOCAL`,
/// v1 `UNKNOWN`, non-IP families): the TCP peer stays.
fn address(result: &HeaderResult<'_>) -> Result<(usize, Option<SocketAddr>), ()> {
    match result {
        HeaderResult::V1(Ok(h)) => {
            let addr = match h.addresses {
                ppp::v1::Addresses::Tcp4(a) => {
                    Some(SocketAddr::new(a.source_address.into(), a.source_port))
                }
                ppp::v1::Addresses::Tcp6(a) => {
                    Some(SocketAddr::new(a.source_address.into(), a.source_port))
                }
                ppp::v1::Addresses::Unknown => None,
            };
            Ok((h.header.len(), addr))
        }
        HeaderResult::V2(Ok(h)) => {
            let addr = match (h.command, h.addresses) {
                (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv4(a)) => {
                    Some(SocketAddr::new(a.source_address.into(), a.source_port))
                }
                (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv6(a)) => {
                    Some(SocketAddr::new(a.source_address.into(), a.source_port))
                }
                _ => None,
            };
            Ok((h.len(), addr))
        }
        _ => Err(()),
    }
}

/// Read a PROXY header off `stream` when one is there, within `deadline`. `Ok(None)`: no header
/// (the bytes are left for HTTP), or one that names no address. `Err`: a malformed or unfinished
/// header: the connection is closed.
pub(crate) async fn read_header(
    stream: &mut TcpStream,
    deadline: Duration,
) -> Result<Option<SocketAddr>, ()> {
    let work = async {
        let mut buf = vec![0u8; MAX_HEADER];
        loop {
            let n = stream.peek(&mut buf).await.map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            let data = &buf[..n];
            if !may_be_header(data) {
                return Ok(None);
            }
            let parsed = HeaderResult::parse(data);
            if parsed.is_complete() {
                let (len, addr) = address(&parsed)?;
                let mut consumed = vec![0u8; len];
                stream.read_exact(&mut consumed).await.map_err(|_| ())?;
                return Ok(addr);
            }
            if n == MAX_HEADER {
                return Err(());
            }
            // More bytes are on their way; peeking again at once would return the same ones.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::time::timeout(deadline, work).await.map_err(|_| ())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    async fn through(sent: Vec<u8>) -> (Result<Option<SocketAddr>, ()>, Vec<u8>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            for chunk in sent.chunks(7) {
                c.write_all(chunk).await.unwrap();
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            c.shutdown().await.unwrap();
        });
        let (mut s, _) = listener.accept().await.unwrap();
        let got = read_header(&mut s, Duration::from_secs(2)).await;
        let mut rest = Vec::new();
        if got.is_ok() {
            s.read_to_end(&mut rest).await.unwrap();
        }
        client.await.unwrap();
        (got, rest)
    }

    #[tokio::test]
    async fn v1_and_v2_headers_give_the_client_address_and_leave_http_alone() {
        let (got, rest) = through(
            b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 443\r\nGET / HTTP/1.1\r\n\r\n".to_vec(),
        )
        .await;
        assert_eq!(got, Ok(Some("203.0.113.7:51000".parse().unwrap())));
        assert_eq!(rest, b"GET / HTTP/1.1\r\n\r\n");
        let (got, _) =
            through(b"PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\nGET /".to_vec()).await;
        assert_eq!(got, Ok(Some("[2001:db8::7]:51000".parse().unwrap())));
        let mut v2 = V2_SIGNATURE.to_vec();
        v2.extend([
            0x21, 0x11, 0, 12, 198, 51, 100, 9, 10, 0, 0, 1, 0xC3, 0x50, 1, 187,
        ]);
        v2.extend(b"GET / HTTP/1.1\r\n\r\n");
        let (got, rest) = through(v2).await;
        assert_eq!(got, Ok(Some("198.51.100.9:50000".parse().unwrap())));
        assert_eq!(rest, b"GET / HTTP/1.1\r\n\r\n");
        // LOCAL (a health check from the balancer itself): the TCP peer stays.
        let mut local = V2_SIGNATURE.to_vec();
        local.extend([0x20, 0x00, 0, 0]);
        local.extend(b"GET /");
        assert_eq!(through(local).await.0, Ok(None));
        // No header: nothing is consumed.
        let (got, rest) = through(b"GET / HTTP/1.1\r\n\r\n".to_vec()).await;
        assert_eq!(
            (got, rest.as_slice()),
            (Ok(None), &b"GET / HTTP/1.1\r\n\r\n"[..])
        );
    }

    #[tokio::test]
    async fn malformed_or_unfinished_headers_close_the_connection() {
        assert_eq!(
            through(b"PROXY TCP4 not-an-ip 10.0.0.1 1 2\r\nGET /".to_vec())
                .await
                .0,
            Err(())
        );
        assert_eq!(through(b"PROXY TCP4 203.0.113.7".to_vec()).await.0, Err(()));
        let mut v2 = V2_SIGNATURE.to_vec();
        v2.extend([0x21, 0x11, 0, 12, 1, 2]);
        assert_eq!(through(v2).await.0, Err(()));
    }
}
