//! A small explicit-FTPS client that does exactly what it is told, for tests that must also do
//! what well-behaved clients never do (plain bytes on a data port, another certificate on the
//! data connection, overlong lines), and as the core of the benchmark load generator.
//!
//! Every socket has `TCP_NODELAY`; data connections use the control connection's rustls
//! `ClientConfig`, so they resume its TLS session like curl and lftp do.

#![forbid(unsafe_code)]

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("unexpected reply {0}")]
    Unexpected(Reply),
    #[error("malformed reply: {0}")]
    Malformed(String),
    #[error("reading {path}: {message}")]
    Pem { path: String, message: String },
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A server reply: its code and its text (lines of a multi-line reply joined by `\n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

impl Reply {
    fn expect(self, code: u16) -> Result<Reply> {
        if self.code == code {
            Ok(self)
        } else {
            Err(ClientError::Unexpected(self))
        }
    }
}

/// Which TLS versions a client offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersions {
    Default,
    Tls12Only,
    Tls13Only,
}

/// A rustls client configuration trusting `ca_pem`, presenting `identity` (certificate and key
/// PEM files) if given.
pub fn client_config(
    ca_pem: &Path,
    identity: Option<(&Path, &Path)>,
    versions: TlsVersions,
) -> Result<Arc<ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(ca_pem)? {
        roots.add(cert)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match versions {
        TlsVersions::Default => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersions::Tls12Only => &[&rustls::version::TLS12],
        TlsVersions::Tls13Only => &[&rustls::version::TLS13],
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => {
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| ClientError::Pem {
                path: key.display().to_string(),
                message: e.to_string(),
            })?;
            builder.with_client_auth_cert(read_certs(cert)?, key)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| ClientError::Pem {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}

enum Control {
    Plain(BufReader<TcpStream>),
    Tls(Box<BufReader<TlsStream<TcpStream>>>),
    Switching,
}

/// Where and how to open a data connection.
#[derive(Clone, Default)]
pub struct DataOptions {
    /// Use this TLS configuration instead of the control connection's (another certificate).
    pub tls: Option<Arc<ClientConfig>>,
    /// Connect from this local address (e.g. 127.0.0.2 to look like another host).
    pub source_ip: Option<IpAddr>,
    /// Send these bytes instead of a TLS handshake.
    pub plaintext: Option<Vec<u8>>,
}

/// An open data connection.
pub enum DataConnection {
    Tls(Box<TlsStream<TcpStream>>),
    Plain(TcpStream),
}

pub struct FtpsClient {
    control: Control,
    server: SocketAddr,
    tls: Option<Arc<ClientConfig>>,
}

impl FtpsClient {
    /// Connects and reads the greeting.
    pub async fn connect(server: SocketAddr) -> Result<(FtpsClient, Reply)> {
        FtpsClient::connect_from(server, None).await
    }

    /// Connects from `source` (e.g. 127.0.0.2, to look like another host) and reads the greeting.
    pub async fn connect_from(
        server: SocketAddr,
        source: Option<IpAddr>,
    ) -> Result<(FtpsClient, Reply)> {
        let tcp = connect_tcp(server, source).await?;
        let mut client = FtpsClient {
            control: Control::Plain(BufReader::new(tcp)),
            server,
            tls: None,
        };
        let greeting = client.read_reply().await?;
        Ok((client, greeting))
    }

    /// Connects, upgrades with `AUTH TLS`, logs in, and sets `PBSZ 0` + `PROT P`.
    pub async fn login(
        server: SocketAddr,
        tls: Arc<ClientConfig>,
        user: &str,
        password: &str,
    ) -> Result<FtpsClient> {
        let (mut client, greeting) = FtpsClient::connect(server).await?;
        greeting.expect(220)?;
        client.auth_tls(tls).await?;
        client.command(&format!("USER {user}")).await?.expect(331)?;
        client
            .command(&format!("PASS {password}"))
            .await?
            .expect(230)?;
        client.command("PBSZ 0").await?.expect(200)?;
        client.command("PROT P").await?.expect(200)?;
        Ok(client)
    }

    pub async fn auth_tls(&mut self, tls: Arc<ClientConfig>) -> Result<()> {
        self.command("AUTH TLS").await?.expect(234)?;
        let Control::Plain(reader) = std::mem::replace(&mut self.control, Control::Switching)
        else {
            return Err(ClientError::Malformed(
                "AUTH TLS on a TLS connection".into(),
            ));
        };
        let tcp = reader.into_inner();
        let stream = TlsConnector::from(Arc::clone(&tls))
            .connect(server_name(self.server), tcp)
            .await?;
        self.control = Control::Tls(Box::new(BufReader::new(stream)));
        self.tls = Some(tls);
        Ok(())
    }

    pub async fn command(&mut self, line: &str) -> Result<Reply> {
        self.send_raw(format!("{line}\r\n").as_bytes()).await?;
        self.read_reply().await
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.control {
            Control::Plain(reader) => reader.get_mut().write_all(bytes).await?,
            Control::Tls(reader) => {
                let stream = reader.get_mut();
                stream.write_all(bytes).await?;
                stream.flush().await?;
            }
            Control::Switching => unreachable!("only between AUTH TLS and its handshake"),
        }
        Ok(())
    }

    /// Reads one (possibly multi-line) reply. A closed connection is `UnexpectedEof`.
    pub async fn read_reply(&mut self) -> Result<Reply> {
        let first = self.read_line().await?;
        let code = reply_code(&first)?;
        let mut text = first[4.min(first.len())..].to_string();
        if first.as_bytes().get(3) == Some(&b'-') {
            loop {
                let line = self.read_line().await?;
                if line.len() >= 4
                    && line.starts_with(&code.to_string())
                    && line.as_bytes()[3] == b' '
                {
                    text.push('\n');
                    text.push_str(&line[4..]);
                    break;
                }
                text.push('\n');
                text.push_str(line.trim_start());
            }
        }
        Ok(Reply { code, text })
    }

    async fn read_line(&mut self) -> Result<String> {
        let mut line = String::new();
        let read = match &mut self.control {
            Control::Plain(reader) => reader.read_line(&mut line).await?,
            Control::Tls(reader) => reader.read_line(&mut line).await?,
            Control::Switching => unreachable!("only between AUTH TLS and its handshake"),
        };
        if read == 0 {
            return Err(
                io::Error::new(io::ErrorKind::UnexpectedEof, "control connection closed").into(),
            );
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    /// `EPSV`, returning the data address.
    pub async fn epsv(&mut self) -> Result<SocketAddr> {
        let reply = self.command("EPSV").await?.expect(229)?;
        let port = reply
            .text
            .split('|')
            .nth(3)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| ClientError::Malformed(reply.text.clone()))?;
        Ok(SocketAddr::new(self.server.ip(), port))
    }

    /// `PASV`, returning the advertised data address.
    pub async fn pasv(&mut self) -> Result<SocketAddr> {
        let reply = self.command("PASV").await?.expect(227)?;
        let inner = reply
            .text
            .split(['(', ')'])
            .nth(1)
            .ok_or_else(|| ClientError::Malformed(reply.text.clone()))?;
        let numbers: Vec<u8> = inner
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect();
        let [a, b, c, d, high, low] = numbers[..] else {
            return Err(ClientError::Malformed(reply.text.clone()));
        };
        let port = u16::from(high) << 8 | u16::from(low);
        Ok(SocketAddr::new(IpAddr::from([a, b, c, d]), port))
    }

    /// Opens a data connection to `addr` as `options` say.
    pub async fn open_data(
        &self,
        addr: SocketAddr,
        options: &DataOptions,
    ) -> Result<DataConnection> {
        let mut tcp = connect_tcp(addr, options.source_ip).await?;
        if let Some(bytes) = &options.plaintext {
            tcp.write_all(bytes).await?;
            return Ok(DataConnection::Plain(tcp));
        }
        let tls = options
            .tls
            .clone()
            .or_else(|| self.tls.clone())
            .ok_or_else(|| ClientError::Malformed("no TLS configuration for data".into()))?;
        let stream = TlsConnector::from(tls)
            .connect(server_name(self.server), tcp)
            .await?;
        Ok(DataConnection::Tls(Box::new(stream)))
    }

    /// `EPSV`, a TLS data connection, then `command`, which must answer `150`. Returns the data
    /// stream; the final reply is the caller's to read.
    pub async fn start_transfer(&mut self, command: &str) -> Result<TlsStream<TcpStream>> {
        let addr = self.epsv().await?;
        let data = self.open_data(addr, &DataOptions::default()).await?;
        self.command(command).await?.expect(150)?;
        match data {
            DataConnection::Tls(stream) => Ok(*stream),
            DataConnection::Plain(_) => unreachable!("default data options use TLS"),
        }
    }

    /// `EPSV`, a TCP data connection, then `command`; the TLS handshake only once the server
    /// has answered `150`, as curl and lftp do. Servers that set up the data connection's TLS
    /// only for a transfer command (vsftpd, ProFTPD) need this order.
    pub async fn open_transfer(&mut self, command: &str) -> Result<TlsStream<TcpStream>> {
        let addr = self.epsv().await?;
        let tcp = connect_tcp(addr, None).await?;
        self.command(command).await?.expect(150)?;
        let tls = self
            .tls
            .clone()
            .ok_or_else(|| ClientError::Malformed("no TLS configuration for data".into()))?;
        Ok(TlsConnector::from(tls)
            .connect(server_name(self.server), tcp)
            .await?)
    }

    /// `EPSV` + `command`, reading the whole data stream. Expects 150 then 226.
    pub async fn download(&mut self, command: &str) -> Result<Vec<u8>> {
        let mut stream = self.start_transfer(command).await?;
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await?;
        self.read_reply().await?.expect(226)?;
        Ok(bytes)
    }

    /// `EPSV` + `STOR path` with `content`, ending with TLS close_notify. Returns the final reply.
    pub async fn upload(&mut self, path: &str, content: &[u8]) -> Result<Reply> {
        let mut stream = self.start_transfer(&format!("STOR {path}")).await?;
        stream.write_all(content).await?;
        stream.shutdown().await?;
        self.read_reply().await
    }
}

/// A TCP connection with `TCP_NODELAY`, from `source` if given.
async fn connect_tcp(addr: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.set_nodelay(true)?;
    Ok(socket.connect(addr).await?)
}

fn reply_code(line: &str) -> Result<u16> {
    line.get(..3)
        .and_then(|code| code.parse().ok())
        .filter(|_| matches!(line.as_bytes().get(3), None | Some(b' ') | Some(b'-')))
        .ok_or_else(|| ClientError::Malformed(line.to_string()))
}

fn server_name(addr: SocketAddr) -> ServerName<'static> {
    ServerName::IpAddress(addr.ip().into())
}
