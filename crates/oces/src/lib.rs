//! OCES certificates as the gateway sees them.
//!
//! - [`identity`]: certificate subject → gateway identity (CVR + account), or a precise refusal.
//! - [`certificate`]: the facts about a certificate that the portal, audit log and store keep.
//! - [`trust`]: the client-certificate verifier for FTPS and the portal (trusted roots plus
//!   reloadable CRLs).

#![forbid(unsafe_code)]

pub mod certificate;
pub mod identity;
pub mod trust;

pub use certificate::{CertificateInfo, InvalidCertificate, fingerprint_sha256};
pub use identity::{
    Account, CertificateKind, IdentityRefusal, OcesIdentity, identity_from_der,
    identity_from_subject,
};
pub use trust::{CertificateRefusal, CrlPolicy, CrlStatus, StaleCrlPolicy, TrustError, TrustStore};
