//! Runs the gateway from a configuration: store, blob store, trust store with CRL refresh,
//! the transaction worker and retention sweep, the FTPS server, and graceful shutdown on
//! SIGINT/SIGTERM (SIGHUP reloads the CRLs).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mftgw_blobs::{BlobStore, LocalBlobStore, S3BlobStore};
use mftgw_domain::Profile;
use mftgw_domain::catalogue::ServiceCatalogue;
use mftgw_ftps::{
    ConnectionRate, Server, ServerConfig, SessionLimits, Timeouts, TlsContext, TlsSettings,
};
use mftgw_oces::trust::TrustStore;
use mftgw_store::Store;
use rustls::pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

use crate::api::{self, ApiBackend, ApiState};
use crate::config::{
    Config, ConnectorConfig, EmcsConfig, FtpsConfig, ProxyProtocolConfig, RoleSourceConfig, seconds,
};
use crate::emcs::backend::{Availability, SimulatedEmcs};
use crate::emcs::{EmcsGateway, EmcsSettings};
use crate::gateway::{Gateway, GatewayParts, UploadLimits, run_authorisation_watch};
use crate::http_client::{HttpPush, HttpRoleFeed, HttpTarget};
use crate::limits::Capacity;
use crate::portal::{self, PortalState};
use crate::stores::{OnStore, on_store};
use mftgw_core::audit::{AuditRetention, Auditor, run_audit_retention};
use mftgw_core::delivery::{Backends, run_delivery};
use mftgw_core::delivery::{Simulated, Spool};
use mftgw_core::periodic::{Leadership, StoreLeadership};
use mftgw_core::portal::{Portal, RegistrationWorker, SessionTimeouts};
use mftgw_core::roles::{RoleFeed, RoleFile, run_replication};
use mftgw_core::spacing::{CallSpacing, SpacingRules};
use mftgw_core::throttle::SharedThrottle;
use mftgw_core::transactions::{
    Operations, OrphanSweep, Transactions, run_orphan_sweep, run_retention,
};
use mftgw_core::users::Users;
use mftgw_wssec::seal::Credentials;
use mftgw_wssec::wsse::Policy;

pub async fn serve(config: Config) -> anyhow::Result<()> {
    // A bad catalogue file is refused before the store is opened.
    let catalogue = Arc::new(config.catalogue()?);
    let job = Serve {
        config: config.clone(),
        catalogue,
    };
    on_store(&config, job).await
}

/// The gateway, to run on whichever store the configuration selects.
struct Serve {
    config: Config,
    catalogue: Arc<ServiceCatalogue>,
}

impl OnStore for Serve {
    type Output = ();

    /// Opens the configured blob store too, and says whether the start-up sweep runs: in a
    /// directory this process holds alone it takes every unreferenced blob finished until
    /// now (no upload is in flight yet); a bucket other nodes write to is left to the
    /// periodic orphan sweep, whose first round, on the node that leads it, comes at once.
    async fn run<S: Store>(self, store: Arc<S>) -> anyhow::Result<()> {
        match &self.config.blobs.s3 {
            None => {
                let path = self.config.blobs_path();
                let blobs = LocalBlobStore::open(&path)
                    .await
                    .with_context(|| format!("opening the blob store {}", path.display()))?;
                let now = Some(std::time::SystemTime::now());
                serve_on(self.config, self.catalogue, store, Arc::new(blobs), now).await
            }
            Some(s3) => {
                let blobs = S3BlobStore::new(&s3.settings())
                    .with_context(|| format!("[blobs.s3] bucket {}", s3.bucket))?;
                serve_on(self.config, self.catalogue, store, Arc::new(blobs), None).await
            }
        }
    }
}

