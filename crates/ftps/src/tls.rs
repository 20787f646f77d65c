//! TLS for control and data connections: the rustls server configuration (TLS 1.2 and 1.3,
//! AEAD suites only, client certificate mandatory), handshakes with a deadline, and a readable
//! reason when a handshake fails.
//!
//! rustls reports a rejected client certificate only as an error kind. To audit *which*
//! certificate was refused, the verifier is wrapped in [`ObservingVerifier`], which records the
//! presented end-entity certificate in a task-local slot that [`accept`] sets up around the
//! handshake of its own connection.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerSessionMemoryCache, WantsServerCert};
use rustls::{
    CertificateError, ConfigBuilder, DigitallySignedStruct, DistinguishedName, Error,
    PeerIncompatible, ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// What the server presents and whom it trusts.
pub struct TlsSettings {
    pub cert_chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// Verifies client certificates (trust anchors, validity, CRLs). It may change its
    /// behaviour at run time (CRL reload); the engine asks it on every handshake.
    pub client_verifier: Arc<dyn ClientCertVerifier>,
    /// Resumption cache entries shared by control and data connections.
    pub session_cache_size: usize,
    /// Counts up whenever the verifier's CRLs change. A session's resumed data connections
    /// are then verified again only after a change, or once a minute has passed (expiry, a
    /// CRL going stale); without it, every time.
    pub verifier_changes: Option<Arc<AtomicU64>>,
}

/// However unchanged the verifier, a certificate verified longer ago than this is verified
/// again (it may have expired, a CRL may have gone stale).
pub(crate) const REVERIFY_AFTER: Duration = Duration::from_secs(60);

/// When a session's certificate was last verified, and under which count of verifier changes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Verified {
    changes: u64,
    at: Instant,
}

/// The server's rustls configuration and the verifier behind it.
#[derive(Clone)]
pub struct TlsContext {
    pub config: Arc<ServerConfig>,
    verifier: Arc<dyn ClientCertVerifier>,
    verifier_changes: Option<Arc<AtomicU64>>,
}

impl TlsContext {
    /// Says that a certificate has just been verified.
    pub(crate) fn verified_now(&self) -> Verified {
        Verified {
            changes: self.changes(),
            at: Instant::now(),
        }
    }

    fn changes(&self) -> u64 {
        self.verifier_changes
            .as_ref()
            .map_or(0, |changes| changes.load(Ordering::Acquire))
    }

    /// [`TlsContext::verify_resumed_certificate`], unless `last` says the certificate was
    /// verified under the verifier as it is, within [`REVERIFY_AFTER`]; updates `last`.
    pub(crate) fn verify_resumed_since(
        &self,
        connection: &rustls::ServerConnection,
        last: &std::sync::Mutex<Verified>,
    ) -> Result<(), HandshakeFailure> {
        let changes = self.changes();
        let current = {
            let last = last.lock().expect("verification memo poisoned");
            self.verifier_changes.is_some()
                && last.changes == changes
                && last.at.elapsed() < REVERIFY_AFTER
        };
        if current {
            return Ok(());
        }
        self.verify_resumed_certificate(connection)?;
        *last.lock().expect("verification memo poisoned") = Verified {
            changes,
            at: Instant::now(),
        };
        Ok(())
    }

    /// rustls does not verify the client certificate again when a session is resumed, so a
    /// certificate revoked (or expired) since the first handshake would come back in through
    /// an old session. Control connections call this after every resumed handshake.
    pub fn verify_resumed_certificate(
        &self,
        connection: &rustls::ServerConnection,
    ) -> Result<(), HandshakeFailure> {
        let chain = connection.peer_certificates().unwrap_or_default();
        let Some((end_entity, intermediates)) = chain.split_first() else {
            return Err(HandshakeFailure {
                reason: "no_client_certificate".into(),
                presented: None,
            });
        };
        self.verify_certificate(end_entity, intermediates)
    }

