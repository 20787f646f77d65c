//! `seal` checked by an independent party: the openssl command line unwraps the session key
//! with the recipient's private key, decrypts the Body content with it, and verifies the
//! RSA-SHA1 signature over the canonical SignedInfo with the signer's certificate. The
//! receiving side (`wsse::open`) then opens the same message to the same content.

use std::time::Duration;

use crate::support::{openssl, party, private_key, public_key_file, subject_key_identifier};
use base64::Engine;
use mftgw_wssec::c14n;
use mftgw_wssec::dsig::DSIG_NS;
use mftgw_wssec::seal::{EncryptFor, Signer, seal};
use mftgw_wssec::wsse::{self, Policy, Recipient};
use mftgw_wssec::xenc::XENC_NS;
use time::OffsetDateTime;

const CONTENT: &str = "<m:OIOLedsageDokumentOpret_O xmlns:m=\"urn:oio:skat:emcs:ws:1.0.1\"><m:HovedOplysningerSvar><m:TransaktionIdentifikator>T-1</m:TransaktionIdentifikator><m:SvarStruktur>æøå &amp; &lt;ok&gt;</m:SvarStruktur></m:HovedOplysningerSvar></m:OIOLedsageDokumentOpret_O>";

#[test]
fn a_sealed_message_is_what_openssl_can_decrypt_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (gateway, client) = (party(dir.path(), "gateway"), party(dir.path(), "client"));
    let gateway_der = std::fs::read(gateway.with_extension("der")).unwrap();
    let client_der = std::fs::read(client.with_extension("der")).unwrap();
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let signer = Signer {
        private_key: private_key(&gateway),
        certificate: gateway_der.clone(),
    };
    let sealed = seal(
        CONTENT,
        now,
        Duration::from_secs(60),
        &signer,
        &EncryptFor::from_certificate(&client_der).unwrap(),
    )
    .unwrap();
    assert!(!sealed.contains("SvarStruktur"), "the content is encrypted");

    let document = roxmltree::Document::parse(&sealed).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let text_of = |namespace: &str, name: &str, index: usize| -> Vec<u8> {
        let node = document
            .descendants()
            .filter(|node| node.has_tag_name((namespace, name)))
            .nth(index)
            .unwrap();
        b64.decode(node.text().unwrap()).unwrap()
    };
    // The key is named by the client's SubjectKeyIdentifier and opens the content.
    assert_eq!(
        text_of(mftgw_wssec::xenc::WSSE_NS, "KeyIdentifier", 0),
        subject_key_identifier(&client_der)
    );
    std::fs::write(
        dir.path().join("wrapped"),
        text_of(XENC_NS, "CipherValue", 0),
    )
    .unwrap();
    let key = client.with_extension("key");
    let session_key = openssl(
        dir.path(),
        &[
            "pkeyutl",
            "-decrypt",
            "-inkey",
            key.to_str().unwrap(),
            "-pkeyopt",
            "rsa_padding_mode:pkcs1",
            "-in",
            "wrapped",
        ],
    );
    assert_eq!(session_key.len(), 24);
    let data = text_of(XENC_NS, "CipherValue", 1);
    let (iv, body) = data.split_at(8);
    std::fs::write(dir.path().join("body.enc"), body).unwrap();
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let content = openssl(
        dir.path(),
        &[
            "enc",
            "-d",
            "-des-ede3-cbc",
            "-K",
            &hex(&session_key),
            "-iv",
            &hex(iv),
            "-in",
            "body.enc",
        ],
    );
    assert_eq!(String::from_utf8(content).unwrap(), CONTENT);

    // The signature over the canonical SignedInfo is the gateway's.
    let signed_info = document
        .descendants()
        .find(|node| node.has_tag_name((DSIG_NS, "SignedInfo")))
        .unwrap();
    std::fs::write(
        dir.path().join("signed-info.xml"),
        c14n::exclusive(signed_info),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("signature"),
        text_of(DSIG_NS, "SignatureValue", 0),
    )
    .unwrap();
    let public_key = public_key_file(dir.path(), &gateway);
    let verified = openssl(
        dir.path(),
        &[
            "dgst",
            "-sha1",
            "-verify",
            public_key.to_str().unwrap(),
            "-signature",
            "signature",
            "signed-info.xml",
        ],
    );
    assert_eq!(String::from_utf8(verified).unwrap().trim(), "Verified OK");

    // And the receiving side opens it, digests and all.
    let recipient = Recipient {
        private_key: private_key(&client),
        subject_key_identifier: subject_key_identifier(&client_der),
    };
    let opened = wsse::open(&sealed, now, &Policy::default(), &recipient).unwrap();
    assert_eq!(opened.body_content(), CONTENT);
    assert_eq!(opened.signer_certificate, gateway_der);
}
