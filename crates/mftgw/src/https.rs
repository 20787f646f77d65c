//! The HTTPS accept loop shared by the API and the Certificate Portal: tokio-rustls in front
//! of an axum router, one task per connection, a connection limit, a handshake deadline and a
//! header timeout, graceful stop through a `watch`. Each request carries the connection's
//! client certificate as a [`PeerCertificate`] extension.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 1024;
/// From TCP accept to a finished TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
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
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            let _permit = permit;
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
