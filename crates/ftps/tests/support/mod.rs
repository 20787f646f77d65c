//! A test server: the engine with an in-memory backend, the test PKI and the trust store.

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use mftgw_client::{FtpsClient, TlsVersions, client_config};
use mftgw_ftps::{
    Backend, BoxFuture, ClientContext, DirEntry, EngineEvent, EntryKind, FsError, FsResult,
    LoginDenied, Server, ServerConfig, Session, TlsSettings, TransferType, Upload, VirtualPath,
};
use mftgw_oces::trust::TrustStore;
use mftgw_testpki::TestPki;
use rustls::pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

pub const USER: &str = "alice";
/// Another name the backend takes for [`USER`]: a session's identity is the backend's, not
/// what the client typed (the legacy profile accepts any `USER`).
pub const USER_ALIAS: &str = "anonymous";
pub const PASSWORD: &str = "correct horse";
/// The same user again, whose session starts in `/in` rather than at the root.
pub const USER_AT_HOME_IN: &str = "alice-in";

/// The PKI shared by tests that do not change it.
pub fn shared_pki() -> &'static TestPki {
    static PKI: OnceLock<(tempfile::TempDir, TestPki)> = OnceLock::new();
    &PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::generate(dir.path()).unwrap();
        (dir, pki)
    })
    .1
}

/// Records what the engine told the backend and what reached the tree.
#[derive(Default)]
pub struct MemoryBackend {
    pub events: Mutex<Vec<String>>,
    pub login_certificates: Mutex<Vec<CertificateDer<'static>>>,
}

impl MemoryBackend {
    pub fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    pub async fn wait_for_event(&self, needle: &str) -> String {
        for _ in 0..200 {
            if let Some(event) = self.events().into_iter().find(|e| e.contains(needle)) {
                return event;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "no event containing {needle:?}; events: {:#?}",
            self.events()
        );
    }
}

impl Backend for MemoryBackend {
    type Session = MemorySession;

    async fn login(
        &self,
        client: &ClientContext,
        username: &str,
        password: &str,
    ) -> Result<MemorySession, LoginDenied> {
        self.login_certificates
            .lock()
            .unwrap()
            .push(client.certificate.clone());
        if (username == USER || username == USER_ALIAS) && password == PASSWORD {
            Ok(MemorySession { home: "/" })
        } else if username == USER_AT_HOME_IN && password == PASSWORD {
            Ok(MemorySession { home: "/in" })
        } else {
            self.events
                .lock()
                .unwrap()
                .push(format!("login refused {username}"));
            Err(LoginDenied::Refused {
                delay: Duration::ZERO,
            })
        }
    }

    fn on_event(&self, event: EngineEvent<'_>) {
        let text = match event {
            EngineEvent::TlsRefused {
                reason,
                certificate,
                ..
            } => format!("tls_refused {reason} cert={}", certificate.is_some()),
            EngineEvent::ConnectionRefused { reason, .. } => format!("connection_refused {reason}"),
            EngineEvent::DataConnectionRefused { reason, from, .. } => {
                format!("data_refused {reason} from={}", from.ip())
            }
            EngineEvent::LoginRefused { reason, .. } => format!("login_refused {reason}"),
            EngineEvent::SessionClosed {
                username, reason, ..
            } => format!("closed {username} {reason}"),
        };
        self.events.lock().unwrap().push(text);
    }
}

pub struct MemorySession {
    home: &'static str,
}

fn dir(name: &str, writable: bool) -> DirEntry {
    DirEntry {
        name: name.into(),
        kind: EntryKind::Directory,
        size: 0,
        modified: OffsetDateTime::now_utc(),
        writable,
    }
}

fn file(name: &str, size: u64) -> DirEntry {
    DirEntry {
        name: name.into(),
        kind: EntryKind::File,
        size,
        modified: OffsetDateTime::now_utc(),
        writable: true,
    }
}

/// `/in` takes uploads; `/out/hello.txt` holds `HELLO`; `/out/endless` never ends.
pub const HELLO: &[u8] = b"hello, world\n";

impl Session for MemorySession {
    fn username(&self) -> &str {
        USER
    }

    fn home(&self) -> VirtualPath {
        VirtualPath::root()
            .resolve(self.home)
            .expect("a valid test path")
    }

    async fn metadata(&self, path: &VirtualPath) -> FsResult<DirEntry> {
        match path.to_string().as_str() {
            "/" => Ok(dir("/", false)),
            "/in" => Ok(dir("in", true)),
            "/out" => Ok(dir("out", false)),
            "/out/hello.txt" => Ok(file("hello.txt", HELLO.len() as u64)),
            "/out/endless" => Ok(file("endless", u64::MAX)),
            _ => Err(FsError::NotFound("No such file or directory".into())),
        }
    }

    async fn list(&self, path: &VirtualPath) -> FsResult<Vec<DirEntry>> {
        match path.to_string().as_str() {
            "/" => Ok(vec![dir("in", true), dir("out", false)]),
            "/in" => Ok(vec![]),
            "/out" => Ok(vec![
                file("hello.txt", HELLO.len() as u64),
                file("endless", 0),
            ]),
            _ => Err(FsError::NotFound("No such directory".into())),
        }
    }

