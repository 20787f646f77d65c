//! The boundary between the protocol engine and whatever serves the files: the engine knows FTP,
//! TLS and sockets; a [`Backend`] knows who may log in and what a user's tree holds.
//!
//! The engine calls [`Backend::login`] once per `PASS`, then talks to the returned [`Session`]
//! for every file-system command. Engine-level security decisions that never reach a session
//! (refused TLS handshakes, refused data connections, connection limits) are reported through
//! [`Backend::on_event`] so the backend can audit them.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::command::TransferType;
use crate::listing::DirEntry;
pub use crate::passive::DataRefusalStage;
use crate::path::VirtualPath;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the engine knows about the client when it asks the backend to log it in.
#[derive(Debug, Clone)]
pub struct ClientContext {
    /// Unique per control connection, for correlating logs and audit entries.
    pub connection_id: u64,
    pub peer: SocketAddr,
    /// The verified client certificate of the control connection (end entity, DER).
    pub certificate: CertificateDer<'static>,
    /// The rest of the chain the client presented, for verifying the certificate again later
    /// (a CRL reload).
    pub intermediates: Vec<CertificateDer<'static>>,
}

/// Why a login did not succeed, as far as the engine needs to know: every refusal gets the
/// same `530` (the reason belongs in the backend's audit log, not on the wire); a backend
/// that cannot decide now gets the client a transient `421`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginDenied {
    /// `530`, after `delay` (login throttling).
    Refused { delay: Duration },
    /// `421` and the connection closes: the backend cannot decide now (its store cannot be
    /// reached); the client may try again later with the same credentials.
    Unavailable,
}

pub trait Backend: Send + Sync + 'static {
    type Session: Session;

    /// Decides a `USER`/`PASS` pair on a TLS connection whose client certificate has already
    /// passed the trust store (chain, validity, revocation).
    fn login(
        &self,
        client: &ClientContext,
        username: &str,
        password: &str,
    ) -> impl Future<Output = Result<Self::Session, LoginDenied>> + Send;

    /// Security-relevant events the engine handled on its own. Must not block.
    fn on_event(&self, event: EngineEvent<'_>);
}

/// Events the engine reports to the backend for auditing.
#[derive(Debug)]
pub enum EngineEvent<'a> {
    /// The control connection's TLS handshake failed or timed out.
    TlsRefused {
        connection_id: u64,
        peer: SocketAddr,
        reason: &'a str,
        /// The end-entity certificate the client presented, if it got that far.
        certificate: Option<&'a CertificateDer<'static>>,
    },
    /// A connection was turned away before TLS (limits, implicit TLS, pre-TLS abuse).
    ConnectionRefused {
        connection_id: u64,
        peer: SocketAddr,
        reason: &'a str,
    },
    /// A passive data connection was refused (wrong source address, not bound to the session).
    DataConnectionRefused {
        connection_id: u64,
        peer: SocketAddr,
        from: SocketAddr,
        username: &'a str,
        stage: DataRefusalStage,
        reason: &'a str,
    },
    /// A login the engine refused on its own (per-user session limit).
    LoginRefused {
        connection_id: u64,
        peer: SocketAddr,
        username: &'a str,
        reason: &'a str,
        certificate: &'a CertificateDer<'static>,
    },
    /// A logged-in session ended; `reason` says how (`quit`, `closed`, `idle_timeout`,
    /// `revoked`, `lifetime_exceeded`, `shutdown`, ...).
    SessionClosed {
        connection_id: u64,
        peer: SocketAddr,
        username: &'a str,
        reason: &'a str,
    },
}

/// Errors a session's file operations report; each maps to one FTP reply code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    /// 550: no such file or directory (also used where saying more would leak another user's data).
    #[error("{0}")]
    NotFound(String),
    /// 550: the path exists but this operation is not allowed there.
    #[error("{0}")]
    NotAllowed(String),
    /// 553: the name is not acceptable as a file name.
    #[error("{0}")]
    BadName(String),
    /// 451: a local error; the client may try again later.
    #[error("{0}")]
    Unavailable(String),
    /// 552: a limit (upload size, quota, open transaction folders) would be exceeded.
    #[error("{0}")]
    LimitExceeded(String),
}

impl FsError {
    pub fn reply_code(&self) -> u16 {
        match self {
            FsError::NotFound(_) | FsError::NotAllowed(_) => 550,
            FsError::BadName(_) => 553,
            FsError::Unavailable(_) => 451,
            FsError::LimitExceeded(_) => 552,
        }
    }
}

pub type FsResult<T> = Result<T, FsError>;

/// A logged-in user's view of the tree.
pub trait Session: Send + Sync + 'static {
    fn username(&self) -> &str;

    /// The working directory the session starts in (what `PWD` answers right after the
    /// login): the root, unless the tree puts the user in a folder of their own.
    fn home(&self) -> VirtualPath {
        VirtualPath::root()
    }

    /// The entry at `path` (used by `CWD`, `SIZE`, `MDTM`, `MLST`).
    fn metadata(&self, path: &VirtualPath) -> impl Future<Output = FsResult<DirEntry>> + Send;

    /// The entries of the directory at `path`.
    fn list(&self, path: &VirtualPath) -> impl Future<Output = FsResult<Vec<DirEntry>>> + Send;

    /// Opens the file at `path` for download, starting at byte `offset` (`REST`).
    fn read(
        &self,
        path: &VirtualPath,
        offset: u64,
    ) -> impl Future<Output = FsResult<Box<dyn AsyncRead + Send + Unpin>>> + Send;

    /// Prepares an upload to `path`. Nothing becomes visible until [`Upload::commit`].
    fn store(
        &self,
        path: &VirtualPath,
        transfer_type: TransferType,
    ) -> impl Future<Output = FsResult<Box<dyn Upload>>> + Send;

    fn delete(&self, path: &VirtualPath) -> impl Future<Output = FsResult<()>> + Send;

    fn make_dir(&self, path: &VirtualPath) -> impl Future<Output = FsResult<()>> + Send;

    fn remove_dir(&self, path: &VirtualPath) -> impl Future<Output = FsResult<()>> + Send;

    /// Resolves when the backend withdraws the session's authorisation (the user was
    /// suspended, the certificate revoked or replaced). The engine then ends the session with
    /// `421`, cutting a running transfer (an upload is aborted, nothing is stored). The
    /// engine asks anew for every command and transfer, so it must be cheap. Never, by
    /// default.
    fn revoked(&self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }
}

/// An upload in progress. The engine writes the received bytes, then calls exactly one of
/// `commit` (the client ended the transfer cleanly with TLS `close_notify`) or `abort`.
/// A write that fails with [`std::io::ErrorKind::FileTooLarge`] or
/// [`std::io::ErrorKind::QuotaExceeded`] is answered `552` with the error's text, any other
/// failed write `451`; either way the upload is aborted.
/// Implementations must also treat being dropped without either as an abort: a task can be
/// cancelled (process shutdown) between the two.
pub trait Upload: AsyncWrite + Send + Unpin {
    /// Makes the upload durable. The engine answers `226` with the returned text only after
    /// this returns `Ok`.
    fn commit(self: Box<Self>) -> BoxFuture<'static, FsResult<String>>;

    /// Discards everything received: the transfer did not finish.
    fn abort(self: Box<Self>) -> BoxFuture<'static, ()>;
}
