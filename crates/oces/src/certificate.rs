//! The facts about a client certificate that the portal shows, the store keeps and the audit log
//! records: fingerprint, serial, names, email and validity.

use aws_lc_rs::digest;
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::X509Certificate;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Lowercase hex SHA-256 of the DER certificate; what the gateway pins a registration to.
    pub fingerprint_sha256: String,
    /// Lowercase hex of the serial's DER INTEGER content bytes, no separators.
    pub serial_hex: String,
    /// The subject in x509-parser's RFC 4514-like form (`C=DK, O=..., CN=...`, encoding order).
    pub subject: String,
    pub issuer: String,
    pub common_name: Option<String>,
    /// The subject emailAddress attribute, else the first rfc822Name subjectAltName.
    pub email: Option<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a parseable X.509 certificate: {0}")]
pub struct InvalidCertificate(String);

impl CertificateInfo {
    pub fn from_der(der: &[u8]) -> Result<CertificateInfo, InvalidCertificate> {
        let (remainder, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| InvalidCertificate(e.to_string()))?;
        if !remainder.is_empty() {
            return Err(InvalidCertificate(format!(
                "{} bytes of trailing data after the certificate",
                remainder.len()
            )));
        }
        let validity = cert.validity();
        Ok(CertificateInfo {
            fingerprint_sha256: fingerprint_sha256(der),
            serial_hex: lower_hex(cert.raw_serial()),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            common_name: cert
                .subject()
                .iter_common_name()
                .find_map(|cn| cn.as_str().ok())
                .map(str::to_owned),
            email: email(&cert),
            not_before: validity.not_before.to_datetime(),
            not_after: validity.not_after.to_datetime(),
        })
    }
}

/// Lowercase hex SHA-256 of the DER certificate.
pub fn fingerprint_sha256(der: &[u8]) -> String {
    lower_hex(digest::digest(&digest::SHA256, der).as_ref())
}

fn email(cert: &X509Certificate<'_>) -> Option<String> {
    let from_subject = cert
        .subject()
        .iter_email()
        .find_map(|email| email.as_str().ok());
    let from_alt_names = || {
        let alt_names = cert.subject_alternative_name().ok().flatten()?;
        alt_names
            .value
            .general_names
            .iter()
            .find_map(|name| match name {
                GeneralName::RFC822Name(email) => Some(*email),
                _ => None,
            })
    };
    from_subject.or_else(from_alt_names).map(str::to_owned)
}

fn lower_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
