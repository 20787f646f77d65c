//! XML-DSig verification as WS-Security uses it: one `ds:Signature` whose `SignedInfo` is
//! canonicalized with exclusive c14n and whose references point by `#id` at elements of the
//! same message, each with exactly one exclusive-c14n transform. Anything else (other
//! transforms, an `InclusiveNamespaces` prefix list, external or XPointer references, unknown
//! algorithms) is refused before any digest is computed, so no transform ever runs on
//! attacker-chosen input.
//!
//! The verifier reports which elements the references covered; deciding whether those are the
//! ones that had to be signed (the Body actually processed, the Timestamp, the token) is the
//! caller's, and is what defeats signature wrapping. Ids are indexed once per document and a
//! duplicate is refused ([`Ids::of`]), so a reference cannot mean two elements.

use std::collections::HashMap;

use base64::Engine;
use roxmltree::{Document, Node};

use crate::c14n;

pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const WSU_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

/// Why a signature was not accepted. Each names the part of the signature at fault; none
/// carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsigError {
    #[error("the signature has no {0}")]
    Missing(&'static str),
    #[error("unexpected element {0} in the signature")]
    Unexpected(String),
    #[error("{what} {uri:?} is not supported")]
    UnsupportedAlgorithm { what: &'static str, uri: String },
    #[error("an InclusiveNamespaces prefix list is not accepted")]
    PrefixList,
    #[error("a reference must have exactly one exclusive c14n transform")]
    Transforms,
    #[error("reference {0:?} does not point at an element of this message by #id")]
    NotLocal(String),
    #[error("no element has the id {0:?}")]
    UnknownId(String),
    #[error("the id {0:?} is used by more than one element")]
    DuplicateId(String),
    #[error("the element #{0} was changed after it was signed")]
    DigestMismatch(String),
    #[error("{0} is not base64")]
    NotBase64(&'static str),
    #[error("the signature value does not verify with the signer's key")]
    BadSignatureValue,
}

/// The elements of a document by id: `wsu:Id`, and the unqualified `Id` of XML-DSig and
/// XML-Enc elements. An id used twice, in either form, makes the document unusable.
#[derive(Debug)]
pub struct Ids<'a, 'input> {
    by_id: HashMap<&'a str, Node<'a, 'input>>,
}

impl<'a, 'input> Ids<'a, 'input> {
    pub fn of(document: &'a Document<'input>) -> Result<Self, DsigError> {
        let mut by_id = HashMap::new();
        for node in document.descendants().filter(Node::is_element) {
            for attribute in node.attributes() {
                let is_id = attribute.name() == "Id"
                    && matches!(attribute.namespace(), None | Some(WSU_NS));
                if is_id && by_id.insert(attribute.value(), node).is_some() {
                    return Err(DsigError::DuplicateId(attribute.value().to_owned()));
                }
            }
        }
        Ok(Self { by_id })
    }

    pub fn get(&self, id: &str) -> Option<Node<'a, 'input>> {
        self.by_id.get(id).copied()
    }
}

/// A reference of `SignedInfo`: the element it names and the digest it claims.
#[derive(Debug, Clone, Copy)]
pub struct Reference<'a, 'input> {
    pub id: &'a str,
    pub element: Node<'a, 'input>,
    digest: Digest,
    digest_value: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Digest {
    Sha1,
    Sha256,
}

impl Digest {
    fn of(uri: &str) -> Result<Self, DsigError> {
        match uri {
            SHA1 => Ok(Self::Sha1),
            SHA256 => Ok(Self::Sha256),
            uri => Err(DsigError::UnsupportedAlgorithm {
                what: "digest method",
                uri: uri.to_owned(),
            }),
        }
    }

    fn compute(self, bytes: &[u8]) -> aws_lc_rs::digest::Digest {
        let algorithm = match self {
            Self::Sha1 => &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &aws_lc_rs::digest::SHA256,
        };
        aws_lc_rs::digest::digest(algorithm, bytes)
    }
}

/// A `ds:Signature` read and checked for shape, not yet verified.
#[derive(Debug)]
pub struct Signature<'a, 'input> {
    signed_info: Node<'a, 'input>,
    method: &'static aws_lc_rs::signature::RsaParameters,
    value: Vec<u8>,
    pub references: Vec<Reference<'a, 'input>>,
    /// The `ds:KeyInfo`, for the caller to find the signer's token.
    pub key_info: Option<Node<'a, 'input>>,
}

impl<'a, 'input> Signature<'a, 'input> {
    /// Reads `signature` (a `ds:Signature`), resolving its references in `ids`.
    pub fn read(signature: Node<'a, 'input>, ids: &Ids<'a, 'input>) -> Result<Self, DsigError> {
        let mut children = dsig_children(signature)?.into_iter();
        let signed_info = next_named(&mut children, "SignedInfo")?;
        let value_node = next_named(&mut children, "SignatureValue")?;
        let key_info = children.next();
        if let Some(unexpected) = key_info.filter(|node| !node.has_tag_name((DSIG_NS, "KeyInfo"))) {
            return Err(DsigError::Unexpected(
                unexpected.tag_name().name().to_owned(),
            ));
        }
        if let Some(unexpected) = children.next() {
            return Err(DsigError::Unexpected(
                unexpected.tag_name().name().to_owned(),
            ));
        }

        let mut parts = dsig_children(signed_info)?.into_iter();
        exclusive_c14n_method(next_named(&mut parts, "CanonicalizationMethod")?)?;
        let method = match algorithm(next_named(&mut parts, "SignatureMethod")?)? {
            RSA_SHA1 => &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            RSA_SHA256 => &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            uri => {
                return Err(DsigError::UnsupportedAlgorithm {
                    what: "signature method",
                    uri: uri.to_owned(),
                });
            }
        };
        let references = parts
            .map(|reference| read_reference(reference, ids))
            .collect::<Result<Vec<_>, _>>()?;
        if references.is_empty() {
            return Err(DsigError::Missing("Reference"));
        }
        Ok(Self {
            signed_info,
            method,
            value: base64_text(value_node, "SignatureValue")?,
            references,
            key_info,
        })
    }

    /// Checks every reference's digest and then the signature value with `public_key` (an
    /// RSA public key as DER, PKCS#1 or SubjectPublicKeyInfo); the elements covered, in
    /// reference order.
    pub fn verify(&self, public_key: &[u8]) -> Result<Vec<Node<'a, 'input>>, DsigError> {
        for reference in &self.references {
            reference.check_digest()?;
        }
        self.verify_signed_info(public_key)?;
        Ok(self
            .references
            .iter()
            .map(|reference| reference.element)
            .collect())
    }

    /// Checks the signature value over the canonical `SignedInfo` only (the digests are
    /// [`Reference::check_digest`]'s).
    pub fn verify_signed_info(&self, public_key: &[u8]) -> Result<(), DsigError> {
        let signed_info = c14n::exclusive(self.signed_info);
        aws_lc_rs::signature::UnparsedPublicKey::new(self.method, public_key)
            .verify(signed_info.as_bytes(), &self.value)
            .map_err(|_| DsigError::BadSignatureValue)
    }
}

impl Reference<'_, '_> {
    /// Whether the element still has the digest the signer computed.
    pub fn check_digest(&self) -> Result<(), DsigError> {
        let claimed = base64::engine::general_purpose::STANDARD
            .decode(self.digest_value.trim())
            .map_err(|_| DsigError::NotBase64("DigestValue"))?;
        let actual = self
            .digest
            .compute(c14n::exclusive(self.element).as_bytes());
        // Both digests are public (the claimed one is in the message): no constant time needed.
        if actual.as_ref() != claimed.as_slice() {
            return Err(DsigError::DigestMismatch(self.id.to_owned()));
        }
        Ok(())
    }
}

fn read_reference<'a, 'input>(
    reference: Node<'a, 'input>,
    ids: &Ids<'a, 'input>,
) -> Result<Reference<'a, 'input>, DsigError> {
    if !reference.has_tag_name((DSIG_NS, "Reference")) {
        return Err(DsigError::Unexpected(
            reference.tag_name().name().to_owned(),
        ));
    }
    let uri = reference.attribute("URI").unwrap_or_default();
    let id = uri
        .strip_prefix('#')
        .filter(|id| !id.is_empty() && !id.contains(['(', ')', '#']))
        .ok_or_else(|| DsigError::NotLocal(uri.to_owned()))?;
    let element = ids
        .get(id)
        .ok_or_else(|| DsigError::UnknownId(id.to_owned()))?;
    let mut parts = dsig_children(reference)?.into_iter();
    let transforms = dsig_children(next_named(&mut parts, "Transforms")?)?;
    match transforms.as_slice() {
        [transform] if transform.has_tag_name((DSIG_NS, "Transform")) => {
            exclusive_c14n_method(*transform)?;
        }
        _ => return Err(DsigError::Transforms),
    }
    let digest = Digest::of(algorithm(next_named(&mut parts, "DigestMethod")?)?)?;
    let digest_value = next_named(&mut parts, "DigestValue")?
        .text()
        .unwrap_or_default();
    if let Some(unexpected) = parts.next() {
        return Err(DsigError::Unexpected(
            unexpected.tag_name().name().to_owned(),
        ));
    }
    Ok(Reference {
        id,
        element,
        digest,
        digest_value,
    })
}

/// Refuses anything but exclusive c14n without a prefix list.
fn exclusive_c14n_method(method: Node<'_, '_>) -> Result<(), DsigError> {
    let uri = algorithm(method)?;
    if uri != EXC_C14N {
        return Err(DsigError::UnsupportedAlgorithm {
            what: "canonicalization or transform",
            uri: uri.to_owned(),
        });
    }
    match method.children().find(Node::is_element) {
        Some(child) if child.tag_name().name() == "InclusiveNamespaces" => {
            Err(DsigError::PrefixList)
        }
        Some(child) => Err(DsigError::Unexpected(child.tag_name().name().to_owned())),
        None => Ok(()),
    }
}

fn algorithm<'a>(method: Node<'a, '_>) -> Result<&'a str, DsigError> {
    method
        .attribute("Algorithm")
        .ok_or(DsigError::Missing("Algorithm"))
}

/// The element children of `node`, which must all be XML-DSig elements (text between them
/// must be whitespace).
fn dsig_children<'a, 'input>(node: Node<'a, 'input>) -> Result<Vec<Node<'a, 'input>>, DsigError> {
    let mut children = Vec::new();
    for child in node.children() {
        if child.is_element() {
            if child.tag_name().namespace() != Some(DSIG_NS) {
                return Err(DsigError::Unexpected(child.tag_name().name().to_owned()));
            }
            children.push(child);
        } else if child.is_text() && !child.text().unwrap_or_default().trim().is_empty() {
            return Err(DsigError::Unexpected("text".to_owned()));
        }
    }
    Ok(children)
}

fn next_named<'a, 'input>(
    nodes: &mut impl Iterator<Item = Node<'a, 'input>>,
    name: &'static str,
) -> Result<Node<'a, 'input>, DsigError> {
    match nodes.next() {
        Some(node) if node.tag_name().name() == name => Ok(node),
        Some(node) => Err(DsigError::Unexpected(node.tag_name().name().to_owned())),
        None => Err(DsigError::Missing(name)),
    }
}

fn base64_text(node: Node<'_, '_>, what: &'static str) -> Result<Vec<u8>, DsigError> {
    crate::xml::base64_content(node).ok_or(DsigError::NotBase64(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signature over `#b` (the Body) with `transforms` in its reference and `uri` as its
    /// reference.
    fn message(uri: &str, transforms: &str, body_ids: &str) -> String {
        format!(
            r#"<s:Envelope xmlns:s="urn:soap" xmlns:wsu="{WSU_NS}"><s:Header><ds:Signature xmlns:ds="{DSIG_NS}"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/><ds:SignatureMethod Algorithm="{RSA_SHA1}"/><ds:Reference URI="{uri}"><ds:Transforms>{transforms}</ds:Transforms><ds:DigestMethod Algorithm="{SHA1}"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature></s:Header><s:Body {body_ids}>x</s:Body></s:Envelope>"#
        )
    }

    const ONE_TRANSFORM: &str =
        r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#;

    fn read(text: &str) -> Result<(), DsigError> {
        let document = roxmltree::Document::parse(text).unwrap();
        let ids = Ids::of(&document)?;
        let signature = document
            .descendants()
            .find(|node| node.has_tag_name((DSIG_NS, "Signature")))
            .unwrap();
        Signature::read(signature, &ids).map(|_| ())
    }

    #[test]
    fn a_well_formed_signature_reads() {
        read(&message("#b", ONE_TRANSFORM, r#"wsu:Id="b""#)).unwrap();
    }

    #[test]
    fn what_is_not_the_profile_is_refused_before_any_digest() {
        let body = r#"wsu:Id="b""#;
        let prefix_list = r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"><ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="s"/></ds:Transform>"#;
        assert_eq!(
            read(&message("#b", prefix_list, body)),
            Err(DsigError::PrefixList)
        );
        let xslt = r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"/>"#;
        assert!(matches!(
            read(&message("#b", xslt, body)),
            Err(DsigError::UnsupportedAlgorithm { .. })
        ));
        let two = format!("{ONE_TRANSFORM}{ONE_TRANSFORM}");
        assert_eq!(read(&message("#b", &two, body)), Err(DsigError::Transforms));
        assert_eq!(read(&message("#b", "", body)), Err(DsigError::Transforms));
        for uri in ["", "b", "http://example.com/#b", "#xpointer(/)", "#"] {
            assert_eq!(
                read(&message(uri, ONE_TRANSFORM, body)),
                Err(DsigError::NotLocal(uri.to_owned())),
                "{uri}"
            );
        }
        assert_eq!(
            read(&message("#c", ONE_TRANSFORM, body)),
            Err(DsigError::UnknownId("c".to_owned()))
        );
    }

    #[test]
    fn an_id_used_twice_makes_the_message_unusable() {
        let twice = message("#b", ONE_TRANSFORM, r#"wsu:Id="b""#).replace(
            "<s:Header>",
            r#"<s:Header><s:Body wsu:Id="b">forged</s:Body>"#,
        );
        assert_eq!(read(&twice), Err(DsigError::DuplicateId("b".to_owned())));
        let mixed = message("#b", ONE_TRANSFORM, r#"wsu:Id="b""#)
            .replace("<ds:Signature ", r#"<ds:Signature Id="b" "#);
        assert_eq!(read(&mixed), Err(DsigError::DuplicateId("b".to_owned())));
    }
}