async fn serve_on<S: Store, B: BlobStore>(
    config: Config,
    catalogue: Arc<ServiceCatalogue>,
    store: Arc<S>,
    blobs: Arc<B>,
    sweep_before: Option<std::time::SystemTime>,
) -> anyhow::Result<()> {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let auditor = Auditor::start(
        Arc::clone(&store),
        config.audit.settings(&config.transactions.node_id),
    );
    let transactions = Arc::new(
        Transactions::new(Arc::clone(&store), blobs, &config.transactions.node_id)
            .context("[transactions] node_id")?,
    );
    if let Some(before) = sweep_before {
        let swept = transactions.sweep_unreferenced_blobs(before).await?;
        if swept > 0 {
            tracing::info!(
                swept,
                "removed blobs that no transaction or /out file refers to"
            );
        }
    }
    let released = transactions.release_own_claims().await?;
    if released > 0 {
        tracing::info!(released, "deliveries this node had in flight are due again");
    }
    let operations = Arc::new(transactions.operations(Arc::clone(&auditor)));
    let users = Arc::new(Users::new(
        Arc::clone(&store),
        Arc::clone(&auditor),
        Arc::clone(&catalogue),
    ));
    let password_key = crate::secrets::password_key(&config)?;
    crate::secrets::check_password_key(&*store, &password_key).await?;
    let trust = TrustStore::load(
        &config.tls.trusted_roots,
        &config.tls.crls,
        config.tls.crl_policy(),
    )
    .context("loading the client-certificate trust store")?;
    let tls = mftgw_ftps::tls::server_config(TlsSettings {
        cert_chain: server_chain(&config)?,
        key: server_key(&config)?,
        client_verifier: Arc::clone(&trust) as _,
        session_cache_size: 20_000,
        verifier_changes: Some(trust.reloads()),
    })?;

    let ftps = &config.ftps;
    let gateway_in = |profile: Profile, ftps: &FtpsConfig| {
        Arc::new(Gateway::new(
            Arc::clone(&transactions),
            GatewayParts {
                profile,
                users: Arc::clone(&users),
                catalogue: Arc::clone(&catalogue),
                password_key: password_key.clone(),
                throttle: config.login.throttle(),
                auditor: Arc::clone(&auditor),
                tls: tls.clone(),
                limits: UploadLimits {
                    max_upload_bytes: config.transactions.max_upload_bytes,
                    max_pending_bytes: config.transactions.user_pending_quota_bytes,
                    max_transaction_folders: ftps.max_transaction_folders,
                },
            },
        ))
    };
    let server_config = engine_config(ftps, &config.proxy_protocol, &tls)?;
    let gateway = gateway_in(Profile::Gateway, ftps);
    let legacy = match &config.legacy {
        Some(legacy) => {
            anyhow::ensure!(
                legacy.listen != ftps.listen,
                "[legacy] listen must differ from [ftps] listen ({})",
                ftps.listen
            );
            Some((
                legacy,
                engine_config(legacy, &config.proxy_protocol, &tls)?,
                gateway_in(Profile::SecureFtp, legacy),
            ))
        }
        None => None,
    };
    // What the configuration can get wrong is found before anything listens, so that
    // "FTPS listening" is the word of a start-up that went well.
    let mut delivery = backends(&config, &catalogue)?;
    if let Some(emcs) = &config.emcs {
        let availability = if emcs.backend_down {
            Availability::Down
        } else {
            Availability::Up
        };
        let connector: Arc<dyn mftgw_core::delivery::Connector> =
            Arc::new(SimulatedEmcs::new(availability));
        for service in &mftgw_emcs::services::SERVICES {
            let name = mftgw_domain::ServiceName::parse(service.name)
                .expect("the name of an EMCS service is a service name");
            anyhow::ensure!(
                delivery.add(&name, Arc::clone(&connector)),
                "[delivery] backends: {name} is an EMCS service, served by [emcs]"
            );
        }
    }
    let api_server_tls = match config.api.listen {
        Some(_) => Some(Arc::new(api_tls(&config)?)),
        None => None,
    };
    let portal_server_tls = Arc::new(portal_tls(&config, &trust)?);
    let emcs = match &config.emcs {
        Some(emcs) => Some((emcs, emcs_settings(emcs)?, Arc::new(emcs_tls(&config)?))),
        None => None,
    };
    let roles_from = role_source(&config)?;
    // Before anything listens: whoever sees the gateway listen may signal it at once.
    let shutdown = shutdown_signal()?;
    let hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    // The API binds first, so that "FTPS listening" is the last word of a good start-up.
    let api_listener = bind(config.api.listen, "the backend API").await?;
    let monitoring_listener = bind(config.api.metrics_listen, "the metrics listener").await?;
    let portal_listener = TcpListener::bind(config.portal.listen)
        .await
        .with_context(|| format!("binding the Certificate Portal on {}", config.portal.listen))?;
    tracing::info!(listen = %config.portal.listen, "Certificate Portal listening");
    let legacy = match legacy {
        Some((legacy, server_config, gateway)) => {
            let listener = TcpListener::bind(legacy.listen)
                .await
                .with_context(|| format!("binding legacy Secure FTP on {}", legacy.listen))?;
            tracing::info!(listen = %legacy.listen, passive = %legacy.passive_ports, "legacy Secure FTP listening");
            Some((listener, server_config, gateway))
        }
        None => None,
    };
    let emcs_listener = match &emcs {
        Some((emcs, _, _)) => bind(Some(emcs.listen), "the EMCS web services").await?,
        None => None,
    };
    let listener = TcpListener::bind(ftps.listen)
        .await
        .with_context(|| format!("binding FTPS on {}", ftps.listen))?;
    tracing::info!(listen = %ftps.listen, passive = %ftps.passive_ports, "FTPS listening");

    let (crls_reloaded, crl_reloads) = watch::channel(0u64);
    tokio::spawn(refresh_crls(
        Arc::clone(&trust),
        seconds(config.tls.crl_refresh_secs.max(1)),
        hangup,
        crls_reloaded,
    ));
    let (stop, stopping) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(run_authorisation_watch(
        Arc::clone(&gateway),
        crl_reloads.clone(),
        stopping.clone(),
    ))];
    // Both listeners stop on the one signal.
    let (signalled, shutting_down) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = signalled.send(true);
    });
    let stopped_by_signal = |mut shutting_down: watch::Receiver<bool>| async move {
        let _ = shutting_down.wait_for(|stop| *stop).await;
    };
    let legacy_server = legacy.map(|(listener, server_config, legacy)| {
        tasks.push(tokio::spawn(run_authorisation_watch(
            Arc::clone(&legacy),
            crl_reloads,
            stopping.clone(),
        )));
        tokio::spawn(
            Server::new(server_config, legacy)
                .run(listener, stopped_by_signal(shutting_down.clone())),
        )
    });
    let api_state = Arc::new(ApiState {
        transactions: Arc::clone(&transactions),
        users: Arc::clone(&users),
        operations: Arc::clone(&operations),
        backends: api_backends(&config),
        catalogue: Arc::clone(&catalogue),
        admin_token: config.api.admin_token.clone(),
        metrics: metrics.clone(),
        metrics_token: config.api.metrics_token.clone(),
        retention: config.transactions.retention().keep_for,
    });
    tasks.push(tokio::spawn(api::run_gauges(
        Arc::clone(&operations),
        delivery.services(),
        seconds(config.api.metrics_refresh_secs.max(1)),
        stopping.clone(),
    )));
    if let (Some(api_listener), Some(api_server_tls)) = (api_listener, api_server_tls) {
        tasks.push(tokio::spawn(crate::https::serve(
            "API",
            api_listener,
            api_server_tls,
            api::router(Arc::clone(&api_state)),
            config.proxy_protocol.policy(),
            stopping.clone(),
        )));
    }
    if let Some(monitoring_listener) = monitoring_listener {
        let mut stopped = stopping.clone();
        let router = api::monitoring_router(Arc::clone(&api_state));
        tasks.push(tokio::spawn(async move {
            let served = axum::serve(monitoring_listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.changed().await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the metrics listener failed");
            }
        }));
    }
    if let (Some((_, settings, emcs_tls)), Some(emcs_listener)) = (emcs, emcs_listener) {
        let gateway = Arc::new(EmcsGateway::new(
            Arc::clone(&transactions),
            Arc::clone(&users),
            Arc::clone(&trust),
            Arc::clone(&auditor),
            settings,
        ));
        tasks.push(tokio::spawn(crate::https::serve(
            "EMCS",
            emcs_listener,
            emcs_tls,
            crate::emcs::endpoint::router(gateway),
            config.proxy_protocol.policy(),
            stopping.clone(),
        )));
    }
    let portal = Arc::new(Portal::new(
        Arc::clone(&store),
        SessionTimeouts {
            idle: seconds(config.portal.idle_timeout_secs.max(1)),
            max_age: seconds(config.portal.max_session_age_secs.max(1)),
        },
    ));
    tasks.push(tokio::spawn(crate::https::serve(
        "Certificate Portal",
        portal_listener,
        portal_server_tls,
        portal::router(Arc::new(PortalState {
            portal: Arc::clone(&portal),
            users: Arc::clone(&users),
            auditor: Arc::clone(&auditor),
            trust: Arc::clone(&trust),
            password_key: password_key.clone(),
            throttle: SharedThrottle::new(config.login.throttle()),
            first_password: config.portal.first_password,
            guards: Default::default(),
        })),
        config.proxy_protocol.policy(),
        stopping.clone(),
    )));
    tasks.push(tokio::spawn(Arc::clone(&portal).run_registrations(
        RegistrationWorker {
            users: Arc::clone(&users),
            auditor: Arc::clone(&auditor),
            trust: Arc::clone(&trust),
            password_key,
            activation_delay: seconds(config.registration.activation_delay_secs),
        },
        stopping.clone(),
    )));
    tasks.push(tokio::spawn(portal.run_session_sweep(stopping.clone())));
    // The jobs one node at a time runs, whichever it is.
    let leadership: Arc<dyn Leadership> = Arc::new(StoreLeadership {
        store: Arc::clone(&store),
        node: config.transactions.node_id.clone(),
    });
    if let Some(source) = roles_from {
        tasks.push(tokio::spawn(run_replication(
            Arc::clone(&store),
            Arc::clone(&auditor),
            Arc::clone(&catalogue),
            source,
            seconds(config.roles.poll_secs.max(1)),
            Arc::clone(&leadership),
            stopping.clone(),
        )));
    }
    tasks.push(tokio::spawn(run_audit_retention(
        Arc::clone(&store),
        AuditRetention {
            keep_for: seconds(config.audit.retention_days.saturating_mul(24 * 60 * 60)),
            archive: config.audit.archive.then(|| config.audit_archive_path()),
            sweep_every: seconds(config.audit.sweep_secs.max(1)),
        },
        Arc::clone(&leadership),
        stopping.clone(),
    )));
    tasks.push(tokio::spawn(run_checkpoints(
        Arc::clone(&operations),
        seconds(config.store.checkpoint_secs.max(1)),
        stopping.clone(),
    )));
    let workers: Vec<_> = delivery
        .per_connector()
        .into_iter()
        .map(|backends| {
            tokio::spawn(run_delivery(
                Arc::clone(&transactions),
                backends,
                config.delivery.policy(),
                stopping.clone(),
            ))
        })
        .collect();
    tasks.push(tokio::spawn(run_orphan_sweep(
        Arc::clone(&transactions),
        OrphanSweep {
            older_than: seconds(config.blobs.orphan_age_secs),
            sweep_every: seconds(config.blobs.orphan_sweep_secs.max(1)),
        },
        Arc::clone(&leadership),
        stopping.clone(),
    )));
    let retention = tokio::spawn(run_retention(
        Arc::clone(&transactions),
        config.transactions.retention(),
        leadership,
        stopping,
    ));
    Server::new(server_config, gateway)
        .run(listener, stopped_by_signal(shutting_down))
        .await;
    if let Some(legacy_server) = legacy_server {
        let _ = legacy_server.await;
    }
    tracing::info!("FTPS stopped");
    // Work left undone stays in the store and resumes at the next start.
    let _ = stop.send(true);
    let _ = retention.await;
    // A delivery in flight may wait for its backend up to the attempt timeout; it is not
    // waited for that long: unfinished work is redone after the restart (at least once).
    for worker in workers {
        let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
    }
    for task in tasks {
        let _ = task.await;
    }
    auditor.drain().await;
    Ok(())
}

