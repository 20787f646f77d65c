//! `mftgw`: the FTPS gateway binary. `serve` runs it from a config file, `demo` runs it on a
//! generated test setup, and the other subcommands administer users, roles, transactions,
//! the audit log and test PKIs.

mod api;
mod config;
mod demo;
mod gateway;
mod http_client;
mod https;
mod limits;
mod portal;
mod serve;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mftgw_domain::catalogue::ServiceCatalogue;
use mftgw_domain::user::UserState;
use mftgw_oces::trust::TrustStore;
use mftgw_store::{AuditQuery, SqliteStore};
use mftgw_testpki::{ClientProfile, TestPki};

use crate::config::Config;
use std::sync::Arc;

use mftgw_core::transactions::Operations;
use mftgw_core::users::{Registrant, Registrar, Users};
use mftgw_core::{audit, keys};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Managed file transfer gateway (explicit FTPS with OCES certificates)"
)]
struct Cli {
    /// The gateway configuration (TOML).
    #[arg(
        long,
        global = true,
        env = "MFTGW_CONFIG",
        default_value = "mftgw.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway from the config file.
    Serve,
    /// Run the gateway on a generated demo setup (test PKI, SQLite, demo users).
    Demo(demo::DemoArgs),
    /// Users: register certificates, list, suspend, activate.
    #[command(subcommand)]
    User(UserCommand),
    /// Roles: which services a user sees.
    #[command(subcommand)]
    Role(RoleCommand),
    /// The Certificate Portal's accounts.
    #[command(subcommand)]
    Portal(PortalCommand),
    /// The service catalogue: the config's (`[services] file`), else the built-in one.
    Services,
    /// Print audit log entries as JSON lines, oldest first.
    Audit {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        action: Option<String>,
        /// Only entries after this id.
        #[arg(long)]
        since: Option<i64>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Outstanding deliveries: list them, or retry one now.
    #[command(subcommand)]
    Deliveries(DeliveriesCommand),
    /// Print transactions as JSON lines, newest first.
    Transactions {
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Test PKI helpers (never for production certificates).
    #[command(subcommand)]
    Pki(PkiCommand),
}

#[derive(Debug, Subcommand)]
enum DeliveriesCommand {
    /// Print outstanding work as JSON lines, oldest first: attempts, next try, last error.
    List {
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Try the delivery of this transaction again now rather than at its next scheduled try.
    Retry { skat_transaction_id: String },
    /// Deliver a transaction its backend has already taken once more (no status changes).
    Replay { skat_transaction_id: String },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Register a certificate (PEM): creates the user and prints its gateway password, or
    /// renews the user's certificate and keeps the password.
    Register {
        #[arg(long)]
        cert: PathBuf,
        /// Seconds until the login works (default: the config's activation delay).
        #[arg(long)]
        activation_delay_secs: Option<u64>,
    },
    List,
    Suspend {
        username: String,
    },
    Activate {
        username: String,
    },
    /// Delete the user: every login and session ends; transactions are kept.
    Delete {
        username: String,
    },
}

#[derive(Debug, Subcommand)]
enum PortalCommand {
    /// Issue a one-time first portal password for USERNAME (with `[portal] first_password =
    /// "operator_code"`): valid until used or `first_code_valid_secs` have passed.
    Code { username: String },
}

#[derive(Debug, Subcommand)]
enum RoleCommand {
    Grant { username: String, service: String },
    Revoke { username: String, service: String },
    List { username: String },
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// Generate a complete test PKI into DIR.
    Generate { dir: PathBuf },
    /// Revoke client NAME of the test PKI in DIR and rewrite its CRL.
    Revoke { dir: PathBuf, name: String },
    /// Issue another client certificate NAME from the test PKI in DIR (PEM, key, .p12).
    Issue {
        dir: PathBuf,
        name: String,
        #[arg(long, value_enum)]
        kind: TestCertificateKind,
        /// The company's CVR number (8 digits); not used for personal certificates.
        #[arg(long, default_value = "")]
        cvr: String,
        /// UID, RID, FID or PID number, or the OCES3 UUID.
        #[arg(long)]
        id: String,
        /// Valid for only this many seconds from now (default: two years).
        #[arg(long)]
        valid_secs: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TestCertificateKind {
    Voces,
    Moces,
    Foces,
    Personal,
    Oces3Organisation,
    Oces3Employee,
}

impl TestCertificateKind {
    fn profile(self, cvr: String, id: String) -> ClientProfile {
        match self {
            TestCertificateKind::Voces => ClientProfile::Voces { cvr, uid: id },
            TestCertificateKind::Moces => ClientProfile::Moces { cvr, rid: id },
            TestCertificateKind::Foces => ClientProfile::Foces { cvr, fid: id },
            TestCertificateKind::Personal => ClientProfile::Personal { pid: id },
            TestCertificateKind::Oces3Organisation => {
                ClientProfile::Oces3Organisation { cvr, uuid: id }
            }
            TestCertificateKind::Oces3Employee => ClientProfile::Oces3Employee { cvr, uuid: id },
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MFTGW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("MFTGW_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(args).await,
        Command::Serve => serve::serve(Config::load(&cli.config)?).await,
        Command::Services => {
            // Without a config file, the catalogue a gateway would have without one.
            let catalogue = if cli.config.exists() {
                Config::load(&cli.config)?.catalogue()?
            } else {
                ServiceCatalogue::builtin()
            };
            for service in catalogue.services() {
                println!("{}\t{}", service.system, service.name);
            }
            Ok(())
        }
        Command::Pki(PkiCommand::Generate { dir }) => {
            let pki = TestPki::generate(&dir)?;
            println!("test PKI written to {}", pki.dir().display());
            Ok(())
        }
        Command::Pki(PkiCommand::Issue {
            dir,
            name,
            kind,
            cvr,
            id,
            valid_secs,
        }) => {
            let mut pki = TestPki::load(&dir)?;
            let mut spec = mftgw_testpki::ClientSpec::new(kind.profile(cvr, id));
            if let Some(secs) = valid_secs {
                let until = time::OffsetDateTime::now_utc() + Duration::from_secs(secs);
                spec = spec.validity(mftgw_testpki::Validity::Until(until));
            }
            let issued = pki.issue_client_with(&name, spec)?;
            println!("certificate: {}", issued.cert_pem.display());
            println!("key: {}", issued.key_pem.display());
            println!(
                "p12: {} (password {})",
                issued.p12.display(),
                issued.p12_password
            );
            Ok(())
        }
        Command::Pki(PkiCommand::Revoke { dir, name }) => {
            TestPki::load(&dir)?.revoke(&name)?;
            println!("{name} revoked; send SIGHUP to a running gateway to reload its CRLs");
            Ok(())
        }
        Command::User(command) => {
            let config = Config::load(&cli.config)?;
            let operator = Operator::open(&config).await?;
            let done = user_command(&config, &operator, command).await;
            operator.finish(done).await
        }
        Command::Role(command) => {
            let config = Config::load(&cli.config)?;
            let operator = Operator::open(&config).await?;
            let done = role_command(&operator, command).await;
            operator.finish(done).await
        }
        Command::Portal(PortalCommand::Code { username }) => {
            let config = Config::load(&cli.config)?;
            let operator = Operator::open(&config).await?;
            let done = print_portal_code(&config, &operator, &username).await;
            operator.finish(done).await
        }
        Command::Deliveries(command) => {
            let config = Config::load(&cli.config)?;
            let operator = Operator::open(&config).await?;
            let done = deliveries_command(&operator, command).await;
            operator.finish(done).await
        }
        Command::Transactions { user, limit } => {
            let config = Config::load(&cli.config)?;
            let operator = Operator::open(&config).await?;
            let transactions = &operator.operations;
            for transaction in transactions.recent(user.as_deref(), limit).await? {
                let history = transactions.history(&transaction).await?;
                let mut line = mftgw_core::transactions::transaction_json(&transaction, &history);
                // Operators also see where the body is kept.
                line["blob_key"] = serde_json::json!(transaction.blob_key);
                line["blob_path"] =
                    serde_json::json!(transaction.blob_key.as_ref().and_then(|key| {
                        mftgw_blobs::LocalBlobStore::blob_path(&config.blobs_path(), key).ok()
                    }));
                println!("{line}");
            }
            Ok(())
        }
        Command::Audit {
            user,
            action,
            since,
            limit,
        } => {
            let config = Config::load(&cli.config)?;
            let operator = Operator::open(&config).await?;
            let query = AuditQuery {
                username: user,
                action,
                since_id: since,
                before: None,
                limit,
            };
            for (id, event) in operator.operations.audit_events(query).await? {
                println!("{}", audit::event_json(id, &event));
            }
            Ok(())
        }
    }
}

/// What an operator's command acts through: the core's services over the configured store,
/// and the auditor that records what they do.
struct Operator {
    operations: Operations<SqliteStore>,
    users: Users<SqliteStore>,
    auditor: Arc<audit::Auditor>,
}

impl Operator {
    async fn open(config: &Config) -> anyhow::Result<Operator> {
        let store = Arc::new(SqliteStore::open(&config.database_path()).await?);
        let auditor = audit::Auditor::start(Arc::clone(&store), config.audit.settings());
        Ok(Operator {
            operations: Operations::standalone(Arc::clone(&store), Arc::clone(&auditor)),
            users: Users::new(store, Arc::clone(&auditor), Arc::new(config.catalogue()?)),
            auditor,
        })
    }

    /// Waits until the command's audit records are written.
    async fn finish(self, done: anyhow::Result<()>) -> anyhow::Result<()> {
        self.auditor.drain().await;
        done
    }
}

async fn deliveries_command(operator: &Operator, command: DeliveriesCommand) -> anyhow::Result<()> {
    let operations = &operator.operations;
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    match command {
        DeliveriesCommand::List { limit } => {
            for item in operations.pending_deliveries(limit).await? {
                let transaction = &item.transaction;
                let line = serde_json::json!({
                    "skat_transaction_id": transaction.skat_transaction_id,
                    "username": transaction.username,
                    "service": transaction.service,
                    "ftp_transaction_id": transaction.ftp_transaction_id,
                    "state": transaction.state.as_str(),
                    "attempts": item.attempts,
                    "due_at": item.due_at.format(rfc3339)?,
                    "last_error": item.last_error,
                    "received_at": transaction.received_at.format(rfc3339)?,
                });
                println!("{line}");
            }
            Ok(())
        }
        DeliveriesCommand::Retry {
            skat_transaction_id,
        } => {
            operations.retry_delivery(&skat_transaction_id).await?;
            println!("delivery of {skat_transaction_id} is due now");
            Ok(())
        }
        DeliveriesCommand::Replay {
            skat_transaction_id,
        } => {
            operations.replay_delivery(&skat_transaction_id).await?;
            println!("{skat_transaction_id} will be delivered again");
            Ok(())
        }
    }
}

async fn user_command(
    config: &Config,
    operator: &Operator,
    command: UserCommand,
) -> anyhow::Result<()> {
    let users = &operator.users;
    match command {
        UserCommand::Register {
            cert,
            activation_delay_secs,
        } => {
            let key = keys::load_or_create_password_key(&config.password_key_path())?;
            let pem =
                std::fs::read(&cert).with_context(|| format!("reading {}", cert.display()))?;
            let der = rustls::pki_types::pem::PemObject::from_pem_slice(&pem)
                .map(|c: rustls_pki_types::CertificateDer<'static>| c.to_vec())
                .with_context(|| format!("{} holds no PEM certificate", cert.display()))?;
            let delay = activation_delay_secs.unwrap_or(config.registration.activation_delay_secs);
            let trust = TrustStore::load(
                &config.tls.trusted_roots,
                &config.tls.crls,
                config.tls.crl_policy(),
            )?;
            let registration = users
                .register_certificate(
                    &Registrant {
                        key: &key,
                        trust: &trust,
                        activation_delay: config::seconds(delay),
                        registrar: Registrar::Operator,
                    },
                    &der,
                )
                .await?;
            match (registration.password, registration.renewed) {
                (Some(password), false) => println!(
                    "registered {}\ngateway password: {password}",
                    registration.username
                ),
                (Some(password), true) => println!(
                    "renewed {}: the replaced certificate was revoked, so the gateway password changed\ngateway password: {password}",
                    registration.username
                ),
                (None, _) => println!(
                    "renewed {}: the gateway password is unchanged",
                    registration.username
                ),
            }
            if config.portal.first_password == portal::FirstPassword::OperatorCode {
                print_portal_code(config, operator, &registration.username).await?;
            }
        }
        UserCommand::List => {
            let now = time::OffsetDateTime::now_utc();
            for user in users.list().await? {
                let roles = users.roles(&user.username).await?;
                println!(
                    "{}\t{}\t{}\t{}",
                    user.username,
                    user.kind,
                    user.effective_state(now),
                    roles.join(",")
                );
            }
        }
        UserCommand::Suspend { username } => {
            users.set_state(&username, UserState::Suspended).await?;
            println!("{username} suspended");
        }
        UserCommand::Activate { username } => {
            users.set_state(&username, UserState::Active).await?;
            println!("{username} active");
        }
        UserCommand::Delete { username } => {
            users.set_state(&username, UserState::Deleted).await?;
            println!("{username} deleted");
        }
    }
    Ok(())
}

/// Issues a one-time first portal password and prints it.
async fn print_portal_code(
    config: &Config,
    operator: &Operator,
    username: &str,
) -> anyhow::Result<()> {
    let valid_for = config::seconds(config.portal.first_code_valid_secs);
    let code = operator
        .users
        .issue_portal_code(username, valid_for)
        .await?;
    println!(
        "first portal password of {username}: {code} (valid for {} hours, until the first login)",
        valid_for.as_secs() / 3600
    );
    Ok(())
}

async fn role_command(operator: &Operator, command: RoleCommand) -> anyhow::Result<()> {
    let users = &operator.users;
    match command {
        RoleCommand::Grant { username, service } => {
            users.grant_role(&username, &service).await?;
            println!("{username} may use {service}");
        }
        RoleCommand::Revoke { username, service } => {
            users.revoke_role(&username, &service).await?;
            println!("{username} no longer holds a local role for {service}");
        }
        RoleCommand::List { username } => {
            for service in users.roles(&username).await? {
                println!("{service}");
            }
        }
    }
    Ok(())
}
