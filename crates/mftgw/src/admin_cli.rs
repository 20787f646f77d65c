//! The operators' commands: users, roles, first portal passwords, deliveries, transactions
//! and the audit log, run against the configured store through the core's services and
//! audited like the admin API. They work beside a running gateway (they never open the blob
//! store, which the gateway holds).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use mftgw_domain::user::UserState;
use mftgw_domain::{ServiceName, SkatTransactionId, Username};
use mftgw_oces::trust::TrustStore;
use mftgw_store::{AuditQuery, Store};

use crate::config::{self, Config};
use crate::stores::OnStore;
use crate::user_import;
use mftgw_core::audit;
use mftgw_core::transactions::Operations;
use mftgw_core::users::{Registrant, Registrar, RegistrationError, Users};
use mftgw_domain::password::PasswordKey;

/// The operators' commands, flattened into the binary's own.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Users: register certificates, list, suspend, activate.
    #[command(subcommand)]
    User(UserCommand),
    /// Roles: which services a user sees.
    #[command(subcommand)]
    Role(RoleCommand),
    /// The Certificate Portal's accounts.
    #[command(subcommand)]
    Portal(PortalCommand),
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
        user: Option<Username>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// Print outstanding work as JSON lines, oldest first: attempts, next try, last error.
    List {
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Try the delivery of this transaction again now rather than at its next scheduled try.
    Retry {
        skat_transaction_id: SkatTransactionId,
    },
    /// Deliver a transaction its backend has already taken once more (no status changes).
    Replay {
        skat_transaction_id: SkatTransactionId,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Register a certificate (PEM): creates the user and prints its gateway password, or
    /// renews the user's certificate and keeps the password.
    Register {
        #[arg(long)]
        cert: PathBuf,
        /// Seconds until the login works (default: the config's activation delay).
        #[arg(long)]
        activation_delay_secs: Option<u64>,
    },
    /// Register the users of a file moved from another installation (CSV or JSON lines of
    /// certificates with their gateway usernames and roles; see the README): each line is
    /// registered whole or not at all, and importing again changes only what is new. Exits
    /// non-zero if any line was refused.
    Import {
        file: PathBuf,
        /// Seconds until the logins work (default: at once, as they did before the move).
        #[arg(long, default_value_t = 0)]
        activation_delay_secs: u64,
    },
    List,
    Suspend {
        username: Username,
    },
    Activate {
        username: Username,
    },
    /// Delete the user: every login and session ends; transactions are kept.
    Delete {
        username: Username,
    },
}

#[derive(Debug, Subcommand)]
pub enum PortalCommand {
    /// Issue a one-time first portal password for USERNAME (with `[portal] first_password =
    /// "operator_code"`): valid until used or `first_code_valid_secs` have passed.
    Code { username: Username },
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    Grant {
        username: Username,
        service: ServiceName,
    },
    Revoke {
        username: Username,
        service: ServiceName,
    },
    List {
        username: Username,
    },
}

/// An operator's command with the configuration it runs under.
pub struct Job<'a> {
    config: &'a Config,
    command: AdminCommand,
}

impl<'a> Job<'a> {
    pub fn new(config: &'a Config, command: AdminCommand) -> Self {
        Self { config, command }
    }
}

impl OnStore for Job<'_> {
    type Output = ();

    async fn run<S: Store>(self, store: Arc<S>) -> anyhow::Result<()> {
        let Job { config, command } = self;
        let operator = Operator::new(config, store)?;
        let done = match command {
            AdminCommand::User(command) => user_command(config, &operator, command).await,
            AdminCommand::Role(command) => role_command(&operator, command).await,
            AdminCommand::Portal(PortalCommand::Code { username }) => {
                print_portal_code(config, &operator, &username).await
            }
            AdminCommand::Deliveries(command) => deliveries_command(&operator, command).await,
            AdminCommand::Transactions { user, limit } => {
                print_transactions(config, &operator, user.as_ref(), limit).await
            }
            AdminCommand::Audit {
                user,
                action,
                since,
                limit,
            } => {
                let query = AuditQuery {
                    username: user,
                    action,
                    since_id: since,
                    before: None,
                    limit,
                };
                print_audit(&operator, query).await
            }
        };
        operator.finish(done).await
    }
}

/// What an operator's command acts through: the core's services over the configured store,
/// and the auditor that records what they do.
struct Operator<S> {
    operations: Operations<S>,
    users: Users<S>,
    auditor: Arc<audit::Auditor>,
}

