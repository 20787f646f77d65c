//! The PROXY protocol (HAProxy's, versions 1 and 2) on accepted connections: a balancer in
//! front of several nodes says whom it forwards before the connection's own bytes, so that
//! the session limits, the data connection's address check and the backend's events see the
//! client, not the balancer. A header is read only from the balancer addresses configured
//! ([`ProxyPolicy`]), and there it is required; a header from anyone else is refused like
//! other bytes that have no place before `AUTH TLS` ([`is_header_start`]).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Version 2's signature; to a server that knows nothing of it, it reads as `QUIT`.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Version 1's prefix.
const V1_PREFIX: &[u8; 6] = b"PROXY ";

/// The longest version 1 header, CRLF included.
const V1_MAX_BYTES: usize = 107;

/// The most address and TLV bytes a version 2 header may carry here (HAProxy sends 12 or 36
/// of addresses and a few TLVs).
const V2_MAX_PAYLOAD_BYTES: usize = 512;

/// Who may put a PROXY header in front of a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyPolicy {
    /// The balancers' addresses: a connection from one of them must begin with a header.
    pub balancers: Vec<IpAddr>,
    /// How long a balancer has to send its header.
    pub header_timeout: Duration,
}

impl ProxyPolicy {
    /// Whether a connection from `from` begins with a header.
    pub fn expects_header(&self, from: IpAddr) -> bool {
        self.balancers.contains(&from)
    }
}

/// Why a balancer's header was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("no PROXY header came in time")]
    Timeout,
    #[error("the connection closed before its PROXY header ended")]
    Closed,
    #[error("malformed PROXY header: {0}")]
    Malformed(&'static str),
    #[error("reading the PROXY header: {0}")]
    Io(io::Error),
}

impl ProxyHeaderError {
    /// A short stable reason, for events and the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout => "proxy_header_timeout",
            Self::Closed => "proxy_header_incomplete",
            Self::Malformed(_) => "proxy_header_malformed",
            Self::Io(_) => "proxy_header_unreadable",
        }
    }
}

impl From<io::Error> for ProxyHeaderError {
    fn from(error: io::Error) -> Self {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            Self::Closed
        } else {
            Self::Io(error)
        }
    }
}

/// Reads the header at the start of `tcp`, consuming exactly its bytes: the client's address,
/// or `None` where the balancer speaks for itself (version 2's `LOCAL`, version 1's
/// `UNKNOWN`: a health check).
pub async fn read_header(
    tcp: &mut TcpStream,
    timeout: Duration,
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    tokio::time::timeout(timeout, read_header_now(tcp))
        .await
        .unwrap_or(Err(ProxyHeaderError::Timeout))
}

async fn read_header_now(tcp: &mut TcpStream) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut start = [0u8; 6];
    tcp.read_exact(&mut start).await?;
    if &start == V1_PREFIX {
        // Byte by byte, so that nothing behind the header is taken from the client.
        let mut line = start.to_vec();
        while !line.ends_with(b"\r\n") {
            if line.len() >= V1_MAX_BYTES {
                return Err(ProxyHeaderError::Malformed("version 1 line too long"));
            }
            line.push(tcp.read_u8().await?);
        }
        return parse_v1(&line);
    }
    if start != V2_SIGNATURE[..6] {
        return Err(ProxyHeaderError::Malformed("no PROXY signature"));
    }
    let mut rest = [0u8; 10];
    tcp.read_exact(&mut rest).await?;
    if rest[..6] != V2_SIGNATURE[6..] {
        return Err(ProxyHeaderError::Malformed("no PROXY signature"));
    }
    let length = usize::from(u16::from_be_bytes([rest[8], rest[9]]));
    if length > V2_MAX_PAYLOAD_BYTES {
        return Err(ProxyHeaderError::Malformed("version 2 header too long"));
    }
    let mut payload = vec![0u8; length];
    tcp.read_exact(&mut payload).await?;
    parse_v2(rest[6], rest[7], &payload)
}

