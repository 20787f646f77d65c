//! `identity_from_der` and `CertificateInfo` over the test PKI's real certificates.

use mftgw_oces::{CertificateInfo, CertificateKind, IdentityRefusal, identity_from_der};
use mftgw_testpki::TestPki;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;

fn client_der(pki: &TestPki, name: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(&pki.client(name).unwrap().cert_pem).unwrap()
}

#[test]
fn testpki_clients_map_to_the_expected_identities() {
    let dir = std::env::temp_dir().join(format!("mftgw-oces-identities-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let pki = TestPki::generate(&dir).unwrap();

    let accepted = [
        ("voces", "CVR_19552101_UID_25351738", CertificateKind::Voces),
        (
            "voces-renewed",
            "CVR_19552101_UID_25351738",
            CertificateKind::Voces,
        ),
        (
            "untrusted",
            "CVR_19552101_UID_25351738",
            CertificateKind::Voces,
        ),
        ("moces", "CVR_19552101_RID_60134540", CertificateKind::Moces),
        ("expired", "CVR_11223344_RID_1", CertificateKind::Moces),
        ("revoked", "CVR_11223344_UID_2", CertificateKind::Voces),
        ("unregistered", "CVR_55667788_UID_3", CertificateKind::Voces),
        ("suspended", "CVR_55667788_RID_4", CertificateKind::Moces),
        (
            "oces3-org",
            "CVR_30808460_UI_6f0a2c5e-8b1d-4e3f-9a7c-2d4b6e8f0a1c",
            CertificateKind::Oces3Organisation,
        ),
        (
            "oces3-employee",
            "CVR_30808460_UI_c3d9e1f7-2a4b-4c6d-8e0f-1a3b5c7d9e2f",
            CertificateKind::Oces3Employee,
        ),
    ];
    for (name, username, kind) in accepted {
        let identity = identity_from_der(&client_der(&pki, name))
            .unwrap_or_else(|refusal| panic!("{name}: {refusal}"));
        assert_eq!(identity.username(), username, "{name}");
        assert_eq!(identity.kind, kind, "{name}");
    }
    assert_eq!(
        identity_from_der(&client_der(&pki, "foces")),
        Err(IdentityRefusal::FunctionCertificate)
    );
    let personal = identity_from_der(&client_der(&pki, "personal")).unwrap();
    assert_eq!(personal.username(), "PID_9208-2002-2-123456789012");
    assert_eq!(
        personal.of_company(),
        Err(IdentityRefusal::PersonalCertificate)
    );

    let moces = pki.client("moces").unwrap();
    let info = CertificateInfo::from_der(&client_der(&pki, "moces")).unwrap();
    assert_eq!(info.fingerprint_sha256, moces.fingerprint_sha256);
    assert_eq!(info.serial_hex, moces.serial_hex);
    assert_eq!(info.common_name.as_deref(), Some("Karen Testesen"));
    assert_eq!(
        info.email.as_deref(),
        Some("karen.testesen@testfirma.example")
    );
    assert!(
        info.subject.contains("CN=Karen Testesen"),
        "{}",
        info.subject
    );
    assert!(
        info.issuer.contains("mftgw Test OCES2 Issuing CA"),
        "{}",
        info.issuer
    );
    let now = OffsetDateTime::now_utc();
    assert!(info.not_before < now && now < info.not_after);

    let expired = CertificateInfo::from_der(&client_der(&pki, "expired")).unwrap();
    assert!(expired.not_after < now);
    assert_eq!(expired.email, None);
    assert!(CertificateInfo::from_der(b"junk").is_err());

    std::fs::remove_dir_all(dir).unwrap();
}