impl<S: Store> Operator<S> {
    fn new(config: &Config, store: Arc<S>) -> anyhow::Result<Operator<S>> {
        let auditor = audit::Auditor::start(
            Arc::clone(&store),
            config.audit.settings(&config.transactions.node_id),
        );
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

async fn deliveries_command<S: Store>(
    operator: &Operator<S>,
    command: DeliveriesCommand,
) -> anyhow::Result<()> {
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

async fn user_command<S: Store>(
    config: &Config,
    operator: &Operator<S>,
    command: UserCommand,
) -> anyhow::Result<()> {
    let users = &operator.users;
    match command {
        UserCommand::Register {
            cert,
            activation_delay_secs,
        } => {
            let pem =
                std::fs::read(&cert).with_context(|| format!("reading {}", cert.display()))?;
            let der = rustls::pki_types::pem::PemObject::from_pem_slice(&pem)
                .map(|c: rustls_pki_types::CertificateDer<'static>| c.to_vec())
                .with_context(|| format!("{} holds no PEM certificate", cert.display()))?;
            let delay = activation_delay_secs.unwrap_or(config.registration.activation_delay_secs);
            let registering = Registering::load(config)?;
            let registration = users
                .register_certificate(&registering.registrant(delay, Registrar::Operator), &der)
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
            if config.portal.first_password == crate::portal::FirstPassword::OperatorCode {
                print_portal_code(config, operator, &registration.username).await?;
            }
        }
        UserCommand::Import {
            file,
            activation_delay_secs,
        } => {
            import_users(config, users, &file, activation_delay_secs).await?;
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
                    roles
                        .iter()
                        .map(ServiceName::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
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

/// What a registration needs from the configuration: the password key and the trust store.
struct Registering {
    key: PasswordKey,
    trust: Arc<TrustStore>,
}

impl Registering {
    fn load(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            key: crate::secrets::password_key(config)?,
            trust: TrustStore::load(
                &config.tls.trusted_roots,
                &config.tls.crls,
                config.tls.crl_policy(),
            )?,
        })
    }

    fn registrant(&self, activation_delay_secs: u64, registrar: Registrar) -> Registrant<'_> {
        Registrant {
            key: &self.key,
            trust: &self.trust,
            activation_delay: config::seconds(activation_delay_secs),
            registrar,
        }
    }
}

/// Registers every user `file` names, printing each line's outcome and then a summary; fails
/// if a line was refused, or stops at the first line the store could not take (the lines
/// before it are imported: running the import again finishes it).
async fn import_users<S: Store>(
    config: &Config,
    users: &Users<S>,
    file: &std::path::Path,
    activation_delay_secs: u64,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let lines = user_import::read(&text).with_context(|| format!("{}", file.display()))?;
    let registering = Registering::load(config)?;
    let registrant = registering.registrant(activation_delay_secs, Registrar::Import);
    let (mut registered, mut renewed, mut unchanged, mut refused) = (0, 0, 0, 0);
    for line in &lines {
        let number = line.number;
        let outcome = match &line.certificate {
            Ok(imported) => users.import_certificate(&registrant, imported).await,
            Err(reason) => Err(RegistrationError::Refused(reason.clone())),
        };
        let registration = match outcome {
            Ok(registration) => registration,
            Err(RegistrationError::Refused(reason)) => {
                refused += 1;
                println!("line {number}: refused: {reason}");
                continue;
            }
            Err(RegistrationError::Store(error)) => {
                return Err(anyhow::anyhow!(
                    "line {number}: the store failed ({error}); the lines before it are imported, and importing the file again finishes the job"
                ));
            }
        };
        let what = if registration.unchanged {
            unchanged += 1;
            "already registered"
        } else if registration.renewed {
            renewed += 1;
            "renewed"
        } else {
            registered += 1;
            "registered"
        };
        let roles = if registration.roles_granted.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = registration
                .roles_granted
                .iter()
                .map(ServiceName::as_str)
                .collect();
            format!(", granted {}", names.join(", "))
        };
        println!("line {number}: {what} {}{roles}", registration.username);
    }
    println!(
        "{} lines: {registered} registered, {renewed} renewed, {unchanged} already registered, {refused} refused",
        lines.len()
    );
    if refused > 0 {
        anyhow::bail!(
            "{refused} of {} lines refused; nothing of them was stored",
            lines.len()
        );
    }
    Ok(())
}

/// Issues a one-time first portal password and prints it.
async fn print_portal_code<S: Store>(
    config: &Config,
    operator: &Operator<S>,
    username: &Username,
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

async fn role_command<S: Store>(
    operator: &Operator<S>,
    command: RoleCommand,
) -> anyhow::Result<()> {
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

async fn print_transactions<S: Store>(
    config: &Config,
    operator: &Operator<S>,
    user: Option<&Username>,
    limit: u32,
) -> anyhow::Result<()> {
    let transactions = &operator.operations;
    for transaction in transactions.recent(user, limit).await? {
        let history = transactions.history(&transaction).await?;
        let mut line = mftgw_core::transactions::transaction_json(&transaction, &history);
        // Operators also see where the body is kept.
        line["blob_key"] = serde_json::json!(transaction.blob_key);
        line["blob_path"] = serde_json::json!(
            transaction
                .blob_key
                .as_ref()
                .map(|key| config.blob_location(key))
        );
        println!("{line}");
    }
    Ok(())
}

async fn print_audit<S: Store>(operator: &Operator<S>, query: AuditQuery) -> anyhow::Result<()> {
    for (id, event) in operator.operations.audit_events(query).await? {
        println!("{}", audit::event_json(id, &event));
    }
    Ok(())
}
