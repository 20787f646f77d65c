//! The receiving side of a WS-Security 1.0 SOAP 1.1 message, in the order the profile
//! demands: find the one `wsse:Security` header, decrypt the Body content with our key, parse
//! again, then verify the signature and check that it covers the very Body the Envelope
//! carries, the Timestamp of this Security header and the token that signed, and that the
//! Timestamp is current and no wider than the policy allows.
//!
//! What this module does not decide is whether the signer may call: its certificate
//! ([`Opened::signer_certificate`]) goes to the caller's trust store and user registry.

use std::ops::Range;
use std::time::Duration;

use roxmltree::{Document, Node};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::dsig::{DSIG_NS, DsigError, Ids, Signature, WSU_NS};
use crate::xenc::{EncryptedKey, WSSE_NS, XENC_NS, XencError};
use crate::xml::{self, Limits, XmlError};

pub const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const X509V3: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";

/// What a receiver accepts.
#[derive(Debug, Clone)]
pub struct Policy {
    pub limits: Limits,
    /// The longest `Expires - Created` a Timestamp may have.
    pub max_timestamp_window: Duration,
    /// How far the sender's clock may be off ours.
    pub clock_skew: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_timestamp_window: Duration::from_secs(60),
            clock_skew: Duration::from_secs(30),
        }
    }
}

