//! The client-certificate verifier for FTPS and the portal: trusted root CAs plus the issuing
//! CAs' CRLs, with CRLs reloadable at run time.
//!
//! Verification itself is rustls' `WebPkiClientVerifier` (client certificate mandatory, only the
//! end-entity certificate checked against the CRLs, no clientAuth EKU required when the extension
//! is absent, which is how OCES3 certificates come). [`TrustStore`] keeps the current one
//! in an [`ArcSwap`] so that [`TrustStore::reload_crls`] can replace it while connections run;
//! a call that already loaded the old verifier finishes with it.
//!
//! webpki uses a CRL past its nextUpdate as if it were current. SPEC §1 wants a CRL that could
//! not be refreshed to stay in force for a grace period after its nextUpdate, and then, by
//! [`CrlPolicy`], either to refuse the certificates of its issuer or to let them in while the
//! operator is alarmed ([`TrustStore::stale_crls`]). That check runs after webpki's.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use time::OffsetDateTime;

/// Why a certificate presented outside a TLS handshake (a WS-Security token) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateRefusal {
    #[error("the certificate is expired or not yet valid")]
    NotValidNow,
    #[error("the certificate is revoked")]
    Revoked,
    #[error("the CRL of the certificate's issuer is out of date")]
    StaleCrl,
    #[error("the certificate does not chain to a trusted root")]
    Untrusted,
    #[error("the certificate is not acceptable: {0}")]
    Invalid(String),
}