/// Binds `listen`, if set; `what` names it in the log and in errors.
async fn bind(listen: Option<SocketAddr>, what: &str) -> anyhow::Result<Option<TcpListener>> {
    let Some(listen) = listen else {
        return Ok(None);
    };
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {what} on {listen}"))?;
    tracing::info!(%listen, "{what} listening");
    Ok(Some(listener))
}

/// The engine's configuration for a listener of `ftps`'s settings.
fn engine_config(
    ftps: &FtpsConfig,
    proxy: &ProxyProtocolConfig,
    tls: &TlsContext,
) -> anyhow::Result<ServerConfig> {
    let mut server_config = ServerConfig::new(tls.clone());
    server_config.passive_ports = ftps.passive_port_range()?;
    server_config.advertised_address = ftps.advertised_address;
    server_config.require_session_resumption = ftps.require_session_resumption;
    server_config.limits = session_limits(ftps)?;
    server_config.proxy = proxy.policy();
    server_config.timeouts = Timeouts {
        tls_handshake: seconds(ftps.tls_handshake_timeout_secs),
        login: seconds(ftps.login_timeout_secs),
        idle: seconds(ftps.idle_timeout_secs),
        data_stall: seconds(ftps.data_stall_timeout_secs),
        session_lifetime: seconds(ftps.max_session_lifetime_secs.max(1)),
        ..Timeouts::default()
    };
    Ok(server_config)
}

