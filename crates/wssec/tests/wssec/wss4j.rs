//! Messages secured by an independent sender, Apache WSS4J 1.6 (Debian's `libwss4j-java`,
//! driven by `wss4j/WssClient.java`, compiled here with `javac`), opened by `wsse::open`.

use std::path::Path;

use mftgw_wssec::dsig::DsigError;
use mftgw_wssec::seal::{EncryptFor, Signer, seal};
use mftgw_wssec::wsse::{self, Policy, Recipient, WsseError};
use time::OffsetDateTime;

use crate::support::{openssl, party, private_key, subject_key_identifier};

#[path = "wss4j/client.rs"]
mod client;
use client::{KeyStore, Wss4j, trust_store};

const ENVELOPE: &str = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header/><soapenv:Body><s:OIOKvitteringSamlingHent_I xmlns:s="urn:oio:skat:emcs:ws:1.0.1"><k:HovedOplysninger xmlns:k="http://rep.oio.dk/skat.dk/basis/kontekst/xml/schemas/2006/09/01/"><k:TransaktionIdentifikator>T-ø-1</k:TransaktionIdentifikator></k:HovedOplysninger></s:OIOKvitteringSamlingHent_I></soapenv:Body></soapenv:Envelope>"#;

/// The envelope as WSS4J secures it for `recipient`, from `client`, with BSP compliance on
/// or off.
fn secured_by_wss4j(dir: &Path, client: &Path, recipient: &Path, bsp: bool) -> String {
    let wss4j = Wss4j::compile(dir);
    let pem = client.with_extension("pem");
    let p12 = client.with_extension("p12");
    if !p12.exists() {
        let der = client.with_extension("der");
        openssl(
            dir,
            &[
                "x509",
                "-inform",
                "DER",
                "-in",
                &der.display().to_string(),
                "-out",
                &pem.display().to_string(),
            ],
        );
        openssl(
            dir,
            &[
                "pkcs12",
                "-export",
                "-inkey",
                &client.with_extension("key").display().to_string(),
                "-in",
                &pem.display().to_string(),
                "-name",
                "client",
                "-passout",
                "pass:secret",
                "-out",
                &p12.display().to_string(),
            ],
        );
    }
    let input = dir.join("envelope.xml");
    std::fs::write(&input, ENVELOPE).unwrap();
    let output = dir.join(format!("secured-{bsp}.xml"));
    wss4j.seal(
        &[(&input, &output)],
        &KeyStore {
            file: &p12,
            password: "secret",
        },
        &recipient.with_extension("der"),
        bsp,
    );
    std::fs::read_to_string(output).unwrap()
}

#[test]
fn a_wss4j_message_without_prefix_lists_opens_and_with_them_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = party(dir.path(), "gateway");
    let client = party(dir.path(), "client");
    let recipient = Recipient {
        private_key: private_key(&gateway),
        subject_key_identifier: subject_key_identifier(
            &std::fs::read(gateway.with_extension("der")).unwrap(),
        ),
    };

    let secured = secured_by_wss4j(dir.path(), &client, &gateway, false);
    assert!(
        !secured.contains("OIOKvitteringSamlingHent_I"),
        "the Body is encrypted"
    );
    let opened = wsse::open(
        &secured,
        OffsetDateTime::now_utc(),
        &Policy::default(),
        &recipient,
    )
    .unwrap();
    let body = opened.body_content();
    assert!(body.starts_with("<s:OIOKvitteringSamlingHent_I"), "{body}");
    assert!(body.contains("T-ø-1"), "{body}");
    assert_eq!(
        opened.signer_certificate,
        std::fs::read(client.with_extension("der")).unwrap()
    );
    assert!((opened.expires - opened.created).whole_seconds() <= 60);

    let with_prefix_lists = secured_by_wss4j(dir.path(), &client, &gateway, true);
    assert!(with_prefix_lists.contains("InclusiveNamespaces"));
    assert_eq!(
        wsse::open(
            &with_prefix_lists,
            OffsetDateTime::now_utc(),
            &Policy::default(),
            &recipient
        )
        .unwrap_err(),
        WsseError::Signature(DsigError::PrefixList)
    );
}

#[test]
fn wss4j_opens_what_seal_makes() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = party(dir.path(), "gateway");
    let client = party(dir.path(), "client");
    // Makes the client's key store.
    secured_by_wss4j(dir.path(), &client, &gateway, false);
    let certificate = |party: &Path| std::fs::read(party.with_extension("der")).unwrap();
    let body = ENVELOPE
        .split_once("<soapenv:Body>")
        .and_then(|(_, rest)| rest.split_once("</soapenv:Body>"))
        .unwrap()
        .0;
    let sealed = seal(
        body,
        OffsetDateTime::now_utc(),
        std::time::Duration::from_secs(60),
        &Signer {
            private_key: private_key(&gateway),
            certificate: certificate(&gateway),
        },
        &EncryptFor::from_certificate(&certificate(&client)).unwrap(),
    )
    .unwrap();
    let input = dir.path().join("sealed.xml");
    std::fs::write(&input, &sealed).unwrap();
    let output = dir.path().join("opened.xml");
    let trust = trust_store(
        &dir.path().join("trust.p12"),
        &[&gateway.with_extension("der")],
    );
    let report = Wss4j::compile(dir.path())
        .open(
            &[(&input, &output)],
            &KeyStore {
                file: &client.with_extension("p12"),
                password: "secret",
            },
            &trust,
        )
        .remove(0);
    let lines: Vec<&str> = report.lines().collect();
    for expected in [
        "decrypted",
        "timestamp",
        "signed Body",
        "signed Timestamp",
        "signed BinarySecurityToken",
    ] {
        assert!(lines.contains(&expected), "{expected:?} in {report}");
    }
    assert!(
        lines.iter().any(|line| line.starts_with("signer ")),
        "{report}"
    );
    let opened = std::fs::read_to_string(output).unwrap();
    assert!(opened.contains("T-ø-1"), "{opened}");
}
