//! A throw-away OCES-shaped test PKI for the gateway's tests and demo.
//!
//! [`TestPki::generate`] writes, under one directory:
//!
//! - `ca/root.pem`: the trust anchor "mftgw Test OCES Root CA" (P-256);
//! - `ca/oces2.pem`, `ca/oces2.crl.pem`: "mftgw Test OCES2 Issuing CA" (P-256), its PEM CRL;
//! - `ca/oces3.pem`, `ca/oces3.crl.pem`: "mftgw Test OCES3 Issuing CA" (RSA 3072, signs with
//!   RSA-PSS SHA-256), its PEM CRL;
//! - `ca/untrusted.pem`: the self-signed "mftgw Untrusted Rogue CA";
//! - `server/`: the gateway's certificate chain (leaf + OCES2 issuing CA) and key;
//! - `clients/<name>.{pem,key.pem,p12}`: one certificate, PKCS#8 key and PKCS#12 per client;
//! - `pki.json`: the manifest ([`TestPki::load`] reads it back); every path in it is absolute.
//!
//! CA keys sit next to their certificates so that a loaded PKI can issue and revoke later.

#![forbid(unsafe_code)]

mod authority;
mod encoding;
mod profile;
mod rsa_pss;

use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use p12_keystore::{
    Certificate as P12Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain,
};
use rcgen::{
    CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, KeyIdMethod, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use authority::{Authority, SigningAuthority};
use encoding::{
    hex_decode, hex_lower, minimal_unsigned_be, pem_encode, random_password, random_serial,
    sha256_fingerprint,
};
pub use profile::{ClientIssuer, ClientProfile, ClientSpec, Validity};

const MANIFEST_FILE: &str = "pki.json";
const CRL_LIFETIME: Duration = Duration::days(7);

/// A generated test PKI: the directory it lives in and its manifest.
#[derive(Debug)]
pub struct TestPki {
    dir: PathBuf,
    manifest: Manifest,
}

/// The gateway's TLS server credentials.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ServerCredentials {
    /// Leaf certificate followed by the OCES2 issuing CA certificate.
    pub cert_chain_pem: PathBuf,
    /// PKCS#8 PEM private key.
    pub key_pem: PathBuf,
}

/// One client certificate with its key, PKCS#12 bundle and identifying facts.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ClientCredentials {
    pub name: String,
    /// PEM: the client certificate followed by its issuing CA.
    pub cert_pem: PathBuf,
    /// PKCS#8 PEM private key.
    pub key_pem: PathBuf,
    /// Key, certificate and chain up to the root, protected by `p12_password`.
    pub p12: PathBuf,
    pub p12_password: String,
    /// Lowercase hex of the certificate serial's DER INTEGER content.
    pub serial_hex: String,
    /// Lowercase hex of the SHA-256 of the DER certificate.
    pub fingerprint_sha256: String,
    pub subject_serial_number: Option<String>,
    /// The issuing CA: "oces2", "oces3" or "untrusted".
    pub issuer: String,
    /// One human line: what this certificate is for.
    pub note: String,
}

#[derive(Serialize, Deserialize, Debug)]
struct Manifest {
    authorities: Vec<AuthorityRecord>,
    server: ServerCredentials,
    clients: Vec<ClientCredentials>,
}

#[derive(Serialize, Deserialize, Debug)]
struct AuthorityRecord {
    authority: Authority,
    cert_pem: PathBuf,
    key_pem: PathBuf,
    /// Present for the issuing CAs that publish a CRL.
    crl: Option<CrlRecord>,
}

#[derive(Serialize, Deserialize, Debug)]
struct CrlRecord {
    pem: PathBuf,
    /// The number of the CRL currently on disk.
    number: u64,
    revoked: Vec<RevokedSerial>,
}

#[derive(Serialize, Deserialize, Debug)]
struct RevokedSerial {
    client: String,
    serial_hex: String,
    revoked_at_unix: i64,
}

impl TestPki {
    /// Creates every CA, certificate, key, CRL and PKCS#12 file under `dir` and writes
    /// `dir/pki.json`. Existing files of an earlier PKI in `dir` are overwritten.
    pub fn generate(dir: &Path) -> anyhow::Result<TestPki> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = std::fs::canonicalize(dir)
            .with_context(|| format!("resolving {} to an absolute path", dir.display()))?;
        for subdir in ["ca", "server", "clients"] {
            let path = dir.join(subdir);
            std::fs::create_dir_all(&path)
                .with_context(|| format!("creating {}", path.display()))?;
        }

