//! The retention sweep: files in `/out` older than the retention are removed for good, and so
//! are the uploaded bodies of finished transactions (their records stay, so names stay used).

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
