//! RSASSA-PSS signing for the OCES3 issuing CA.
//!
//! Real OCES3 certificates and CRLs are signed with RSA-PSS, but rcgen 0.14 can only sign with
//! RSA PKCS#1 v1.5. So the OCES3 CA lets rcgen produce a PKCS#1-signed certificate or CRL, and
//! this module swaps in the RSA-PSS AlgorithmIdentifier (in the to-be-signed part and outside it)
//! and signs the new to-be-signed bytes again with aws-lc-rs.

use anyhow::{Context, bail, ensure};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PSS_SHA256, RsaKeyPair};

const SEQUENCE: u8 = 0x30;
const BIT_STRING: u8 = 0x03;

/// `rsassaPss` with SHA-256, MGF1-SHA-256 and a 32-byte salt, encoded exactly as RFC 4055 and
/// rustls-webpki expect it.
const RSA_PSS_SHA256_ALGORITHM_IDENTIFIER: &[u8] = &[
    0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x34, 0xa0,
    0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30,
    0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa2, 0x03,
    0x02, 0x01, 0x20,
];

/// Re-signs a DER certificate or CRL (`SEQUENCE { tbs, signatureAlgorithm, signature }`) with
/// RSA-PSS SHA-256.
pub(crate) fn resign_with_rsa_pss_sha256(
    signed_der: &[u8],
    signer: &RsaKeyPair,
) -> anyhow::Result<Vec<u8>> {
    let outer = Tlv::read(signed_der)?;
    ensure!(
        outer.tag == SEQUENCE && outer.encoded_len == signed_der.len(),
        "signed object is not a single DER SEQUENCE"
    );
    let tbs = Tlv::read(outer.content)?;
    ensure!(tbs.tag == SEQUENCE, "to-be-signed part is not a SEQUENCE");

    // The signature AlgorithmIdentifier is the first SEQUENCE inside the to-be-signed part in both
    // layouts: certificates start with [0] version and INTEGER serial, CRLs with INTEGER version.
    let mut new_tbs_content = Vec::with_capacity(tbs.content.len() + 64);
    let mut remaining = tbs.content;
    let mut replaced_algorithm = false;
    while !remaining.is_empty() {
        let element = Tlv::read(remaining)?;
        if element.tag == SEQUENCE && !replaced_algorithm {
            new_tbs_content.extend_from_slice(RSA_PSS_SHA256_ALGORITHM_IDENTIFIER);
            replaced_algorithm = true;
        } else {
            new_tbs_content.extend_from_slice(&remaining[..element.encoded_len]);
        }
        remaining = &remaining[element.encoded_len..];
    }
    ensure!(
        replaced_algorithm,
        "to-be-signed part has no signature AlgorithmIdentifier"
    );
    let new_tbs = encode_tlv(SEQUENCE, &new_tbs_content);

    let mut signature = vec![0u8; signer.public_modulus_len()];
    signer
        .sign(
            &RSA_PSS_SHA256,
            &SystemRandom::new(),
            &new_tbs,
            &mut signature,
        )
        .map_err(|_| anyhow::anyhow!("RSA-PSS signing failed"))?;
    let mut signature_bits = Vec::with_capacity(signature.len() + 1);
    signature_bits.push(0); // no unused bits
    signature_bits.extend_from_slice(&signature);

    let mut body = new_tbs;
    body.extend_from_slice(RSA_PSS_SHA256_ALGORITHM_IDENTIFIER);
    body.extend_from_slice(&encode_tlv(BIT_STRING, &signature_bits));
    Ok(encode_tlv(SEQUENCE, &body))
}

struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    /// Tag, length and content bytes together.
    encoded_len: usize,
}

impl<'a> Tlv<'a> {
    fn read(der: &'a [u8]) -> anyhow::Result<Self> {
        let (&tag, rest) = der.split_first().context("DER element is empty")?;
        let (&first_length_byte, rest) = rest.split_first().context("DER length is missing")?;
        let (content_len, header_len) = if first_length_byte < 0x80 {
            (usize::from(first_length_byte), 2)
        } else {
            let length_bytes = usize::from(first_length_byte & 0x7f);
            if length_bytes == 0 || length_bytes > 4 || rest.len() < length_bytes {
                bail!("unsupported DER length encoding {first_length_byte:#04x}");
            }
            let content_len = rest[..length_bytes]
                .iter()
                .fold(0usize, |len, &b| (len << 8) | usize::from(b));
            (content_len, 2 + length_bytes)
        };
        let encoded_len = header_len + content_len;
        ensure!(der.len() >= encoded_len, "DER element is truncated");
        Ok(Tlv {
            tag,
            content: &der[header_len..encoded_len],
            encoded_len,
        })
    }
}

fn encode_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut encoded = vec![tag];
    let len = content.len();
    if len < 0x80 {
        encoded.push(len as u8);
    } else {
        let len_bytes = len.to_be_bytes();
        let first = len_bytes.iter().position(|&b| b != 0).unwrap_or(0);
        encoded.push(0x80 | (len_bytes.len() - first) as u8);
        encoded.extend_from_slice(&len_bytes[first..]);
    }
    encoded.extend_from_slice(content);
    encoded
}
