//! Mailboxes (each a `/out`): the files transactions' steps, backends' answers and outbound
//! posts put there, read and deleted by their users. Which mailbox a session sees is its
//! adapter's choice (today each gateway user's own).

use mftgw_blobs::BlobStore;
use mftgw_domain::{Mailbox, ServiceName, Username};
use mftgw_store::{OutContent, OutFileEntry, Store, StoreError};
use tokio::io::AsyncRead;

use super::Transactions;

/// A mailbox file's content, from some offset on.
pub type MailboxReader = Box<dyn AsyncRead + Send + Unpin>;

/// Why a mailbox file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file is listed, but its body could not be opened.
    #[error("the body of {name} cannot be opened: {source}")]
    Body {
        name: String,
        source: std::io::Error,
    },
}

impl<S: Store, B: BlobStore> Transactions<S, B> {
    /// The files in `mailbox`, in the order they appeared.
    pub async fn mailbox(&self, mailbox: &Mailbox) -> Result<Vec<OutFileEntry>, StoreError> {
        self.store.out_files(mailbox).await
    }

    /// One file of `mailbox`, if it is there.
    pub async fn mailbox_entry(
        &self,
        mailbox: &Mailbox,
        name: &str,
    ) -> Result<Option<OutFileEntry>, StoreError> {
        Ok(self
            .store
            .out_file(mailbox, name)
            .await?
            .map(|(entry, _)| entry))
    }

    /// The content of `mailbox`'s file `name` from byte `offset` on; `None` if it is not there.
    pub async fn read_mailbox_file(
        &self,
        mailbox: &Mailbox,
        name: &str,
        offset: u64,
    ) -> Result<Option<MailboxReader>, ReadError> {
        match self.store.out_file(mailbox, name).await? {
            None => Ok(None),
            Some((_, OutContent::Inline(bytes))) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                Ok(Some(Box::new(std::io::Cursor::new(
                    bytes[start..].to_vec(),
                ))))
            }
            Some((_, OutContent::Blob { key, .. })) => match self.blobs.open(&key, offset).await {
                Ok(reader) => Ok(Some(reader)),
                Err(source) => {
                    tracing::error!(error = %source, %key, "cannot open a blob of /out");
                    Err(ReadError::Body {
                        name: name.to_owned(),
                        source,
                    })
                }
            },
        }
    }

    /// Removes `mailbox`'s file `name` (and its body); `false` if it was not there.
    pub async fn delete_mailbox_file(
        &self,
        mailbox: &Mailbox,
        name: &str,
    ) -> Result<bool, StoreError> {
        match self.store.delete_out_file(mailbox, name).await? {
            None => Ok(false),
            Some(OutContent::Inline(_)) => Ok(true),
            Some(OutContent::Blob { key, .. }) => {
                self.forget_blob(&key).await;
                Ok(true)
            }
        }
    }

    /// The services `username` holds roles for now (catalogued or not).
    pub async fn roles(&self, username: &Username) -> Result<Vec<ServiceName>, StoreError> {
        self.store.roles(username).await
    }

    /// The bytes of `username`'s uploads committed and waiting for delivery.
    pub async fn pending_upload_bytes(&self, username: &Username) -> Result<u64, StoreError> {
        self.store.pending_upload_bytes(username).await
    }
}
