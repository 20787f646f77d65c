//! The certificate authorities of the test PKI: what each one is called, what key it has, who
//! signs its certificate, and how it signs certificates and CRLs.
//!
//! rcgen only needs an issuer's distinguished name, key identifier method, key usages and key to
//! sign, so after `TestPki::load` an authority is rebuilt from [`Authority::ca_params`] plus its
//! key file instead of parsing its certificate back.

use std::path::Path;

use anyhow::Context;
use aws_lc_rs::signature::RsaKeyPair;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
    RsaKeySize, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::encoding::random_serial;
use crate::rsa_pss::resign_with_rsa_pss_sha256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Authority {
    /// The trust anchor of the test OCES hierarchy.
    Root,
    /// Issues OCES2 profiles (VOCES, MOCES, FOCES, personal) and the gateway's server certificate.
    Oces2,
    /// Issues OCES3 (MitID Erhverv) profiles; RSA 3072, signs with RSA-PSS.
    Oces3,
    /// A self-signed CA nobody trusts, for "unknown issuer" tests.
    Untrusted,
}

impl Authority {
    pub(crate) const ALL: [Authority; 4] = [
        Authority::Root,
        Authority::Oces2,
        Authority::Oces3,
        Authority::Untrusted,
    ];

    /// The name used in file names, in pki.json and in `ClientCredentials::issuer`.
    pub(crate) fn id(self) -> &'static str {
        match self {
            Authority::Root => "root",
            Authority::Oces2 => "oces2",
            Authority::Oces3 => "oces3",
            Authority::Untrusted => "untrusted",
        }
    }

    pub(crate) fn from_id(id: &str) -> Option<Authority> {
        Authority::ALL
            .into_iter()
            .find(|authority| authority.id() == id)
    }

    fn common_name(self) -> &'static str {
        match self {
            Authority::Root => "mftgw Test OCES Root CA",
            Authority::Oces2 => "mftgw Test OCES2 Issuing CA",
            Authority::Oces3 => "mftgw Test OCES3 Issuing CA",
            Authority::Untrusted => "mftgw Untrusted Rogue CA",
        }
    }

    /// The authority that signs this authority's certificate; `None` for self-signed roots.
    pub(crate) fn parent(self) -> Option<Authority> {
        match self {
            Authority::Oces2 | Authority::Oces3 => Some(Authority::Root),
            Authority::Root | Authority::Untrusted => None,
        }
    }

    pub(crate) fn publishes_crl(self) -> bool {
        matches!(self, Authority::Oces2 | Authority::Oces3)
    }

    fn signs_with_rsa_pss(self) -> bool {
        self == Authority::Oces3
    }

    fn generate_key(self) -> anyhow::Result<KeyPair> {
        if self.signs_with_rsa_pss() {
            generate_rsa_3072_key()
        } else {
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("generating a P-256 CA key")
        }
    }

    fn ca_params(self) -> CertificateParams {
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CountryName, "DK");
        name.push(DnType::OrganizationName, "mftgw Test");
        name.push(DnType::CommonName, self.common_name());
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(match self.parent() {
            Some(_) => BasicConstraints::Constrained(0),
            None => BasicConstraints::Unconstrained,
        });
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params
    }
}

pub(crate) fn generate_rsa_3072_key() -> anyhow::Result<KeyPair> {
    KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_3072)
        .context("generating an RSA 3072 key")
}

/// An authority with its key and certificate in memory, ready to sign.
pub(crate) struct SigningAuthority {
    authority: Authority,
    key: KeyPair,
    cert_der: CertificateDer<'static>,
}

impl SigningAuthority {
    /// Creates the authority's key and certificate; `parent` must be given exactly when the
    /// authority is not self-signed.
    pub(crate) fn create(
        authority: Authority,
        parent: Option<&SigningAuthority>,
    ) -> anyhow::Result<SigningAuthority> {
        let key = authority.generate_key()?;
        let now = OffsetDateTime::now_utc();
        let mut params = authority.ca_params();
        params.serial_number = Some(SerialNumber::from(random_serial()?));
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(3650);
        let cert_der = match parent {
            Some(parent) => parent.sign_certificate(&params, &key)?,
            None => {
                let certificate = params
                    .self_signed(&key)
                    .with_context(|| format!("self-signing the {} CA", authority.id()))?;
                certificate.der().clone()
            }
        };
        Ok(SigningAuthority {
            authority,
            key,
            cert_der,
        })
    }

    pub(crate) fn load(
        authority: Authority,
        cert_pem: &Path,
        key_pem: &Path,
    ) -> anyhow::Result<SigningAuthority> {
        let key_text = std::fs::read_to_string(key_pem)
            .with_context(|| format!("reading CA key {}", key_pem.display()))?;
        let key = KeyPair::from_pem(&key_text)
            .with_context(|| format!("parsing CA key {}", key_pem.display()))?;
        let cert_der = CertificateDer::from_pem_file(cert_pem)
            .with_context(|| format!("reading CA certificate {}", cert_pem.display()))?;
        Ok(SigningAuthority {
            authority,
            key,
            cert_der,
        })
    }

    pub(crate) fn authority(&self) -> Authority {
        self.authority
    }

    pub(crate) fn key(&self) -> &KeyPair {
        &self.key
    }

    pub(crate) fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    pub(crate) fn sign_certificate(
        &self,
        params: &CertificateParams,
        subject_key: &KeyPair,
    ) -> anyhow::Result<CertificateDer<'static>> {
        let issuer = Issuer::new(self.authority.ca_params(), &self.key);
        let certificate = params.signed_by(subject_key, &issuer).with_context(|| {
            format!("signing a certificate with the {} CA", self.authority.id())
        })?;
        self.finish_signature(certificate.der())
            .map(CertificateDer::from)
    }

    pub(crate) fn sign_crl(
        &self,
        params: &CertificateRevocationListParams,
    ) -> anyhow::Result<Vec<u8>> {
        let issuer = Issuer::new(self.authority.ca_params(), &self.key);
        let crl = params
            .signed_by(&issuer)
            .with_context(|| format!("signing the {} CRL", self.authority.id()))?;
        self.finish_signature(crl.der())
    }

    fn finish_signature(&self, rcgen_signed_der: &[u8]) -> anyhow::Result<Vec<u8>> {
        if !self.authority.signs_with_rsa_pss() {
            return Ok(rcgen_signed_der.to_vec());
        }
        let rsa_key = RsaKeyPair::from_pkcs8(self.key.serialized_der())
            .map_err(|e| anyhow::anyhow!("the {} CA key is not RSA: {e}", self.authority.id()))?;
        resign_with_rsa_pss_sha256(rcgen_signed_der, &rsa_key)
    }
}
