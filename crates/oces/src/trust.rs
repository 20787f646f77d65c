//! The client-certificate verifier for FTPS and the portal: trusted root CAs plus the issuing
//! CAs' CRLs, with CRLs reloadable at run time.
//!
//! Verification itself is rustls' `WebPkiClientVerifier` (client certificate mandatory, only the
//! end-entity certificate checked against the CRLs, no clientAuth EKU required when the extension
//! is absent, which is how OCES3 certificates come). [`TrustStore`] keeps the current one
//! in an [`ArcSwap`] so that [`TrustStore::reload_crls`] can replace it while connections run;
//! a call that already loaded the old verifier finishes with it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("no trusted root CA file was configured")]
    NoRootFiles,
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

/// Trusted roots and reloadable CRLs; use it as the `ClientCertVerifier` of a rustls
/// `ServerConfig`.
pub struct TrustStore {
    roots: Arc<RootCertStore>,
    /// Kept outside the swap because `root_hint_subjects` must hand out a plain reference.
    root_subjects: Vec<DistinguishedName>,
    crl_paths: Vec<PathBuf>,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<Arc<dyn ClientCertVerifier>>,
}

impl TrustStore {
    /// `roots`: PEM files of trusted root CAs (every certificate in each file is trusted).
    /// `crls`: PEM (any number of CRLs) or DER (one CRL) files of the issuing CAs.
    pub fn load(roots: &[PathBuf], crls: &[PathBuf]) -> Result<Arc<TrustStore>, TrustError> {
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
        let roots = Arc::new(root_store);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = build_verifier(&roots, &provider, read_crls(crls)?)?;
        Ok(Arc::new(TrustStore {
            root_subjects: roots.subjects(),
            roots,
            crl_paths: crls.to_vec(),
            provider,
            current: ArcSwap::from_pointee(verifier),
        }))
    }

    /// Re-reads the CRL files and swaps the verifier atomically. On error the previous verifier
    /// (and its CRLs) stays in force.
    pub fn reload_crls(&self) -> Result<(), TrustError> {
        let verifier = build_verifier(&self.roots, &self.provider, read_crls(&self.crl_paths)?)?;
        self.current.store(Arc::new(verifier));
        Ok(())
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
        self.current.load().offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.current.load().client_auth_mandatory()
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
        self.current
            .load()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current
            .load()
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
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current.load().supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.current.load().requires_raw_public_keys()
    }
}

fn build_verifier(
    roots: &Arc<RootCertStore>,
    provider: &Arc<CryptoProvider>,
    crls: Vec<CertificateRevocationListDer<'static>>,
) -> Result<Arc<dyn ClientCertVerifier>, TrustError> {
    Ok(
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .with_crls(crls)
            .only_check_end_entity_revocation()
            .build()?,
    )
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

/// Reads every CRL file and checks each CRL parses, so that a broken file is named in the error.
fn read_crls(paths: &[PathBuf]) -> Result<Vec<CertificateRevocationListDer<'static>>, TrustError> {
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
        for crl in &file_crls {
            let reason = match x509_parser::parse_x509_crl(crl) {
                Ok(([], _)) => continue,
                Ok((remainder, _)) => format!("{} bytes of trailing data", remainder.len()),
                Err(e) => e.to_string(),
            };
            return Err(TrustError::InvalidCrl {
                path: path.clone(),
                reason,
            });
        }
        crls.extend(file_crls);
    }
    Ok(crls)
}