impl From<rustls::Error> for CertificateRefusal {
    fn from(error: rustls::Error) -> Self {
        use CertificateError as E;
        match error {
            rustls::Error::InvalidCertificate(
                E::Expired
                | E::ExpiredContext { .. }
                | E::NotValidYet
                | E::NotValidYetContext { .. },
            ) => Self::NotValidNow,
            rustls::Error::InvalidCertificate(E::Revoked) => Self::Revoked,
            rustls::Error::InvalidCertificate(
                E::ExpiredRevocationList | E::ExpiredRevocationListContext { .. },
            ) => Self::StaleCrl,
            rustls::Error::InvalidCertificate(E::UnknownIssuer | E::BadSignature) => {
                Self::Untrusted
            }
            other => Self::Invalid(other.to_string()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("no trusted root CA file was configured")]
    NoRootFiles,
    #[error("no CRL file was configured: without CRLs no revocation would be checked")]
    NoCrlFiles,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} contains no PEM certificate")]
    NoCertificatesInFile { path: PathBuf },
    #[error("{path} is not valid PEM: {reason}")]
    InvalidPem { path: PathBuf, reason: String },
    #[error("{path}: a certificate is not usable as a trust anchor: {reason}")]
    InvalidRoot { path: PathBuf, reason: String },
    #[error("{path} contains no CRL")]
    NoCrlInFile { path: PathBuf },
    #[error("{path} holds an unparseable CRL: {reason}")]
    InvalidCrl { path: PathBuf, reason: String },
    #[error("cannot build the client certificate verifier: {0}")]
    Verifier(#[from] VerifierBuilderError),
}

/// What happens to certificates whose issuer's CRL is past nextUpdate plus the grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleCrlPolicy {
    /// Refuse them (`CertificateError::ExpiredRevocationList`): nobody can tell whether they
    /// were revoked.
    RefuseCertificates,
    /// Accept them; the operator must watch [`TrustStore::stale_crls`].
    AcceptCertificates,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrlPolicy {
    /// How long after its nextUpdate a CRL that could not be refreshed stays in force.
    pub grace: Duration,
    pub when_stale: StaleCrlPolicy,
}

impl Default for CrlPolicy {
    fn default() -> Self {
        CrlPolicy {
            grace: Duration::from_secs(24 * 60 * 60),
            when_stale: StaleCrlPolicy::RefuseCertificates,
        }
    }
}

/// One loaded CRL, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlStatus {
    pub path: PathBuf,
    pub issuer: String,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
    /// DER of the issuer name, matched against certificates' issuers.
    issuer_der: Vec<u8>,
}

impl CrlStatus {
    /// Past nextUpdate plus `grace`. A CRL without a nextUpdate never goes stale.
    pub fn is_stale(&self, now: OffsetDateTime, grace: Duration) -> bool {
        self.next_update.is_some_and(|next| now > next + grace)
    }
}

/// The verifier and the CRLs it was built from, swapped together.
struct Loaded {
    verifier: Arc<dyn ClientCertVerifier>,
    crls: Vec<CrlStatus>,
    /// (issuer name DER, serial number) of every certificate the CRLs revoke.
    revoked: HashSet<(Vec<u8>, Vec<u8>)>,
}

/// Trusted roots and reloadable CRLs; use it as the `ClientCertVerifier` of a rustls
/// `ServerConfig`.
pub struct TrustStore {
    roots: Arc<RootCertStore>,
    /// Kept outside the swap because `root_hint_subjects` must hand out a plain reference.
    root_subjects: Vec<DistinguishedName>,
    crl_paths: Vec<PathBuf>,
    crl_policy: CrlPolicy,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<Loaded>,
    /// Counts the reloads, for those who remember a verification.
    reloads: Arc<std::sync::atomic::AtomicU64>,
}

impl TrustStore {
    /// `roots`: PEM files of trusted root CAs (every certificate in each file is trusted).
    /// `crls`: PEM (any number of CRLs) or DER (one CRL) files of the issuing CAs.
    pub fn load(
        roots: &[PathBuf],
        crls: &[PathBuf],
        crl_policy: CrlPolicy,
    ) -> Result<Arc<TrustStore>, TrustError> {
        if roots.is_empty() {
            return Err(TrustError::NoRootFiles);
        }
        let mut root_store = RootCertStore::empty();
        for path in roots {
            for certificate in read_pem_certificates(path)? {
                root_store
                    .add(certificate)
                    .map_err(|e| TrustError::InvalidRoot {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
            }
        }
        if crls.is_empty() {
            return Err(TrustError::NoCrlFiles);
        }
        let roots = Arc::new(root_store);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let loaded = load_crls(&roots, &provider, crls)?;
        Ok(Arc::new(TrustStore {
            root_subjects: roots.subjects(),
            roots,
            crl_paths: crls.to_vec(),
            crl_policy,
            provider,
            current: ArcSwap::from_pointee(loaded),
            reloads: Arc::default(),
        }))
    }

    /// Re-reads the CRL files and swaps the verifier atomically; says whether the CRLs changed.
    /// On error the previous verifier (and its CRLs) stays in force.
    pub fn reload_crls(&self) -> Result<bool, TrustError> {
        let loaded = load_crls(&self.roots, &self.provider, &self.crl_paths)?;
        let changed = {
            let current = self.current.load();
            current.crls != loaded.crls || current.revoked != loaded.revoked
        };
        self.current.store(Arc::new(loaded));
        if changed {
            self.reloads
                .fetch_add(1, std::sync::atomic::Ordering::Release);
        }
        Ok(changed)
    }

    /// Counts up whenever a reload changed the CRLs: a verification made before may no longer
    /// hold.
    pub fn reloads(&self) -> Arc<std::sync::atomic::AtomicU64> {
        Arc::clone(&self.reloads)
    }

    /// Whether the CRLs in force revoke `certificate` (looked up by issuer and serial number:
    /// no chain is needed, so it also answers for stored certificates). `false` for a
    /// certificate that does not parse.
    pub fn is_revoked(&self, certificate: &[u8]) -> bool {
        let Ok((_, parsed)) = x509_parser::parse_x509_certificate(certificate) else {
            return false;
        };
        let key = (
            parsed.issuer().as_raw().to_vec(),
            parsed.raw_serial().to_vec(),
        );
        self.current.load().revoked.contains(&key)
    }

    /// Verifies `end_entity` as FTPS login does (chain to a root through `intermediates`,
    /// validity at `now`, the CRLs in force and their freshness), for a certificate that came
    /// in a message rather than a handshake: a WS-Security token carries the end-entity
    /// certificate only, so the issuing CAs come from configuration.
    pub fn verify_certificate(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: OffsetDateTime,
    ) -> Result<(), CertificateRefusal> {
        let now = UnixTime::since_unix_epoch(Duration::from_secs(
            u64::try_from(now.unix_timestamp()).unwrap_or_default(),
        ));
        self.verify_client_cert(end_entity, intermediates, now)?;
        Ok(())
    }

    /// The CRLs in force.
    pub fn crl_status(&self) -> Vec<CrlStatus> {
        self.current.load().crls.clone()
    }

    /// The CRLs past nextUpdate plus the grace period at `now`: each one is an alarm, whatever
    /// the policy does with its issuer's certificates.
    pub fn stale_crls(&self, now: OffsetDateTime) -> Vec<CrlStatus> {
        let grace = self.crl_policy.grace;
        self.current
            .load()
            .crls
            .iter()
            .filter(|crl| crl.is_stale(now, grace))
            .cloned()
            .collect()
    }

    /// Refuses `end_entity` if the policy says so and its issuer's CRL is stale.
    fn check_crl_freshness(
        &self,
        loaded: &Loaded,
        end_entity: &CertificateDer<'_>,
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        if self.crl_policy.when_stale == StaleCrlPolicy::AcceptCertificates {
            return Ok(());
        }
        let now = OffsetDateTime::from_unix_timestamp(now.as_secs() as i64)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let grace = self.crl_policy.grace;
        // The usual case, every CRL fresh, needs no parse of the certificate.
        if !loaded.crls.iter().any(|crl| crl.is_stale(now, grace)) {
            return Ok(());
        }
        let Ok((_, certificate)) = x509_parser::parse_x509_certificate(end_entity) else {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::BadEncoding,
            ));
        };
        let issuer = certificate.issuer().as_raw();
        let stale = loaded
            .crls
            .iter()
            .any(|crl| crl.issuer_der == issuer && crl.is_stale(now, grace));
        if stale {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ExpiredRevocationList,
            ));
        }
        Ok(())
    }

    /// A verifier of the same roots (chain and validity, so expired certificates are refused)
    /// that does not consult the CRLs: the Certificate Portal lets a revoked certificate
    /// register, and only FTPS login refuses it (SPEC §1).
    pub fn verifier_without_revocation(&self) -> Result<Arc<dyn ClientCertVerifier>, TrustError> {
        Ok(
            WebPkiClientVerifier::builder_with_provider(self.roots.clone(), self.provider.clone())
                .build()?,
        )
    }

    pub fn crl_paths(&self) -> &[PathBuf] {
        &self.crl_paths
    }
}

