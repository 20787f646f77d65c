//! One control connection, from TCP accept to close, as three protocol states with their own
//! types: [`pre_tls`] (plain TCP until `AUTH TLS` and the handshake), [`login`] (TLS, waiting
//! for `USER`/`PASS`), and [`authenticated`] (a [`Session`](crate::Session) serving the tree).
//! A state function consumes the previous state and returns the next one, so a command can only
//! run in a state that has what it needs.

mod authenticated;
mod login;
mod pre_tls;
mod transfer;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::backend::Backend;
use crate::command::{Command, ParseError, ProtectionLevel, parse_command};
use crate::config::ServerConfig;
use crate::control::{ControlChannel, LineRead};
use crate::limits::{ConnectionSlots, Limiter};
use crate::passive::{DataAcceptor, PassivePorts};
use crate::reply::Reply;

/// What every connection of one server shares.
pub(crate) struct Shared<B> {
    pub config: ServerConfig,
    pub backend: Arc<B>,
    pub acceptor: TlsAcceptor,
    pub data_acceptor: Arc<DataAcceptor>,
    pub limiter: Limiter,
    pub passive_ports: PassivePorts,
}

/// Identifies the connection in events and logs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    pub connection_id: u64,
    pub addr: SocketAddr,
}

pub(crate) async fn run<B: Backend>(
    shared: Arc<Shared<B>>,
    tcp: TcpStream,
    peer: Peer,
    slots: ConnectionSlots,
    shutdown: watch::Receiver<bool>,
) {
    let mut slots = slots;
    let mut shutdown = shutdown;
    let Some(secure) = pre_tls::negotiate(&shared, tcp, peer, &mut shutdown).await else {
        return;
    };
    let Some(authenticated) = login::authenticate(&shared, secure, peer, &mut shutdown).await
    else {
        return;
    };
    slots.logged_in();
    authenticated.serve().await;
}

/// `PBSZ`/`PROT` state: data transfers need `PBSZ 0` followed by `PROT P`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Protection {
    buffer_size_set: bool,
    private: bool,
}

impl Protection {
    pub fn data_protected(self) -> bool {
        self.buffer_size_set && self.private
    }

    /// Handles `PBSZ` and `PROT`, which are valid in every state after TLS.
    pub fn handle(&mut self, command: &Command) -> Option<Reply> {
        match command {
            Command::Pbsz(_) => {
                self.buffer_size_set = true;
                Some(Reply::new(200, "PBSZ=0"))
            }
            Command::Prot(_) if !self.buffer_size_set => {
                Some(Reply::new(503, "Send PBSZ 0 before PROT"))
            }
            Command::Prot(ProtectionLevel::Private) => {
                self.private = true;
                Some(Reply::new(
                    200,
                    "Data channel protection level set to Private",
                ))
            }
            Command::Prot(_) => Some(Reply::new(
                534,
                "Only PROT P is accepted: data connections must be encrypted",
            )),
            _ => None,
        }
    }
}

/// A point in time by which a phase of the session must be over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(tokio::time::Instant);

impl Deadline {
    pub fn after(duration: Duration) -> Deadline {
        Deadline(tokio::time::Instant::now() + duration)
    }

    pub fn remaining(self) -> Duration {
        self.0
            .saturating_duration_since(tokio::time::Instant::now())
    }
}

/// Why a connection stops reading commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Quit,
    Closed,
    IdleTimeout,
    LoginTimeout,
    TooManyQueuedCommands,
    Shutdown,
    LineTooLong,
    /// The backend withdrew the session's authorisation.
    Revoked,
    /// The session reached its maximum lifetime.
    LifetimeExceeded,
}

impl End {
    /// The stable name reported when a logged-in session ends.
    pub fn reason(self) -> &'static str {
        match self {
            End::Quit => "quit",
            End::Closed => "closed",
            End::IdleTimeout => "idle_timeout",
            End::LoginTimeout => "login_timeout",
            End::TooManyQueuedCommands => "too_many_queued_commands",
            End::Shutdown => "shutdown",
            End::LineTooLong => "line_too_long",
            End::Revoked => "revoked",
            End::LifetimeExceeded => "lifetime_exceeded",
        }
    }
}

pub(crate) enum Incoming {
    Command(Command),
    /// A line that did not parse, with the reply it gets.
    Invalid(Reply),
    End(End),
}

