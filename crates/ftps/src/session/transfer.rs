//! Running a data command: `150`, waiting for the bound data connection, moving the bytes, and
//! the final reply, while the control channel stays readable so `ABOR` stops the transfer.
//!
//! An upload is committed only when the client ended it with TLS `close_notify`; any other
//! end (TCP reset, plain FIN, stall, `ABOR`) aborts it, so nothing half-received survives.

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::End;
use super::authenticated::{Authenticated, Flow, fs_error_reply};
use crate::backend::{Backend, FsError, FsResult, Session, Upload};
use crate::command::{Command, parse_command};
use crate::control::LineRead;
use crate::reply::Reply;

const CHUNK: usize = 64 * 1024;
/// Commands a client may pipeline behind a running transfer before we stop listening to it.
const MAX_QUEUED_COMMANDS: usize = 64;

pub(super) enum Job {
    Send(Box<dyn AsyncRead + Send + Unpin>),
    Receive(Box<dyn Upload>),
}

impl Job {
    async fn abandon(self) {
        if let Job::Receive(upload) = self {
            upload.abort().await;
        }
    }
}

/// How a piece of transfer work ended while the control channel was being watched.
enum Raced<T> {
    Done(T),
    Interrupted(Interruption),
}

/// Why a transfer stopped before its work was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interruption {
    /// The client sent `ABOR`.
    Abor,
    /// The control connection closed or failed.
    ControlLost,
    /// The client pipelined more commands than we queue.
    QueueFull,
    /// The server is shutting down and the grace period for transfers has run out.
    Shutdown,
    /// The session reached its lifetime and the grace period for transfers has run out.
    LifetimeExceeded,
    /// The backend withdrew the session's authorisation.
    Revoked,
}

/// Why an upload's bytes stopped arriving before the client's `close_notify`.
enum ReceiveFailure {
    /// The data connection failed (reset, FIN without `close_notify`, stall).
    Data(std::io::Error),
    /// The upload refused the bytes (a limit, or the backend's storage failed).
    Refused(std::io::Error),
}

impl<B: Backend> Authenticated<'_, B> {
    pub(super) async fn run_job(&mut self, job: FsResult<Job>) -> Flow {
        let job = match job {
            Ok(job) => job,
            Err(error) => {
                self.passive = None;
                return self.reply(fs_error_reply(&error)).await;
            }
        };
        let Some(mut pending) = self.passive.take() else {
            job.abandon().await;
            return self.reply(Reply::new(425, "Use PASV or EPSV first")).await;
        };
        if let Flow::End(end) = self.reply(Reply::new(150, "Opening data connection")).await {
            job.abandon().await;
            return Flow::End(end);
        }

        // The slot is held until the transfer is over.
        let (mut data, _slot) = match self.watch_control(pending.connection()).await {
            Raced::Done(Ok(bound)) => (bound.stream, bound.slot),
            Raced::Done(Err(refusal)) => {
                job.abandon().await;
                tracing::info!(reason = %refusal.reason, "data connection refused");
                return self
                    .reply(Reply::new(425, "Cannot open data connection"))
                    .await;
            }
            Raced::Interrupted(interruption) => {
                job.abandon().await;
                return self.interrupted(interruption).await;
            }
        };

        let stall = self.shared.config.timeouts.data_stall;
        match job {
            Job::Send(mut source) => {
                match self
                    .watch_control(send(&mut source, &mut data, stall))
                    .await
                {
                    Raced::Done(Ok(bytes)) => {
                        self.reply(Reply::new(226, format!("Transfer complete, {bytes} bytes")))
                            .await
                    }
                    Raced::Done(Err(error)) => {
                        tracing::info!(%error, "download ended early");
                        self.reply(Reply::new(426, "Connection closed; transfer aborted"))
                            .await
                    }
                    Raced::Interrupted(interruption) => self.interrupted(interruption).await,
                }
            }
            Job::Receive(mut upload) => {
                let received = self
                    .watch_control(receive(&mut data, &mut upload, stall))
                    .await;
                drop(data);
                match received {
                    Raced::Done(Ok(_bytes)) => match upload.commit().await {
                        Ok(text) => self.reply(Reply::new(226, text)).await,
                        Err(error) => self.reply(commit_error_reply(&error)).await,
                    },
                    Raced::Done(Err(ReceiveFailure::Data(error))) => {
                        upload.abort().await;
                        tracing::info!(%error, "upload ended without a clean TLS close");
                        self.reply(Reply::new(
                            426,
                            "Transfer aborted: the data connection did not end with TLS close_notify; nothing was stored",
                        ))
                        .await
                    }
                    Raced::Done(Err(ReceiveFailure::Refused(error))) => {
                        upload.abort().await;
                        tracing::info!(%error, "upload refused its bytes");
                        self.reply(refused_upload_reply(&error)).await
                    }
                    Raced::Interrupted(interruption) => {
                        upload.abort().await;
                        self.interrupted(interruption).await
                    }
                }
            }
        }
    }

    /// Answers a transfer that was cut short (its work already abandoned).
    async fn interrupted(&mut self, interruption: Interruption) -> Flow {
        let (text, then) = match interruption {
            Interruption::ControlLost => return Flow::End(End::Closed),
            Interruption::Abor => ("Transfer aborted; nothing was stored", None),
            Interruption::QueueFull => (
                "Transfer aborted: too many commands sent during the transfer",
                Some(End::TooManyQueuedCommands),
            ),
            Interruption::Shutdown => (
                "Transfer aborted: the server is shutting down",
                Some(End::Shutdown),
            ),
            Interruption::LifetimeExceeded => (
                "Transfer aborted: the session lifetime is exceeded",
                Some(End::LifetimeExceeded),
            ),
            Interruption::Revoked => (
                "Transfer aborted: the session was ended by the gateway",
                Some(End::Revoked),
            ),
        };
        if let Flow::End(end) = self.reply(Reply::new(426, text)).await {
            return Flow::End(end);
        }
        match then {
            Some(end) => Flow::End(end),
            None => {
                // ABOR is answered after the commands the client sent before it, in order.
                self.abort_acknowledgement_due = true;
                self.queued.push_back(b"ABOR\r\n".to_vec());
                Flow::Continue
            }
        }
    }

    /// Runs `work` while reading the control channel: `ABOR` cancels it, other commands are
    /// queued for after the transfer (clients may pipeline), a lost control connection cancels
    /// it, and so does server shutdown once the grace period for transfers has passed.
    async fn watch_control<F: Future>(&mut self, work: F) -> Raced<F::Output> {
        let grace = self.shared.config.timeouts.shutdown_grace;
        let shutdown = &mut *self.shutdown;
        let lifetime_end = self.lifetime_end;
        let cut_off = async move {
            let why = tokio::select! {
                _ = shutdown.wait_for(|stopping| *stopping) => Interruption::Shutdown,
                () = tokio::time::sleep_until(lifetime_end) => Interruption::LifetimeExceeded,
            };
            tokio::time::sleep(grace).await;
            why
        };
        let revoked = self.session.revoked();
        tokio::pin!(work, cut_off, revoked);
        loop {
            tokio::select! {
                biased;
                output = &mut work => return Raced::Done(output),
                () = &mut revoked => return Raced::Interrupted(Interruption::Revoked),
                why = &mut cut_off => return Raced::Interrupted(why),
                line = self.control.read_line() => match line {
                    Ok(LineRead::Line(line)) => {
                        if parse_command(&line) == Ok(Command::Abor) {
                            return Raced::Interrupted(Interruption::Abor);
                        }
                        if self.queued.len() >= MAX_QUEUED_COMMANDS {
                            return Raced::Interrupted(Interruption::QueueFull);
                        }
                        self.queued.push_back(line);
                    }
                    Ok(LineRead::TooLong | LineRead::Closed) | Err(_) => {
                        return Raced::Interrupted(Interruption::ControlLost);
                    }
                },
            }
        }
    }
}

