//! The sending side: a SOAP 1.1 message whose Body content is signed and then encrypted, as
//! the profile's receivers expect ([`crate::wsse::open`] is the mirror). The Security header
//! holds, in this order, the EncryptedKey (a fresh 3DES key wrapped with RSA v1.5 for the
//! recipient, named by its SubjectKeyIdentifier), the signer's BinarySecurityToken, the
//! Timestamp, and an RSA-SHA1 signature over the Timestamp, the Body (before encryption) and
//! the token, referenced by `wsu:Id`, with exclusive c14n and no prefix list.

use std::time::Duration;

use base64::Engine;
use cbc::cipher::{BlockModeEncrypt, KeyIvInit, block_padding::Pkcs7};
use rsa::pkcs8::DecodePublicKey;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::c14n;
use crate::dsig::{DSIG_NS, EXC_C14N, RSA_SHA1, SHA1, WSU_NS};
use crate::wsse::{Recipient, SOAP11_NS, X509V3};
use crate::xenc::{CONTENT, RSA_1_5, SUBJECT_KEY_IDENTIFIER, TRIPLEDES_CBC, WSSE_NS, XENC_NS};
use crate::xml::{self, Limits, XmlError};

const BASE64_BINARY: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";

/// Who signs: our WS-Security key and the certificate that goes in the token.
pub struct Signer {
    pub private_key: rsa::PrivateKey,
    pub certificate: Vec<u8>,
}

/// Whom a message is encrypted for, from their certificate.
#[derive(Debug, Clone)]
pub struct EncryptFor {
    public_key: rsa::PublicKey,
    subject_key_identifier: Vec<u8>,
}

impl EncryptFor {
    /// The recipient of `certificate` (DER).
    pub fn from_certificate(certificate: &[u8]) -> Result<Self, SealError> {
        let (_, parsed) = x509_parser::parse_x509_certificate(certificate)
            .map_err(|_| SealError::Certificate("not an X.509 certificate"))?;
        let public_key = rsa::PublicKey::from_public_key_der(parsed.public_key().raw)
            .map_err(|_| SealError::Certificate("its key is not RSA"))?;
        Ok(Self {
            public_key,
            subject_key_identifier: subject_key_identifier(&parsed),
        })
    }
}

/// A party's own WS-Security credentials: what it signs with and what it is sent encrypted
/// for.
pub struct Credentials {
    pub signer: Signer,
    pub recipient: Recipient,
}

impl Credentials {
    /// The credentials of `certificate` (DER) and its RSA private key (PKCS#8 PEM).
    pub fn from_pem(certificate: &[u8], private_key_pem: &str) -> Result<Self, SealError> {
        use rsa::pkcs8::DecodePrivateKey;
        let (_, parsed) = x509_parser::parse_x509_certificate(certificate)
            .map_err(|_| SealError::Certificate("not an X.509 certificate"))?;
        let private_key = rsa::PrivateKey::from_pkcs8_pem(private_key_pem)
            .map_err(|_| SealError::Certificate("its key is not an RSA PKCS#8 PEM key"))?;
        let public_key = rsa::PublicKey::from_public_key_der(parsed.public_key().raw)
            .map_err(|_| SealError::Certificate("its key is not RSA"))?;
        if public_key != private_key.to_public_key() {
            return Err(SealError::Certificate(
                "the private key is not the certificate's",
            ));
        }
        Ok(Self {
            recipient: Recipient {
                private_key: private_key.clone(),
                subject_key_identifier: subject_key_identifier(&parsed),
            },
            signer: Signer {
                private_key,
                certificate: certificate.to_vec(),
            },
        })
    }
}

/// How senders name `certificate`: its SubjectKeyIdentifier extension, or, as the X.509
/// token profile says for a certificate without one, the SHA-1 of its public key.
fn subject_key_identifier(certificate: &x509_parser::certificate::X509Certificate<'_>) -> Vec<u8> {
    certificate
        .extensions()
        .iter()
        .find_map(|extension| match extension.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(id.0.to_vec())
            }
            _ => None,
        })
        .unwrap_or_else(|| {
            sha1_digest(&certificate.public_key().subject_public_key.data)
                .as_ref()
                .to_vec()
        })
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the body content is not XML: {0}")]
    Content(XmlError),
    #[error("the recipient's certificate cannot be used: {0}")]
    Certificate(&'static str),
    #[error("signing or encrypting failed")]
    Crypto,
}

