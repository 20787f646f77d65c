//! The command line: `serve` runs the gateway from a config file, `demo` runs it on a
//! generated test setup, and the other subcommands administer users, roles, transactions,
//! the audit log and test PKIs.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use mftgw_domain::catalogue::ServiceCatalogue;
use mftgw_testpki::{ClientProfile, TestPki};

use crate::config::Config;
use crate::{admin_cli, demo, serve, stores};

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
    #[command(flatten)]
    Admin(admin_cli::AdminCommand),
    /// The service catalogue: the config's (`[services] file`), else the built-in one.
    Services,
    /// Copy a stopped embedded installation (its data directory: SQLite and local files)
    /// into the PostgreSQL store and the blob store that `--to`'s configuration names. Run
    /// again, it finishes a copy that stopped; every table's counts and every upload's
    /// SHA-256 are checked.
    Migrate {
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        to: PathBuf,
    },
    /// Test PKI helpers (never for production certificates).
    #[command(subcommand)]
    Pki(PkiCommand),
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

/// Parses the command line and runs what it asks for.
pub fn main() -> anyhow::Result<()> {
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
        Command::Migrate { from, to } => crate::migrate::migrate(&from, &to).await,
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
        Command::Admin(command) => {
            let config = Config::load(&cli.config)?;
            stores::on_store(&config, admin_cli::Job::new(&config, command)).await
        }
    }
}
