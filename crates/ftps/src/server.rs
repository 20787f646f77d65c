//! The listener: accepts control connections, admits them within the session limits, runs one
//! task per connection, and shuts down gracefully (`421` to every session, then waits for them).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::backend::{Backend, EngineEvent};
use crate::config::ServerConfig;
use crate::limits::{LimitExceeded, Limiter};
use crate::passive::PassivePorts;
use crate::session::{self, Peer, Shared};

pub struct Server<B> {
    shared: Arc<Shared<B>>,
}

impl<B: Backend> Server<B> {
    pub fn new(config: ServerConfig, backend: Arc<B>) -> Server<B> {
        let shared = Shared {
            acceptor: TlsAcceptor::from(Arc::clone(&config.tls.config)),
            limiter: Limiter::new(config.limits),
            passive_ports: PassivePorts::new(config.passive_ports.clone()),
            config,
            backend,
        };
        Server {
            shared: Arc::new(shared),
        }
    }

    /// Serves `listener` until `shutdown` completes, then says `421` to every session and waits
    /// for them (running transfers get `shutdown_grace` to finish).
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let (stop_sessions, stop_signal) = watch::channel(false);
        let next_id = AtomicU64::new(1);
        tokio::pin!(shutdown);
        loop {
            let (tcp, addr) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // EMFILE and friends: back off briefly instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let peer = Peer {
                connection_id: next_id.fetch_add(1, Ordering::Relaxed),
                addr,
            };
            self.admit(tcp, peer, stop_signal.clone());
        }
        drop(listener);
        let _ = stop_sessions.send(true);
        let limiter = &self.shared.limiter;
        let all_sessions = u32::try_from(limiter.max_sessions).unwrap_or(u32::MAX);
        // Sessions cut running transfers when the grace period ends; give them a moment more
        // to say 426 and 421.
        let grace = self.shared.config.timeouts.shutdown_grace + std::time::Duration::from_secs(5);
        if tokio::time::timeout(grace, limiter.total.acquire_many(all_sessions))
            .await
            .is_err()
        {
            tracing::warn!("sessions still running after the shutdown grace period");
        }
    }

    fn admit(&self, tcp: TcpStream, peer: Peer, stop: watch::Receiver<bool>) {
        let _ = tcp.set_nodelay(true);
        match self.shared.limiter.admit(peer.addr.ip()) {
            Ok(slots) => {
                let shared = Arc::clone(&self.shared);
                tokio::spawn(session::run(shared, tcp, peer, slots, stop));
            }
            Err(exceeded) => {
                let reason = match exceeded {
                    LimitExceeded::Total => "too_many_sessions",
                    LimitExceeded::PerIp => "too_many_sessions_from_address",
                };
                self.shared
                    .backend
                    .on_event(EngineEvent::ConnectionRefused {
                        connection_id: peer.connection_id,
                        peer: peer.addr,
                        reason,
                    });
                tokio::spawn(turn_away(tcp, peer.addr));
            }
        }
    }
}

async fn turn_away(mut tcp: TcpStream, addr: SocketAddr) {
    tracing::info!(%addr, "connection refused: session limit");
    let _ = tcp
        .write_all(b"421 Too many connections, try again later\r\n")
        .await;
    let _ = tcp.shutdown().await;
}
