//! The listener: accepts control connections, admits them within the session limits, runs one
//! task per connection, and shuts down gracefully (`421` to every session, then waits for them).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::backend::{Backend, EngineEvent};
use crate::config::ServerConfig;
use crate::limits::{LimitExceeded, Limiter};
use crate::passive::{DataAcceptor, PassivePorts};
use crate::session::{self, Peer, Shared};

pub struct Server<B> {
    shared: Arc<Shared<B>>,
}

impl<B: Backend> Server<B> {
    pub fn new(config: ServerConfig, backend: Arc<B>) -> Server<B> {
        let acceptor = TlsAcceptor::from(Arc::clone(&config.tls.config));
        let shared = Shared {
            data_acceptor: Arc::new(DataAcceptor {
                tls: config.tls.clone(),
                acceptor: acceptor.clone(),
                connect_timeout: config.timeouts.data_connect,
                handshake_timeout: config.timeouts.tls_handshake,
                proxy: config.proxy.clone(),
            }),
            acceptor,
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
            let connection_id = next_id.fetch_add(1, Ordering::Relaxed);
            if self.shared.config.proxy.expects_header(addr.ip()) {
                // Off the accept loop: a balancer slow with its header holds up no one else.
                let shared = Arc::clone(&self.shared);
                let stop = stop_signal.clone();
                tokio::spawn(async move {
                    let mut tcp = tcp;
                    let timeout = shared.config.proxy.header_timeout;
                    match crate::proxy::read_header(&mut tcp, timeout).await {
                        Ok(client) => {
                            let addr = client.unwrap_or(addr);
                            admit(
                                &shared,
                                tcp,
                                Peer {
                                    connection_id,
                                    addr,
                                },
                                stop,
                            );
                        }
                        Err(error) => shared.backend.on_event(EngineEvent::ConnectionRefused {
                            connection_id,
                            peer: addr,
                            reason: error.reason(),
                        }),
                    }
                });
                continue;
            }
            let peer = Peer {
                connection_id,
                addr,
            };
            admit(&self.shared, tcp, peer, stop_signal.clone());
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
}

/// Runs a session for `tcp` if the limits admit `peer`, or turns it away.
fn admit<B: Backend>(
    shared: &Arc<Shared<B>>,
    tcp: TcpStream,
    peer: Peer,
    stop: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    match shared.limiter.admit(peer.addr.ip()) {
        Ok(slots) => {
            tokio::spawn(session::run(Arc::clone(shared), tcp, peer, slots, stop));
        }
        Err(exceeded) => {
            shared.backend.on_event(EngineEvent::ConnectionRefused {
                connection_id: peer.connection_id,
                peer: peer.addr,
                reason: exceeded.reason(),
            });
            turn_away(&tcp, exceeded);
        }
    }
}

/// Says `421` without waiting (a fresh socket's send buffer takes it) and closes: a refused
/// connection costs no task, however many arrive.
fn turn_away(tcp: &TcpStream, exceeded: LimitExceeded) {
    tracing::debug!(reason = exceeded.reason(), "connection refused");
    let _ = tcp.try_write(b"421 Too many connections, try again later\r\n");
}
