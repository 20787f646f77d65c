//! The gateway's TOML configuration, with environment overrides: `MFTGW__FTPS__LISTEN=...`
//! sets `[ftps] listen` (sections and keys joined by double underscores, values parsed as TOML
//! where they parse, else taken as strings).

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use mftgw_domain::catalogue::ServiceCatalogue;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Database, password key and blobs live here.
    pub data_dir: PathBuf,
    pub ftps: FtpsConfig,
    pub tls: TlsConfig,
    #[serde(default)]
    pub login: LoginConfig,
    #[serde(default)]
    pub registration: RegistrationConfig,
    #[serde(default)]
    pub portal: PortalConfig,
    #[serde(default)]
    pub transactions: TransactionsConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub roles: RolesConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub blobs: BlobsConfig,
    #[serde(default)]
    pub keys: KeysConfig,
    #[serde(default)]
    pub proxy_protocol: ProxyProtocolConfig,
    #[serde(default)]
    pub services: ServicesConfig,
    /// The legacy "Secure FTP" listener (seed 003), if any: the same settings as `[ftps]`
    /// for a second listener whose users log in by certificate alone and share their
    /// company's `out`. Give it its own `listen` (6371 by convention) and `passive_ports`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<FtpsConfig>,
    /// The EMCS B2B web services (seed 004), if served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emcs: Option<EmcsConfig>,
}

/// The EMCS B2B web-service endpoint: 23 SOAP services secured by WS-Security, on HTTPS with
/// the FTPS server certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmcsConfig {
    pub listen: SocketAddr,
    /// The gateway's WS-Security certificate (PEM; its first certificate is used) and RSA
    /// key (PKCS#8 PEM): callers encrypt for it, answers are signed with it. Not the TLS
    /// certificate.
    pub wss_certificate: PathBuf,
    pub wss_private_key: PathBuf,
    /// PEM certificates of the CAs that issue callers' certificates: a WS-Security token
    /// carries only the caller's own, and the chain is built through these to `[tls]`'s
    /// trusted roots (whose CRLs apply).
    pub issuing_cas: Vec<PathBuf>,
    /// A caller's calls of one submitting service are at least this far apart ...
    #[serde(default = "default_submit_spacing")]
    pub submit_spacing_secs: u64,
    /// ... and of one receiving service at least this far.
    #[serde(default = "default_receive_spacing")]
    pub receive_spacing_secs: u64,
    /// The longest Timestamp (Expires - Created) a request may carry.
    #[serde(default = "default_timestamp_window")]
    pub max_timestamp_window_secs: u64,
    /// How far a caller's clock may be off the gateway's.
    #[serde(default = "default_clock_skew")]
    pub clock_skew_secs: u64,
    /// How long a call waits for the EMCS backend before it is answered with error 2000
    /// (and its transaction rejected, so that it is never delivered later).
    #[serde(default = "default_answer_timeout")]
    pub answer_timeout_secs: u64,
    /// The simulated EMCS system is out of service (every call gets error 2000): for
    /// integrators testing how they handle an outage.
    #[serde(default)]
    pub backend_down: bool,
    /// The register of excise operators that errors 301 and 302 are checked against; none:
    /// they are not checked.
    #[serde(default)]
    pub operators: Vec<ExciseOperatorConfig>,
    /// SE numbers of companies other than their CVR numbers (which every company reports
    /// under without being listed here).
    #[serde(default)]
    pub se_numbers: Vec<SeNumberConfig>,
}

/// One excise operator: its excise number, its company's SE number, and the SE numbers of
/// the companies it has delegated its rights to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExciseOperatorConfig {
    pub excise_number: String,
    pub se_number: String,
    #[serde(default)]
    pub delegated_to: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeNumberConfig {
    pub cvr: String,
    pub se_number: String,
}

impl EmcsConfig {
    /// The register of excise operators.
    pub fn operators(&self) -> mftgw_emcs::operators::Operators {
        mftgw_emcs::operators::Operators::new(
            self.operators
                .iter()
                .map(|operator| mftgw_emcs::operators::Operator {
                    excise_number: operator.excise_number.clone(),
                    se_number: operator.se_number.clone(),
                    delegated_to: operator.delegated_to.clone(),
                }),
            self.se_numbers
                .iter()
                .map(|entry| (entry.cvr.clone(), entry.se_number.clone())),
        )
    }
}

fn default_submit_spacing() -> u64 {
    3
}

