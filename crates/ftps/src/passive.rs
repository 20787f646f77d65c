//! Passive data connections: a port from the configured pool, one listener per `PASV`/`EPSV`,
//! and the checks that bind the data connection to its control session.
//!
//! A data connection is accepted only if it comes from the control connection's IP address,
//! completes a TLS handshake in time, and carries the control connection's client certificate
//! (directly, or through a resumed TLS session of it, whose certificate is verified again
//! against the CRLs in force now). Every refused attempt is reported, and the listener keeps
//! waiting for the real client until its deadline: a stranger on the same address (NAT) can
//! neither take nor cancel another session's transfer. Ports are chosen at random, so a
//! stranger cannot guess the next one either.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::{AbortHandle, Aborted, abortable};
use futures_util::stream::FuturesUnordered;
use rustls::HandshakeKind;
use rustls_pki_types::CertificateDer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::proxy::{self, ProxyPolicy};
use crate::tls::{self, TlsContext, Verified};

pub type DataStream = TlsStream<TcpStream>;

/// Told about every refused data connection attempt, for auditing.
pub type RefusalReport = dyn Fn(&DataRefusal) + Send + Sync;

/// TLS handshakes one passive listener runs at once; a connection beyond displaces the one
/// that has waited longest, so that strangers holding handshakes open cannot keep the client
/// out (its own handshake takes a round trip or two).
pub const CONCURRENT_HANDSHAKES: usize = 4;
/// Random ports tried before the range is searched in turn.
const RANDOM_TRIES: usize = 8;

/// Hands out ports from the passive range, starting each search at a random port and
/// skipping ports the OS reports busy.
pub struct PassivePorts {
    range: RangeInclusive<u16>,
    random: &'static dyn rustls::crypto::SecureRandom,
}

impl PassivePorts {
    pub fn new(range: RangeInclusive<u16>) -> PassivePorts {
        PassivePorts {
            range,
            random: rustls::crypto::aws_lc_rs::default_provider().secure_random,
        }
    }

    /// A listener on a port of the range: a few ports at random, then (a crowded range) the
    /// ports in turn from a random one.
    pub async fn bind(&self, ip: IpAddr) -> io::Result<TcpListener> {
        let first = u32::from(*self.range.start());
        let size = u32::from(*self.range.end()) - first + 1;
        let mut offsets = Vec::with_capacity(RANDOM_TRIES);
        for _ in 0..RANDOM_TRIES {
            offsets.push(self.random_u32()? % size);
        }
        let start = self.random_u32()? % size;
        let in_turn = (0..size).map(|step| (start + step) % size);
        for offset in offsets.into_iter().chain(in_turn) {
            let port = u16::try_from(first + offset).expect("port within a u16 range");
            match TcpListener::bind((ip, port)).await {
                Ok(listener) => return Ok(listener),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "every passive port is in use",
        ))
    }

    fn random_u32(&self) -> io::Result<u32> {
        let mut bytes = [0u8; 4];
        self.random
            .fill(&mut bytes)
            .map_err(|_| io::Error::other("the system random generator failed"))?;
        Ok(u32::from_ne_bytes(bytes))
    }
}

/// What a data connection must match to belong to a control session.
#[derive(Clone)]
pub struct Binding {
    pub client_ip: IpAddr,
    pub certificate: CertificateDer<'static>,
    pub require_resumption: bool,
    /// When the session's certificate was last verified (a resumed data connection brings
    /// it without a new verification).
    pub verified: Arc<std::sync::Mutex<Verified>>,
}

/// A reason a connection to a passive port was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRefusal {
    pub from: Option<SocketAddr>,
    pub stage: DataRefusalStage,
    pub reason: String,
}

/// How far a refused data connection got: what the one who opened it has proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataRefusalStage {
    /// It came from another address than the control connection's: anyone can do that.
    OtherAddress,
    /// Its TLS handshake failed (no or an untrusted certificate, a timeout): anyone on the
    /// client's address can do that.
    Handshake,
    /// It completed TLS with a trusted certificate, but not the session's, or one revoked
    /// since (a resumed session): someone holding a valid certificate tried to take it.
    Binding,
    /// The session's own wait: no connection came in time, or accepting failed.
    Waiting,
}

/// How a passive listener checks the connections it accepts.
pub struct DataAcceptor {
    pub tls: TlsContext,
    pub acceptor: TlsAcceptor,
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    /// A data connection from a balancer begins with a PROXY header naming the client.
    pub proxy: ProxyPolicy,
}

/// A passive listener waiting, in its own task, for the client's data connection.
pub struct PendingData {
    pub port: u16,
    task: JoinHandle<Result<BoundData, DataRefusal>>,
}

/// The client's data connection, and the server's slot for it (given back with it; a
/// listener that gave up gives it back at once).
pub struct BoundData {
    pub stream: DataStream,
    pub slot: OwnedSemaphorePermit,
}