    /// Verifies a client certificate as a handshake would now (chain, validity, the CRLs in
    /// force): for sessions that outlive a CRL reload.
    pub fn verify_certificate(
        &self,
        end_entity: &CertificateDer<'static>,
        intermediates: &[CertificateDer<'static>],
    ) -> Result<(), HandshakeFailure> {
        self.verifier
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
            .map(|_| ())
            .map_err(|error| HandshakeFailure {
                reason: describe_tls_error(&error),
                presented: Some(end_entity.clone()),
            })
    }
}

pub fn server_config(settings: TlsSettings) -> Result<TlsContext, Error> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let builder: ConfigBuilder<ServerConfig, _> =
        ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder: ConfigBuilder<ServerConfig, WantsServerCert> =
        builder.with_client_cert_verifier(Arc::new(ObservingVerifier {
            inner: Arc::clone(&settings.client_verifier),
        }));
    let mut config = builder.with_single_cert(settings.cert_chain, settings.key)?;
    config.session_storage = ServerSessionMemoryCache::new(settings.session_cache_size);
    Ok(TlsContext {
        config: Arc::new(config),
        verifier: settings.client_verifier,
        verifier_changes: settings.verifier_changes,
    })
}

tokio::task_local! {
    static PRESENTED_CERTIFICATE: RefCell<Option<CertificateDer<'static>>>;
}

#[derive(Debug)]
struct ObservingVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for ObservingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let _ = PRESENTED_CERTIFICATE.try_with(|slot| {
            *slot.borrow_mut() = Some(end_entity.clone().into_owned());
        });
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A failed handshake: a stable reason for the audit log and the certificate, if one was shown.
#[derive(Debug)]
pub struct HandshakeFailure {
    pub reason: String,
    pub presented: Option<CertificateDer<'static>>,
}

/// Runs the server side of a TLS handshake on `tcp`, giving up after `timeout`.
pub async fn accept(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, HandshakeFailure> {
    let handshake = PRESENTED_CERTIFICATE.scope(RefCell::new(None), async {
        let result = tokio::time::timeout(timeout, acceptor.accept(tcp)).await;
        let presented = PRESENTED_CERTIFICATE.with(|slot| slot.borrow_mut().take());
        (result, presented)
    });
    match handshake.await {
        (Ok(Ok(stream)), _) => Ok(stream),
        (Ok(Err(error)), presented) => Err(HandshakeFailure {
            reason: describe_handshake_error(&error),
            presented,
        }),
        (Err(_elapsed), presented) => Err(HandshakeFailure {
            reason: "tls_handshake_timeout".to_string(),
            presented,
        }),
    }
}

/// Maps a handshake I/O error to a stable, specific reason.
fn describe_handshake_error(error: &std::io::Error) -> String {
    match error.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
        Some(tls) => describe_tls_error(tls),
        None if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            "tls_connection_closed_during_handshake".into()
        }
        None => format!("tls_handshake_io_error: {error}"),
    }
}

fn describe_tls_error(tls: &Error) -> String {
    match tls {
        Error::NoCertificatesPresented => "no_client_certificate".into(),
        Error::InvalidCertificate(cert_error) => match cert_error {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate_expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate_not_yet_valid".into()
            }
            CertificateError::Revoked => "certificate_revoked".into(),
            CertificateError::UnknownIssuer => "certificate_untrusted_issuer".into(),
            CertificateError::UnknownRevocationStatus => {
                "certificate_revocation_status_unknown".into()
            }
            CertificateError::ExpiredRevocationList
            | CertificateError::ExpiredRevocationListContext { .. } => {
                "certificate_revocation_list_expired".into()
            }
            other => format!("certificate_invalid: {other:?}"),
        },
        // A TLS 1.0/1.1 ClientHello has no signature_algorithms extension, and rustls stops
        // at that before it looks at the version.
        Error::PeerIncompatible(
            PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled
            | PeerIncompatible::Tls13RequiredForQuic
            | PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::SignatureAlgorithmsExtensionRequired,
        ) => "tls_version_not_supported".into(),
        Error::PeerIncompatible(other) => format!("tls_incompatible: {other:?}"),
        Error::InvalidMessage(_) => "tls_invalid_message".into(),
        other => format!("tls_error: {other}"),
    }
}
