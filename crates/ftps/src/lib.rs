//! An explicit-FTPS server engine (RFC 959, 2228, 3659, 4217) on tokio and rustls, built for a
//! security gateway: TLS 1.2+ with a mandatory client certificate on the control connection,
//! encrypted data connections bound to their control session, bounded handshakes, lines,
//! idle times and session counts.
//!
//! The engine knows nothing about the gateway: a [`Backend`] decides logins and serves each
//! user's virtual tree through a [`Session`]. Start with [`Server::new`] and [`Server::run`].
//!
//! Map: [`command`] parses lines (pure, fuzzed); `session` runs one connection through its
//! protocol states; `passive` owns data connections; [`tls`] the handshake; [`listing`] the
//! listing formats; [`path`] virtual path resolution; [`limits`] session counting.

#![forbid(unsafe_code)]

pub mod backend;
pub mod command;
pub mod config;
mod control;
pub mod limits;
pub mod listing;
mod passive;
pub mod path;
pub mod proxy;
pub mod reply;
mod server;
mod session;
pub mod tls;

pub use backend::{
    Backend, BoxFuture, ClientContext, DataRefusalStage, EngineEvent, FsError, FsResult,
    LoginDenied, Session, Upload,
};
pub use command::TransferType;
pub use config::{ServerConfig, Timeouts};
pub use limits::{ConnectionRate, SessionLimits, client_key, network_prefix};
pub use listing::{DirEntry, EntryKind};
pub use passive::CONCURRENT_HANDSHAKES;
pub use path::VirtualPath;
pub use server::Server;
pub use tls::{TlsContext, TlsSettings};
