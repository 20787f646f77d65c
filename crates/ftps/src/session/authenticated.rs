//! A logged-in session: navigation, metadata and the data commands, until `QUIT`, idle timeout,
//! a lost connection or shutdown.

use std::collections::VecDeque;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::watch;

use super::transfer::Job;
use super::{End, Incoming, Protection, Shared, close, next_command, stateless_reply};
use crate::backend::{Backend, ClientContext, EngineEvent, FsError, Session};
use crate::command::{Command, EpsvArgument, TransferType};
use crate::control::ControlChannel;
use crate::limits::KeyedSlot;
use crate::listing::{self, EntryKind};
use crate::passive::{Binding, DataStream, PendingData};
use crate::path::VirtualPath;
use crate::reply::Reply;

pub(crate) struct Authenticated<'a, B: Backend> {
    pub(super) shared: &'a Arc<Shared<B>>,
    pub(super) control: ControlChannel<DataStream>,
    pub(super) client: ClientContext,
    pub(super) session: B::Session,
    _user_slot: KeyedSlot<String>,
    pub(super) protection: Protection,
    pub(super) shutdown: &'a mut watch::Receiver<bool>,
    pub(super) queued: VecDeque<Vec<u8>>,
    cwd: VirtualPath,
    pub(super) transfer_type: TransferType,
    pub(super) restart_offset: u64,
    pub(super) passive: Option<PendingData>,
    epsv_all: bool,
    /// An `ABOR` stopped a transfer; its `226` is due once the commands queued before it
    /// are answered.
    pub(super) abort_acknowledgement_due: bool,
    /// When the session's maximum lifetime is over.
    pub(super) lifetime_end: tokio::time::Instant,
    /// When the session's certificate was last verified.
    verified: Arc<std::sync::Mutex<crate::tls::Verified>>,
}

/// What a successful login hands over to the authenticated state.
pub(super) struct LoggedIn<B: Backend> {
    pub control: ControlChannel<DataStream>,
    pub client: ClientContext,
    pub session: B::Session,
    pub user_slot: KeyedSlot<String>,
    pub protection: Protection,
    /// When the client certificate was verified (at the control connection's handshake).
    pub verified: crate::tls::Verified,
}

pub(super) enum Flow {
    Continue,
    End(End),
}

impl<'a, B: Backend> Authenticated<'a, B> {
    pub(super) fn new(
        shared: &'a Arc<Shared<B>>,
        logged_in: LoggedIn<B>,
        shutdown: &'a mut watch::Receiver<bool>,
    ) -> Self {
        let LoggedIn {
            control,
            client,
            session,
            user_slot,
            protection,
            verified,
        } = logged_in;
        let cwd = session.home();
        Authenticated {
            shared,
            control,
            client,
            session,
            _user_slot: user_slot,
            protection,
            shutdown,
            queued: VecDeque::new(),
            cwd,
            transfer_type: TransferType::Binary,
            restart_offset: 0,
            passive: None,
            epsv_all: false,
            abort_acknowledgement_due: false,
            lifetime_end: tokio::time::Instant::now() + shared.config.timeouts.session_lifetime,
            verified: Arc::new(std::sync::Mutex::new(verified)),
        }
    }

    pub(super) async fn serve(mut self) {
        let end = loop {
            let idle = self.shared.config.timeouts.idle;
            let incoming = tokio::select! {
                incoming = next_command(&mut self.control, &mut self.queued, idle, self.shutdown) => incoming,
                () = self.session.revoked() => Incoming::End(End::Revoked),
                () = tokio::time::sleep_until(self.lifetime_end) => Incoming::End(End::LifetimeExceeded),
            };
            let flow = match incoming {
                Incoming::Command(command) => self.dispatch(command).await,
                Incoming::Invalid(reply) => self.reply(reply).await,
                Incoming::End(end) => Flow::End(end),
            };
            if let Flow::End(end) = flow {
                break end;
            }
        };
        close(&mut self.control, end).await;
        self.shared.backend.on_event(EngineEvent::SessionClosed {
            connection_id: self.client.connection_id,
            peer: self.client.peer,
            username: self.session.username(),
            reason: end.reason(),
        });
    }