    async fn read(
        &self,
        path: &VirtualPath,
        offset: u64,
    ) -> FsResult<Box<dyn AsyncRead + Send + Unpin>> {
        match path.to_string().as_str() {
            "/out/hello.txt" => {
                let start = (offset as usize).min(HELLO.len());
                Ok(Box::new(std::io::Cursor::new(HELLO[start..].to_vec())))
            }
            "/out/endless" => Ok(Box::new(tokio::io::repeat(b'x'))),
            _ => Err(FsError::NotFound("No such file".into())),
        }
    }

    async fn store(
        &self,
        path: &VirtualPath,
        _transfer_type: TransferType,
    ) -> FsResult<Box<dyn Upload>> {
        if path.parent().to_string() != "/in" {
            return Err(FsError::NotAllowed("Uploads go to /in".into()));
        }
        Ok(Box::new(MemoryUpload {
            name: path.to_string(),
            bytes: Vec::new(),
        }))
    }

    async fn delete(&self, _path: &VirtualPath) -> FsResult<()> {
        Err(FsError::NotAllowed("read-only".into()))
    }

    async fn make_dir(&self, _path: &VirtualPath) -> FsResult<()> {
        Err(FsError::NotAllowed("read-only".into()))
    }

    async fn remove_dir(&self, _path: &VirtualPath) -> FsResult<()> {
        Err(FsError::NotAllowed("read-only".into()))
    }
}

/// What happened to one upload: its path, `committed` or `aborted`, and the bytes received.
type LedgerEntry = (String, &'static str, usize);

/// Global ledger of uploads, so tests can see what was committed or aborted.
pub fn ledger() -> &'static Mutex<Vec<LedgerEntry>> {
    static LEDGER: OnceLock<Mutex<Vec<LedgerEntry>>> = OnceLock::new();
    LEDGER.get_or_init(Default::default)
}

pub fn ledger_entry(name: &str) -> Option<(&'static str, usize)> {
    ledger()
        .lock()
        .unwrap()
        .iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, outcome, len)| (*outcome, *len))
}

struct MemoryUpload {
    name: String,
    bytes: Vec<u8>,
}

impl AsyncWrite for MemoryUpload {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.bytes.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Upload for MemoryUpload {
    fn commit(self: Box<Self>) -> BoxFuture<'static, FsResult<String>> {
        Box::pin(async move {
            ledger()
                .lock()
                .unwrap()
                .push((self.name.clone(), "committed", self.bytes.len()));
            Ok(format!("Stored {}", self.name))
        })
    }

    fn abort(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            ledger()
                .lock()
                .unwrap()
                .push((self.name.clone(), "aborted", self.bytes.len()));
        })
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub backend: Arc<MemoryBackend>,
    pub trust: Arc<TrustStore>,
    pub ca: std::path::PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub stopped: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub fn server_tls(pki: &TestPki, trust: Arc<TrustStore>) -> mftgw_ftps::TlsContext {
    let server = pki.server();
    let cert_chain = CertificateDer::pem_file_iter(&server.cert_chain_pem)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&server.key_pem).unwrap();
    mftgw_ftps::tls::server_config(TlsSettings {
        cert_chain,
        key,
        verifier_changes: Some(trust.reloads()),
        client_verifier: trust,
        session_cache_size: 1024,
    })
    .unwrap()
}

pub async fn start(pki: &TestPki, tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let trust =
        TrustStore::load(&[pki.root_ca_pem()], &pki.crl_paths(), Default::default()).unwrap();
    let mut config = ServerConfig::new(server_tls(pki, Arc::clone(&trust)));
    config.passive_ports = 41000..=41999;
    tweak(&mut config);
    let backend = Arc::new(MemoryBackend::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped_signal) = tokio::sync::oneshot::channel::<()>();
    let server = Server::new(config, Arc::clone(&backend));
    let stopped = tokio::spawn(server.run(listener, async {
        let _ = stopped_signal.await;
    }));
    TestServer {
        addr,
        backend,
        trust,
        ca: pki.root_ca_pem(),
        stop: Some(stop),
        stopped,
    }
}

pub fn tls_for(pki: &TestPki, client: &str) -> Arc<rustls::ClientConfig> {
    tls_for_versions(pki, client, TlsVersions::Default)
}

pub fn tls_for_versions(
    pki: &TestPki,
    client: &str,
    versions: TlsVersions,
) -> Arc<rustls::ClientConfig> {
    let credentials = pki
        .client(client)
        .unwrap_or_else(|| panic!("no test client {client}"));
    client_config(
        &pki.root_ca_pem(),
        Some((
            credentials.cert_pem.as_path(),
            credentials.key_pem.as_path(),
        )),
        versions,
    )
    .unwrap()
}

pub fn tls_without_certificate(ca: &Path) -> Arc<rustls::ClientConfig> {
    client_config(ca, None, TlsVersions::Default).unwrap()
}

pub async fn logged_in(server: &TestServer, pki: &TestPki) -> FtpsClient {
    FtpsClient::login(server.addr, tls_for(pki, "moces"), USER, PASSWORD)
        .await
        .unwrap()
}
