//! `mftgw demo`: the gateway on its embedded default, ready for curl. Creates a data directory
//! with a test PKI, an SQLite database, registered users with roles, a config file and
//! `demo.json` (everything a script needs, with absolute paths), prints copy-paste commands,
//! then serves. A second start reuses the directory; `--reset` starts afresh. With
//! `--nodes N` it serves as N nodes behind a balancer instead (`cluster`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mftgw_domain::user::UserState;
use mftgw_domain::{InvalidId, ServiceName, Username};
use mftgw_oces::trust::TrustStore;
use mftgw_store::Store;
use mftgw_testpki::{ClientCredentials, TestPki};
use rustls::pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use crate::config::{
    ApiConfig, BackendConfig, Config, ConnectorConfig, DeliveryConfig, FtpsConfig, KeysConfig,
    PortalConfig, RegistrationConfig, StoreConfig, TlsConfig,
};
use crate::stores;
use mftgw_core::audit::Auditor;
use mftgw_core::delivery::Behaviour;
use mftgw_core::keys;
use mftgw_core::users::{Registrant, Registrar, Users, kind_name};
use mftgw_domain::errors::ErrorEntry;

mod cluster;
mod emcs;
pub use cluster::DemoNode;
pub use emcs::{EmcsCertificate, EmcsEndpoint, EmcsUser};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where the demo keeps its PKI, database and config.
    #[arg(long, default_value = "demo-data")]
    pub data_dir: PathBuf,
    #[arg(long, default_value_t = 6381)]
    pub ftps_port: u16,
    /// By default 36000-39999; with `--nodes`, 28000-31999, below the system's ephemeral
    /// ports (a connection's own port can keep the balancer from binding it).
    #[arg(long)]
    pub passive_ports: Option<String>,
    #[arg(long, default_value_t = 8443)]
    pub portal_port: u16,
    /// The HTTPS API: backends, operators, health and metrics.
    #[arg(long, default_value_t = 8444)]
    pub api_port: u16,
    /// The legacy "Secure FTP" listener (login by certificate alone).
    #[arg(long, default_value_t = 6371)]
    pub legacy_port: u16,
    /// By default 40000-40999; with `--nodes`, 27000-27999.
    #[arg(long)]
    pub legacy_passive_ports: Option<String>,
    /// The EMCS B2B web services (HTTPS, WS-Security).
    #[arg(long, default_value_t = 8445)]
    pub emcs_port: u16,
    /// Keep the gateway's state in this PostgreSQL database (`postgres://…`) instead of the
    /// embedded SQLite file. It must be empty, or hold this data directory's demo (its
    /// passwords are in `demo.json`); `--reset` does not empty it.
    #[arg(long)]
    pub database: Option<String>,
    /// Serve as this many gateway nodes (at most 9; 1 is one node behind the balancer)
    /// behind HAProxy, on `--database` and an S3 server started here: the production
    /// topology on one machine. The balancer takes the addresses above; node i listens on
    /// the same ports on 127.0.0.1i.
    #[arg(long)]
    pub nodes: Option<usize>,
    /// The `s3s-fs` binary for `--nodes`; by default where `scripts/cluster-demo` builds it.
    #[arg(long, env = "MFTGW_S3S_FS")]
    pub s3_server: Option<PathBuf>,
    /// The S3 server's port, with `--nodes`.
    #[arg(long, default_value_t = 8449)]
    pub s3_port: u16,
    /// Delete the data directory first.
    #[arg(long)]
    pub reset: bool,
}

/// Demo users: test PKI client name and the services they hold roles for.
const DEMO_USERS: &[(&str, &[&str])] = &[
    (
        "moces",
        &[
            "FTPSGW.Heartbeat",
            "Manifest.MidlertidigOpbevaringOpret",
            "Manifest.MidlertidigOpbevaringOpdater",
            "AKFA",
        ],
    ),
    ("voces-renewed", &["FTPSGW.Heartbeat", "CPS"]),
    ("oces3-org", &["FTPSGW.Heartbeat", "FATCA"]),
    ("oces3-employee", &["FTPSGW.Heartbeat"]),
];

/// Demo users who also log in through the legacy listener: two certificates of Testfirma
/// A/S, which share its `out`, and one of another company. The personal certificate, which
/// only the legacy listener accepts, is registered for it alone.
const LEGACY_DEMO_USERS: &[&str] = &["moces", "voces-renewed", "oces3-org"];

