//! What the WS-Security tests share: the openssl command line as the independent party that
//! makes keys and certificates.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `openssl args` in `dir`; its standard output.
pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A key and a self-signed certificate (with a SubjectKeyIdentifier) named `name` in `dir`.
pub fn party(dir: &Path, name: &str) -> PathBuf {
    let key = format!("{name}.key");
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            &key,
        ],
    );
    let subject = format!("/CN={name}");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            &key,
            "-subj",
            &subject,
            "-days",
            "2",
            "-outform",
            "DER",
            "-out",
            &format!("{name}.der"),
        ],
    );
    dir.join(name)
}

/// The SubjectKeyIdentifier extension of the certificate `der`.
pub fn subject_key_identifier(der: &[u8]) -> Vec<u8> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).unwrap();
    certificate
        .extensions()
        .iter()
        .find_map(|extension| match extension.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(ski) => {
                Some(ski.0.to_vec())
            }
            _ => None,
        })
        .expect("openssl gives self-signed certificates a SubjectKeyIdentifier")
}

/// The private key of a [`party`].
pub fn private_key(party: &Path) -> rsa::PrivateKey {
    use rsa::pkcs8::DecodePrivateKey;
    rsa::PrivateKey::from_pkcs8_pem(&std::fs::read_to_string(party.with_extension("key")).unwrap())
        .unwrap()
}