/// The message carrying `body_content` (XML content, typically one element), signed by
/// `signer` at `now` with a Timestamp valid for `lifetime`, encrypted for `recipient`.
pub fn seal(
    body_content: &str,
    now: OffsetDateTime,
    lifetime: Duration,
    signer: &Signer,
    recipient: &EncryptFor,
) -> Result<String, SealError> {
    let id = random_id()?;
    let (token, timestamp, body) = (format!("X509-{id}"), format!("TS-{id}"), format!("id-{id}"));
    let created = now.format(&Rfc3339).map_err(|_| SealError::Crypto)?;
    let expires = (now + lifetime)
        .format(&Rfc3339)
        .map_err(|_| SealError::Crypto)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let security = |encrypted_key: &str, signature: &str| {
        format!(
            r#"<wsse:Security xmlns:wsse="{WSSE_NS}" xmlns:wsu="{WSU_NS}" soap:mustUnderstand="1">{encrypted_key}<wsse:BinarySecurityToken EncodingType="{BASE64_BINARY}" ValueType="{X509V3}" wsu:Id="{token}">{certificate}</wsse:BinarySecurityToken><wsu:Timestamp wsu:Id="{timestamp}"><wsu:Created>{created}</wsu:Created><wsu:Expires>{expires}</wsu:Expires></wsu:Timestamp>{signature}</wsse:Security>"#,
            certificate = b64.encode(&signer.certificate),
        )
    };
    let envelope = |security: &str, content: &str| {
        format!(
            r#"<soap:Envelope xmlns:soap="{SOAP11_NS}"><soap:Header>{security}</soap:Header><soap:Body xmlns:wsu="{WSU_NS}" wsu:Id="{body}">{content}</soap:Body></soap:Envelope>"#
        )
    };
    let signature = |signed_info: &str, value: &str| {
        format!(
            r##"<ds:Signature xmlns:ds="{DSIG_NS}" Id="SIG-{id}">{signed_info}<ds:SignatureValue>{value}</ds:SignatureValue><ds:KeyInfo><wsse:SecurityTokenReference><wsse:Reference URI="#{token}" ValueType="{X509V3}"/></wsse:SecurityTokenReference></ds:KeyInfo></ds:Signature>"##
        )
    };

    let unsigned = envelope(&security("", ""), body_content);
    let signed_info = {
        let document = xml::parse(&unsigned, &Limits::default()).map_err(SealError::Content)?;
        let references: String = [&timestamp, &body, &token]
            .iter()
            .map(|id| {
                let element = document
                    .descendants()
                    .find(|node| node.attribute((WSU_NS, "Id")) == Some(id.as_str()))
                    .expect("the message has the ids it was built with");
                let digest = sha1_digest(c14n::exclusive(element).as_bytes());
                format!(
                    r##"<ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="{EXC_C14N}"/></ds:Transforms><ds:DigestMethod Algorithm="{SHA1}"/><ds:DigestValue>{}</ds:DigestValue></ds:Reference>"##,
                    b64.encode(digest)
                )
            })
            .collect();
        format!(
            r#"<ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/><ds:SignatureMethod Algorithm="{RSA_SHA1}"/>{references}</ds:SignedInfo>"#
        )
    };
    // SignedInfo is canonicalized where it will stand, inside the Signature and the header.
    let value = {
        let in_place = envelope(&security("", &signature(&signed_info, "")), body_content);
        let document = xml::parse(&in_place, &Limits::default()).map_err(SealError::Content)?;
        let signed_info = document
            .descendants()
            .find(|node| node.has_tag_name((DSIG_NS, "SignedInfo")))
            .expect("the message has the SignedInfo it was built with");
        signer
            .private_key
            .pkcs1v15_sign::<sha1::Sha1>(c14n::exclusive(signed_info).as_bytes())
            .map_err(|_| SealError::Crypto)?
    };

    let mut session_key = [0u8; 24];
    let mut iv = [0u8; 8];
    aws_lc_rs::rand::fill(&mut session_key).map_err(|_| SealError::Crypto)?;
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| SealError::Crypto)?;
    let encryptor = cbc::Encryptor::<des::TdesEde3>::new_from_slices(&session_key, &iv)
        .map_err(|_| SealError::Crypto)?;
    let content = body_content.as_bytes();
    let mut buffer = vec![0u8; (content.len() / 8 + 1) * 8];
    buffer[..content.len()].copy_from_slice(content);
    let encrypted = encryptor
        .encrypt_padded::<Pkcs7>(&mut buffer, content.len())
        .map_err(|_| SealError::Crypto)?;
    let mut cipher = iv.to_vec();
    cipher.extend_from_slice(encrypted);
    let wrapped = recipient
        .public_key
        .pkcs1v15_encrypt(&session_key)
        .map_err(|_| SealError::Crypto)?;
    let encrypted_key = format!(
        r##"<xenc:EncryptedKey xmlns:xenc="{XENC_NS}" Id="EK-{id}"><xenc:EncryptionMethod Algorithm="{RSA_1_5}"/><ds:KeyInfo xmlns:ds="{DSIG_NS}"><wsse:SecurityTokenReference><wsse:KeyIdentifier EncodingType="{BASE64_BINARY}" ValueType="{SUBJECT_KEY_IDENTIFIER}">{ski}</wsse:KeyIdentifier></wsse:SecurityTokenReference></ds:KeyInfo><xenc:CipherData><xenc:CipherValue>{wrapped}</xenc:CipherValue></xenc:CipherData><xenc:ReferenceList><xenc:DataReference URI="#ED-{id}"/></xenc:ReferenceList></xenc:EncryptedKey>"##,
        ski = b64.encode(&recipient.subject_key_identifier),
        wrapped = b64.encode(wrapped),
    );
    let encrypted_data = format!(
        r#"<xenc:EncryptedData xmlns:xenc="{XENC_NS}" Id="ED-{id}" Type="{CONTENT}"><xenc:EncryptionMethod Algorithm="{TRIPLEDES_CBC}"/><xenc:CipherData><xenc:CipherValue>{cipher}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>"#,
        cipher = b64.encode(cipher),
    );
    Ok(envelope(
        &security(&encrypted_key, &signature(&signed_info, &b64.encode(value))),
        &encrypted_data,
    ))
}

fn sha1_digest(bytes: &[u8]) -> aws_lc_rs::digest::Digest {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, bytes)
}

/// 16 random hex digits, the suffix of this message's ids.
fn random_id() -> Result<String, SealError> {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| SealError::Crypto)?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}