/// `demo.json`: what scripts and tests read instead of logs.
#[derive(Debug, Serialize, Deserialize)]
pub struct DemoManifest {
    pub ftps: Endpoint,
    pub portal: PortalEndpoint,
    #[serde(default)]
    pub api: ApiEndpoint,
    pub ca_pem: PathBuf,
    pub config: PathBuf,
    pub users: Vec<DemoUser>,
    pub certificates: BTreeMap<String, DemoCertificate>,
    /// The legacy "Secure FTP" listener and who can use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<LegacyEndpoint>,
    /// The EMCS B2B web services and who can call them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emcs: Option<EmcsEndpoint>,
    /// With `--nodes`: the gateway nodes behind the balancer that every address above
    /// points at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<DemoNode>,
}

/// The legacy listener: any `USER`/`PASS` (or `anonymous`) with one of these certificates.
#[derive(Debug, Serialize, Deserialize)]
pub struct LegacyEndpoint {
    pub host: String,
    pub port: u16,
    pub passive_ports: String,
    pub users: Vec<LegacyUser>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LegacyUser {
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
    pub p12: PathBuf,
    pub p12_password: String,
    /// `voces`, `moces`, `personal`, `oces3_org` or `oces3_employee`.
    pub kind: String,
    /// `null` for a personal certificate.
    pub cvr: Option<String>,
    /// What `PWD` answers after the login, e.g. `/RID_60134540`.
    pub login_dir: String,
    /// The absolute path of `out` as this user sees it: the company's `/out`, or a person's
    /// `/PID_…/out`.
    pub out_dir: String,
    pub services: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PortalEndpoint {
    pub url: String,
}

/// The HTTPS API, and the tokens to use it with.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ApiEndpoint {
    pub url: String,
    /// The token of the demo's spool backend (`Manifest.MidlertidigOpbevaringOpdater`).
    pub backend_token: String,
    /// Where that backend's deliveries land.
    pub spool: PathBuf,
    pub admin_token: String,
}

/// The demo's API tokens: stable across restarts, and different for every demo data
/// directory (derived from its password key).
struct DemoTokens {
    backend: String,
    admin: String,
    /// The cluster demo's S3 server's secret key.
    s3_secret: String,
}

impl DemoTokens {
    fn new(key: &mftgw_domain::password::PasswordKey) -> Self {
        let token = |purpose: &str| {
            let mac = key.hash(purpose);
            let hex = mac.rsplit(':').next().unwrap_or(&mac);
            hex[..32.min(hex.len())].to_string()
        };
        Self {
            backend: token("demo backend API token"),
            admin: token("demo admin API token"),
            s3_secret: token("demo S3 secret key"),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DemoUser {
    pub username: String,
    pub password: String,
    pub kind: String,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
    pub p12: PathBuf,
    pub p12_password: String,
    pub services: Vec<String>,
}

/// A certificate that must be refused at FTPS login, and why.
#[derive(Debug, Serialize, Deserialize)]
pub struct DemoCertificate {
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
    /// The same as PKCS#12, to import into a browser for the Certificate Portal.
    #[serde(default)]
    pub p12: PathBuf,
    #[serde(default)]
    pub p12_password: String,
    pub note: String,
    /// The username the certificate names, where it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The gateway password of that user, where the user exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let cluster_tools = match args.nodes {
        None => None,
        Some(0) => anyhow::bail!("--nodes 0: a demo needs a node"),
        Some(nodes) => {
            anyhow::ensure!(
                nodes <= cluster::MAX_NODES,
                "--nodes {nodes}: at most {}",
                cluster::MAX_NODES
            );
            anyhow::ensure!(
                args.database.is_some(),
                "--nodes {nodes} needs --database postgres://…: the nodes share its store"
            );
            Some(cluster::Tools::find(&args)?)
        }
    };
    if args.reset && args.data_dir.exists() {
        std::fs::remove_dir_all(&args.data_dir)
            .with_context(|| format!("removing {}", args.data_dir.display()))?;
    }
    std::fs::create_dir_all(&args.data_dir)?;
    let data_dir = std::fs::canonicalize(&args.data_dir)?;
    let pki_dir = data_dir.join("pki");
    let mut pki = if pki_dir.join("pki.json").exists() {
        TestPki::load(&pki_dir)?
    } else {
        TestPki::generate(&pki_dir)?
    };
    emcs::issue_certificates(&mut pki)?;

    let tokens = DemoTokens::new(&keys::load_or_create_password_key(
        &data_dir.join("gateway-password.key"),
    )?);
    let base = demo_config(&data_dir, &pki, &args, &tokens)?;
    let cluster = cluster_tools
        .as_ref()
        .map(|_| cluster::Layout::new(&args, &data_dir, &tokens));
    let config_path = match &cluster {
        None => {
            let path = data_dir.join("mftgw.toml");
            base.save(&path)?;
            path
        }
        Some(layout) => {
            for index in 1..=layout.nodes() {
                let path = layout.node_config_path(index);
                std::fs::create_dir_all(path.parent().context("a node's config has a dir")?)?;
                layout.node_config(&base, index)?.save(&path)?;
            }
            layout.node_config_path(1)
        }
    };
    // Read back as `serve` would, so `MFTGW__…` environment overrides apply to the demo too.
    let config = Config::load(&config_path)?;
    // What clients reach: the single node, or the balancer on the same addresses.
    let reached = if cluster.is_some() { &base } else { &config };

    let balancer = match (&cluster, &cluster_tools) {
        (Some(layout), Some(tools)) => Some(layout.start_balancer(tools, &base).await?),
        _ => None,
    };
    let manifest_path = data_dir.join("demo.json");
    let previous: Option<DemoManifest> = std::fs::read(&manifest_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let mut manifest = match previous {
        Some(manifest) => manifest,
        None => enroll(&config, &pki).await?,
    };
    manifest.ftps = Endpoint {
        host: reached.ftps.listen.ip().to_string(),
        port: reached.ftps.listen.port(),
    };
    manifest.portal.url = format!("https://127.0.0.1:{}/", args.portal_port);
    manifest.api = ApiEndpoint {
        url: format!("https://127.0.0.1:{}", args.api_port),
        backend_token: tokens.backend.clone(),
        spool: data_dir.join("spool"),
        admin_token: tokens.admin.clone(),
    };
    manifest.config = config_path;
    if let (Some(endpoint), Some(legacy)) = (&mut manifest.legacy, &reached.legacy) {
        endpoint.host = legacy.listen.ip().to_string();
        endpoint.port = legacy.listen.port();
        endpoint.passive_ports = legacy.passive_ports.clone();
    }
    match (&mut manifest.emcs, &reached.emcs) {
        (Some(endpoint), Some(emcs)) => endpoint.refresh(emcs),
        (None, Some(_)) => anyhow::bail!(
            "{} was made before the demo served EMCS: start with --reset",
            data_dir.display()
        ),
        _ => {}
    }
    let heartbeat_file = data_dir.join("heartbeat.xml");
    std::fs::write(&heartbeat_file, "<ping/>\n")?;
    let (Some(layout), Some(tools), Some(balancer)) = (cluster, cluster_tools, balancer) else {
        manifest.nodes.clear();
        write_manifest(&manifest_path, &manifest)?;
        print_welcome(&manifest, &manifest_path, &heartbeat_file);
        return crate::serve::serve(config).await;
    };
    let (processes, nodes) = layout.start_nodes(&tools, &base, balancer).await?;
    manifest.nodes = nodes;
    // Only once every node and the balancer listen: whoever reads it may connect at once.
    write_manifest(&manifest_path, &manifest)?;
    tracing::info!(
        listen = %base.ftps.listen,
        passive = %base.ftps.passive_ports,
        nodes = manifest.nodes.len(),
        "FTPS listening through the balancer"
    );
    print_welcome(&manifest, &manifest_path, &heartbeat_file);
    cluster::print_welcome(&manifest);
    processes.supervise().await
}

/// Written whole or not at all: scripts may read it while the demo starts.
fn write_manifest(path: &Path, manifest: &DemoManifest) -> anyhow::Result<()> {
    mftgw_core::files::replace(path, &serde_json::to_vec_pretty(manifest)?)
        .with_context(|| format!("writing {}", path.display()))
}

fn demo_config(
    data_dir: &Path,
    pki: &TestPki,
    args: &DemoArgs,
    tokens: &DemoTokens,
) -> anyhow::Result<Config> {
    let (passive_default, legacy_passive_default) = match args.nodes {
        Some(_) => ("28000-31999", "27000-27999"),
        None => ("36000-39999", "40000-40999"),
    };
    let passive_ports = args.passive_ports.as_deref().unwrap_or(passive_default);
    let legacy_passive_ports = args
        .legacy_passive_ports
        .as_deref()
        .unwrap_or(legacy_passive_default);
    crate::config::parse_port_range(passive_ports)?;
    Ok(Config {
        data_dir: data_dir.to_path_buf(),
        ftps: FtpsConfig {
            listen: ([127, 0, 0, 1], args.ftps_port).into(),
            passive_ports: passive_ports.into(),
            ..FtpsConfig::default()
        },
        legacy: Some(FtpsConfig {
            listen: ([127, 0, 0, 1], args.legacy_port).into(),
            passive_ports: legacy_passive_ports.into(),
            ..FtpsConfig::default()
        }),
        tls: TlsConfig {
            certificate_chain: pki.server().cert_chain_pem.clone(),
            private_key: pki.server().key_pem.clone(),
            trusted_roots: vec![pki.root_ca_pem()],
            crls: pki.crl_paths(),
            crl_refresh_secs: 60,
            crl_grace_secs: 24 * 60 * 60,
            on_stale_crl: Default::default(),
        },
        login: Default::default(),
        registration: RegistrationConfig {
            activation_delay_secs: 0,
        },
        portal: PortalConfig {
            listen: ([127, 0, 0, 1], args.portal_port).into(),
            ..PortalConfig::default()
        },
        transactions: Default::default(),
        delivery: DeliveryConfig {
            backends: demo_backends(data_dir, tokens)?,
            ..DeliveryConfig::default()
        },
        api: ApiConfig {
            listen: Some(([127, 0, 0, 1], args.api_port).into()),
            admin_token: Some(tokens.admin.clone()),
            ..ApiConfig::default()
        },
        roles: Default::default(),
        audit: Default::default(),
        blobs: Default::default(),
        proxy_protocol: Default::default(),
        keys: KeysConfig {
            password_key_file: Some(data_dir.join("gateway-password.key")),
            ..KeysConfig::default()
        },
        store: StoreConfig {
            database: args.database.clone(),
            ..StoreConfig::default()
        },
        services: Default::default(),
        emcs: Some(emcs::config(pki, args.emcs_port)?),
    })
}

/// Simulated backends, so that every path of SPEC §4 can be tried: 1-2-3 with a response,
/// 1-2, and 1-0 with a backend's own error; and a spool backend that answers through the
/// backend API, as a real one would.
fn demo_backends(data_dir: &Path, tokens: &DemoTokens) -> anyhow::Result<Vec<BackendConfig>> {
    let simulated = |name: &str, services: &[&str], behaviour: Behaviour| {
        Ok::<_, InvalidId>(BackendConfig {
            name: name.into(),
            services: services
                .iter()
                .map(|service| service.parse())
                .collect::<Result<_, _>>()?,
            api_token: None,
            api_client_certificate: None,
            connector: ConnectorConfig::Simulated { behaviour },
        })
    };
    Ok(vec![
        simulated(
            "simulated-answer",
            &["Manifest.MidlertidigOpbevaringOpret"],
            Behaviour::Answer,
        )?,
        simulated("simulated-accept", &["AKFA", "CPS"], Behaviour::Accept)?,
        simulated(
            "simulated-reject",
            &["FATCA"],
            Behaviour::Reject(ErrorEntry {
                code: "DEMO_BACKEND_REJECTED".into(),
                message: "The simulated FATCA backend rejects every file".into(),
                resolution: "Nothing to fix: this is the demo's rejecting backend".into(),
            }),
        )?,
        BackendConfig {
            name: "demo-spool".into(),
            services: vec!["Manifest.MidlertidigOpbevaringOpdater".parse()?],
            api_token: Some(tokens.backend.clone()),
            api_client_certificate: None,
            connector: ConnectorConfig::Spool {
                directory: data_dir.join("spool"),
            },
        },
    ])
}

/// Registers the demo users and the refusal cases in the configured store; returns the
/// manifest.
async fn enroll(config: &Config, pki: &TestPki) -> anyhow::Result<DemoManifest> {
    stores::on_store(config, Enrollment { config, pki }).await
}

struct Enrollment<'a> {
    config: &'a Config,
    pki: &'a TestPki,
}

impl stores::OnStore for Enrollment<'_> {
    type Output = DemoManifest;

    async fn run<S: Store>(self, store: Arc<S>) -> anyhow::Result<DemoManifest> {
        let auditor = Auditor::start(
            Arc::clone(&store),
            self.config
                .audit
                .settings(&self.config.transactions.node_id),
        );
        let users = Users::new(
            store,
            Arc::clone(&auditor),
            Arc::new(self.config.catalogue()?),
        );
        let enrolled = enroll_into(self.config, self.pki, &users).await;
        auditor.drain().await;
        enrolled
    }
}

async fn enroll_into<S: Store>(
    config: &Config,
    pki: &TestPki,
    directory: &Users<S>,
) -> anyhow::Result<DemoManifest> {
    let key = crate::secrets::password_key(config)?;
    let trust = TrustStore::load(
        &config.tls.trusted_roots,
        &config.tls.crls,
        config.tls.crl_policy(),
    )?;
    let registrant = Registrant {
        key: &key,
        trust: &trust,
        activation_delay: Duration::ZERO,
        registrar: Registrar::Operator,
    };
    let client = |name: &str| {
        pki.client(name)
            .with_context(|| format!("test PKI has no client {name}"))
    };
    let register = |name: &'static str| {
        let registrant = &registrant;
        async move {
            let credentials = client(name)?;
            Ok::<_, anyhow::Error>(
                directory
                    .register_certificate(registrant, &leaf_der(credentials)?)
                    .await?,
            )
        }
    };

