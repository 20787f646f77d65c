//! XML-Enc decryption as WS-Security 1.0 uses it: an `xenc:EncryptedKey` in the Security
//! header, its key wrapped with RSA PKCS#1 v1.5 (`rsa-1_5`) for the receiver (named by the
//! X.509 SubjectKeyIdentifier of its certificate), naming by `DataReference` the
//! `xenc:EncryptedData` elements (`Type` Content) it opens, each `tripledes-cbc`.
//!
//! Every failure after the structure was read (a wrong key, bad RSA padding, bad CBC padding,
//! plaintext that is not UTF-8) is the same [`XencError::Undecryptable`]: a sender must not be
//! able to tell them apart (no padding oracle). The RSA step uses implicit rejection, so bad
//! key padding yields a wrong key rather than an early error, and the work done is the same.
//!
//! Decrypted content replaces its `EncryptedData` in the message text ([`decrypt`]); the caller
//! parses the result again (within its limits) and only then verifies the signature, whose
//! Body digest was computed over the plaintext.

use cbc::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::NoPadding};
use roxmltree::Node;

use crate::dsig::{DSIG_NS, Ids};

pub const XENC_NS: &str = "http://www.w3.org/2001/04/xmlenc#";
pub const WSSE_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
pub const RSA_1_5: &str = "http://www.w3.org/2001/04/xmlenc#rsa-1_5";
pub const TRIPLEDES_CBC: &str = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc";
pub const CONTENT: &str = "http://www.w3.org/2001/04/xmlenc#Content";
pub const SUBJECT_KEY_IDENTIFIER: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509SubjectKeyIdentifier";

const TRIPLEDES_KEY_LEN: usize = 24;
const TRIPLEDES_BLOCK: usize = 8;

/// Why a message was not decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XencError {
    /// The encryption is not the profile's (its structure or algorithms); says what.
    #[error("{0}")]
    Unsupported(String),
    /// The key is not for us, or anything after unwrapping it failed. Deliberately vague.
    #[error("the message cannot be decrypted")]
    Undecryptable,
}

/// An `xenc:EncryptedKey` read for its structure.
#[derive(Debug)]
pub struct EncryptedKey<'a> {
    /// The SubjectKeyIdentifier of the certificate the key was wrapped for.
    pub recipient_subject_key_identifier: Vec<u8>,
    wrapped: Vec<u8>,
    /// The ids of the `EncryptedData` elements it opens.
    pub data_references: Vec<&'a str>,
}