fn default_receive_spacing() -> u64 {
    300
}

fn default_timestamp_window() -> u64 {
    60
}

fn default_clock_skew() -> u64 {
    30
}

fn default_answer_timeout() -> u64 {
    20
}

/// The service catalogue: the built-in one, or an operator's file in the same format.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServicesConfig {
    /// A catalogue in the format of the built-in `services.toml` (`[[system]]` tables, each
    /// with a `name` and a `services` list); without it, the built-in catalogue.
    pub file: Option<PathBuf>,
}

/// The audit log: aggregation of unauthenticated refusals, retention and archive.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Unauthenticated refusals of one (action, reason, address) after the first are written
    /// as one row with their count per interval of this length.
    pub refusal_interval_secs: u64,
    /// Events older than this leave the audit log (after being archived, unless `archive`
    /// is off); within it the log is append-only, enforced by the database.
    pub retention_days: u64,
    /// Write expiring events to JSON-lines files in `archive_dir` before deleting them.
    pub archive: bool,
    /// Where archives go; default `<data_dir>/audit-archive`.
    pub archive_dir: Option<PathBuf>,
    pub sweep_secs: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            refusal_interval_secs: 5,
            retention_days: 365,
            archive: true,
            archive_dir: None,
            sweep_secs: 60 * 60,
        }
    }
}

impl AuditConfig {
    /// The auditor's settings on the node `node`.
    pub fn settings(&self, node: &str) -> mftgw_core::audit::AuditSettings {
        mftgw_core::audit::AuditSettings {
            refusal_interval: seconds(self.refusal_interval_secs.max(1)),
            node: node.to_owned(),
        }
    }
}

/// Which store, and its upkeep.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Which implementation holds the gateway's state; unset, the one `database` names
    /// (none: the embedded SQLite file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<StoreKind>,
    /// The PostgreSQL database the nodes share, as a URL
    /// (`postgres://user:password@host:5432/database`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// How often the write-ahead log is copied into the database and truncated (SQLite).
    pub checkpoint_secs: u64,
}

/// The store implementations a gateway can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// The embedded SQLite file `<data_dir>/mftgw.sqlite`, with the blobs under
    /// `<data_dir>/files/`: one node.
    Sqlite,
    /// A PostgreSQL database that several nodes share (`database`).
    Postgres,
}

/// The store a configuration selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectedStore {
    /// The embedded SQLite file.
    Embedded,
    /// PostgreSQL at this URL.
    Postgres(String),
}

impl StoreConfig {
    /// The store `kind` and `database` select, or why they contradict each other.
    pub fn selected(&self) -> anyhow::Result<SelectedStore> {
        let postgres_url =
            |url: &str| url.starts_with("postgres://") || url.starts_with("postgresql://");
        match (self.kind, self.database.as_deref()) {
            (None | Some(StoreKind::Sqlite), None) => Ok(SelectedStore::Embedded),
            (None | Some(StoreKind::Postgres), Some(url)) if postgres_url(url) => {
                Ok(SelectedStore::Postgres(url.to_owned()))
            }
            (Some(StoreKind::Postgres), None) => {
                anyhow::bail!("[store] kind = \"postgres\" needs database = \"postgres://…\"")
            }
            (Some(StoreKind::Sqlite), Some(_)) => anyhow::bail!(
                "[store] database names a PostgreSQL server, but kind = \"sqlite\" keeps the \
                 store in data_dir: drop one of them"
            ),
            (_, Some(_)) => {
                anyhow::bail!("[store] database must be a postgres:// URL")
            }
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: None,
            database: None,
            checkpoint_secs: 60,
        }
    }
}

/// The load balancers in front of this node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyProtocolConfig {
    /// The balancers' source addresses: their connections to every listener (FTPS control
    /// and passive, legacy, portal, API, EMCS) begin with a PROXY header (v1 or v2) naming
    /// the client, and must. An FTPS client sending a header from any other address is
    /// refused and audited.
    pub from: Vec<IpAddr>,
    /// How long a balancer has to send its header.
    pub header_timeout_secs: u64,
}

impl Default for ProxyProtocolConfig {
    fn default() -> Self {
        ProxyProtocolConfig {
            from: Vec::new(),
            header_timeout_secs: 5,
        }
    }
}