    // The original VOCES certificate, later replaced by its renewal.
    let original = register("voces").await?;
    let mut users = Vec::new();
    for (name, services) in DEMO_USERS {
        let registration = register(name).await?;
        let password = registration
            .password
            .or_else(|| {
                original
                    .password
                    .clone()
                    .filter(|_| *name == "voces-renewed")
            })
            .with_context(|| {
                format!(
                    "{name} was registered before without a saved demo.json: start with --reset"
                )
            })?;
        for service in *services {
            directory
                .grant_role(&registration.username, &service.parse()?)
                .await?;
        }
        let credentials = client(name)?;
        let kind = mftgw_oces::identity::identity_from_der(&leaf_der(credentials)?)
            .map(|identity| kind_name(identity.kind))
            .unwrap_or("unknown");
        users.push(DemoUser {
            username: registration.username.to_string(),
            password,
            kind: kind.to_string(),
            cert_pem: credentials.cert_pem.clone(),
            key_pem: credentials.key_pem.clone(),
            p12: credentials.p12.clone(),
            p12_password: credentials.p12_password.clone(),
            services: services.iter().map(|s| s.to_string()).collect(),
        });
    }

    let revoked = register("revoked").await?;
    directory
        .grant_role(&revoked.username, &ServiceName::heartbeat())
        .await?;
    let personal = register("personal").await?;
    directory
        .grant_role(&personal.username, &ServiceName::heartbeat())
        .await?;
    let suspended = register("suspended").await?;
    directory
        .grant_role(&suspended.username, &ServiceName::heartbeat())
        .await?;
    directory
        .set_state(&suspended.username, UserState::Suspended)
        .await?;