        let root = SigningAuthority::create(Authority::Root, None)?;
        let oces2 = SigningAuthority::create(Authority::Oces2, Some(&root))?;
        let oces3 = SigningAuthority::create(Authority::Oces3, Some(&root))?;
        let untrusted = SigningAuthority::create(Authority::Untrusted, None)?;
        let mut authorities = Vec::new();
        for ca in [&root, &oces2, &oces3, &untrusted] {
            authorities.push(write_authority(&dir, ca)?);
        }
        let server = write_server_credentials(&dir, &oces2)?;

        let mut pki = TestPki {
            dir,
            manifest: Manifest {
                authorities,
                server,
                clients: Vec::new(),
            },
        };
        for (name, spec) in standard_clients() {
            pki.issue_client_with(name, spec)?;
        }
        pki.record_revocation("revoked")?;
        let now = OffsetDateTime::now_utc();
        for authority in Authority::ALL.into_iter().filter(|a| a.publishes_crl()) {
            pki.write_crl(authority, now, now + CRL_LIFETIME)?;
        }
        pki.save_manifest()?;
        Ok(pki)
    }

    /// Loads `dir/pki.json` written by [`TestPki::generate`].
    pub fn load(dir: &Path) -> anyhow::Result<TestPki> {
        let dir = std::fs::canonicalize(dir)
            .with_context(|| format!("resolving {} to an absolute path", dir.display()))?;
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("reading {}", manifest_path.display()))?;
        let manifest = serde_json::from_str(&text)
            .with_context(|| format!("parsing {}", manifest_path.display()))?;
        Ok(TestPki { dir, manifest })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The trust anchor file: what clients use as `--cacert` and the gateway trusts.
    pub fn root_ca_pem(&self) -> PathBuf {
        self.authority_record(Authority::Root).cert_pem.clone()
    }

    /// The certificate file of an issuing CA ("oces2" or "oces3"), for `openssl verify -untrusted`.
    pub fn issuing_ca_pem(&self, issuer: &str) -> Option<PathBuf> {
        let authority = Authority::from_id(issuer).filter(|a| a.publishes_crl())?;
        Some(self.authority_record(authority).cert_pem.clone())
    }

    pub fn server(&self) -> &ServerCredentials {
        &self.manifest.server
    }

    /// One PEM CRL per trusted issuing CA (OCES2, then OCES3).
    pub fn crl_paths(&self) -> Vec<PathBuf> {
        self.manifest
            .authorities
            .iter()
            .filter_map(|record| record.crl.as_ref().map(|crl| crl.pem.clone()))
            .collect()
    }

    pub fn client(&self, name: &str) -> Option<&ClientCredentials> {
        self.manifest
            .clients
            .iter()
            .find(|client| client.name == name)
    }

    pub fn clients(&self) -> impl Iterator<Item = &ClientCredentials> {
        self.manifest.clients.iter()
    }

    /// Adds `name`'s serial to its issuing CA's CRL and rewrites that CRL with the next CRL
    /// number (thisUpdate now, nextUpdate in 7 days). Revoking a revoked client changes nothing.
    pub fn revoke(&mut self, name: &str) -> anyhow::Result<()> {
        let authority = self.record_revocation(name)?;
        let now = OffsetDateTime::now_utc();
        self.write_crl(authority, now, now + CRL_LIFETIME)?;
        self.save_manifest()
    }

    /// Rewrites the CRL of `issuer` (`oces2` or `oces3`) with the given validity window, for
    /// example one already past its nextUpdate, as a CRL that could not be refreshed would be.
    pub fn publish_crl(
        &mut self,
        issuer: &str,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> anyhow::Result<()> {
        let authority = Authority::from_id(issuer)
            .filter(|a| a.publishes_crl())
            .with_context(|| format!("{issuer:?} is not a CA that publishes a CRL"))?;
        self.write_crl(authority, this_update, next_update)?;
        self.save_manifest()
    }

    /// Issues a further current client certificate from the trusted CA for `profile`.
    pub fn issue_client(
        &mut self,
        name: &str,
        profile: ClientProfile,
    ) -> anyhow::Result<&ClientCredentials> {
        self.issue_client_with(name, ClientSpec::new(profile))
    }

    /// Issues a further client certificate as `spec` says, writes its files and updates pki.json.
    /// `name` becomes part of file names, so it is limited to lowercase ASCII letters, digits
    /// and '-'.
    pub fn issue_client_with(
        &mut self,
        name: &str,
        spec: ClientSpec,
    ) -> anyhow::Result<&ClientCredentials> {
        ensure!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "client name {name:?} must be non-empty lowercase ASCII letters, digits and '-'"
        );
        ensure!(
            self.client(name).is_none(),
            "a client named {name:?} already exists in {}",
            self.dir.join(MANIFEST_FILE).display()
        );

        let authority = spec.authority();
        let ca = self.load_signing_authority(authority)?;
        let key = spec.generate_key()?;
        let serial = random_serial()?;
        let params = spec.certificate_params(serial.clone())?;
        let cert_der = ca.sign_certificate(&params, &key)?;

        let mut chain = vec![cert_der.clone(), ca.cert_der().clone()];
        if let Some(parent) = authority.parent() {
            chain.push(self.load_signing_authority(parent)?.cert_der().clone());
        }

        let clients_dir = self.dir.join("clients");
        let cert_pem = clients_dir.join(format!("{name}.pem"));
        let key_pem = clients_dir.join(format!("{name}.key.pem"));
        let p12 = clients_dir.join(format!("{name}.p12"));
        let p12_password = random_password()?;
        // Leaf then issuing CA: what curl, lftp and Python send as the client chain, so the
        // gateway needs only the roots as trust anchors.
        let presented_chain =
            pem_encode("CERTIFICATE", &cert_der) + &pem_encode("CERTIFICATE", ca.cert_der());
        write_file(&cert_pem, presented_chain)?;
        write_file(&key_pem, key.serialize_pem())?;
        write_file(&p12, pkcs12_bundle(name, &key, &chain, &p12_password)?)?;

        self.manifest.clients.push(ClientCredentials {
            name: name.to_owned(),
            cert_pem,
            key_pem,
            p12,
            p12_password,
            serial_hex: hex_lower(&serial),
            fingerprint_sha256: sha256_fingerprint(&cert_der),
            subject_serial_number: Some(spec.profile.subject_serial_number()),
            issuer: authority.id().to_owned(),
            note: spec.note,
        });
        self.save_manifest()?;
        Ok(self
            .manifest
            .clients
            .last()
            .expect("client was just pushed"))
    }

    /// Adds `name` to its CA's revocation list in the manifest (not yet to the CRL file).
    fn record_revocation(&mut self, name: &str) -> anyhow::Result<Authority> {
        let client = self
            .client(name)
            .with_context(|| format!("no client named {name:?} to revoke"))?;
        let authority = Authority::from_id(&client.issuer)
            .filter(|a| a.publishes_crl())
            .with_context(|| {
                format!(
                    "client {name:?} is issued by the {} CA, which publishes no CRL",
                    client.issuer
                )
            })?;
        let serial_hex = client.serial_hex.clone();
        let crl = self.crl_record_mut(authority);
        if !crl
            .revoked
            .iter()
            .any(|entry| entry.serial_hex == serial_hex)
        {
            crl.revoked.push(RevokedSerial {
                client: name.to_owned(),
                serial_hex,
                revoked_at_unix: OffsetDateTime::now_utc().unix_timestamp(),
            });
        }
        Ok(authority)
    }

    /// Writes the next CRL (number + 1) of `authority` listing every revoked serial recorded.
    fn write_crl(
        &mut self,
        authority: Authority,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> anyhow::Result<()> {
        let ca = self.load_signing_authority(authority)?;
        let crl = self.crl_record_mut(authority);
        let revoked_certs = crl
            .revoked
            .iter()
            .map(|entry| {
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from(hex_decode(&entry.serial_hex)?),
                    revocation_time: OffsetDateTime::from_unix_timestamp(entry.revoked_at_unix)
                        .context("revocation time in pki.json is out of range")?,
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(minimal_unsigned_be(crl.number + 1)),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let der = ca.sign_crl(&params)?;
        write_file(&crl.pem, pem_encode("X509 CRL", &der))?;
        crl.number += 1;
        Ok(())
    }

    fn load_signing_authority(&self, authority: Authority) -> anyhow::Result<SigningAuthority> {
        let record = self.authority_record(authority);
        SigningAuthority::load(authority, &record.cert_pem, &record.key_pem)
    }

    fn authority_record(&self, authority: Authority) -> &AuthorityRecord {
        self.manifest
            .authorities
            .iter()
            .find(|record| record.authority == authority)
            .expect("pki.json lists every authority")
    }

    fn crl_record_mut(&mut self, authority: Authority) -> &mut CrlRecord {
        self.manifest
            .authorities
            .iter_mut()
            .find(|record| record.authority == authority)
            .and_then(|record| record.crl.as_mut())
            .expect("only authorities that publish a CRL are revoked against")
    }

    fn save_manifest(&self) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(&self.manifest).context("serialising pki.json")?;
        write_file(&self.dir.join(MANIFEST_FILE), json)
    }
}

/// The fixed clients of a generated PKI; the names are stable API for tests and the demo.
fn standard_clients() -> Vec<(&'static str, ClientSpec)> {
    let voces = ClientProfile::Voces {
        cvr: "19552101".into(),
        uid: "25351738".into(),
    };
    vec![
        (
            "voces",
            ClientSpec::new(voces.clone())
                .company("Testfirma A/S")
                .common_name("Testfirma Lønsystem")
                .note("VOCES system certificate of Testfirma A/S; registered in the demo"),
        ),
        (
            "moces",
            ClientSpec::new(ClientProfile::Moces {
                cvr: "19552101".into(),
                rid: "60134540".into(),
            })
            .company("Testfirma A/S")
            .common_name("Karen Testesen")
            .email("karen.testesen@testfirma.example")
            .note("MOCES employee certificate of Testfirma A/S; registered in the demo"),
        ),
        (
            "oces3-org",
            ClientSpec::new(ClientProfile::Oces3Organisation {
                cvr: "30808460".into(),
                uuid: "6f0a2c5e-8b1d-4e3f-9a7c-2d4b6e8f0a1c".into(),
            })
            .company("Digitaliseringsprøve ApS")
            .common_name("Prøve Integration")
            .note("OCES3 organisation (system) certificate, RSA-PSS signed, no EKU"),
        ),
        (
            "oces3-employee",
            ClientSpec::new(ClientProfile::Oces3Employee {
                cvr: "30808460".into(),
                uuid: "c3d9e1f7-2a4b-4c6d-8e0f-1a3b5c7d9e2f".into(),
            })
            .company("Digitaliseringsprøve ApS")
            .common_name("Jens Prøvesen")
            .email("jens.proevesen@proeve.example")
            .note("OCES3 employee certificate, RSA-PSS signed, no EKU"),
        ),
        (
            "voces-renewed",
            ClientSpec::new(voces.clone())
                .company("Testfirma A/S")
                .common_name("Testfirma Lønsystem")
                .note("renewal of `voces`: same CVR and UID, new key and certificate"),
        ),
        (
            "foces",
            ClientSpec::new(ClientProfile::Foces {
                cvr: "19552101".into(),
                fid: "48213567".into(),
            })
            .company("Testfirma A/S")
            .common_name("Testfirma Funktion")
            .note("FOCES function certificate; the gateway must refuse it"),
        ),
        (
            "personal",
            ClientSpec::new(ClientProfile::Personal {
                pid: "9208-2002-2-123456789012".into(),
            })
            .common_name("Borger Testsen")
            .note("personal (PID) certificate; the gateway must refuse it"),
        ),
        (
            "expired",
            ClientSpec::new(ClientProfile::Moces {
                cvr: "11223344".into(),
                rid: "1".into(),
            })
            .company("Udløbet ApS")
            .validity(Validity::Expired)
            .note("MOCES whose validity ended 30 days ago"),
        ),
        (
            "revoked",
            ClientSpec::new(ClientProfile::Voces {
                cvr: "11223344".into(),
                uid: "2".into(),
            })
            .company("Spærret ApS")
            .note("VOCES listed on the OCES2 CRL from the start"),
        ),
        (
            "untrusted",
            ClientSpec::new(voces)
                .company("Testfirma A/S")
                .common_name("Testfirma Lønsystem")
                .issuer(ClientIssuer::Untrusted)
                .note("copy of the `voces` subject issued by the untrusted rogue CA"),
        ),
        (
            "unregistered",
            ClientSpec::new(ClientProfile::Voces {
                cvr: "55667788".into(),
                uid: "3".into(),
            })
            .company("Ny Kunde A/S")
            .note("valid VOCES that the demo does not register"),
        ),
        (
            "suspended",
            ClientSpec::new(ClientProfile::Moces {
                cvr: "55667788".into(),
                rid: "4".into(),
            })
            .company("Ny Kunde A/S")
            .common_name("Sofie Suspenderet")
            .note("valid MOCES whose gateway user the demo suspends"),
        ),
    ]
}

fn write_authority(dir: &Path, ca: &SigningAuthority) -> anyhow::Result<AuthorityRecord> {
    let authority = ca.authority();
    let cert_pem = dir.join("ca").join(format!("{}.pem", authority.id()));
    let key_pem = dir.join("ca").join(format!("{}.key.pem", authority.id()));
    write_file(&cert_pem, pem_encode("CERTIFICATE", ca.cert_der()))?;
    write_file(&key_pem, ca.key().serialize_pem())?;
    let crl = authority.publishes_crl().then(|| CrlRecord {
        pem: dir.join("ca").join(format!("{}.crl.pem", authority.id())),
        number: 0,
        revoked: Vec::new(),
    });
    Ok(AuthorityRecord {
        authority,
        cert_pem,
        key_pem,
        crl,
    })
}

fn write_server_credentials(
    dir: &Path,
    issuing_ca: &SigningAuthority,
) -> anyhow::Result<ServerCredentials> {
    let key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("generating the server key")?;
    let mut params = CertificateParams::default();
    params.serial_number = Some(SerialNumber::from(random_serial()?));
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(730);
    let mut name = DistinguishedName::new();
    name.push(DnType::CountryName, "DK");
    name.push(DnType::OrganizationName, "mftgw Test");
    name.push(DnType::CommonName, "localhost");
    params.distinguished_name = name;
    params.subject_alt_names = vec![
        SanType::IpAddress([127, 0, 0, 1].into()),
        SanType::DnsName("localhost".try_into().context("localhost as a DNS name")?),
    ];
    // The addresses of the cluster demo's nodes, which clients may reach directly.
    params
        .subject_alt_names
        .extend((11..=19).map(|node| SanType::IpAddress([127, 0, 0, node].into())));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert_der = issuing_ca.sign_certificate(&params, &key)?;

    let cert_chain_pem = dir.join("server").join("server.chain.pem");
    let key_pem = dir.join("server").join("server.key.pem");
    let chain =
        pem_encode("CERTIFICATE", &cert_der) + &pem_encode("CERTIFICATE", issuing_ca.cert_der());
    write_file(&cert_chain_pem, chain)?;
    write_file(&key_pem, key.serialize_pem())?;
    Ok(ServerCredentials {
        cert_chain_pem,
        key_pem,
    })
}

/// A PKCS#12 with the key and the chain (leaf first, root last), PBES2/AES-256 encrypted with an
/// HMAC-SHA256 MAC: p12-keystore's defaults, which OpenSSL 3 reads without `-legacy`.
fn pkcs12_bundle(
    alias: &str,
    key: &KeyPair,
    chain: &[CertificateDer<'static>],
    password: &str,
) -> anyhow::Result<Vec<u8>> {
    let private_key = PrivateKey::from_der(key.serialized_der())
        .map_err(|e| anyhow::anyhow!("PKCS#12: private key not accepted: {e}"))?;
    let certificates = chain
        .iter()
        .map(|der| {
            P12Certificate::from_der(der)
                .map_err(|e| anyhow::anyhow!("PKCS#12: certificate not accepted: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let local_key_id =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &chain[0]);
    let key_chain = PrivateKeyChain::new(local_key_id.as_ref(), private_key, certificates);
    let mut store = KeyStore::new();
    store.add_entry(alias, KeyStoreEntry::PrivateKeyChain(key_chain));
    store
        .writer(password)
        .write()
        .map_err(|e| anyhow::anyhow!("PKCS#12: writing the bundle failed: {e}"))
}

fn write_file(path: &Path, contents: impl AsRef<[u8]>) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}