impl ProxyProtocolConfig {
    pub fn policy(&self) -> mftgw_ftps::proxy::ProxyPolicy {
        mftgw_ftps::proxy::ProxyPolicy {
            balancers: self.from.clone(),
            header_timeout: std::time::Duration::from_secs(self.header_timeout_secs.max(1)),
        }
    }
}

/// The keys the gateway's data depends on. Nodes that share a store must share them, so a
/// node on PostgreSQL takes them from here and never makes its own.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// The gateway password key (it hashes the gateway passwords and seals them for the
    /// portal) as 64 hex digits; best given as `MFTGW__KEYS__PASSWORD_KEY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_key: Option<String>,
    /// A file holding that key; none of the two: `<data_dir>/gateway-password.key`, made on
    /// first start (the embedded store only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_key_file: Option<PathBuf>,
}

/// Where uploads and large `/out` files are kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlobsConfig {
    /// A bucket several nodes share; none: `<data_dir>/files/`, this node's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Config>,
    /// How old an unreferenced blob must be before the orphan sweep may take it (at start on
    /// a bucket, and every `orphan_sweep_secs` on either store): longer than any upload takes
    /// from its body's end to its commit on any node.
    pub orphan_age_secs: u64,
    /// How often one node sweeps the orphans of interrupted uploads.
    pub orphan_sweep_secs: u64,
}

impl Default for BlobsConfig {
    fn default() -> Self {
        BlobsConfig {
            s3: None,
            orphan_age_secs: 3600,
            orphan_sweep_secs: 3600,
        }
    }
}

/// An S3-compatible bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// `https://s3.eu-north-1.amazonaws.com`, `http://127.0.0.1:9000`; none: AWS's for
    /// `region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    pub access_key_id: String,
    /// Better given in the environment: `MFTGW__BLOBS__S3__SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `bucket.host` addressing; by default `host/bucket` (path style).
    #[serde(default)]
    pub virtual_hosted_style: bool,
    /// The blobs' prefix in the bucket.
    #[serde(default)]
    pub prefix: String,
    /// A multipart upload's part size, and the largest blob put whole (S3: at least 5 MiB).
    #[serde(default = "default_part_bytes")]
    pub part_bytes: usize,
}

pub(crate) fn default_region() -> String {
    "us-east-1".into()
}

pub(crate) fn default_part_bytes() -> usize {
    8 * 1024 * 1024
}

impl S3Config {
    pub fn settings(&self) -> mftgw_blobs::S3Settings {
        mftgw_blobs::S3Settings {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            region: self.region.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            virtual_hosted_style: self.virtual_hosted_style,
            prefix: self.prefix.clone(),
            part_bytes: self.part_bytes,
        }
    }
}

/// Role replication from the central security system.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolesConfig {
    /// Where the replicated roles come from; none: roles are granted locally only.
    pub source: Option<RoleSourceConfig>,
    pub poll_secs: u64,
}

