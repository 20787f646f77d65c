//! The HTTPS accept loop shared by the API and the Certificate Portal: tokio-rustls in front
//! of an axum router, one task per connection, a connection limit, a handshake deadline and a
//! header timeout, graceful stop through a `watch`. Each request carries the connection's
//! client certificate as a [`PeerCertificate`] extension.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 1024;
/// Connections from one address at once; more are closed at once.
const MAX_CONNECTIONS_PER_ADDRESS: usize = 64;
/// From TCP accept to a finished TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A request's headers must arrive within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Who is at the other end of the connection: its address and the client certificate it
/// presented (the leaf), if any.
#[derive(Debug, Clone)]
pub struct TlsPeer {
    pub address: SocketAddr,
    pub certificate: Option<CertificateDer<'static>>,
    /// SHA-256 of `certificate`, lowercase hex.
    pub fingerprint: Option<String>,
}

/// Serves `router` over TLS on `listener` until `shutdown`. `name` labels the log lines.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let per_address = Arc::new(Mutex::new(HashMap::<IpAddr, usize>::new()));
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => permit.expect("never closed"),
            _ = shutdown.changed() => return,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "{name} accept failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Some(address_slot) = AddressSlot::take(&per_address, peer.ip()) else {
            tracing::debug!(%peer, "{name}: too many connections from this address");
            continue;
        };
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let _address_slot = address_slot;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::info!(%peer, %error, "{name} TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let certificate = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|certificate| certificate.clone().into_owned());
            let fingerprint = certificate
                .as_ref()
                .map(|der| mftgw_oces::certificate::fingerprint_sha256(der));
            let router = router.layer(axum::Extension(TlsPeer {
                address: peer,
                certificate,
                fingerprint,
            }));
            let service = hyper_util::service::TowerToHyperService::new(router);
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, %error, "{name} connection ended");
            }
        });
    }
}

/// One of an address's [`MAX_CONNECTIONS_PER_ADDRESS`] connections, given back on drop.
struct AddressSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    address: IpAddr,
}

impl AddressSlot {
    fn take(counts: &Arc<Mutex<HashMap<IpAddr, usize>>>, address: IpAddr) -> Option<AddressSlot> {
        let mut map = counts.lock().expect("lock poisoned");
        let count = map.entry(address).or_default();
        if *count >= MAX_CONNECTIONS_PER_ADDRESS {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            counts: Arc::clone(counts),
            address,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = self.counts.lock().expect("lock poisoned");
        if let Some(count) = map.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.address);
            }
        }
    }
}
