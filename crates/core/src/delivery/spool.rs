//! The spool connector: each transaction becomes two files in a directory that the backend
//! watches: `<SKATTransactionId>.meta.json` with the metadata, then `<SKATTransactionId>`
//! with the body. Each is written under a temporary name, fsynced and renamed, the body last,
//! so a file that appears is complete; delivering again rewrites the same names.

use std::path::{Path, PathBuf};

use crate::BoxFuture;
use mftgw_domain::Transaction;
use tokio::io::AsyncWriteExt;

use super::connector::{Answer, Connector, DeliveryError, DeliveryFailure, Parcel};

pub struct Spool {
    directory: PathBuf,
}

impl Spool {
    pub fn new(directory: PathBuf) -> Self {
        Self { directory }
    }

    async fn write(&self, mut parcel: Parcel<'_>) -> std::io::Result<()> {
        let transaction = parcel.transaction;
        tokio::fs::create_dir_all(&self.directory).await?;
        let key = transaction.skat_transaction_id.as_str();
        let meta = serde_json::to_vec_pretty(&metadata(transaction))?;
        let meta_path = self.directory.join(format!("{key}.meta.json"));
        let body_path = self.directory.join(key);
        let meta_temp = self.directory.join(format!(".{key}.meta.json.part"));
        let body_temp = self.directory.join(format!(".{key}.part"));

        let mut file = tokio::fs::File::create(&body_temp).await?;
        tokio::io::copy(&mut parcel.body, &mut file).await?;
        file.sync_all().await?;
        let mut file = tokio::fs::File::create(&meta_temp).await?;
        file.write_all(&meta).await?;
        file.sync_all().await?;
        tokio::fs::rename(&meta_temp, &meta_path).await?;
        tokio::fs::rename(&body_temp, &body_path).await?;
        sync_directory(&self.directory).await
    }
}

/// What the backend learns about a transaction besides its body.
pub fn metadata(transaction: &Transaction) -> serde_json::Value {
    serde_json::json!({
        "skat_transaction_id": transaction.skat_transaction_id,
        "ftp_transaction_id": transaction.ftp_transaction_id,
        "user": transaction.username,
        "cvr": transaction.cvr,
        "service": transaction.service,
        "size": transaction.size,
        "sha256": transaction.sha256,
        "transfer_type": transaction.transfer_type.to_string(),
        "received_at": transaction
            .received_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    })
}

async fn sync_directory(directory: &Path) -> std::io::Result<()> {
    let directory = directory.to_owned();
    tokio::task::spawn_blocking(move || std::fs::File::open(directory)?.sync_all())
        .await
        .map_err(std::io::Error::other)?
}

impl Connector for Spool {
    fn deliver<'a>(&'a self, parcel: Parcel<'a>) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            self.write(parcel).await.map_err(|error| {
                DeliveryError::new(
                    DeliveryFailure::Gateway,
                    format!("spool {}: {error}", self.directory.display()),
                )
            })
        })
    }

    fn answers_on_its_own(&self) -> bool {
        false
    }

    fn answers(&self, _transaction: &Transaction) -> Vec<Answer> {
        Vec::new()
    }
}
