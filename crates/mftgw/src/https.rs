//! The HTTPS accept loop shared by the API and the Certificate Portal: tokio-rustls in front
//! of an axum router, one task per connection, graceful stop through a `watch`. Each request
//! carries the connection's client certificate as a [`TlsPeer`] extension.
//!
//! A few clients must not be able to take every connection: besides the total, connections
//! are limited per address and per network (/24, /48), each address may open only so many
//! per second, and once half the connections are in use the handshake and header deadlines
//! shorten, so that connections held open without a request are let go sooner. Behind a
//! balancer, the limits count the clients its PROXY headers name.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use mftgw_ftps::limits::{AddressRate, ConnectionRate, KeyedCounter};
use mftgw_ftps::proxy::ProxyPolicy;
use mftgw_ftps::{client_key, network_prefix};
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 1024;
/// Connections from one address at once; more are closed at once.
const MAX_CONNECTIONS_PER_ADDRESS: usize = 32;
/// Connections from one network at once.
const MAX_CONNECTIONS_PER_NETWORK: usize = 128;
/// New connections one address may open.
const CONNECTION_RATE: ConnectionRate = ConnectionRate {
    per_second: 20.0,
    burst: 100.0,
};
/// From TCP accept to a finished TLS handshake, and a request's headers, normally ...
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// ... and once half the connections are in use.
const BUSY_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
const BUSY_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Who is at the other end of the connection: its address and the client certificate it
/// presented (the leaf), if any.
#[derive(Debug, Clone)]
pub struct TlsPeer {
    pub address: SocketAddr,
    pub certificate: Option<CertificateDer<'static>>,
    /// SHA-256 of `certificate`, lowercase hex.
    pub fingerprint: Option<String>,
}

/// Serves `router` over TLS on `listener` until `shutdown`. `name` labels the log lines. A
/// connection from one of `proxy`'s balancers begins with a PROXY header naming the client,
/// whose address the limits and the handlers then see.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    proxy: ProxyPolicy,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_address = KeyedCounter::<IpAddr>::new(MAX_CONNECTIONS_PER_ADDRESS);
    let per_network = KeyedCounter::<(IpAddr, u8)>::new(MAX_CONNECTIONS_PER_NETWORK);
    let rate = Arc::new(AddressRate::new(CONNECTION_RATE));
    let proxy = Arc::new(proxy);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => permit.expect("never closed"),
            _ = shutdown.changed() => return,
        };
        let (mut tcp, accepted_from) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "{name} accept failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let busy = connections.available_permits() < MAX_CONNECTIONS / 2;
        let (handshake_timeout, header_timeout) = if busy {
            (BUSY_HANDSHAKE_TIMEOUT, BUSY_HEADER_TIMEOUT)
        } else {
            (HANDSHAKE_TIMEOUT, HEADER_TIMEOUT)
        };
        let (acceptor, router) = (acceptor.clone(), router.clone());
        let (per_address, per_network, rate, proxy) = (
            Arc::clone(&per_address),
            Arc::clone(&per_network),
            Arc::clone(&rate),
            Arc::clone(&proxy),
        );
        tokio::spawn(async move {
            let peer = if proxy.expects_header(accepted_from.ip()) {
                match mftgw_ftps::proxy::read_header(&mut tcp, proxy.header_timeout).await {
                    Ok(client) => client.unwrap_or(accepted_from),
                    Err(error) => {
                        tracing::info!(%accepted_from, reason = error.reason(), "{name}: PROXY header refused");
                        return;
                    }
                }
            } else {
                accepted_from
            };
            let address = client_key(peer.ip());
            if !rate.allow(address, Instant::now()) {
                tracing::debug!(%peer, "{name}: connection rate exceeded");
                return;
            }
            let slots = per_address
                .try_acquire(address)
                .zip(per_network.try_acquire(network_prefix(address)));
            let Some(slots) = slots else {
                tracing::debug!(%peer, "{name}: too many connections from this address or network");
                return;
            };
            let _held = (permit, slots);
            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
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
                .header_read_timeout(header_timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, %error, "{name} connection ended");
            }
        });
    }
}
