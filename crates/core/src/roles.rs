//! Role replication from the central security system (SPEC §6): a source (an HTTP JSON
//! endpoint, with a client certificate if it wants one, or a file) is polled on a schedule,
//! and the replicated roles in the store become exactly what it lists. The store keeps the
//! last good copy: a poll that fails, or brings something unreadable, is logged and changes
//! nothing. Roles an operator granted locally are never touched.
//!
//! The source's document: `{"roles": [{"username": "CVR_…", "services": ["FATCA", …]}]}`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mftgw_domain::audit::AuditEvent;
use mftgw_domain::catalogue::ServiceCatalogue;
use mftgw_domain::{ServiceName, Username};
use mftgw_store::RoleStore;
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::BoxFuture;
use crate::audit::Auditor;

/// A role document larger than this is refused (and changes nothing): about a million
/// grants, far beyond any real user base.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024 * 1024;

/// Where replicated roles come from: something that hands over the whole role document.
/// The HTTP source lives with the binary's HTTP client; a file is built in.
pub trait RoleFeed: Send + Sync {
    /// The current document, at most [`MAX_DOCUMENT_BYTES`] long.
    fn fetch(&self) -> BoxFuture<'_, anyhow::Result<Vec<u8>>>;
}

/// A role document in a file, read whole at each poll.
pub struct RoleFile {
    pub path: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesDocument {
    roles: Vec<UserRoles>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserRoles {
    username: String,
    services: Vec<String>,
}

impl RoleFeed for RoleFile {
    fn fetch(&self) -> BoxFuture<'_, anyhow::Result<Vec<u8>>> {
        let path = &self.path;
        Box::pin(async move {
            let size = tokio::fs::metadata(path)
                .await
                .with_context(|| format!("reading {}", path.display()))?
                .len();
            anyhow::ensure!(
                size <= MAX_DOCUMENT_BYTES as u64,
                "{}: the role document is over {MAX_DOCUMENT_BYTES} bytes",
                path.display()
            );
            tokio::fs::read(path)
                .await
                .with_context(|| format!("reading {}", path.display()))
        })
    }
}

/// The (username, service) grants of a role document; services the catalogue does not know
/// are left out (and logged).
fn grants(
    document: &[u8],
    catalogue: &ServiceCatalogue,
) -> anyhow::Result<Vec<(Username, ServiceName)>> {
    let document: RolesDocument = serde_json::from_slice(document)
        .context("the role document is not in the expected shape")?;
    let mut grants = Vec::new();
    for user in document.roles {
        let Ok(username) = Username::parse(user.username.as_str()) else {
            tracing::warn!(username = %user.username, "replicated roles name no possible gateway user; skipped");
            continue;
        };
        for service in user.services {
            match catalogue.get(&service) {
                Some(known) => grants.push((username.clone(), known.name.clone())),
                None => {
                    tracing::warn!(%username, %service, "replicated role names an unknown service; skipped");
                }
            }
        }
    }
    Ok(grants)
}

/// Polls `source` every `every` (the first time at once) until `shutdown`, while this node
/// leads the job.
pub async fn run_replication<S: RoleStore>(
    store: Arc<S>,
    auditor: Arc<Auditor>,
    catalogue: Arc<ServiceCatalogue>,
    source: Box<dyn RoleFeed>,
    every: Duration,
    leadership: Arc<dyn crate::periodic::Leadership>,
    shutdown: watch::Receiver<bool>,
) {
    crate::periodic::every_led(
        "role_replication",
        &*leadership,
        every,
        shutdown,
        || async {
            if let Err(error) = replicate(&*store, &auditor, &catalogue, &*source).await {
                tracing::error!(
                    error = format!("{error:#}"),
                    "role replication failed; the last good roles stay in force"
                );
            }
        },
    )
    .await;
}

async fn replicate<S: RoleStore>(
    store: &S,
    auditor: &Auditor,
    catalogue: &ServiceCatalogue,
    source: &dyn RoleFeed,
) -> anyhow::Result<()> {
    let document = source.fetch().await?;
    let grants = grants(&document, catalogue)?;
    let outcome = store.replace_replicated_roles(&grants).await?;
    for username in &outcome.unknown_users {
        tracing::warn!(%username, "replicated roles name a user this gateway does not know");
    }
    if outcome.granted > 0 || outcome.revoked > 0 {
        tracing::info!(
            granted = outcome.granted,
            revoked = outcome.revoked,
            "roles replicated"
        );
        auditor
            .record(
                AuditEvent::info(OffsetDateTime::now_utc(), "roles.replicated").with_detail(
                    serde_json::json!({ "granted": outcome.granted, "revoked": outcome.revoked }),
                ),
            )
            .await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_become_grants_of_known_services() {
        let catalogue = ServiceCatalogue::builtin();
        let document = br#"{"roles": [
            {"username": "CVR_1_UID_1", "services": ["FATCA", "NO_SUCH_SERVICE"]},
            {"username": "CVR_2_UID_2", "services": []},
            {"username": "../CVR_3_UID_3", "services": ["FATCA"]}
        ]}"#;
        assert_eq!(
            grants(document, &catalogue).unwrap(),
            [("CVR_1_UID_1".parse().unwrap(), "FATCA".parse().unwrap())]
        );
        assert!(grants(b"{\"roles\": 3}", &catalogue).is_err());
        assert!(grants(b"<html>", &catalogue).is_err());
    }
}