/// The next command: a line queued during a transfer first, else one read from the client,
/// unless the session idles out or the server shuts down first.
pub(crate) async fn next_command<S: AsyncRead + AsyncWrite + Unpin>(
    control: &mut ControlChannel<S>,
    queued: &mut VecDeque<Vec<u8>>,
    idle: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Incoming {
    if let Some(line) = queued.pop_front() {
        return parse_line(&line);
    }
    let read = tokio::select! {
        read = tokio::time::timeout(idle, control.read_line()) => read,
        _ = shutdown.wait_for(|stopping| *stopping) => return Incoming::End(End::Shutdown),
    };
    match read {
        Err(_elapsed) => Incoming::End(End::IdleTimeout),
        Ok(Err(_)) | Ok(Ok(LineRead::Closed)) => Incoming::End(End::Closed),
        Ok(Ok(LineRead::TooLong)) => Incoming::End(End::LineTooLong),
        Ok(Ok(LineRead::Line(line))) => parse_line(&line),
    }
}

fn parse_line(line: &[u8]) -> Incoming {
    match parse_command(line) {
        Ok(command) => Incoming::Command(command),
        Err(error) => Incoming::Invalid(parse_error_reply(&error)),
    }
}

fn parse_error_reply(error: &ParseError) -> Reply {
    let code = match error {
        ParseError::Empty | ParseError::InvalidVerb => 500,
        ParseError::UnknownVerb => 502,
        ParseError::InvalidUtf8
        | ParseError::ControlCharacter
        | ParseError::MissingArgument(_)
        | ParseError::UnexpectedArgument(_)
        | ParseError::InvalidArgument(_) => 501,
    };
    let text = match error {
        ParseError::UnknownVerb => "Command not implemented".to_string(),
        other => format!("Syntax error: {other}"),
    };
    Reply::new(code, text)
}

/// Says goodbye the way the reason for ending asks for.
pub(crate) async fn close<S: AsyncRead + AsyncWrite + Unpin>(
    control: &mut ControlChannel<S>,
    end: End,
) {
    let farewell = match end {
        End::Quit => Some(Reply::new(221, "Goodbye")),
        End::IdleTimeout => Some(Reply::new(421, "Idle timeout: closing control connection")),
        End::LoginTimeout => Some(Reply::new(421, "Login timeout: closing control connection")),
        End::TooManyQueuedCommands => Some(Reply::new(
            421,
            "Too many commands sent during a transfer: closing control connection",
        )),
        End::Shutdown => Some(Reply::new(
            421,
            "Service shutting down: closing control connection",
        )),
        End::LineTooLong => Some(Reply::new(500, "Command line too long: closing connection")),
        End::Revoked => Some(Reply::new(
            421,
            "Session ended by the gateway: your authorisation changed; log in again",
        )),
        End::LifetimeExceeded => Some(Reply::new(
            421,
            "Session lifetime exceeded: closing control connection; log in again",
        )),
        End::Closed => None,
    };
    if let Some(reply) = farewell {
        let _ = control.reply(&reply).await;
    }
    control.shutdown().await;
}

/// Replies to the commands that mean the same in every state.
pub(crate) fn stateless_reply(command: &Command) -> Option<Reply> {
    match command {
        Command::Noop => Some(Reply::new(200, "NOOP ok")),
        Command::Feat => Some(Reply::multiline(
            211,
            [
                "Features:",
                "AUTH TLS",
                "PBSZ",
                "PROT",
                "UTF8",
                "EPSV",
                "PASV",
                "SIZE",
                "MDTM",
                "REST STREAM",
                "MLST type*;size*;modify*;perm*;",
                "TVFS",
                "End",
            ]
            .map(String::from)
            .to_vec(),
        )),
        Command::Help => Some(Reply::multiline(
            214,
            vec![
                "Commands:".into(),
                "AUTH PBSZ PROT USER PASS FEAT OPTS SYST PWD CWD CDUP TYPE MODE STRU".into(),
                "PASV EPSV LIST NLST MLSD MLST SIZE MDTM STOR RETR REST DELE MKD RMD".into(),
                "ABOR NOOP QUIT HELP".into(),
                "Help OK".into(),
            ],
        )),
        Command::Opts(crate::command::OptsArgument::Utf8On) => {
            Some(Reply::new(200, "UTF8 is always on"))
        }
        Command::Opts(crate::command::OptsArgument::Mlst) => {
            Some(Reply::new(200, "MLST OPTS type;size;modify;perm;"))
        }
        Command::Opts(crate::command::OptsArgument::Other(_)) => {
            Some(Reply::new(501, "Option not supported"))
        }
        Command::Unsupported(_) => Some(Reply::new(502, "Command not implemented")),
        Command::ActiveMode => Some(Reply::new(
            502,
            "Active mode is not supported: use PASV or EPSV",
        )),
        _ => None,
    }
}
