//! Messages secured by an independent sender, Apache WSS4J 1.6 (Debian's `libwss4j-java`,
//! driven by `wss4j/WssClient.java`, compiled here with `javac`), opened by `wsse::open`.

use std::path::{Path, PathBuf};
use std::process::Command;

use mftgw_wssec::dsig::DsigError;
use mftgw_wssec::wsse::{self, Policy, Recipient, WsseError};
use time::OffsetDateTime;

use crate::support::{openssl, party, private_key, subject_key_identifier};

const JARS: [&str; 6] = [
    "wss4j",
    "xmlsec",
    "commons-logging",
    "commons-codec",
    "slf4j-api",
    "slf4j-simple",
];

const ENVELOPE: &str = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header/><soapenv:Body><s:OIOKvitteringSamlingHent_I xmlns:s="urn:oio:skat:emcs:ws:1.0.1"><k:HovedOplysninger xmlns:k="http://rep.oio.dk/skat.dk/basis/kontekst/xml/schemas/2006/09/01/"><k:TransaktionIdentifikator>T-ø-1</k:TransaktionIdentifikator></k:HovedOplysninger></s:OIOKvitteringSamlingHent_I></soapenv:Body></soapenv:Envelope>"#;

fn classpath(classes: &Path) -> String {
    let mut entries = vec![classes.display().to_string()];
    for jar in JARS {
        let path = PathBuf::from(format!("/usr/share/java/{jar}.jar"));
        assert!(
            path.exists(),
            "{} is missing: scripts/test installs libwss4j-java",
            path.display()
        );
        entries.push(path.display().to_string());
    }
    entries.join(":")
}

fn run(command: &mut Command) {
    let output = command.output().expect("java and javac are installed");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The envelope as WSS4J secures it for `recipient`, from `client`, with BSP compliance on
/// or off.
fn secured_by_wss4j(dir: &Path, client: &Path, recipient: &Path, bsp: bool) -> String {
    let classes = dir.join("classes");
    if !classes.join("WssClient.class").exists() {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wssec/wss4j/WssClient.java");
        run(Command::new("javac")
            .arg("-d")
            .arg(&classes)
            .arg("-cp")
            .arg(classpath(&classes))
            .arg(source));
    }
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
    run(Command::new("java")
        .arg("-cp")
        .arg(classpath(&classes))
        .arg("WssClient")
        .arg("seal")
        .arg(&input)
        .arg(&p12)
        .arg("secret")
        .arg(recipient.with_extension("der"))
        .arg(&output)
        .arg(bsp.to_string()));
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
