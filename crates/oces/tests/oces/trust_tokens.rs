//! Certificates verified outside a handshake, as a WS-Security token's are: the test PKI's
//! leaf certificates with their issuing CA as the configured intermediate.

use mftgw_oces::{CertificateRefusal, TrustStore};
use mftgw_testpki::TestPki;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;

use crate::trust_handshakes::{generate_pki, trust_store};

fn first_certificate(path: &std::path::Path) -> CertificateDer<'static> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
}

fn verify(
    pki: &TestPki,
    store: &TrustStore,
    name: &str,
    issuer: Option<&str>,
) -> Result<(), CertificateRefusal> {
    let client = pki.client(name).unwrap();
    let leaf = first_certificate(&client.cert_pem);
    let intermediates: Vec<_> = issuer
        .map(|issuer| first_certificate(&pki.issuing_ca_pem(issuer).unwrap()))
        .into_iter()
        .collect();
    store.verify_certificate(&leaf, &intermediates, OffsetDateTime::now_utc())
}

#[test]
fn a_token_is_verified_like_a_login_with_its_issuer_from_configuration() {
    let pki = generate_pki("tokens");
    let store = trust_store(&pki);

    assert_eq!(verify(&pki, &store, "oces3-org", Some("oces3")), Ok(()));
    assert_eq!(verify(&pki, &store, "voces", Some("oces2")), Ok(()));
    assert_eq!(
        verify(&pki, &store, "oces3-org", None),
        Err(CertificateRefusal::Untrusted),
        "without its issuing CA the leaf does not chain"
    );
    assert_eq!(
        verify(&pki, &store, "oces3-org", Some("oces2")),
        Err(CertificateRefusal::Untrusted)
    );
    assert_eq!(
        verify(&pki, &store, "expired", Some("oces2")),
        Err(CertificateRefusal::NotValidNow)
    );
    assert_eq!(
        verify(&pki, &store, "revoked", Some("oces2")),
        Err(CertificateRefusal::Revoked)
    );
    assert_eq!(
        verify(&pki, &store, "untrusted", None),
        Err(CertificateRefusal::Untrusted)
    );
}