impl fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustStore")
            .field("roots", &self.roots.len())
            .field("crl_paths", &self.crl_paths)
            .finish_non_exhaustive()
    }
}

impl ClientCertVerifier for TrustStore {
    fn offer_client_auth(&self) -> bool {
        self.current.load().verifier.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.current.load().verifier.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.root_subjects
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let loaded = self.current.load();
        let verified = loaded
            .verifier
            .verify_client_cert(end_entity, intermediates, now)?;
        self.check_crl_freshness(&loaded, end_entity, now)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current
            .load()
            .verifier
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current
            .load()
            .verifier
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current.load().verifier.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.current.load().verifier.requires_raw_public_keys()
    }
}

fn load_crls(
    roots: &Arc<RootCertStore>,
    provider: &Arc<CryptoProvider>,
    paths: &[PathBuf],
) -> Result<Loaded, TrustError> {
    let mut revoked = HashSet::new();
    let mut crls = Vec::new();
    let mut statuses = Vec::new();
    for (crl, status, serials) in read_crls(paths)? {
        revoked.extend(
            serials
                .into_iter()
                .map(|serial| (status.issuer_der.clone(), serial)),
        );
        crls.push(crl);
        statuses.push(status);
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .with_crls(crls)
        .only_check_end_entity_revocation()
        .build()?;
    Ok(Loaded {
        verifier,
        crls: statuses,
        revoked,
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, TrustError> {
    std::fs::read(path).map_err(|source| TrustError::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let certificates = CertificateDer::pem_slice_iter(&read_file(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TrustError::InvalidPem {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(TrustError::NoCertificatesInFile {
            path: path.to_owned(),
        });
    }
    Ok(certificates)
}

/// A CRL as read from its file: the DER, what operators see of it, and the serial numbers it
/// revokes.
type ReadCrl = (
    CertificateRevocationListDer<'static>,
    CrlStatus,
    Vec<Vec<u8>>,
);

/// Reads every CRL file and parses each CRL, so that a broken file is named in the error.
fn read_crls(paths: &[PathBuf]) -> Result<Vec<ReadCrl>, TrustError> {
    let mut crls = Vec::new();
    for path in paths {
        let bytes = read_file(path)?;
        let file_crls = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            CertificateRevocationListDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TrustError::InvalidPem {
                    path: path.clone(),
                    reason: e.to_string(),
                })?
        } else {
            vec![CertificateRevocationListDer::from(bytes)]
        };
        if file_crls.is_empty() {
            return Err(TrustError::NoCrlInFile { path: path.clone() });
        }
        for crl in file_crls {
            let parsed = match x509_parser::parse_x509_crl(&crl) {
                Ok(([], parsed)) => Ok(parsed),
                Ok((remainder, _)) => Err(format!("{} bytes of trailing data", remainder.len())),
                Err(e) => Err(e.to_string()),
            }
            .map_err(|reason| TrustError::InvalidCrl {
                path: path.clone(),
                reason,
            })?;
            let status = CrlStatus {
                path: path.clone(),
                issuer: parsed.issuer().to_string(),
                this_update: parsed.last_update().to_datetime(),
                next_update: parsed.next_update().map(|t| t.to_datetime()),
                issuer_der: parsed.issuer().as_raw().to_vec(),
            };
            let serials = parsed
                .iter_revoked_certificates()
                .map(|revoked| revoked.raw_serial().to_vec())
                .collect();
            crls.push((crl, status, serials));
        }
    }
    Ok(crls)
}