/// The FTPS session limits of the config, clamped to what the open-file limit carries. As
/// many data connections as passive ports are wanted.
fn session_limits(ftps: &FtpsConfig) -> anyhow::Result<SessionLimits> {
    let passive = ftps.passive_port_range()?;
    let wanted = Capacity {
        sessions: ftps.max_sessions,
        data_connections: passive.len(),
    };
    let open_files =
        crate::limits::raise_open_file_limit().context("raising the open-file limit")?;
    let capacity = crate::limits::carried(open_files, wanted).with_context(|| {
        format!("the open-file limit ({open_files}) cannot carry a single FTPS session: raise it (ulimit -n, LimitNOFILE)")
    })?;
    let mut max_pre_login = ftps.max_pre_login_sessions.min(capacity.sessions);
    if capacity != wanted {
        tracing::error!(
            open_files,
            configured_sessions = wanted.sessions,
            sessions = capacity.sessions,
            passive_ports = wanted.data_connections,
            data_connections = capacity.data_connections,
            "the open-file limit cannot carry [ftps] max_sessions and a transfer on every passive port: clamped; raise the limit (ulimit -n, LimitNOFILE) or lower max_sessions"
        );
        // At most the defaults' share, a quarter of the sessions carried.
        max_pre_login = max_pre_login.min(capacity.sessions / 4).max(1);
    }
    Ok(SessionLimits {
        max_sessions: capacity.sessions,
        max_sessions_per_ip: ftps.max_sessions_per_ip,
        max_sessions_per_user: ftps.max_sessions_per_user,
        max_pre_login,
        connection_rate_per_ip: ConnectionRate {
            per_second: ftps.connection_rate_per_ip,
            burst: ftps.connection_burst_per_ip.max(1.0),
        },
        max_data_connections: capacity.data_connections,
    })
}

