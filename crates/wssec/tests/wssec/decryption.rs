//! XML-Enc decryption against an independent encryptor: the openssl command line wraps a
//! 3DES key for our RSA key (`pkeyutl`, PKCS#1 v1.5) and encrypts the Body content with it
//! (`enc -des-ede3-cbc`, whose PKCS#7 padding is one of the paddings XML-Enc allows). Wrong
//! keys and tampered ciphertexts all get the one generic error.

use std::path::Path;

use crate::support::{encrypted_for, party, private_key, subject_key_identifier};
use base64::Engine;
use mftgw_wssec::dsig::Ids;
use mftgw_wssec::xenc::{self, EncryptedKey, XencError};
use mftgw_wssec::xml;

const BODY: &str = "<m:OIOLedsageDokumentOpret_I xmlns:m=\"urn:oio:skat:emcs:ws:1.0.1\"><m:Tekst>blåbær &amp; øl</m:Tekst></m:OIOLedsageDokumentOpret_I>";

/// A message as a WS-Security sender makes it for `recipient` (a [`party`]), naming it by
/// its certificate's SubjectKeyIdentifier.
fn encrypted_message(dir: &Path, recipient: &Path) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let session_key: Vec<u8> = (0..24u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let iv = [7u8, 1, 8, 2, 8, 1, 8, 2];
    let (wrapped, cipher) = encrypted_for(dir, recipient, &session_key, &iv, BODY.as_bytes());
    let (wrapped, cipher) = (b64.encode(wrapped), b64.encode(cipher));
    format!(
        r##"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header><wsse:Security xmlns:wsse="{wsse}"><xenc:EncryptedKey xmlns:xenc="{xenc}" Id="EK-1"><xenc:EncryptionMethod Algorithm="{rsa15}"/><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><wsse:SecurityTokenReference><wsse:KeyIdentifier EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary" ValueType="{ski}">{ski_value}</wsse:KeyIdentifier></wsse:SecurityTokenReference></ds:KeyInfo><xenc:CipherData><xenc:CipherValue>{wrapped}</xenc:CipherValue></xenc:CipherData><xenc:ReferenceList><xenc:DataReference URI="#ED-1"/></xenc:ReferenceList></xenc:EncryptedKey></wsse:Security></soap:Header><soap:Body><xenc:EncryptedData xmlns:xenc="{xenc}" Id="ED-1" Type="{content}"><xenc:EncryptionMethod Algorithm="{tdes}"/><xenc:CipherData><xenc:CipherValue>{cipher}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData></soap:Body></soap:Envelope>"##,
        wsse = xenc::WSSE_NS,
        xenc = xenc::XENC_NS,
        rsa15 = xenc::RSA_1_5,
        ski = xenc::SUBJECT_KEY_IDENTIFIER,
        content = xenc::CONTENT,
        tdes = xenc::TRIPLEDES_CBC,
        ski_value = b64.encode(subject_key_identifier(
            &std::fs::read(recipient.with_extension("der")).unwrap()
        )),
    )
}

fn decrypt(message: &str, key: &rsa::PrivateKey) -> Result<String, XencError> {
    let document = xml::parse(message, &xml::Limits::default()).unwrap();
    let ids = Ids::of(&document).unwrap();
    let encrypted_key = document
        .descendants()
        .find(|node| node.has_tag_name((xenc::XENC_NS, "EncryptedKey")))
        .unwrap();
    let encrypted_key = EncryptedKey::read(encrypted_key)?;
    xenc::decrypt(message, &ids, &encrypted_key, key)
}

#[test]
fn content_openssl_encrypted_for_us_decrypts_in_place_and_nothing_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let (ours_party, theirs_party) = (party(dir.path(), "ours"), party(dir.path(), "theirs"));
    let message = encrypted_message(dir.path(), &ours_party);
    let ours = private_key(&ours_party);

    let plain = decrypt(&message, &ours).unwrap();
    let document = xml::parse(&plain, &xml::Limits::default()).unwrap();
    let body = document
        .descendants()
        .find(|node| node.has_tag_name("Body"))
        .unwrap();
    assert_eq!(
        &plain[body.range()],
        format!("<soap:Body>{BODY}</soap:Body>")
    );
    let encrypted_key = EncryptedKey::read(
        document
            .descendants()
            .find(|node| node.has_tag_name((xenc::XENC_NS, "EncryptedKey")))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(encrypted_key.data_references, ["ED-1"]);
    let certificate = std::fs::read(ours_party.with_extension("der")).unwrap();
    assert_eq!(
        encrypted_key.recipient_subject_key_identifier,
        subject_key_identifier(&certificate)
    );

    // Someone else's key, a flipped bit in the wrapped key or in the last block: one answer
    // for all.
    let theirs = private_key(&theirs_party);
    assert_eq!(decrypt(&message, &theirs), Err(XencError::Undecryptable));
    let b64 = base64::engine::general_purpose::STANDARD;
    let cipher_values: Vec<String> = message
        .split("<xenc:CipherValue>")
        .skip(1)
        .map(|rest| rest.split('<').next().unwrap().to_string())
        .collect();
    for (value, byte) in [(0, 5), (1, 3), (1, usize::MAX)] {
        let mut bytes = b64.decode(&cipher_values[value]).unwrap();
        let at = if byte == usize::MAX {
            bytes.len() - 1
        } else {
            byte
        };
        bytes[at] ^= 0x40;
        let tampered = message.replace(&cipher_values[value], &b64.encode(&bytes));
        match decrypt(&tampered, &ours) {
            Err(error) => assert_eq!(error, XencError::Undecryptable, "{value}/{byte}"),
            // CBC is not authenticated: a flipped IV bit (and, rarely, a garbled block that
            // still pads and is UTF-8) yields a changed plaintext, which the signature over
            // the Body, checked next, refuses.
            Ok(changed) => assert_ne!(changed, plain, "{value}/{byte}"),
        }
    }

    // The profile's algorithms only, said plainly since no key was touched yet.
    let aes = message.replace(
        xenc::TRIPLEDES_CBC,
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
    );
    assert!(
        matches!(decrypt(&aes, &ours), Err(XencError::Unsupported(reason)) if reason.contains("not tripledes-cbc"))
    );
    let oaep = message.replace(
        xenc::RSA_1_5,
        "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
    );
    assert!(
        matches!(decrypt(&oaep, &ours), Err(XencError::Unsupported(reason)) if reason.contains("not rsa-1_5"))
    );
    let element = message.replace(xenc::CONTENT, "http://www.w3.org/2001/04/xmlenc#Element");
    assert!(matches!(
        decrypt(&element, &ours),
        Err(XencError::Unsupported(_))
    ));
}