impl Default for RolesConfig {
    fn default() -> Self {
        RolesConfig {
            source: None,
            poll_secs: 60 * 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RoleSourceConfig {
    Http {
        url: String,
        ca_file: Option<PathBuf>,
        client_certificate: Option<PathBuf>,
        client_key: Option<PathBuf>,
    },
    File {
        path: PathBuf,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Where the HTTPS API (backend API, admin API, health and metrics) listens, with the
    /// FTPS server certificate; off when unset.
    pub listen: Option<SocketAddr>,
    /// The operators' bearer token for the admin API; none: the admin API is closed.
    pub admin_token: Option<String>,
    /// PEM roots of backends' client certificates; none: backends use tokens only.
    pub client_ca: Option<PathBuf>,
    /// The bearer token `/metrics` asks for; none: it is open.
    pub metrics_token: Option<String>,
    /// A plain-HTTP listener of its own for `/metrics`, `/healthz` and `/readyz`.
    pub metrics_listen: Option<SocketAddr>,
    /// How often the store's counts behind the gauges are read.
    pub metrics_refresh_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// The first retry of a failed delivery waits about this long; each further one twice as
    /// long, up to `retry_max_secs` (with jitter).
    pub retry_first_ms: u64,
    pub retry_max_secs: u64,
    pub attempt_timeout_secs: u64,
    /// Backends that answer on their own (heartbeat, simulated) wait this long before each
    /// answer.
    pub answer_delay_ms: u64,
    /// How long a node's claim on a batch of deliveries lasts by the database's clock
    /// (renewed every third of it while the node works): how soon the other nodes take over
    /// the deliveries of a node that died.
    pub lease_secs: u64,
    /// Where services are delivered; `FTPSGW.Heartbeat` is built in.
    pub backends: Vec<BackendConfig>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            retry_first_ms: 1000,
            retry_max_secs: 300,
            attempt_timeout_secs: 30,
            answer_delay_ms: 0,
            lease_secs: 60,
            backends: Vec::new(),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: None,
            admin_token: None,
            client_ca: None,
            metrics_token: None,
            metrics_listen: None,
            metrics_refresh_secs: 15,
        }
    }
}

impl DeliveryConfig {
    pub fn policy(&self) -> mftgw_core::delivery::DeliveryPolicy {
        mftgw_core::delivery::DeliveryPolicy {
            retry: mftgw_domain::delivery::RetryPolicy {
                first: Duration::from_millis(self.retry_first_ms.max(1)),
                max: seconds(self.retry_max_secs.max(1)),
            },
            attempt_timeout: seconds(self.attempt_timeout_secs.max(1)),
            answer_delay: Duration::from_millis(self.answer_delay_ms),
            lease: seconds(self.lease_secs.max(1)),
        }
    }
}

/// A backend system and the services delivered to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendConfig {
    pub name: String,
    pub services: Vec<mftgw_domain::ServiceName>,
    /// The bearer token this backend uses on the backend API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token: Option<String>,
    /// Or the SHA-256 fingerprint (hex) of the client certificate it presents there, which
    /// must chain to `[api] client_ca`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_client_certificate: Option<String>,
    #[serde(flatten)]
    pub connector: ConnectorConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ConnectorConfig {
    /// Files and `.meta.json` written atomically into a directory the backend watches.
    Spool { directory: PathBuf },
    /// A `POST` of each file to `url`, metadata in headers.
    Http {
        url: String,
        /// PEM roots for the backend's certificate (else the system's).
        ca_file: Option<PathBuf>,
        /// PEM chain and key the gateway presents to the backend.
        client_certificate: Option<PathBuf>,
        client_key: Option<PathBuf>,
    },
    /// Inside the gateway, for demos and tests.
    Simulated {
        behaviour: mftgw_core::delivery::Behaviour,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransactionsConfig {
    /// This node's part of every SKATTransactionId (`ci<epoch-ms>_<node>_<seq>`); give each
    /// node sharing a store its own.
    pub node_id: String,
    /// How long files stay in `/out` (and uploaded bodies after their transaction ended).
    pub retention_secs: u64,
    pub retention_sweep_secs: u64,
    /// The largest upload (`552` beyond).
    pub max_upload_bytes: u64,
    /// The most bytes of one user's uploads that may wait for delivery (`552` beyond).
    pub user_pending_quota_bytes: u64,
}

impl Default for TransactionsConfig {
    fn default() -> Self {
        TransactionsConfig {
            node_id: "1".into(),
            retention_secs: 30 * 24 * 60 * 60,
            retention_sweep_secs: 10 * 60,
            max_upload_bytes: 5 << 30,
            user_pending_quota_bytes: 50 << 30,
        }
    }
}

impl TransactionsConfig {
    pub fn retention(&self) -> mftgw_core::transactions::RetentionPolicy {
        mftgw_core::transactions::RetentionPolicy {
            keep_for: seconds(self.retention_secs),
            sweep_every: seconds(self.retention_sweep_secs.max(1)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FtpsConfig {
    pub listen: SocketAddr,
    /// `first-last`, e.g. `36000-39999`.
    pub passive_ports: String,
    pub advertised_address: Option<IpAddr>,
    pub max_sessions: usize,
    pub max_sessions_per_ip: usize,
    pub max_sessions_per_user: usize,
    /// Connections that have not logged in yet, at most.
    pub max_pre_login_sessions: usize,
    /// New connections per second one address may open (0: no limit), and at once.
    pub connection_rate_per_ip: f64,
    pub connection_burst_per_ip: f64,
    pub tls_handshake_timeout_secs: u64,
    pub login_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    /// A transfer whose data connection moves no byte for this long is aborted.
    pub data_stall_timeout_secs: u64,
    /// A session ends this long after login, however active.
    pub max_session_lifetime_secs: u64,
    /// Transaction folders (`MKD`) one session may hold open.
    pub max_transaction_folders: usize,
    pub require_session_resumption: bool,
}

impl Default for FtpsConfig {
    fn default() -> Self {
        let limits = mftgw_ftps::SessionLimits::default();
        FtpsConfig {
            listen: "127.0.0.1:6381".parse().expect("valid address"),
            passive_ports: "36000-39999".into(),
            advertised_address: None,
            max_sessions: limits.max_sessions,
            max_sessions_per_ip: limits.max_sessions_per_ip,
            max_sessions_per_user: limits.max_sessions_per_user,
            max_pre_login_sessions: limits.max_pre_login,
            connection_rate_per_ip: limits.connection_rate_per_ip.per_second,
            connection_burst_per_ip: limits.connection_rate_per_ip.burst,
            tls_handshake_timeout_secs: 10,
            login_timeout_secs: 60,
            idle_timeout_secs: 600,
            data_stall_timeout_secs: 120,
            max_session_lifetime_secs: mftgw_ftps::Timeouts::default().session_lifetime.as_secs(),
            max_transaction_folders: 1000,
            require_session_resumption: false,
        }
    }
}

impl FtpsConfig {
    pub fn passive_port_range(&self) -> anyhow::Result<RangeInclusive<u16>> {
        parse_port_range(&self.passive_ports)
    }
}

pub fn parse_port_range(text: &str) -> anyhow::Result<RangeInclusive<u16>> {
    let (first, last) = text
        .split_once('-')
        .with_context(|| format!("passive ports {text:?}: expected FIRST-LAST"))?;
    let first: u16 = first.trim().parse().context("passive ports: first port")?;
    let last: u16 = last.trim().parse().context("passive ports: last port")?;
    if first == 0 || first > last {
        bail!("passive ports {text:?}: need 0 < FIRST <= LAST");
    }
    Ok(first..=last)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM: the server certificate followed by its issuing CA(s).
    pub certificate_chain: PathBuf,
    pub private_key: PathBuf,
    /// PEM files of the CAs whose client certificates are trusted.
    pub trusted_roots: Vec<PathBuf>,
    /// CRLs of every issuing CA (PEM or DER), re-read every `crl_refresh_secs` and on SIGHUP.
    pub crls: Vec<PathBuf>,
    #[serde(default = "default_crl_refresh")]
    pub crl_refresh_secs: u64,
    /// How long a CRL that could not be refreshed stays in force after its nextUpdate.
    #[serde(default = "default_crl_grace")]
    pub crl_grace_secs: u64,
    /// Past the grace period: `refuse` the issuer's certificates, or `accept` them and alarm.
    #[serde(default)]
    pub on_stale_crl: OnStaleCrl,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnStaleCrl {
    #[default]
    Refuse,
    Accept,
}

impl TlsConfig {
    pub fn crl_policy(&self) -> mftgw_oces::CrlPolicy {
        mftgw_oces::CrlPolicy {
            grace: seconds(self.crl_grace_secs),
            when_stale: match self.on_stale_crl {
                OnStaleCrl::Refuse => mftgw_oces::StaleCrlPolicy::RefuseCertificates,
                OnStaleCrl::Accept => mftgw_oces::StaleCrlPolicy::AcceptCertificates,
            },
        }
    }
}

fn default_crl_refresh() -> u64 {
    300
}

fn default_crl_grace() -> u64 {
    24 * 60 * 60
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    pub window_secs: u64,
    pub free_failures: u32,
    pub delay_per_failure_ms: u64,
    pub max_delay_ms: u64,
    pub block_after: u32,
    pub block_for_secs: u64,
}

impl Default for LoginConfig {
    fn default() -> Self {
        let defaults = mftgw_domain::throttle::ThrottleConfig::default();
        LoginConfig {
            window_secs: defaults.window.as_secs(),
            free_failures: defaults.free_failures,
            delay_per_failure_ms: defaults.delay_per_failure.as_millis() as u64,
            max_delay_ms: defaults.max_delay.as_millis() as u64,
            block_after: defaults.block_after,
            block_for_secs: defaults.block_for.as_secs(),
        }
    }
}

impl LoginConfig {
    pub fn throttle(&self) -> mftgw_domain::throttle::ThrottleConfig {
        mftgw_domain::throttle::ThrottleConfig {
            window: seconds(self.window_secs),
            free_failures: self.free_failures,
            delay_per_failure: Duration::from_millis(self.delay_per_failure_ms),
            max_delay: Duration::from_millis(self.max_delay_ms),
            block_after: self.block_after,
            block_for: seconds(self.block_for_secs),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    /// From registration to an active FTPS login (15 minutes in production, 0 in the demo).
    pub activation_delay_secs: u64,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        RegistrationConfig {
            activation_delay_secs: 15 * 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {
    /// Where the Certificate Portal listens (HTTPS, client certificate required).
    pub listen: SocketAddr,
    /// A portal session ends after this long without a request.
    pub idle_timeout_secs: u64,
    /// ... and this long after login, however active.
    pub max_session_age_secs: u64,
    /// What a first login types: `username` (seed 000), or `operator_code` (a one-time code
    /// from `mftgw portal code`, also printed by `mftgw user register`).
    pub first_password: crate::portal::FirstPassword,
    /// How long an operator's one-time code is valid.
    pub first_code_valid_secs: u64,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            listen: "127.0.0.1:8443".parse().expect("valid address"),
            idle_timeout_secs: 15 * 60,
            max_session_age_secs: 12 * 60 * 60,
            first_password: Default::default(),
            first_code_valid_secs: 7 * 24 * 60 * 60,
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let mut value: toml::Table =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        apply_env_overrides(&mut value, std::env::vars())?;
        toml::Value::Table(value)
            .try_into()
            .with_context(|| format!("invalid config {}", path.display()))
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, toml::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    /// The service catalogue in force: `[services] file`, else the built-in one.
    pub fn catalogue(&self) -> anyhow::Result<ServiceCatalogue> {
        let Some(path) = &self.services.file else {
            return Ok(ServiceCatalogue::builtin());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the service catalogue {}", path.display()))?;
        ServiceCatalogue::from_toml(&text)
            .with_context(|| format!("the service catalogue {}", path.display()))
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("mftgw.sqlite")
    }

    pub fn password_key_path(&self) -> PathBuf {
        self.data_dir.join("gateway-password.key")
    }

    /// The local blob store: uploads and large `/out` files.
    pub fn blobs_path(&self) -> PathBuf {
        self.data_dir.join("files")
    }

    /// Where the blob `key` is kept: a file, or an object of the bucket.
    pub fn blob_location(&self, key: &mftgw_blobs::BlobKey) -> String {
        match &self.blobs.s3 {
            Some(s3) => {
                let prefix = s3.prefix.trim_matches('/');
                let prefix = if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}/")
                };
                format!("s3://{}/{prefix}{key}", s3.bucket)
            }
            None => mftgw_blobs::LocalBlobStore::blob_path(&self.blobs_path(), key)
                .display()
                .to_string(),
        }
    }

    /// Where expired audit events are archived.
    pub fn audit_archive_path(&self) -> PathBuf {
        self.audit
            .archive_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit-archive"))
    }
}

/// A duration from the config: at most a century, so that no deadline computed from it
/// overflows (a config that says "forever" gets that).
pub fn seconds(secs: u64) -> Duration {
    const CENTURY: u64 = 100 * 365 * 24 * 60 * 60;
    Duration::from_secs(secs.min(CENTURY))
}

const ENV_PREFIX: &str = "MFTGW__";

fn apply_env_overrides(
    table: &mut toml::Table,
    vars: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<()> {
    for (name, raw) in vars {
        let Some(path) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
        let (last, sections) = keys.split_last().context("empty override name")?;
        let mut current = &mut *table;
        for section in sections {
            current = current
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .with_context(|| format!("{name}: {section} is not a section"))?;
        }
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(raw));
        current.insert(last.clone(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_reach_nested_keys() {
        let mut table: toml::Table = toml::from_str("[ftps]\nlisten = \"127.0.0.1:1\"").unwrap();
        let vars = [
            (
                "MFTGW__FTPS__LISTEN".to_string(),
                "127.0.0.1:2121".to_string(),
            ),
            ("MFTGW__FTPS__MAX_SESSIONS".to_string(), "7".to_string()),
            ("OTHER".to_string(), "x".to_string()),
        ];
        apply_env_overrides(&mut table, vars.into_iter()).unwrap();
        assert_eq!(table["ftps"]["listen"].as_str(), Some("127.0.0.1:2121"));
        assert_eq!(table["ftps"]["max_sessions"].as_integer(), Some(7));
    }

    #[test]
    fn port_ranges_are_checked() {
        assert_eq!(parse_port_range("36000-39999").unwrap(), 36000..=39999);
        assert!(parse_port_range("39999-36000").is_err());
        assert!(parse_port_range("0-10").is_err());
        assert!(parse_port_range("36000").is_err());
    }
}