impl<'a> EncryptedKey<'a> {
    pub fn read(node: Node<'a, '_>) -> Result<Self, XencError> {
        let method = child(node, XENC_NS, "EncryptionMethod")?;
        if method.attribute("Algorithm") != Some(RSA_1_5) {
            return Err(unsupported(format!(
                "key transport {:?} is not rsa-1_5",
                method.attribute("Algorithm").unwrap_or_default()
            )));
        }
        let key_identifier = child(
            child(
                child(node, DSIG_NS, "KeyInfo")?,
                WSSE_NS,
                "SecurityTokenReference",
            )?,
            WSSE_NS,
            "KeyIdentifier",
        )?;
        if key_identifier.attribute("ValueType") != Some(SUBJECT_KEY_IDENTIFIER) {
            return Err(unsupported(
                "the key must name its recipient by X509SubjectKeyIdentifier".into(),
            ));
        }
        let data_references = child(node, XENC_NS, "ReferenceList")?
            .children()
            .filter(|reference| reference.has_tag_name((XENC_NS, "DataReference")))
            .map(|reference| {
                reference
                    .attribute("URI")
                    .and_then(|uri| uri.strip_prefix('#'))
                    .ok_or_else(|| unsupported("a DataReference must be a local #id".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if data_references.is_empty() {
            return Err(unsupported("the EncryptedKey opens nothing".into()));
        }
        Ok(Self {
            recipient_subject_key_identifier: base64(key_identifier)?,
            wrapped: base64(child(
                child(node, XENC_NS, "CipherData")?,
                XENC_NS,
                "CipherValue",
            )?)?,
            data_references,
        })
    }
}

/// The message `text` with every `EncryptedData` that `key` opens replaced by its plaintext,
/// the session key unwrapped with `private_key`. `ids` indexes the document parsed from `text`.
pub fn decrypt(
    text: &str,
    ids: &Ids<'_, '_>,
    key: &EncryptedKey<'_>,
    private_key: &rsa::PrivateKey,
) -> Result<String, XencError> {
    let mut targets = key
        .data_references
        .iter()
        .map(|id| {
            let data = ids
                .get(id)
                .filter(|node| node.has_tag_name((XENC_NS, "EncryptedData")))
                .ok_or_else(|| unsupported(format!("#{id} is not an EncryptedData")))?;
            encrypted_content(data).map(|cipher| (data.range(), cipher))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let session_key = private_key
        .decrypt(rsa::Pkcs1v15Encrypt, &key.wrapped)
        .map_err(|_| XencError::Undecryptable)?;
    // A key of the wrong length goes on as a random one, so that it fails where a wrong key
    // of the right length would, after the same work.
    let session_key = if session_key.len() == TRIPLEDES_KEY_LEN {
        session_key
    } else {
        let mut random = vec![0; TRIPLEDES_KEY_LEN];
        aws_lc_rs::rand::fill(&mut random).map_err(|_| XencError::Undecryptable)?;
        random
    };
    targets.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
    let mut plain = text.to_owned();
    for (range, cipher) in targets {
        plain.replace_range(range, &tripledes_cbc_decrypt(&session_key, &cipher)?);
    }
    Ok(plain)
}

/// The IV and ciphertext of a Content `EncryptedData` in 3DES-CBC.
fn encrypted_content(data: Node<'_, '_>) -> Result<Vec<u8>, XencError> {
    if data.attribute("Type") != Some(CONTENT) {
        return Err(unsupported("only Content encryption is accepted".into()));
    }
    let method = child(data, XENC_NS, "EncryptionMethod")?;
    if method.attribute("Algorithm") != Some(TRIPLEDES_CBC) {
        return Err(unsupported(format!(
            "data encryption {:?} is not tripledes-cbc",
            method.attribute("Algorithm").unwrap_or_default()
        )));
    }
    base64(child(
        child(data, XENC_NS, "CipherData")?,
        XENC_NS,
        "CipherValue",
    )?)
}

/// Decrypts IV || ciphertext and removes the XML-Enc padding (the last byte says how many
/// bytes were added, 1 to a block; their values are arbitrary).
fn tripledes_cbc_decrypt(key: &[u8], cipher: &[u8]) -> Result<String, XencError> {
    if cipher.len() < 2 * TRIPLEDES_BLOCK || !cipher.len().is_multiple_of(TRIPLEDES_BLOCK) {
        return Err(XencError::Undecryptable);
    }
    let (iv, body) = cipher.split_at(TRIPLEDES_BLOCK);
    let mut buffer = body.to_vec();
    let decryptor = cbc::Decryptor::<des::TdesEde3>::new_from_slices(key, iv)
        .map_err(|_| XencError::Undecryptable)?;
    let plain = decryptor
        .decrypt_padded::<NoPadding>(&mut buffer)
        .map_err(|_| XencError::Undecryptable)?;
    let padding = usize::from(*plain.last().ok_or(XencError::Undecryptable)?);
    if !(1..=TRIPLEDES_BLOCK).contains(&padding) {
        return Err(XencError::Undecryptable);
    }
    let content = &plain[..plain.len() - padding];
    String::from_utf8(content.to_vec()).map_err(|_| XencError::Undecryptable)
}

fn child<'a, 'input>(
    node: Node<'a, 'input>,
    namespace: &str,
    name: &'static str,
) -> Result<Node<'a, 'input>, XencError> {
    node.children()
        .find(|child| child.has_tag_name((namespace, name)))
        .ok_or_else(|| unsupported(format!("{} has no {name}", node.tag_name().name())))
}

fn base64(node: Node<'_, '_>) -> Result<Vec<u8>, XencError> {
    crate::xml::base64_content(node)
        .ok_or_else(|| unsupported(format!("{} is not base64", node.tag_name().name())))
}

fn unsupported(reason: String) -> XencError {
    XencError::Unsupported(reason)
}
