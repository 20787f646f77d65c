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

/// The public key of a [`party`]'s certificate, as a PEM file in `dir`.
pub fn public_key_file(dir: &Path, party: &Path) -> PathBuf {
    let certificate = party.with_extension("der");
    let out = party.with_extension("pub");
    openssl(
        dir,
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            certificate.to_str().unwrap(),
            "-pubkey",
            "-noout",
            "-out",
            out.to_str().unwrap(),
        ],
    );
    out
}

/// What openssl makes of `content` for `recipient` (a [`party`]): `session_key` wrapped with
/// RSA PKCS#1 v1.5 for it, and IV || 3DES-CBC(content).
pub fn encrypted_for(
    dir: &Path,
    recipient: &Path,
    session_key: &[u8],
    iv: &[u8],
    content: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    std::fs::write(dir.join("content.plain"), content).unwrap();
    std::fs::write(dir.join("session.key"), session_key).unwrap();
    openssl(
        dir,
        &[
            "enc",
            "-des-ede3-cbc",
            "-K",
            &hex(session_key),
            "-iv",
            &hex(iv),
            "-in",
            "content.plain",
            "-out",
            "content.enc",
        ],
    );
    let public_key = public_key_file(dir, recipient);
    openssl(
        dir,
        &[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            public_key.to_str().unwrap(),
            "-pkeyopt",
            "rsa_padding_mode:pkcs1",
            "-in",
            "session.key",
            "-out",
            "session.wrapped",
        ],
    );
    let mut cipher = iv.to_vec();
    cipher.extend(std::fs::read(dir.join("content.enc")).unwrap());
    (std::fs::read(dir.join("session.wrapped")).unwrap(), cipher)
}