/// `PROXY TCP4|TCP6 <source> <destination> <source port> <destination port>\r\n`, or
/// `PROXY UNKNOWN …\r\n`.
fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let malformed = ProxyHeaderError::Malformed;
    let text = std::str::from_utf8(line).map_err(|_| malformed("version 1 is not text"))?;
    let fields: Vec<&str> = text.trim_end_matches("\r\n").split(' ').collect();
    match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(None),
        [
            "PROXY",
            family @ ("TCP4" | "TCP6"),
            source,
            _destination,
            port,
            _,
        ] => {
            let ip: IpAddr = source
                .parse()
                .map_err(|_| malformed("version 1 source address"))?;
            if ip.is_ipv4() != (*family == "TCP4") {
                return Err(malformed("version 1 address of the other family"));
            }
            let port: u16 = port
                .parse()
                .map_err(|_| malformed("version 1 source port"))?;
            Ok(Some(SocketAddr::new(ip, port)))
        }
        _ => Err(malformed("version 1 fields")),
    }
}

/// Version 2 after its signature: the version and command, the family and protocol, and the
/// payload (addresses, then TLVs, which are ignored).
fn parse_v2(
    version_command: u8,
    family: u8,
    payload: &[u8],
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let malformed = ProxyHeaderError::Malformed;
    if version_command >> 4 != 2 {
        return Err(malformed("version 2 expected"));
    }
    match version_command & 0x0f {
        0 => return Ok(None),
        1 => {}
        _ => return Err(malformed("version 2 command")),
    }
    let port = |bytes: &[u8]| u16::from_be_bytes([bytes[0], bytes[1]]);
    match family {
        // TCP over IPv4: source, destination, source port, destination port.
        0x11 if payload.len() >= 12 => {
            let ip = Ipv4Addr::new(payload[0], payload[1], payload[2], payload[3]);
            Ok(Some(SocketAddr::new(ip.into(), port(&payload[8..10]))))
        }
        0x21 if payload.len() >= 36 => {
            let octets: [u8; 16] = payload[..16].try_into().expect("16 bytes");
            Ok(Some(SocketAddr::new(
                Ipv6Addr::from(octets).into(),
                port(&payload[32..34]),
            )))
        }
        0x11 | 0x21 => Err(malformed("version 2 addresses too short")),
        // UNSPEC: the balancer does not know the client's address.
        0x00 => Ok(None),
        _ => Err(malformed("version 2 family other than TCP")),
    }
}

