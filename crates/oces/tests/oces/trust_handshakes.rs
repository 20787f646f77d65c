//! Real in-memory rustls handshakes against `TrustStore` with the test PKI's certificates.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mftgw_oces::{CrlPolicy, StaleCrlPolicy, TrustError, TrustStore};
use mftgw_testpki::TestPki;
use rustls::server::danger::ClientCertVerifier;
use rustls::{
    CertificateError, ClientConfig, ClientConnection, Connection, Error, RootCertStore,
    ServerConfig, ServerConnection, SupportedProtocolVersion,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName};

/// A generated test PKI whose directory is removed when the test ends.
pub(crate) struct ScratchPki(TestPki);

impl Drop for ScratchPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.dir());
    }
}

impl std::ops::Deref for ScratchPki {
    type Target = TestPki;
    fn deref(&self) -> &TestPki {
        &self.0
    }
}

impl std::ops::DerefMut for ScratchPki {
    fn deref_mut(&mut self) -> &mut TestPki {
        &mut self.0
    }
}

pub(crate) fn generate_pki(test: &str) -> ScratchPki {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mftgw-oces-{test}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    ScratchPki(TestPki::generate(&dir).unwrap())
}

pub(crate) fn trust_store(pki: &TestPki) -> Arc<TrustStore> {
    TrustStore::load(&[pki.root_ca_pem()], &pki.crl_paths(), CrlPolicy::default()).unwrap()
}

/// Runs a handshake in memory and returns the server's verdict.
fn handshake(
    pki: &TestPki,
    store: &Arc<TrustStore>,
    client_name: Option<&str>,
    version: &'static SupportedProtocolVersion,
) -> Result<(), Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server_chain = CertificateDer::pem_file_iter(&pki.server().cert_chain_pem)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let server_key = PrivateKeyDer::from_pem_file(&pki.server().key_pem).unwrap();
    let server_config = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_client_cert_verifier(store.clone())
        .with_single_cert(server_chain, server_key)
        .unwrap();

    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki.root_ca_pem()).unwrap())
        .unwrap();
    let client_builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots);
    let client_config = match client_name {
        Some(name) => {
            let credentials = pki.client(name).unwrap();
            let mut chain = vec![CertificateDer::from_pem_file(&credentials.cert_pem).unwrap()];
            if let Some(issuing_ca) = pki.issuing_ca_pem(&credentials.issuer) {
                chain.push(CertificateDer::from_pem_file(issuing_ca).unwrap());
            }
            let key = PrivateKeyDer::from_pem_file(&credentials.key_pem).unwrap();
            client_builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => client_builder.with_no_client_auth(),
    };

    let mut server = Connection::from(ServerConnection::new(Arc::new(server_config)).unwrap());
    let mut client = Connection::from(
        ClientConnection::new(
            Arc::new(client_config),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap(),
    );
    for _ in 0..20 {
        transfer(&mut client, &mut server);
        server.process_new_packets()?;
        transfer(&mut server, &mut client);
        // The client's own view does not matter here; a server refusal shows up above.
        let _ = client.process_new_packets();
        if !server.is_handshaking() {
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

fn transfer(from: &mut Connection, to: &mut Connection) {
    let mut bytes = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut bytes).unwrap();
    }
    let mut remaining = &bytes[..];
    while !remaining.is_empty() {
        to.read_tls(&mut remaining).unwrap();
    }
}

fn assert_accepted(pki: &TestPki, store: &Arc<TrustStore>, name: &str) {
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        if let Err(error) = handshake(pki, store, Some(name), version) {
            panic!("{name} over {version:?} refused: {error}");
        }
    }
}

fn refusal(pki: &TestPki, store: &Arc<TrustStore>, name: Option<&str>) -> Error {
    handshake(pki, store, name, &rustls::version::TLS13).expect_err("the handshake must be refused")
}

fn is_revoked(error: &Error) -> bool {
    matches!(error, Error::InvalidCertificate(CertificateError::Revoked))
}

#[test]
fn oces2_and_oces3_client_certificates_are_accepted() {
    let pki = generate_pki("accepted");
    let store = trust_store(&pki);
    assert!(store.client_auth_mandatory());
    assert_eq!(store.root_hint_subjects().len(), 1);
    for name in [
        "moces",
        "voces",
        "voces-renewed",
        "oces3-org",
        "oces3-employee",
    ] {
        assert_accepted(&pki, &store, name);
    }
}

#[test]
fn expired_revoked_untrusted_and_missing_certificates_are_refused() {
    let pki = generate_pki("refused");
    let store = trust_store(&pki);
    let expired = refusal(&pki, &store, Some("expired"));
    assert!(
        matches!(
            expired,
            Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            )
        ),
        "expired: {expired:?}"
    );
    let revoked = refusal(&pki, &store, Some("revoked"));
    assert!(is_revoked(&revoked), "revoked: {revoked:?}");
    assert_eq!(
        refusal(&pki, &store, Some("untrusted")),
        Error::InvalidCertificate(CertificateError::UnknownIssuer)
    );
    assert_eq!(refusal(&pki, &store, None), Error::NoCertificatesPresented);
}

