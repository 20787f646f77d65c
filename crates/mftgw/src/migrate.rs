//! `mftgw migrate --from <data dir> --to <config>`: an embedded installation (SQLite and
//! local files, stopped) copied into the PostgreSQL store and the blob store of another
//! configuration. Run again, it finishes a copy that stopped and copies nothing twice.
//! Every table's counts must agree afterwards, and every upload's body must have the
//! SHA-256 and size its transaction recorded.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use mftgw_blobs::{BlobKey, BlobStore, BlobWriter, LocalBlobStore, S3BlobStore};
use mftgw_domain::password::PasswordKey;
use mftgw_store::{PostgresStore, SqliteStore, TransactionLog, copy_embedded};

use crate::config::{Config, SelectedStore};

pub async fn migrate(from: &Path, to: &Path) -> anyhow::Result<()> {
    let target = Config::load(to)?;
    let SelectedStore::Postgres(url) = target.store.selected()? else {
        anyhow::bail!(
            "{} must name a PostgreSQL store ([store] database = \"postgres://…\")",
            to.display()
        );
    };
    let key_file = from.join("gateway-password.key");
    let embedded_key = std::fs::read_to_string(&key_file)
        .with_context(|| format!("reading {}", key_file.display()))?;
    let embedded_key = PasswordKey::from_hex(&embedded_key)
        .with_context(|| format!("{} is not 64 hex digits", key_file.display()))?;
    anyhow::ensure!(
        crate::secrets::password_key(&target)?.fingerprint() == embedded_key.fingerprint(),
        "{}'s [keys] must hold the embedded installation's password key ({}): its users' \
         gateway passwords are hashed with it",
        to.display(),
        key_file.display()
    );

    // The blob store's lock first: it refuses while the embedded gateway still runs.
    let blobs_path = from.join("files");
    let embedded_blobs = LocalBlobStore::open(&blobs_path).await.with_context(|| {
        format!(
            "opening {} (stop the embedded gateway first)",
            blobs_path.display()
        )
    })?;
    let embedded = SqliteStore::open(&from.join("mftgw.sqlite")).await?;
    let store = PostgresStore::connect(&url).await?;
    for table in copy_embedded(&embedded, &store).await? {
        println!(
            "{}",
            serde_json::json!({
                "table": table.table,
                "rows": table.source_rows,
                "copied_now": table.inserted,
            })
        );
    }
    let copied = match &target.blobs.s3 {
        Some(s3) => {
            let bucket = S3BlobStore::new(&s3.settings())?;
            copy_blobs(&embedded, &embedded_blobs, &bucket).await?
        }
        None => {
            let local = LocalBlobStore::open(&target.blobs_path()).await?;
            copy_blobs(&embedded, &embedded_blobs, &local).await?
        }
    };
    println!(
        "{}",
        serde_json::json!({ "blobs": copied.blobs, "verified_by_sha256": copied.verified })
    );
    Ok(())
}

struct CopiedBlobs {
    blobs: u64,
    verified: u64,
}

/// Copies every blob the embedded store refers to, each under its key, and checks each
/// upload's body against its transaction's SHA-256 and size.
async fn copy_blobs<B: BlobStore>(
    embedded: &SqliteStore,
    from: &LocalBlobStore,
    to: &B,
) -> anyhow::Result<CopiedBlobs> {
    let everything = SystemTime::now() + Duration::from_secs(24 * 60 * 60);
    let keys = from.finished_before(everything).await?;
    let referenced = embedded.referenced_blobs(&keys).await?;
    let recorded: HashMap<BlobKey, (mftgw_domain::Sha256, u64)> = embedded
        .transactions(None, u32::MAX)
        .await?
        .into_iter()
        .filter_map(|transaction| {
            let key = transaction.blob_key?;
            Some((key, (transaction.sha256, transaction.size)))
        })
        .collect();
    let mut copied = CopiedBlobs {
        blobs: 0,
        verified: 0,
    };
    for key in referenced {
        let mut content = from.open(&key, 0).await?;
        let mut writer = to.create_as(key.clone()).await?;
        tokio::io::copy(&mut content, &mut writer).await?;
        let info = writer.finish().await?;
        if let Some((sha256, size)) = recorded.get(&key) {
            anyhow::ensure!(
                info.sha256 == *sha256 && info.size == *size,
                "the blob {key} does not hold what its transaction recorded"
            );
            copied.verified += 1;
        }
        copied.blobs += 1;
    }
    Ok(copied)
}
