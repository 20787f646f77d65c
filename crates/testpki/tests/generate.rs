//! Checks the generated PKI with x509-parser and the openssl CLI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use mftgw_testpki::{ClientProfile, TestPki};
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{OID_PKCS1_RSASSAPSS, OID_X509_EXT_EXTENDED_KEY_USAGE};
use x509_parser::pem::parse_x509_pem;
use x509_parser::prelude::*;

const OID_SERIAL_NUMBER: &str = "2.5.4.5";
const OID_ORGANIZATION_IDENTIFIER: &str = "2.5.4.97";

fn scratch_dir(test: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mftgw-testpki-{test}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn pem_der(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let (_, pem) = parse_x509_pem(&bytes).unwrap();
    pem.contents
}

fn attribute(cert: &X509Certificate<'_>, oid: &str) -> Vec<String> {
    cert.subject()
        .iter_attributes()
        .filter(|attribute| attribute.attr_type().to_id_string() == oid)
        .map(|attribute| attribute.as_str().unwrap().to_owned())
        .collect()
}

fn with_client_cert<T>(
    pki: &TestPki,
    name: &str,
    check: impl FnOnce(&X509Certificate<'_>) -> T,
) -> T {
    let der = pem_der(&pki.client(name).unwrap().cert_pem);
    let (_, cert) = parse_x509_certificate(&der).unwrap();
    check(&cert)
}

fn crl_serials_and_number(path: &Path) -> (Vec<String>, u64) {
    let der = pem_der(path);
    let (_, crl) = parse_x509_crl(&der).unwrap();
    let serials = crl
        .iter_revoked_certificates()
        .map(|revoked| {
            revoked
                .raw_serial()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
        .collect();
    let number = crl
        .crl_number()
        .unwrap()
        .to_u64_digits()
        .first()
        .copied()
        .unwrap_or(0);
    (serials, number)
}

fn openssl_verify(pki: &TestPki, name: &str) -> std::process::Output {
    let client = pki.client(name).unwrap();
    let issuing_ca = pki.issuing_ca_pem(&client.issuer).unwrap();
    let crl = pki
        .crl_paths()
        .into_iter()
        .find(|path| {
            path.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&client.issuer)
        })
        .unwrap();
    Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(pki.root_ca_pem())
        .arg("-untrusted")
        .arg(issuing_ca)
        .arg("-crl_check")
        .arg("-CRLfile")
        .arg(crl)
        .arg(&client.cert_pem)
        .output()
        .expect("the openssl CLI is installed")
}

#[test]
fn generated_subjects_and_extensions_look_like_oces() {
    let dir = scratch_dir("subjects");
    let pki = TestPki::generate(&dir).unwrap();

    let expected_serial_numbers = [
        ("voces", "CVR:19552101-UID:25351738"),
        ("moces", "CVR:19552101-RID:60134540"),
        ("voces-renewed", "CVR:19552101-UID:25351738"),
        ("foces", "CVR:19552101-FID:48213567"),
        ("personal", "PID:9208-2002-2-123456789012"),
        ("expired", "CVR:11223344-RID:1"),
        ("revoked", "CVR:11223344-UID:2"),
        ("untrusted", "CVR:19552101-UID:25351738"),
        ("unregistered", "CVR:55667788-UID:3"),
        ("suspended", "CVR:55667788-RID:4"),
        (
            "oces3-org",
            "UI:DK-O:G:6f0a2c5e-8b1d-4e3f-9a7c-2d4b6e8f0a1c",
        ),
        (
            "oces3-employee",
            "UI:DK-E:G:c3d9e1f7-2a4b-4c6d-8e0f-1a3b5c7d9e2f",
        ),
    ];
    assert_eq!(pki.clients().count(), expected_serial_numbers.len());
    for (name, serial_number) in expected_serial_numbers {
        let client = pki.client(name).unwrap();
        assert_eq!(client.subject_serial_number.as_deref(), Some(serial_number));
        for path in [&client.cert_pem, &client.key_pem, &client.p12] {
            assert!(
                path.is_absolute() && path.exists(),
                "{name}: {}",
                path.display()
            );
        }
        let key = std::fs::read_to_string(&client.key_pem).unwrap();
        assert!(
            key.starts_with("-----BEGIN PRIVATE KEY-----"),
            "{name}: key is not PKCS#8"
        );
        with_client_cert(&pki, name, |cert| {
            assert_eq!(
                attribute(cert, OID_SERIAL_NUMBER),
                [serial_number],
                "{name}"
            );
            assert_eq!(
                cert.subject()
                    .iter_country()
                    .next()
                    .unwrap()
                    .as_str()
                    .unwrap(),
                "DK"
            );
            assert_eq!(
                format!("{:x}", cert.serial),
                client.serial_hex.trim_start_matches('0')
            );
            let oces3 = name.starts_with("oces3");
            let eku = cert
                .get_extension_unique(&OID_X509_EXT_EXTENDED_KEY_USAGE)
                .unwrap();
            if oces3 {
                assert!(eku.is_none(), "{name}: OCES3 certificates carry no EKU");
                assert_eq!(
                    cert.signature_algorithm.algorithm, OID_PKCS1_RSASSAPSS,
                    "{name}"
                );
                assert_eq!(
                    attribute(cert, OID_ORGANIZATION_IDENTIFIER),
                    ["NTRDK-30808460"]
                );
                assert_eq!(cert.public_key().parsed().unwrap().key_size(), 3072);
                assert_eq!(client.issuer, "oces3");
            } else {
                let eku = cert.extended_key_usage().unwrap().unwrap().value;
                assert!(eku.client_auth && eku.email_protection, "{name}");
                assert!(attribute(cert, OID_ORGANIZATION_IDENTIFIER).is_empty());
                let key_usage = cert.key_usage().unwrap().unwrap().value;
                assert!(key_usage.digital_signature() && key_usage.key_encipherment());
            }
        });
    }
    with_client_cert(&pki, "moces", |cert| {
        let organisation = cert.subject().iter_organization().next().unwrap();
        assert_eq!(
            organisation.as_str().unwrap(),
            "Testfirma A/S // CVR:19552101"
        );
        assert_eq!(
            cert.subject()
                .iter_email()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "karen.testesen@testfirma.example"
        );
    });
    assert_eq!(pki.client("untrusted").unwrap().issuer, "untrusted");
    assert_eq!(pki.client("voces").unwrap().issuer, "oces2");
    assert_ne!(
        pki.client("voces").unwrap().fingerprint_sha256,
        pki.client("voces-renewed").unwrap().fingerprint_sha256
    );

    let chain = std::fs::read(&pki.server().cert_chain_pem).unwrap();
    let server_certs: Vec<_> = Pem::iter_from_buffer(&chain)
        .map(|pem| pem.unwrap())
        .collect();
    assert_eq!(server_certs.len(), 2, "server chain is leaf + issuing CA");
    let (_, server) = parse_x509_certificate(&server_certs[0].contents).unwrap();
    let sans = &server
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names;
    assert!(sans.contains(&GeneralName::DNSName("localhost")));
    assert!(sans.contains(&GeneralName::IPAddress(&[127, 0, 0, 1])));
    assert!(
        server
            .extended_key_usage()
            .unwrap()
            .unwrap()
            .value
            .server_auth
    );
    let (_, server_issuer) = parse_x509_certificate(&server_certs[1].contents).unwrap();
    assert_eq!(
        server_issuer
            .subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "mftgw Test OCES2 Issuing CA"
    );

    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn expired_client_validity_lies_entirely_in_the_past() {
    let dir = scratch_dir("expired");
    let pki = TestPki::generate(&dir).unwrap();
    with_client_cert(&pki, "expired", |cert| {
        let now = ASN1Time::now();
        assert!(cert.validity().not_after < now);
        assert!(cert.validity().not_before < cert.validity().not_after);
    });
    with_client_cert(&pki, "moces", |cert| assert!(cert.validity().is_valid()));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn crl_lists_revoked_and_revoke_bumps_the_crl_number() {
    let dir = scratch_dir("crl");
    let mut pki = TestPki::generate(&dir).unwrap();
    let crls = pki.crl_paths();
    assert_eq!(crls.len(), 2);
    let oces2_crl = crls[0].clone();
    let (serials, first_number) = crl_serials_and_number(&oces2_crl);
    assert_eq!(serials, [pki.client("revoked").unwrap().serial_hex.clone()]);
    let (oces3_serials, _) = crl_serials_and_number(&crls[1]);
    assert!(oces3_serials.is_empty());

    pki.revoke("voces").unwrap();
    let (serials, second_number) = crl_serials_and_number(&oces2_crl);
    assert!(second_number > first_number);
    assert!(serials.contains(&pki.client("voces").unwrap().serial_hex));
    assert!(serials.contains(&pki.client("revoked").unwrap().serial_hex));

    let reloaded = TestPki::load(&dir).unwrap();
    assert!(openssl_verify(&reloaded, "voces").status.code() != Some(0));
    assert!(
        pki.revoke("untrusted").is_err(),
        "the untrusted CA publishes no CRL"
    );
    assert!(pki.revoke("nobody").is_err());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn load_round_trips_and_issue_client_extends_the_manifest() {
    let dir = scratch_dir("load");
    let mut pki = TestPki::generate(&dir).unwrap();
    let issued = pki
        .issue_client(
            "extra",
            ClientProfile::Moces {
                cvr: "12345678".into(),
                rid: "42".into(),
            },
        )
        .unwrap()
        .clone();
    assert!(
        pki.issue_client("extra", ClientProfile::Personal { pid: "1".into() })
            .is_err()
    );
    assert!(
        pki.issue_client("Bad/Name", ClientProfile::Personal { pid: "1".into() })
            .is_err()
    );

    let loaded = TestPki::load(&dir).unwrap();
    assert_eq!(loaded.dir(), pki.dir());
    assert_eq!(loaded.root_ca_pem(), pki.root_ca_pem());
    assert_eq!(loaded.crl_paths(), pki.crl_paths());
    assert_eq!(loaded.server().cert_chain_pem, pki.server().cert_chain_pem);
    let names = |pki: &TestPki| pki.clients().map(|c| c.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&loaded), names(&pki));
    let loaded_extra = loaded.client("extra").unwrap();
    assert_eq!(loaded_extra.fingerprint_sha256, issued.fingerprint_sha256);
    assert_eq!(
        loaded_extra.subject_serial_number.as_deref(),
        Some("CVR:12345678-RID:42")
    );
    assert_eq!(openssl_verify(&loaded, "extra").status.code(), Some(0));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn openssl_accepts_valid_clients_and_rejects_revoked_and_expired() {
    let dir = scratch_dir("openssl");
    let pki = TestPki::generate(&dir).unwrap();
    for name in ["moces", "voces", "oces3-org", "oces3-employee"] {
        let output = openssl_verify(&pki, name);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for (name, reason) in [
        ("revoked", "certificate revoked"),
        ("expired", "certificate has expired"),
    ] {
        let output = openssl_verify(&pki, name);
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(0), "{name} must be rejected");
        assert!(text.contains(reason), "{name}: {text}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn pkcs12_bundles_open_with_openssl() {
    let dir = scratch_dir("p12");
    let pki = TestPki::generate(&dir).unwrap();
    for name in ["moces", "oces3-employee", "untrusted"] {
        let client = pki.client(name).unwrap();
        let output = Command::new("openssl")
            .args(["pkcs12", "-nokeys", "-passin"])
            .arg(format!("pass:{}", client.p12_password))
            .arg("-in")
            .arg(&client.p12)
            .output()
            .expect("the openssl CLI is installed");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let expected_certs = if client.issuer == "untrusted" { 2 } else { 3 };
        assert_eq!(
            stdout.matches("BEGIN CERTIFICATE").count(),
            expected_certs,
            "{name}: {stdout}"
        );

        let wrong_password = Command::new("openssl")
            .args(["pkcs12", "-nokeys", "-passin", "pass:wrong", "-in"])
            .arg(&client.p12)
            .output()
            .unwrap();
        assert_ne!(wrong_password.status.code(), Some(0));
    }
    std::fs::remove_dir_all(dir).unwrap();
}