#[test]
fn reloaded_crls_refuse_a_newly_revoked_certificate() {
    let mut pki = generate_pki("reload");
    let store = trust_store(&pki);
    pki.revoke("moces").unwrap();
    assert_accepted(&pki, &store, "moces");

    store.reload_crls().unwrap();
    let refused = refusal(&pki, &store, Some("moces"));
    assert!(is_revoked(&refused), "moces after revocation: {refused:?}");
    assert_accepted(&pki, &store, "oces3-employee");

    // The OCES3 CRL is RSA-PSS signed like the certificates.
    pki.revoke("oces3-employee").unwrap();
    store.reload_crls().unwrap();
    let refused = refusal(&pki, &store, Some("oces3-employee"));
    assert!(
        is_revoked(&refused),
        "oces3-employee after revocation: {refused:?}"
    );
    assert_accepted(&pki, &store, "oces3-org");
}

#[test]
fn a_failed_reload_keeps_the_previous_crls() {
    let mut pki = generate_pki("failed-reload");
    let store = trust_store(&pki);
    pki.revoke("moces").unwrap();
    let oces2_crl = pki.crl_paths()[0].clone();
    std::fs::write(
        &oces2_crl,
        "-----BEGIN X509 CRL-----\nnot base64!\n-----END X509 CRL-----\n",
    )
    .unwrap();

    let error = store.reload_crls().unwrap_err();
    assert!(
        error.to_string().contains(oces2_crl.to_str().unwrap()),
        "{error}"
    );
    assert_accepted(&pki, &store, "moces");
    assert!(is_revoked(&refusal(&pki, &store, Some("revoked"))));
}

#[test]
fn der_crl_files_are_accepted_and_bad_inputs_are_named() {
    let pki = generate_pki("inputs");
    let der_crl_paths: Vec<PathBuf> = pki
        .crl_paths()
        .iter()
        .map(|pem_path| {
            let der = CertificateRevocationListDer::from_pem_file(pem_path).unwrap();
            let der_path = pem_path.with_extension("der");
            std::fs::write(&der_path, der.as_ref()).unwrap();
            der_path
        })
        .collect();
    let store =
        TrustStore::load(&[pki.root_ca_pem()], &der_crl_paths, CrlPolicy::default()).unwrap();
    assert!(is_revoked(&refusal(&pki, &store, Some("revoked"))));
    assert_accepted(&pki, &store, "moces");

    assert!(matches!(
        TrustStore::load(&[], &[], CrlPolicy::default()),
        Err(TrustError::NoRootFiles)
    ));
    let missing = pki.dir().join("missing.pem");
    assert!(matches!(
        TrustStore::load(std::slice::from_ref(&missing), &[], CrlPolicy::default()),
        Err(TrustError::Read { path, .. }) if path == missing
    ));
    let key_file = pki.server().key_pem.clone();
    assert!(matches!(
        TrustStore::load(&[key_file], &[], CrlPolicy::default()),
        Err(TrustError::NoCertificatesInFile { .. })
    ));
    assert!(matches!(
        TrustStore::load(&[pki.root_ca_pem()], &[], CrlPolicy::default()),
        Err(TrustError::NoCrlFiles)
    ));
    let certificate_as_crl = pki.root_ca_pem();
    assert!(matches!(
        TrustStore::load(
            &[pki.root_ca_pem()],
            &[certificate_as_crl],
            CrlPolicy::default()
        ),
        Err(TrustError::NoCrlInFile { .. })
    ));
    let garbage = pki.dir().join("garbage.crl");
    std::fs::write(&garbage, b"\x30\x03\x02\x01\x01").unwrap();
    assert!(matches!(
        TrustStore::load(&[pki.root_ca_pem()], &[garbage], CrlPolicy::default()),
        Err(TrustError::InvalidCrl { .. })
    ));
}

#[test]
fn a_stale_crl_refuses_its_issuers_certificates_after_the_grace_period() {
    let mut pki = generate_pki("stale");
    let now = time::OffsetDateTime::now_utc();
    // The OCES2 CRL could not be refreshed: its nextUpdate passed two hours ago.
    pki.publish_crl(
        "oces2",
        now - time::Duration::days(8),
        now - time::Duration::hours(2),
    )
    .unwrap();
    let load = |grace_hours: u64, when_stale: StaleCrlPolicy| {
        let policy = CrlPolicy {
            grace: std::time::Duration::from_secs(grace_hours * 3600),
            when_stale,
        };
        TrustStore::load(&[pki.root_ca_pem()], &pki.crl_paths(), policy).unwrap()
    };

    let within_grace = load(3, StaleCrlPolicy::RefuseCertificates);
    assert_accepted(&pki, &within_grace, "moces");
    assert!(within_grace.stale_crls(now).is_empty());

    let past_grace = load(1, StaleCrlPolicy::RefuseCertificates);
    assert_eq!(
        refusal(&pki, &past_grace, Some("moces")),
        Error::InvalidCertificate(CertificateError::ExpiredRevocationList)
    );
    // Only the stale CRL's issuer is affected: OCES3 has a fresh CRL.
    assert_accepted(&pki, &past_grace, "oces3-org");
    let stale = past_grace.stale_crls(now);
    assert_eq!(stale.len(), 1);
    assert!(stale[0].issuer.contains("OCES2"), "{:?}", stale[0]);
    assert_eq!(past_grace.crl_status().len(), 2);

    // Accepting is an operator's choice; the CRL is still reported stale.
    let accepting = load(1, StaleCrlPolicy::AcceptCertificates);
    assert_accepted(&pki, &accepting, "moces");
    assert_eq!(accepting.stale_crls(now).len(), 1);

    // A refreshed CRL ends the refusal on reload.
    pki.publish_crl("oces2", now, now + time::Duration::days(7))
        .unwrap();
    past_grace.reload_crls().unwrap();
    assert_accepted(&pki, &past_grace, "moces");
}