/// Bounds the store's write-ahead log every `every`, until `shutdown`.
async fn run_checkpoints<S: Store>(
    operations: Arc<Operations<S>>,
    every: Duration,
    shutdown: watch::Receiver<bool>,
) {
    mftgw_core::periodic::every(every, shutdown, || async {
        if let Err(error) = operations.checkpoint().await {
            tracing::warn!(%error, "store checkpoint failed");
        }
    })
    .await;
}

/// Where to reach an HTTP(S) peer, from its configuration.
fn http_target<'a>(
    url: &'a str,
    ca_file: &'a Option<PathBuf>,
    client_certificate: &'a Option<PathBuf>,
    client_key: &'a Option<PathBuf>,
) -> anyhow::Result<HttpTarget<'a>> {
    let client_identity = match (client_certificate, client_key) {
        (Some(chain), Some(key)) => Some((chain.as_path(), key.as_path())),
        (None, None) => None,
        _ => anyhow::bail!("set both client_certificate and client_key, or neither"),
    };
    Ok(HttpTarget {
        url,
        ca_file: ca_file.as_deref(),
        client_identity,
    })
}

/// The role source of the config, if it has one.
fn role_source(config: &Config) -> anyhow::Result<Option<Box<dyn RoleFeed>>> {
    let source: Box<dyn RoleFeed> = match &config.roles.source {
        None => return Ok(None),
        Some(RoleSourceConfig::File { path }) => Box::new(RoleFile { path: path.clone() }),
        Some(RoleSourceConfig::Http {
            url,
            ca_file,
            client_certificate,
            client_key,
        }) => http_target(url, ca_file, client_certificate, client_key)
            .and_then(|target| HttpRoleFeed::new(&target))
            .map(|feed| Box::new(feed) as Box<dyn RoleFeed>)
            .context("role source")?,
    };
    Ok(Some(source))
}