/// The receiver's decryption key: the private key and the SubjectKeyIdentifier of its
/// certificate, by which senders name it.
pub struct Recipient {
    pub private_key: rsa::PrivateKey,
    pub subject_key_identifier: Vec<u8>,
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsseError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("not a SOAP 1.1 message: {0}")]
    NotSoap(&'static str),
    #[error("the message must have exactly one wsse:Security header")]
    SecurityHeaders,
    #[error("the Security header must have exactly one {0}")]
    Missing(&'static str),
    #[error("the Timestamp {0}")]
    Timestamp(String),
    #[error("the signature must be made with the BinarySecurityToken of the Security header")]
    SignerNotToken,
    #[error("the signature does not cover the {0}")]
    NotSigned(&'static str),
    #[error(transparent)]
    Signature(#[from] DsigError),
    #[error(transparent)]
    Encryption(#[from] XencError),
}

/// A message that passed: the decrypted text and what the caller needs of it.
#[derive(Debug)]
pub struct Opened {
    /// The whole message with the Body decrypted.
    pub text: String,
    body_content: Range<usize>,
    /// The DER of the certificate that signed.
    pub signer_certificate: Vec<u8>,
    pub created: OffsetDateTime,
    pub expires: OffsetDateTime,
}

impl Opened {
    /// What the Body holds, as text.
    pub fn body_content(&self) -> &str {
        &self.text[self.body_content.clone()]
    }
}

/// Opens `text` at `now` for `recipient` under `policy`.
pub fn open(
    text: &str,
    now: OffsetDateTime,
    policy: &Policy,
    recipient: &Recipient,
) -> Result<Opened, WsseError> {
    let decrypted = {
        let document = xml::parse(text, &policy.limits)?;
        let parts = Parts::of(&document)?;
        let ids = Ids::of(&document)?;
        let key = EncryptedKey::read(parts.one_in_security(XENC_NS, "EncryptedKey")?)?;
        if key.recipient_subject_key_identifier != recipient.subject_key_identifier {
            return Err(XencError::Undecryptable.into());
        }
        crate::xenc::decrypt(text, &ids, &key, &recipient.private_key)?
    };

    let (body_content, signer_certificate, created, expires) = verify(&decrypted, now, policy)?;
    Ok(Opened {
        text: decrypted,
        body_content,
        signer_certificate,
        created,
        expires,
    })
}

/// The signature and Timestamp checks of the decrypted message `text`: the Body content's
/// place, the signer's certificate, the Timestamp's times.
fn verify(
    text: &str,
    now: OffsetDateTime,
    policy: &Policy,
) -> Result<(Range<usize>, Vec<u8>, OffsetDateTime, OffsetDateTime), WsseError> {
    let document = xml::parse(text, &policy.limits)?;
    let parts = Parts::of(&document)?;
    let ids = Ids::of(&document)?;
    let token = parts.one_in_security(WSSE_NS, "BinarySecurityToken")?;
    if token.attribute("ValueType") != Some(X509V3) {
        return Err(WsseError::Missing("X.509 v3 BinarySecurityToken"));
    }
    let timestamp = parts.one_in_security(WSU_NS, "Timestamp")?;
    let (created, expires) = check_timestamp(timestamp, now, policy)?;
    let signature = Signature::read(parts.one_in_security(DSIG_NS, "Signature")?, &ids)?;
    match (signed_by(&signature), token.attribute((WSU_NS, "Id"))) {
        (Some(reference), Some(id)) if reference == id => {}
        _ => return Err(WsseError::SignerNotToken),
    }
    let certificate =
        xml::base64_content(token).ok_or(DsigError::NotBase64("BinarySecurityToken"))?;
    let covered = signature.verify(&public_key_of(&certificate)?)?;
    for (element, what) in [
        (parts.body, "Body"),
        (timestamp, "Timestamp"),
        (token, "token"),
    ] {
        if !covered.contains(&element) {
            return Err(WsseError::NotSigned(what));
        }
    }
    Ok((inner_range(parts.body), certificate, created, expires))
}

/// The one Security header of the Envelope's Header, and the Envelope's Body.
struct Parts<'a, 'input> {
    security: Node<'a, 'input>,
    body: Node<'a, 'input>,
}

impl<'a, 'input> Parts<'a, 'input> {
    fn of(document: &'a Document<'input>) -> Result<Self, WsseError> {
        let envelope = document.root_element();
        if !envelope.has_tag_name((SOAP11_NS, "Envelope")) {
            return Err(WsseError::NotSoap(
                "the document element is not a SOAP 1.1 Envelope",
            ));
        }
        let children: Vec<Node> = envelope.children().filter(Node::is_element).collect();
        let [header, body] = children.as_slice() else {
            return Err(WsseError::NotSoap(
                "the Envelope must hold one Header and one Body",
            ));
        };
        if !header.has_tag_name((SOAP11_NS, "Header")) || !body.has_tag_name((SOAP11_NS, "Body")) {
            return Err(WsseError::NotSoap(
                "the Envelope must hold one Header and one Body",
            ));
        }
        let mut securities = header
            .children()
            .filter(|child| child.has_tag_name((WSSE_NS, "Security")));
        let (Some(security), None) = (securities.next(), securities.next()) else {
            return Err(WsseError::SecurityHeaders);
        };
        Ok(Self {
            security,
            body: *body,
        })
    }

    /// The one child `name` of the Security header.
    fn one_in_security(
        &self,
        namespace: &str,
        name: &'static str,
    ) -> Result<Node<'a, 'input>, WsseError> {
        let mut found = self
            .security
            .children()
            .filter(|child| child.has_tag_name((namespace, name)));
        match (found.next(), found.next()) {
            (Some(node), None) => Ok(node),
            _ => Err(WsseError::Missing(name)),
        }
    }
}

/// The token id the signature's KeyInfo points at (`wsse:SecurityTokenReference` with a
/// `wsse:Reference` to `#id`).
fn signed_by<'a>(signature: &Signature<'a, '_>) -> Option<&'a str> {
    signature
        .key_info?
        .children()
        .find(|child| child.has_tag_name((WSSE_NS, "SecurityTokenReference")))?
        .children()
        .find(|child| child.has_tag_name((WSSE_NS, "Reference")))?
        .attribute("URI")?
        .strip_prefix('#')
}

fn check_timestamp(
    timestamp: Node<'_, '_>,
    now: OffsetDateTime,
    policy: &Policy,
) -> Result<(OffsetDateTime, OffsetDateTime), WsseError> {
    let time_of = |name: &'static str| {
        let text = timestamp
            .children()
            .find(|child| child.has_tag_name((WSU_NS, name)))
            .and_then(|child| child.text())
            .ok_or_else(|| WsseError::Timestamp(format!("has no {name}")))?;
        OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| {
            WsseError::Timestamp(format!(
                "{name} {text:?} is not an xsd:dateTime with a zone"
            ))
        })
    };
    let (created, expires) = (time_of("Created")?, time_of("Expires")?);
    let skew = policy.clock_skew;
    if created > now + skew {
        return Err(WsseError::Timestamp(format!(
            "was created in the future ({created})"
        )));
    }
    if expires <= now - skew {
        return Err(WsseError::Timestamp(format!("expired at {expires}")));
    }
    let window = expires - created;
    if window > policy.max_timestamp_window || window.is_negative() {
        return Err(WsseError::Timestamp(format!(
            "spans {} s, more than the {} s allowed",
            window.whole_seconds(),
            policy.max_timestamp_window.as_secs()
        )));
    }
    Ok((created, expires))
}

/// The RSA public key (PKCS#1 DER) of an X.509 certificate, read without trusting it.
fn public_key_of(certificate: &[u8]) -> Result<Vec<u8>, DsigError> {
    let (_, certificate) = x509_parser::parse_x509_certificate(certificate)
        .map_err(|_| DsigError::Missing("readable X.509 certificate in the token"))?;
    Ok(certificate.public_key().subject_public_key.data.to_vec())
}

/// The text between an element's start and end tags.
fn inner_range(element: Node<'_, '_>) -> Range<usize> {
    match (element.first_child(), element.last_child()) {
        (Some(first), Some(last)) => first.range().start..last.range().end,
        _ => element.range().end..element.range().end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_of_an_element_is_between_its_first_and_last_child() {
        let text = r#"<a><b note="x>y">text<c/>tail</b><e/></a>"#;
        let document = roxmltree::Document::parse(text).unwrap();
        let inner = |name: &str| {
            let element = document
                .descendants()
                .find(|node| node.has_tag_name(name))
                .unwrap();
            &text[inner_range(element)]
        };
        assert_eq!(inner("b"), "text<c/>tail");
        assert_eq!(inner("e"), "");
    }
}
