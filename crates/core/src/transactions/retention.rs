//! The retention sweep: files in `/out` older than the retention are removed for good, and so
//! are the uploaded bodies of finished transactions (their records stay, so names stay used).
//! And the orphan sweep: blobs nothing refers to, left by uploads interrupted between their
//! body's end and their commit, on this node or any other.

use std::sync::Arc;
use std::time::Duration;

use mftgw_blobs::BlobStore;
use mftgw_store::Store;
use tokio::sync::watch;

use crate::periodic::Leadership;

use super::Transactions;

#[derive(Debug, Clone, Copy)]
pub struct RetentionPolicy {
    pub keep_for: Duration,
    pub sweep_every: Duration,
}

/// Sweeps every `sweep_every` while this node leads the job (`leadership`).
pub async fn run_retention<S: Store, B: BlobStore>(
    transactions: Arc<Transactions<S, B>>,
    policy: RetentionPolicy,
    leadership: Arc<dyn Leadership>,
    shutdown: watch::Receiver<bool>,
) {
    crate::periodic::every_led(
        "retention",
        &*leadership,
        policy.sweep_every,
        shutdown,
        || sweep(&transactions, policy),
    )
    .await;
}

async fn sweep<S: Store, B: BlobStore>(transactions: &Transactions<S, B>, policy: RetentionPolicy) {
    let Some(before) = transactions
        .now()
        .checked_sub(time::Duration::try_from(policy.keep_for).unwrap_or(time::Duration::MAX))
    else {
        return;
    };
    match transactions.store.expire(before).await {
        Ok(expired) => {
            for key in &expired.blob_keys {
                transactions.forget_blob(key).await;
            }
            if expired.out_files > 0 || !expired.blob_keys.is_empty() {
                tracing::info!(
                    out_files = expired.out_files,
                    blobs = expired.blob_keys.len(),
                    "retention removed expired files"
                );
            }
        }
        Err(error) => tracing::error!(%error, "retention sweep failed"),
    }
}

/// When the orphan sweep runs and what it may take.
#[derive(Debug, Clone, Copy)]
pub struct OrphanSweep {
    /// A blob finished less long ago may belong to an upload still on its way to its commit
    /// (on any node) and is left alone.
    pub older_than: Duration,
    pub sweep_every: Duration,
}

/// Deletes unreferenced blobs older than `sweep.older_than` every `sweep.sweep_every`, while
/// this node leads the job: on a shared bucket one node at a time lists it.
pub async fn run_orphan_sweep<S: Store, B: BlobStore>(
    transactions: Arc<Transactions<S, B>>,
    sweep: OrphanSweep,
    leadership: Arc<dyn Leadership>,
    shutdown: watch::Receiver<bool>,
) {
    crate::periodic::every_led(
        "orphan sweep",
        &*leadership,
        sweep.sweep_every,
        shutdown,
        || sweep_orphans(&transactions, sweep),
    )
    .await;
}

async fn sweep_orphans<S: Store, B: BlobStore>(
    transactions: &Transactions<S, B>,
    sweep: OrphanSweep,
) {
    let Some(before) = std::time::SystemTime::now().checked_sub(sweep.older_than) else {
        return;
    };
    match transactions.sweep_unreferenced_blobs(before).await {
        Ok(0) => {}
        Ok(swept) => tracing::info!(swept, "orphan sweep removed unreferenced blobs"),
        Err(error) => tracing::error!(error = format!("{error:#}"), "orphan sweep failed"),
    }
}