    pub(super) async fn reply(&mut self, reply: Reply) -> Flow {
        match self.control.reply(&reply).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::End(End::Closed),
        }
    }

    async fn dispatch(&mut self, command: Command) -> Flow {
        let reply = match command {
            Command::Quit => return Flow::End(End::Quit),
            Command::Rest(offset) => {
                self.restart_offset = offset;
                Reply::new(350, format!("Restarting at {offset}; send RETR"))
            }
            // A REST offset waits for the next transfer command (clients send PASV, TYPE or
            // SIZE in between); RETR uses it, every other transfer command discards it.
            Command::Retr(path) => return self.retrieve(&path).await,
            Command::Stor(_) if std::mem::take(&mut self.restart_offset) > 0 => {
                Reply::new(504, "Resuming an upload (REST + STOR) is not supported")
            }
            Command::Stor(path) => return self.store(&path).await,
            Command::List(path) => return self.list(path.as_deref(), Listing::Long).await,
            Command::Nlst(path) => return self.list(path.as_deref(), Listing::Names).await,
            Command::Mlsd(path) => return self.list(path.as_deref(), Listing::Machine).await,
            Command::Pasv => return self.passive(false).await,
            Command::Epsv(EpsvArgument::All) => {
                self.epsv_all = true;
                Reply::new(200, "EPSV ALL accepted")
            }
            Command::Epsv(EpsvArgument::Protocol(1) | EpsvArgument::None) => {
                return self.passive(true).await;
            }
            Command::Epsv(EpsvArgument::Protocol(_)) => {
                Reply::new(522, "Network protocol not supported, use (1)")
            }
            Command::Abor if std::mem::take(&mut self.abort_acknowledgement_due) => {
                Reply::new(226, "ABOR successful")
            }
            Command::Abor => Reply::new(225, "No transfer to abort"),
            Command::Pwd => Reply::new(
                257,
                format!("{} is the current directory", quoted(&self.cwd)),
            ),
            Command::Cwd(path) => self.change_dir(&path).await,
            Command::Cdup => self.change_dir("..").await,
            Command::Mlst(path) => self.mlst(path.as_deref()).await,
            Command::Size(path) => match self.file_metadata(&path).await {
                Ok(entry) => Reply::new(213, entry.size.to_string()),
                Err(reply) => reply,
            },
            Command::Mdtm(path) => match self.file_metadata(&path).await {
                Ok(entry) => Reply::new(213, listing::mdtm_value(entry.modified)),
                Err(reply) => reply,
            },
            Command::Dele(path) => match self.resolve(&path) {
                Ok(path) => fs_reply(self.session.delete(&path).await, 250, "File deleted"),
                Err(reply) => reply,
            },
            Command::Mkd(path) => match self.resolve(&path) {
                Ok(path) => {
                    let created = format!("{} created", quoted(&path));
                    fs_reply(self.session.make_dir(&path).await, 257, &created)
                }
                Err(reply) => reply,
            },
            Command::Rmd(path) => match self.resolve(&path) {
                Ok(path) => fs_reply(
                    self.session.remove_dir(&path).await,
                    250,
                    "Directory removed",
                ),
                Err(reply) => reply,
            },
            Command::Type(transfer_type) => {
                self.transfer_type = transfer_type;
                Reply::new(200, format!("Type set to {}", transfer_type.as_str()))
            }
            Command::Mode('S') => Reply::new(200, "Mode set to S"),
            Command::Mode(_) => Reply::new(504, "Only MODE S is supported"),
            Command::Stru('F') => Reply::new(200, "Structure set to F"),
            Command::Stru(_) => Reply::new(504, "Only STRU F is supported"),
            Command::Syst => Reply::new(215, "UNIX Type: L8"),
            Command::User(_) | Command::Pass(_) => Reply::new(503, "Already logged in"),
            Command::Auth(_) => Reply::new(503, "TLS is already active"),
            Command::Ccc => Reply::new(534, "CCC refused: the control channel stays encrypted"),
            command @ (Command::Pbsz(_) | Command::Prot(_)) => self
                .protection
                .handle(&command)
                .expect("PBSZ and PROT are always answered"),
            command => stateless_reply(&command)
                .unwrap_or_else(|| Reply::new(502, "Command not implemented")),
        };
        self.reply(reply).await
    }

    /// Resolves a client path against the working directory; a name no file may have is 553.
    pub(super) fn resolve(&self, argument: &str) -> Result<VirtualPath, Reply> {
        self.cwd
            .resolve(argument)
            .map_err(|error| Reply::new(553, format!("Invalid path: {error}")))
    }

    async fn change_dir(&mut self, argument: &str) -> Reply {
        let path = match self.resolve(argument) {
            Ok(path) => path,
            Err(reply) => return reply,
        };
        if !path.is_root() {
            match self.session.metadata(&path).await {
                Ok(entry) if entry.kind == EntryKind::Directory => {}
                Ok(_) => return Reply::new(550, "Not a directory"),
                Err(error) => return fs_error_reply(&error),
            }
        }
        let reply = Reply::new(250, format!("Directory changed to {}", quoted(&path)));
        self.cwd = path;
        reply
    }

    async fn file_metadata(&self, argument: &str) -> Result<listing::DirEntry, Reply> {
        let path = self.resolve(argument)?;
        match self.session.metadata(&path).await {
            Ok(entry) if entry.kind == EntryKind::File => Ok(entry),
            Ok(_) => Err(Reply::new(550, "Not a plain file")),
            Err(error) => Err(fs_error_reply(&error)),
        }
    }

    async fn mlst(&self, argument: Option<&str>) -> Reply {
        let path = match self.resolve(argument.unwrap_or(".")) {
            Ok(path) => path,
            Err(reply) => return reply,
        };
        match self.session.metadata(&path).await {
            Ok(entry) => Reply::multiline(
                250,
                vec![
                    format!("Listing {path}"),
                    format!("{} {path}", listing::mlsx_facts(&entry)),
                    "End".into(),
                ],
            ),
            Err(error) => fs_error_reply(&error),
        }
    }

    async fn passive(&mut self, extended: bool) -> Flow {
        // The replaced listener stays bound until the new one is, so the new port differs
        // and a late connection to the old one cannot land on it.
        let replaced = self.passive.take();
        if !extended && self.epsv_all {
            return self
                .reply(Reply::new(503, "EPSV ALL in force: use EPSV"))
                .await;
        }
        if !self.protection.data_protected() {
            return self.reply(data_protection_required()).await;
        }
        let local_ip = match self.control.get_ref().get_ref().0.local_addr() {
            Ok(addr) => addr.ip(),
            Err(_) => return Flow::End(End::Closed),
        };
        let advertised = self.shared.config.advertised_address.unwrap_or(local_ip);
        let advertised_v4 = match advertised {
            std::net::IpAddr::V4(v4) => Some(v4),
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped(),
        };
        if !extended && advertised_v4.is_none() {
            return self
                .reply(Reply::new(425, "PASV needs IPv4: use EPSV"))
                .await;
        }
        let listener = match self.shared.passive_ports.bind(local_ip).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "no passive port available");
                return self
                    .reply(Reply::new(425, "No passive port available, try again"))
                    .await;
            }
        };
        if let Some(replaced) = replaced {
            replaced.cancel().await;
        }
        let Some(slot) = self.shared.limiter.admit_data_connection() else {
            return self
                .reply(Reply::new(425, "Too many transfers at once, try again"))
                .await;
        };
        let pending = match self.spawn_data_listener(listener, slot) {
            Ok(pending) => pending,
            Err(_) => {
                return self
                    .reply(Reply::new(425, "Cannot open passive port"))
                    .await;
            }
        };
        let port = pending.port;
        self.passive = Some(pending);
        let reply = match advertised_v4 {
            Some(ip) if !extended => {
                let [a, b, c, d] = ip.octets();
                let (high, low) = (port >> 8, port & 0xFF);
                Reply::new(
                    227,
                    format!("Entering Passive Mode ({a},{b},{c},{d},{high},{low})"),
                )
            }
            _ => Reply::new(229, format!("Entering Extended Passive Mode (|||{port}|)")),
        };
        self.reply(reply).await
    }

    fn spawn_data_listener(
        &self,
        listener: tokio::net::TcpListener,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> std::io::Result<PendingData> {
        let backend = Arc::clone(&self.shared.backend);
        let (connection_id, peer) = (self.client.connection_id, self.client.peer);
        let username = self.session.username().to_string();
        PendingData::spawn(
            listener,
            slot,
            Binding {
                client_ip: self.client.peer.ip(),
                certificate: self.client.certificate.clone(),
                require_resumption: self.shared.config.require_session_resumption,
                verified: Arc::clone(&self.verified),
            },
            Arc::clone(&self.shared.data_acceptor),
            Arc::new(move |refusal| {
                backend.on_event(EngineEvent::DataConnectionRefused {
                    connection_id,
                    peer,
                    from: refusal.from.unwrap_or(peer),
                    username: &username,
                    stage: refusal.stage,
                    reason: &refusal.reason,
                })
            }),
        )
    }

    /// A data command may prepare its transfer only with `PROT P` in force and a passive
    /// listener open; otherwise it is refused before the backend does any work.
    fn refuse_unready_data(&mut self) -> Option<Reply> {
        self.restart_offset = 0;
        if !self.protection.data_protected() {
            self.passive = None;
            return Some(data_protection_required());
        }
        if self.passive.is_none() {
            return Some(Reply::new(425, "Use PASV or EPSV first"));
        }
        None
    }

    async fn retrieve(&mut self, argument: &str) -> Flow {
        let offset = self.restart_offset;
        if let Some(refusal) = self.refuse_unready_data() {
            return self.reply(refusal).await;
        }
        let job = match self.resolve(argument) {
            Ok(path) => self.session.read(&path, offset).await.map(Job::Send),
            Err(reply) => return self.reply(reply).await,
        };
        self.run_job(job).await
    }

    async fn store(&mut self, argument: &str) -> Flow {
        if let Some(refusal) = self.refuse_unready_data() {
            return self.reply(refusal).await;
        }
        let job = match self.resolve(argument) {
            Ok(path) => self
                .session
                .store(&path, self.transfer_type)
                .await
                .map(Job::Receive),
            Err(reply) => return self.reply(reply).await,
        };
        self.run_job(job).await
    }

    async fn list(&mut self, argument: Option<&str>, format: Listing) -> Flow {
        if let Some(refusal) = self.refuse_unready_data() {
            return self.reply(refusal).await;
        }
        let path = match self.resolve(argument.unwrap_or(".")) {
            Ok(path) => path,
            Err(reply) => return self.reply(reply).await,
        };
        let entries = match self.session.metadata(&path).await {
            Ok(entry) if entry.kind == EntryKind::File && format == Listing::Machine => {
                self.passive = None;
                return self
                    .reply(Reply::new(
                        501,
                        "MLSD lists directories; use MLST for a file",
                    ))
                    .await;
            }
            Ok(entry) if entry.kind == EntryKind::File => Ok(vec![entry]),
            Ok(_) => self.session.list(&path).await,
            Err(error) => Err(error),
        };
        let now = OffsetDateTime::now_utc();
        let job = entries.map(|entries| {
            let text: String = entries
                .iter()
                .map(|entry| match format {
                    Listing::Long => listing::list_line(entry, now),
                    Listing::Names => format!("{}\r\n", entry.name),
                    Listing::Machine => listing::mlsd_line(entry),
                })
                .collect();
            Job::Send(Box::new(std::io::Cursor::new(text.into_bytes())))
        });
        self.run_job(job).await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    Long,
    Names,
    Machine,
}

pub(super) fn data_protection_required() -> Reply {
    Reply::new(
        521,
        "Data connections must be encrypted: send PBSZ 0 and PROT P first",
    )
}

fn quoted(path: &VirtualPath) -> String {
    format!("\"{}\"", path.to_string().replace('"', "\"\""))
}

pub(super) fn fs_error_reply(error: &FsError) -> Reply {
    Reply::new(error.reply_code(), error.to_string())
}

fn fs_reply(result: Result<(), FsError>, code: u16, text: &str) -> Reply {
    match result {
        Ok(()) => Reply::new(code, text),
        Err(error) => fs_error_reply(&error),
    }
}