/// The reply to an upload whose bytes the backend refused: `552` for a limit, `451` for
/// anything else (the client may send the file again later).
fn refused_upload_reply(error: &std::io::Error) -> Reply {
    match error.kind() {
        std::io::ErrorKind::FileTooLarge | std::io::ErrorKind::QuotaExceeded => {
            Reply::new(552, format!("Upload not stored: {error}"))
        }
        _ => Reply::new(451, format!("Upload not stored: {error}")),
    }
}

fn commit_error_reply(error: &FsError) -> Reply {
    match error {
        FsError::Unavailable(text) => Reply::new(451, format!("Upload not stored: {text}")),
        other => fs_error_reply(other),
    }
}

/// Copies `source` to the data connection and ends it with TLS `close_notify`.
async fn send<R, W>(source: &mut R, data: &mut W, stall: Duration) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin,
{
    let mut buffer = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let read = within(stall, source.read(&mut buffer)).await?;
        if read == 0 {
            break;
        }
        within(stall, data.write_all(&buffer[..read])).await?;
        total += read as u64;
    }
    within(stall, data.shutdown()).await?;
    Ok(total)
}

/// Copies the data connection into `upload` until the client's `close_notify`. rustls reports
/// a connection that ends without one as `UnexpectedEof`, which aborts the upload.
async fn receive<R>(
    data: &mut R,
    upload: &mut Box<dyn Upload>,
    stall: Duration,
) -> Result<u64, ReceiveFailure>
where
    R: AsyncRead + AsyncWrite + Unpin,
{
    let mut buffer = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let read = within(stall, data.read(&mut buffer))
            .await
            .map_err(ReceiveFailure::Data)?;
        if read == 0 {
            break;
        }
        within(stall, upload.write_all(&buffer[..read]))
            .await
            .map_err(ReceiveFailure::Refused)?;
        total += read as u64;
    }
    within(stall, upload.flush())
        .await
        .map_err(ReceiveFailure::Refused)?;
    // Our own close_notify, so strict clients see a clean end too. The upload is complete
    // whether or not the client waits for it.
    let _ = within(stall, data.shutdown()).await;
    Ok(total)
}

async fn within<T>(
    limit: Duration,
    io: impl Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout(limit, io).await.unwrap_or_else(|_| {
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "data connection stalled",
        ))
    })
}