    // The password a user has now, for the refusal cases that name a registered user.
    let login_of = |username: &Username, password: Option<&str>| {
        let password = password.or_else(|| {
            users
                .iter()
                .find(|u| u.username == username.as_str())
                .map(|u| u.password.as_str())
        });
        Some((username.to_string(), password.map(str::to_string)))
    };
    let refusals = [
        (
            "expired",
            "expired",
            "validity ended: refused in the TLS handshake",
            None,
        ),
        (
            "revoked",
            "revoked",
            "registered, but listed in the CRL: refused in the TLS handshake",
            login_of(&revoked.username, revoked.password.as_deref()),
        ),
        (
            "foces",
            "foces",
            "FOCES (function) certificate: refused at login",
            None,
        ),
        (
            "personal",
            "personal",
            "personal (PID) certificate: refused at login here, accepted by the legacy listener",
            None,
        ),
        (
            "untrusted",
            "untrusted",
            "issued by an untrusted CA: refused in the TLS handshake",
            None,
        ),
        (
            "unregistered",
            "unregistered",
            "valid VOCES never registered: refused at login",
            None,
        ),
        (
            "suspended",
            "suspended",
            "registered user suspended by an operator: refused at login",
            login_of(&suspended.username, suspended.password.as_deref()),
        ),
        (
            "replaced",
            "voces",
            "VOCES certificate replaced by its renewal (voces-renewed): refused at login",
            login_of(&original.username, None),
        ),
    ];
    let mut certificates = BTreeMap::new();
    for (key, name, note, login) in refusals {
        let credentials = client(name)?;
        let (username, password) = login.unzip();
        certificates.insert(
            key.to_string(),
            DemoCertificate {
                cert_pem: credentials.cert_pem.clone(),
                key_pem: credentials.key_pem.clone(),
                p12: credentials.p12.clone(),
                p12_password: credentials.p12_password.clone(),
                note: note.to_string(),
                username,
                password: password.flatten(),
            },
        );
    }