/// The backends that may use the backend API: those with a token or a client certificate.
fn api_backends(config: &Config) -> Vec<ApiBackend> {
    config
        .delivery
        .backends
        .iter()
        .filter(|backend| backend.api_token.is_some() || backend.api_client_certificate.is_some())
        .map(|backend| ApiBackend {
            name: backend.name.clone(),
            token: backend.api_token.clone(),
            client_fingerprint: backend
                .api_client_certificate
                .as_ref()
                .map(|fingerprint| fingerprint.replace(':', "").to_ascii_lowercase()),
            services: backend.services.iter().cloned().collect(),
        })
        .collect()
}

/// The API's TLS: the gateway's server certificate; backends prove who they are with a
/// client certificate chaining to `[api] client_ca` (when set) or with their tokens.
fn api_tls(config: &Config) -> anyhow::Result<rustls::ServerConfig> {
    let builder = rustls::ServerConfig::builder();
    let builder = match &config.api.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("reading {}", ca.display()))?
            {
                roots.add(cert?)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    Ok(builder.with_single_cert(server_chain(config)?, server_key(config)?)?)
}

/// The EMCS endpoint's TLS: the gateway's server certificate, no client certificate (the
/// caller is the signer of each message).
fn emcs_tls(config: &Config) -> anyhow::Result<rustls::ServerConfig> {
    let mut tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(server_chain(config)?, server_key(config)?)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

/// The EMCS gateway's credentials, issuing CAs and rules, from `[emcs]`.
fn emcs_settings(emcs: &EmcsConfig) -> anyhow::Result<EmcsSettings> {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let certificate = CertificateDer::from_pem_slice(read(&emcs.wss_certificate)?.as_bytes())
        .with_context(|| format!("[emcs] wss_certificate {}", emcs.wss_certificate.display()))?;
    let credentials = Credentials::from_pem(&certificate, &read(&emcs.wss_private_key)?)
        .with_context(|| format!("[emcs] wss_private_key {}", emcs.wss_private_key.display()))?;
    let mut issuing_cas = Vec::new();
    for path in &emcs.issuing_cas {
        for certificate in CertificateDer::pem_file_iter(path)
            .with_context(|| format!("reading {}", path.display()))?
        {
            issuing_cas.push(
                certificate.with_context(|| format!("[emcs] issuing_cas {}", path.display()))?,
            );
        }
    }
    Ok(EmcsSettings {
        credentials,
        issuing_cas,
        policy: Policy {
            max_timestamp_window: seconds(emcs.max_timestamp_window_secs),
            clock_skew: seconds(emcs.clock_skew_secs),
            ..Policy::default()
        },
        spacing: CallSpacing::new(SpacingRules {
            submit: seconds(emcs.submit_spacing_secs),
            receive: seconds(emcs.receive_spacing_secs),
        }),
        answer_timeout: seconds(emcs.answer_timeout_secs.max(1)),
        operators: {
            let operators = emcs.operators();
            if operators.is_empty() {
                tracing::warn!("[emcs] lists no operators: errors 301 and 302 are not checked");
            }
            operators
        },
    })
}

/// The portal's TLS: the gateway's server certificate; a client certificate is required and
/// verified against the FTPS trust roots without the CRLs (SPEC §1: a revoked certificate may
/// register; FTPS refuses it).
fn portal_tls(config: &Config, trust: &TrustStore) -> anyhow::Result<rustls::ServerConfig> {
    let verifier = trust
        .verifier_without_revocation()
        .context("building the portal's client-certificate verifier")?;
    let mut tls = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(server_chain(config)?, server_key(config)?)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

fn server_chain(config: &Config) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(&config.tls.certificate_chain)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading {}", config.tls.certificate_chain.display()))
}

fn server_key(config: &Config) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(&config.tls.private_key)
        .with_context(|| format!("reading {}", config.tls.private_key.display()))
}