/// Whether `first_bytes` (what a client sent first) begin a PROXY header: from a peer that is
/// no balancer, such a header is refused rather than taken for commands.
pub fn is_header_start(first_bytes: &[u8]) -> bool {
    first_bytes.starts_with(V1_PREFIX)
        || (first_bytes.len() >= 6
            && V2_SIGNATURE.starts_with(&first_bytes[..first_bytes.len().min(12)]))
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    /// What `read_header` makes of `sent` followed by `after`, and what it left unread.
    async fn read(sent: &[u8], after: &[u8]) -> (Result<Option<SocketAddr>, String>, Vec<u8>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut bytes = sent.to_vec();
        bytes.extend_from_slice(after);
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(address).await.unwrap();
            stream.write_all(&bytes).await.unwrap();
            stream.shutdown().await.unwrap();
            // Held open until the server has read.
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest).await;
        });
        let (mut tcp, _) = listener.accept().await.unwrap();
        let header = read_header(&mut tcp, Duration::from_secs(5))
            .await
            .map_err(|error| error.reason().to_owned());
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest).await;
        drop(tcp);
        client.await.unwrap();
        (header, rest)
    }

    fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.push(0x20 | command);
        bytes.push(family);
        bytes.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    #[tokio::test]
    async fn version_1_gives_the_client_and_leaves_what_follows() {
        let (header, rest) = read(
            b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 6381\r\n",
            b"\x16hi",
        )
        .await;
        assert_eq!(header, Ok(Some("192.0.2.7:51234".parse().unwrap())));
        assert_eq!(rest, b"\x16hi");
        let (header, _) = read(b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 6381\r\n", b"").await;
        assert_eq!(header, Ok(Some("[2001:db8::7]:4000".parse().unwrap())));
        let (header, _) = read(b"PROXY UNKNOWN\r\n", b"").await;
        assert_eq!(header, Ok(None));
    }

    #[tokio::test]
    async fn version_2_gives_the_client_and_leaves_what_follows() {
        let mut ipv4 = vec![192, 0, 2, 7, 198, 51, 100, 1];
        ipv4.extend_from_slice(&51234u16.to_be_bytes());
        ipv4.extend_from_slice(&6381u16.to_be_bytes());
        // A TLV after the addresses (ALPN), ignored.
        ipv4.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2']);
        let (header, rest) = read(&v2(1, 0x11, &ipv4), b"\x16after").await;
        assert_eq!(header, Ok(Some("192.0.2.7:51234".parse().unwrap())));
        assert_eq!(rest, b"\x16after");

        let mut ipv6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)
            .octets()
            .to_vec();
        ipv6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        ipv6.extend_from_slice(&4000u16.to_be_bytes());
        ipv6.extend_from_slice(&6381u16.to_be_bytes());
        let (header, _) = read(&v2(1, 0x21, &ipv6), b"").await;
        assert_eq!(header, Ok(Some("[2001:db8::7]:4000".parse().unwrap())));

        let (header, _) = read(&v2(0, 0x00, &[]), b"").await;
        assert_eq!(header, Ok(None), "LOCAL: a health check");
    }

    #[tokio::test]
    async fn anything_else_is_refused_with_a_reason() {
        for (sent, reason) in [
            (&b"USER anonymous\r\n"[..], "proxy_header_malformed"),
            (b"PROXY TCP4 192.0.2.7\r\n", "proxy_header_malformed"),
            (
                b"PROXY TCP4 2001:db8::7 2001:db8::1 1 2\r\n",
                "proxy_header_malformed",
            ),
            (
                b"PROXY TCP4 192.0.2.7 198.51.100.1 99999 6381\r\n",
                "proxy_header_malformed",
            ),
            (
                b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2",
                "proxy_header_incomplete",
            ),
            (&[b'P'; 200], "proxy_header_malformed"),
        ] {
            let (header, _) = read(sent, b"").await;
            assert_eq!(
                header,
                Err(reason.to_owned()),
                "{}",
                String::from_utf8_lossy(sent)
            );
        }
        let v1_too_long = [V1_PREFIX.as_slice(), &[b'1'; 120]].concat();
        assert_eq!(
            read(&v1_too_long, b"").await.0,
            Err("proxy_header_malformed".into())
        );
        for refused in [
            v2(1, 0x11, &[192, 0, 2, 7]),
            v2(1, 0x31, &[0; 216]),
            v2(5, 0x11, &[0; 12]),
            v2(1, 0x11, &[0; 600]),
        ] {
            assert_eq!(
                read(&refused, b"").await.0,
                Err("proxy_header_malformed".into())
            );
        }
        let truncated = v2(1, 0x11, &[0; 12]);
        assert_eq!(
            read(&truncated[..20], b"").await.0,
            Err("proxy_header_incomplete".into())
        );
    }

    #[tokio::test]
    async fn a_silent_balancer_runs_out_of_time() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let _client = TcpStream::connect(address).await.unwrap();
        let (mut tcp, _) = listener.accept().await.unwrap();
        let error = read_header(&mut tcp, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!(error.reason(), "proxy_header_timeout");
    }

    #[test]
    fn a_header_is_recognised_from_its_first_bytes() {
        assert!(is_header_start(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"));
        assert!(is_header_start(&V2_SIGNATURE));
        assert!(is_header_start(&V2_SIGNATURE[..7]));
        assert!(!is_header_start(b"AUTH TLS\r\n"));
        assert!(!is_header_start(b"\r\n"));
        assert!(!is_header_start(b"PROX"));
    }
}