impl Drop for PendingData {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PendingData {
    /// Starts accepting on `listener`. `report` is told about every refused connection attempt
    /// as it happens (for auditing), including ones the listener then keeps waiting after.
    pub fn spawn(
        listener: TcpListener,
        slot: OwnedSemaphorePermit,
        binding: Binding,
        checks: Arc<DataAcceptor>,
        report: Arc<RefusalReport>,
    ) -> io::Result<PendingData> {
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            let accepted = tokio::time::timeout(
                checks.connect_timeout,
                accept_bound(&listener, &binding, &checks, &report),
            )
            .await;
            match accepted {
                Ok(result) => result.map(|stream| BoundData { stream, slot }),
                Err(_) => Err(refuse(
                    None,
                    DataRefusalStage::Waiting,
                    "data_connection_timeout".into(),
                    &*report,
                )),
            }
        });
        Ok(PendingData { port, task })
    }

    /// Stops listening and waits until the listener task has given its slot back, so a
    /// replacement listener can take it.
    pub async fn cancel(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    /// Waits for the data connection to be ready.
    pub async fn connection(&mut self) -> Result<BoundData, DataRefusal> {
        match (&mut self.task).await {
            Ok(result) => result,
            Err(join_error) => Err(DataRefusal {
                from: None,
                stage: DataRefusalStage::Waiting,
                reason: format!("data_task_failed: {join_error}"),
            }),
        }
    }
}

fn refuse(
    from: Option<SocketAddr>,
    stage: DataRefusalStage,
    reason: String,
    report: &RefusalReport,
) -> DataRefusal {
    let refusal = DataRefusal {
        from,
        stage,
        reason,
    };
    report(&refusal);
    refusal
}

/// Accepts connections until one from the client's address completes TLS and matches the
/// binding; refused ones are reported and waited past. Handshakes run side by side (in this
/// task), so a stranger's slow handshake does not hold up the client's.
async fn accept_bound(
    listener: &TcpListener,
    binding: &Binding,
    checks: &Arc<DataAcceptor>,
    report: &Arc<RefusalReport>,
) -> Result<DataStream, DataRefusal> {
    let mut handshakes = FuturesUnordered::new();
    // The handshakes under way, oldest first, to displace the oldest when one more comes.
    let mut waiting: VecDeque<(u64, AbortHandle)> = VecDeque::new();
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, from) = accepted.map_err(|e| {
                    refuse(None, DataRefusalStage::Waiting, format!("data_accept_failed: {e}"), &**report)
                })?;
                let proxied = checks.proxy.expects_header(from.ip());
                if !proxied && from.ip() != binding.client_ip {
                    refuse(
                        Some(from),
                        DataRefusalStage::OtherAddress,
                        "data_connection_from_other_address".into(),
                        &**report,
                    );
                    continue;
                }
                if waiting.len() >= CONCURRENT_HANDSHAKES
                    && let Some((_, oldest)) = waiting.pop_front()
                {
                    oldest.abort();
                }
                let _ = tcp.set_nodelay(true);
                // The refusal names the client the balancer's header named, where there is one.
                let (id, (handshake, abort)) = (next_id, abortable(async move {
                    let mut tcp = tcp;
                    let mut peer = from;
                    if proxied {
                        match proxy::read_header(&mut tcp, checks.proxy.header_timeout).await {
                            Err(error) => {
                                let reason = format!("data_{}", error.reason());
                                return (peer, Err((DataRefusalStage::Handshake, reason)));
                            }
                            Ok(client) => {
                                peer = client.unwrap_or(peer);
                                if client.map(|client| client.ip()) != Some(binding.client_ip) {
                                    let reason = "data_connection_from_other_address".to_string();
                                    return (peer, Err((DataRefusalStage::OtherAddress, reason)));
                                }
                            }
                        }
                    }
                    let handshake = async {
                        let stream = tls::accept(&checks.acceptor, tcp, checks.handshake_timeout)
                            .await
                            .map_err(|failure| {
                                (DataRefusalStage::Handshake, format!("data_{}", failure.reason))
                            })?;
                        check_binding(&stream, binding, &checks.tls)
                            .map_err(|reason| (DataRefusalStage::Binding, reason))?;
                        Ok(stream)
                    };
                    (peer, handshake.await)
                }));
                next_id += 1;
                waiting.push_back((id, abort));
                handshakes.push(async move { (id, from, handshake.await) });
            }
            Some((id, from, finished)) = handshakes.next() => {
                waiting.retain(|(waiting_id, _)| *waiting_id != id);
                let (peer, stage, reason) = match finished {
                    Ok((_, Ok(stream))) => return Ok(stream),
                    Ok((peer, Err((stage, reason)))) => (peer, stage, reason),
                    Err(Aborted) => (
                        from,
                        DataRefusalStage::Handshake,
                        "data_handshake_displaced".to_string(),
                    ),
                };
                refuse(Some(peer), stage, reason, &**report);
            }
        }
    }
}

fn check_binding(stream: &DataStream, binding: &Binding, tls: &TlsContext) -> Result<(), String> {
    let connection = stream.get_ref().1;
    let presented = connection
        .peer_certificates()
        .and_then(|chain| chain.first());
    if presented != Some(&binding.certificate) {
        return Err("data_connection_certificate_mismatch".into());
    }
    let resumed = connection.handshake_kind() == Some(HandshakeKind::Resumed);
    if binding.require_resumption && !resumed {
        return Err("data_connection_not_resumed".into());
    }
    if resumed {
        tls.verify_resumed_since(connection, &binding.verified)
            .map_err(|failure| format!("data_{}", failure.reason))?;
    }
    Ok(())
}
