//! Passive data connections: a port from the configured pool, one listener per `PASV`/`EPSV`,
//! and the checks that bind the data connection to its control session.
//!
//! A data connection is accepted only if it comes from the control connection's IP address,
//! completes a TLS handshake in time, and carries the control connection's client certificate
//! (directly or through a resumed TLS session of it). Connections from another address are
//! dropped and reported, and the listener keeps waiting for the real client.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rustls::HandshakeKind;
use rustls_pki_types::CertificateDer;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::tls;

pub type DataStream = TlsStream<TcpStream>;

/// Told about every refused data connection attempt, for auditing.
pub type RefusalReport = dyn Fn(&DataRefusal) + Send + Sync;

/// Hands out ports from the passive range round-robin, skipping ports the OS reports busy.
#[derive(Debug)]
pub struct PassivePorts {
    range: RangeInclusive<u16>,
    cursor: AtomicU32,
}

impl PassivePorts {
    pub fn new(range: RangeInclusive<u16>) -> PassivePorts {
        PassivePorts {
            range,
            cursor: AtomicU32::new(0),
        }
    }

    pub async fn bind(&self, ip: IpAddr) -> io::Result<TcpListener> {
        let first = u32::from(*self.range.start());
        let size = u32::from(*self.range.end()) - first + 1;
        for _ in 0..size {
            let offset = self.cursor.fetch_add(1, Ordering::Relaxed) % size;
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
}

/// What a data connection must match to belong to a control session.
#[derive(Clone)]
pub struct Binding {
    pub client_ip: IpAddr,
    pub certificate: CertificateDer<'static>,
    pub require_resumption: bool,
}

/// A reason a connection to a passive port was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRefusal {
    pub from: Option<SocketAddr>,
    pub reason: String,
}

/// A passive listener waiting, in its own task, for the client's data connection.
pub struct PendingData {
    pub port: u16,
    task: JoinHandle<Result<DataStream, DataRefusal>>,
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
        binding: Binding,
        acceptor: TlsAcceptor,
        connect_timeout: Duration,
        handshake_timeout: Duration,
        report: Arc<RefusalReport>,
    ) -> io::Result<PendingData> {
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            let accepted = tokio::time::timeout(
                connect_timeout,
                accept_from_client(&listener, binding.client_ip, &*report),
            )
            .await;
            let (tcp, from) = match accepted {
                Ok(Ok(accepted)) => accepted,
                Ok(Err(e)) => {
                    return Err(refuse(None, format!("data_accept_failed: {e}"), &*report));
                }
                Err(_) => return Err(refuse(None, "data_connection_timeout".into(), &*report)),
            };
            drop(listener);
            let stream = tls::accept(&acceptor, tcp, handshake_timeout)
                .await
                .map_err(|failure| {
                    refuse(Some(from), format!("data_{}", failure.reason), &*report)
                })?;
            check_binding(&stream, &binding)
                .map_err(|reason| refuse(Some(from), reason, &*report))?;
            Ok(stream)
        });
        Ok(PendingData { port, task })
    }

    /// Waits for the data connection to be ready.
    pub async fn connection(&mut self) -> Result<DataStream, DataRefusal> {
        match (&mut self.task).await {
            Ok(result) => result,
            Err(join_error) => Err(DataRefusal {
                from: None,
                reason: format!("data_task_failed: {join_error}"),
            }),
        }
    }
}

fn refuse(from: Option<SocketAddr>, reason: String, report: &RefusalReport) -> DataRefusal {
    let refusal = DataRefusal { from, reason };
    report(&refusal);
    refusal
}

async fn accept_from_client(
    listener: &TcpListener,
    client_ip: IpAddr,
    report: &RefusalReport,
) -> io::Result<(TcpStream, SocketAddr)> {
    loop {
        let (tcp, from) = listener.accept().await?;
        if from.ip() == client_ip {
            tcp.set_nodelay(true)?;
            return Ok((tcp, from));
        }
        refuse(
            Some(from),
            "data_connection_from_other_address".into(),
            report,
        );
    }
}

fn check_binding(stream: &DataStream, binding: &Binding) -> Result<(), String> {
    let connection = stream.get_ref().1;
    let presented = connection
        .peer_certificates()
        .and_then(|chain| chain.first());
    if presented != Some(&binding.certificate) {
        return Err("data_connection_certificate_mismatch".into());
    }
    if binding.require_resumption && connection.handshake_kind() != Some(HandshakeKind::Resumed) {
        return Err("data_connection_not_resumed".into());
    }
    Ok(())
}
