//! SKAT's own sample request (`emcs-b2b-ws/sample/request-test-system.xml`, made by SKAT's
//! client) checks the canonicalization against an independent implementation: the SHA-1 of the
//! exclusive canonical form of its Timestamp and its BinarySecurityToken must be the digests its
//! signature carries. The sample was pretty-printed after signing, so the whitespace between
//! elements and around text is removed first (the Body was signed before it was encrypted, so
//! its digest cannot be checked). The signature value over SignedInfo verifies with the
//! certificate in the BinarySecurityToken.

use base64::Engine;
use mftgw_wssec::dsig::{DSIG_NS, DsigError, Ids, Signature};
use mftgw_wssec::{c14n, xml};

/// SKAT's `emcs-b2b-ws/sample/`, copied.
const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/wssec/skat");

/// The sample as it went on the wire: no whitespace-only text, no whitespace around text.
fn unindented(name: &str) -> String {
    let pretty = std::fs::read_to_string(format!("{SAMPLES}/{name}")).unwrap();
    let mut out = String::with_capacity(pretty.len());
    let mut rest = pretty.as_str();
    while let Some(open) = rest.find('<') {
        out.push_str(rest[..open].trim());
        let close = open + rest[open..].find('>').unwrap() + 1;
        out.push_str(&rest[open..close]);
        rest = &rest[close..];
    }
    out
}

fn by_id<'a, 'input>(
    document: &'a roxmltree::Document<'input>,
    id: &str,
) -> roxmltree::Node<'a, 'input> {
    document
        .descendants()
        .find(|node| {
            node.attributes()
                .any(|attribute| attribute.name() == "Id" && attribute.value() == id)
        })
        .unwrap_or_else(|| panic!("no element with Id {id}"))
}

fn sha1_base64(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        text.as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

#[test]
fn the_samples_timestamp_and_token_digests_are_reproduced() {
    for name in ["request-test-system.xml", "response-test-system.xml"] {
        let text = unindented(name);
        let document = xml::parse(&text, &xml::Limits::default()).unwrap();
        let references: Vec<(String, String)> = document
            .descendants()
            .filter(|node| node.has_tag_name((DSIG_NS, "Reference")))
            .map(|reference| {
                let uri = reference
                    .attribute("URI")
                    .unwrap()
                    .trim_start_matches('#')
                    .to_string();
                let digest = reference
                    .descendants()
                    .find(|node| node.has_tag_name("DigestValue"))
                    .and_then(|node| node.text())
                    .unwrap()
                    .to_string();
                (uri, digest)
            })
            .collect();
        assert_eq!(references.len(), 3, "{name}: Timestamp, Body, token");
        let mut checked = 0;
        for (id, digest) in &references {
            let element = by_id(&document, id);
            if element.has_tag_name("Body") {
                continue;
            }
            assert_eq!(
                &sha1_base64(&c14n::exclusive(element)),
                digest,
                "{name}: #{id}"
            );
            checked += 1;
        }
        assert_eq!(checked, 2, "{name}");
    }
}

/// The RSA public key of the message's BinarySecurityToken, as PKCS#1 DER.
fn token_key(document: &roxmltree::Document<'_>) -> Vec<u8> {
    let token = document
        .descendants()
        .find(|node| node.has_tag_name("BinarySecurityToken"))
        .unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(token.text().unwrap().trim())
        .unwrap();
    let (_, certificate) = x509_parser::parse_x509_certificate(&der).unwrap();
    certificate.public_key().subject_public_key.data.to_vec()
}

#[test]
fn the_samples_signatures_verify_with_their_tokens_and_the_encrypted_body_does_not() {
    for name in ["request-test-system.xml", "response-test-system.xml"] {
        let text = unindented(name);
        let document = xml::parse(&text, &xml::Limits::default()).unwrap();
        let ids = Ids::of(&document).unwrap();
        let signature = document
            .descendants()
            .find(|node| node.has_tag_name((DSIG_NS, "Signature")))
            .unwrap();
        let signature = Signature::read(signature, &ids).unwrap();
        let key = token_key(&document);
        signature
            .verify_signed_info(&key)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        let body = signature
            .references
            .iter()
            .find(|reference| reference.element.has_tag_name("Body"))
            .unwrap();
        assert_eq!(
            signature.verify(&key).unwrap_err(),
            DsigError::DigestMismatch(body.id.to_string()),
            "{name}: the Body was encrypted after it was signed"
        );

        // The same SignedInfo with one character changed no longer verifies.
        let tampered = text.replacen("<ds:DigestValue>", "<ds:DigestValue>A", 1);
        let tampered = tampered.replacen("<dsig:DigestValue>", "<dsig:DigestValue>A", 1);
        assert_ne!(tampered, text, "{name}");
        let document = xml::parse(&tampered, &xml::Limits::default()).unwrap();
        let ids = Ids::of(&document).unwrap();
        let signature = document
            .descendants()
            .find(|node| node.has_tag_name((DSIG_NS, "Signature")))
            .unwrap();
        assert!(matches!(
            Signature::read(signature, &ids)
                .unwrap()
                .verify_signed_info(&key),
            Err(DsigError::BadSignatureValue)
        ));
    }
}