    let emcs = match &config.emcs {
        Some(emcs) => Some(emcs::enroll(emcs, pki, directory, &registrant).await?),
        None => None,
    };
    let legacy = match &config.legacy {
        Some(listener) => Some(LegacyEndpoint {
            host: listener.listen.ip().to_string(),
            port: listener.listen.port(),
            passive_ports: listener.passive_ports.clone(),
            users: legacy_users(&users, client("personal")?)?,
        }),
        None => None,
    };
    Ok(DemoManifest {
        legacy,
        emcs,
        ftps: Endpoint {
            host: config.ftps.listen.ip().to_string(),
            port: config.ftps.listen.port(),
        },
        portal: PortalEndpoint { url: String::new() },
        api: ApiEndpoint::default(),
        ca_pem: pki.root_ca_pem(),
        config: PathBuf::new(),
        users,
        certificates,
        nodes: Vec::new(),
    })
}

/// The [`LEGACY_DEMO_USERS`] among `users` (made in the order of [`DEMO_USERS`]) and the
/// holder of `personal`, as the legacy listener shows them.
fn legacy_users(
    users: &[DemoUser],
    personal: &ClientCredentials,
) -> anyhow::Result<Vec<LegacyUser>> {
    let mut legacy = LEGACY_DEMO_USERS
        .iter()
        .map(|name| {
            let user = DEMO_USERS
                .iter()
                .zip(users)
                .find(|((demo_name, _), _)| demo_name == name)
                .map(|(_, user)| user)
                .with_context(|| format!("the demo registers no {name}"))?;
            legacy_user(
                &user.cert_pem,
                &user.key_pem,
                &user.p12,
                &user.p12_password,
                &user.services,
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    legacy.push(legacy_user(
        &personal.cert_pem,
        &personal.key_pem,
        &personal.p12,
        &personal.p12_password,
        &[ServiceName::heartbeat().to_string()],
    )?);
    Ok(legacy)
}

fn legacy_user(
    cert_pem: &Path,
    key_pem: &Path,
    p12: &Path,
    p12_password: &str,
    services: &[String],
) -> anyhow::Result<LegacyUser> {
    use mftgw_oces::identity::CertificateKind;
    let identity = mftgw_oces::identity::identity_from_der(&leaf_der_file(cert_pem)?)
        .map_err(|refusal| anyhow::anyhow!("{}: {refusal}", cert_pem.display()))?;
    let login_dir = format!("/{}", identity.account_label());
    Ok(LegacyUser {
        cert_pem: cert_pem.to_owned(),
        key_pem: key_pem.to_owned(),
        p12: p12.to_owned(),
        p12_password: p12_password.to_owned(),
        kind: match identity.kind {
            CertificateKind::Voces => "voces",
            CertificateKind::Moces => "moces",
            CertificateKind::Oces3Organisation => "oces3_org",
            CertificateKind::Oces3Employee => "oces3_employee",
            CertificateKind::Personal => "personal",
        }
        .to_string(),
        out_dir: match identity.kind {
            CertificateKind::Personal => format!("{login_dir}/out"),
            _ => "/out".into(),
        },
        login_dir,
        cvr: identity.cvr,
        services: services.to_vec(),
    })
}

fn leaf_der(credentials: &ClientCredentials) -> anyhow::Result<Vec<u8>> {
    leaf_der_file(&credentials.cert_pem)
}

fn leaf_der_file(cert_pem: &Path) -> anyhow::Result<Vec<u8>> {
    let leaf = CertificateDer::pem_file_iter(cert_pem)
        .with_context(|| format!("reading {}", cert_pem.display()))?
        .next()
        .with_context(|| format!("{} holds no certificate", cert_pem.display()))??;
    Ok(leaf.to_vec())
}

fn print_welcome(manifest: &DemoManifest, manifest_path: &Path, heartbeat_file: &Path) {
    let user = &manifest.users[0];
    let portal_certificate = &manifest.certificates["unregistered"];
    let (host, port) = (&manifest.ftps.host, manifest.ftps.port);
    let curl = format!(
        "curl --ssl-reqd --cacert {ca} --cert {cert} --key {key} \\\n    -u '{username}:{password}'",
        ca = manifest.ca_pem.display(),
        cert = user.cert_pem.display(),
        key = user.key_pem.display(),
        username = user.username,
        password = user.password,
    );
    println!(
        "\nmftgw demo: explicit FTPS on {host}:{port}\n\
         Everything scripts need: {manifest}\n\
         Config for the admin commands: {config}\n\n\
         List the root as {username} (services: {services}):\n\n  \
         {curl} ftp://{host}:{port}/\n\n  \
         lftp -u '{username},{password}' -e 'set ssl:ca-file {ca}; set ssl:cert-file {cert}; \
         set ssl:key-file {key}; set ftp:ssl-force true; set ftp:ssl-protect-data true; ls; quit' \
         ftp://{host}:{port}\n\n\
         Send a heartbeat (status 1, 2, a response and status 3 appear in /out within a second):\n\n  \
         {curl} -T {heartbeat} \"ftp://{host}:{port}/FTPSGW.Heartbeat/ping$(date +%Y%m%d%H%M%S%3N)-hb01.xml\"\n\n  \
         {curl} ftp://{host}:{port}/out/\n\n\
         Answer as a backend: uploads to Manifest.MidlertidigOpbevaringOpdater land in {spool}; then\n\n  \
         curl --cacert {ca} -X POST -H 'Authorization: Bearer {backend_token}' {api}/v1/transactions/<SKATTransactionId>/accept\n\n\
         Operators: curl --cacert {ca} -H 'Authorization: Bearer {admin_token}' {api}/v1/admin/deliveries  (also {api}/metrics)\n\
         Certificate Portal: {portal} (client certificate required). In a browser, import {portal_p12}\n  \
         (password {portal_p12_password}): a certificate no one has registered yet; log on with its username as the\n  \
         password, choose your own, press \"Registrér certifikat\". Or look at it with curl:\n\n  \
         curl --cacert {ca} --cert {portal_cert} --key {portal_key} {portal}\n\n\
         Admin CLI: mftgw --config {config} user list | role grant USER SERVICE | transactions | deliveries list | audit --limit 20\n",
        api = manifest.api.url,
        portal = manifest.portal.url,
        portal_p12 = portal_certificate.p12.display(),
        portal_p12_password = portal_certificate.p12_password,
        portal_cert = portal_certificate.cert_pem.display(),
        portal_key = portal_certificate.key_pem.display(),
        spool = manifest.api.spool.display(),
        backend_token = manifest.api.backend_token,
        admin_token = manifest.api.admin_token,
        heartbeat = heartbeat_file.display(),
        manifest = manifest_path.display(),
        config = manifest.config.display(),
        username = user.username,
        password = user.password,
        services = user.services.join(", "),
        ca = manifest.ca_pem.display(),
        cert = user.cert_pem.display(),
        key = user.key_pem.display(),
    );
    if let Some(endpoint) = &manifest.emcs {
        println!("{}", emcs::welcome(endpoint));
    }
    if let Some(legacy) = &manifest.legacy {
        let user = &legacy.users[0];
        println!(
            "Legacy Secure FTP on {host}:{port} (the certificate alone logs in; any USER/PASS will do).\n\
             List {login_dir} (where the session starts) and the company's out as a certificate of CVR {cvr}\n\
             (curl's paths are relative to the login folder; %2F makes them absolute):\n\n  \
             curl --ssl-reqd --cacert {ca} --cert {cert} --key {key} -u anonymous:x ftp://{host}:{port}/\n\n  \
             curl --ssl-reqd --cacert {ca} --cert {cert} --key {key} -u anonymous:x ftp://{host}:{port}/%2F{out_dir}/\n",
            host = legacy.host,
            port = legacy.port,
            login_dir = user.login_dir,
            out_dir = user.out_dir.trim_start_matches('/'),
            cvr = user.cvr.as_deref().unwrap_or_default(),
            ca = manifest.ca_pem.display(),
            cert = user.cert_pem.display(),
            key = user.key_pem.display(),
        );
    }
}