/// The connectors of the configured backends, by service, after the built-in heartbeat.
fn backends(config: &Config, catalogue: &ServiceCatalogue) -> anyhow::Result<Backends> {
    let mut backends = Backends::new();
    for backend in &config.delivery.backends {
        let connector: Arc<dyn mftgw_core::delivery::Connector> = match &backend.connector {
            ConnectorConfig::Spool { directory } => Arc::new(Spool::new(directory.clone())),
            ConnectorConfig::Http {
                url,
                ca_file,
                client_certificate,
                client_key,
            } => {
                let target = http_target(url, ca_file, client_certificate, client_key)
                    .and_then(|target| HttpPush::new(&target))
                    .with_context(|| format!("backend {}", backend.name))?;
                Arc::new(target)
            }
            ConnectorConfig::Simulated { behaviour } => Arc::new(Simulated::new(behaviour.clone())),
        };
        for service in &backend.services {
            anyhow::ensure!(
                catalogue.contains(service.as_str()),
                "backend {}: service {service:?} is not in the service catalogue",
                backend.name
            );
            anyhow::ensure!(
                backends.add(service, Arc::clone(&connector)),
                "backend {}: service {service:?} already has a backend",
                backend.name
            );
        }
    }
    Ok(backends)
}

/// Re-reads the CRL files on a schedule and on SIGHUP, and counts up `reloaded` whenever that
/// changed them or a CRL went stale (live sessions are checked again then). A failed reload
/// keeps the CRLs in force.
async fn refresh_crls(
    trust: Arc<TrustStore>,
    every: Duration,
    mut hangup: Signal,
    reloaded: watch::Sender<u64>,
) {
    // The first tick is immediate: stale CRLs are reported at start-up too.
    let mut ticker = tokio::time::interval(every);
    let mut stale_before = 0;
    loop {
        let trigger = tokio::select! {
            _ = ticker.tick() => "schedule",
            _ = hangup.recv() => "SIGHUP",
        };
        let changed = match trust.reload_crls() {
            Ok(changed) => {
                tracing::debug!(trigger, changed, "CRLs reloaded");
                changed
            }
            Err(error) => {
                tracing::error!(%error, trigger, "CRL reload failed; previous CRLs stay in force");
                false
            }
        };
        let stale = trust.stale_crls(time::OffsetDateTime::now_utc());
        // A CRL going stale (or fresh again) changes the verifier's answers as a new one does.
        if changed || stale.len() != stale_before {
            reloaded.send_modify(|count| *count = count.wrapping_add(1));
        }
        stale_before = stale.len();
        for crl in stale {
            tracing::error!(
                issuer = %crl.issuer,
                path = %crl.path.display(),
                next_update = ?crl.next_update,
                "CRL is past its nextUpdate and the grace period: refresh it"
            );
        }
    }
}

/// Resolves at SIGINT or SIGTERM. The handlers are installed by this call, not when the
/// future is first polled: a signal that comes right after "FTPS listening" must not meet
/// the default action, which ends the process before it shuts down cleanly.
pub(crate) fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down");
    })
}
