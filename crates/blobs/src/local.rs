//! Blobs as files in a local directory: `incoming/<key>.part` while being written, then
//! fsynced and renamed to `blobs/<key>`, and the directory fsynced, so a finished blob
//! survives a crash and an unfinished one never appears under `blobs/`. One process at a
//! time owns the directory (an exclusive lock on `LOCK`).

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use tokio::fs::File;
use tokio::io::{AsyncRead, AsyncSeekExt, AsyncWrite, AsyncWriteExt, BufWriter};

use crate::{BlobInfo, BlobKey, BlobStore, BlobWriter, Hashing, new_key};

const INCOMING: &str = "incoming";
const BLOBS: &str = "blobs";
const LOCK: &str = "LOCK";
/// Writes reach the file in pieces this large: every write is a trip to tokio's blocking
/// pool, and TLS hands over 16 KiB at a time. Held per upload in progress.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    incoming: PathBuf,
    blobs: PathBuf,
    /// Held (locked) as long as the store is open.
    _lock: std::sync::Arc<std::fs::File>,
}

impl LocalBlobStore {
    /// Opens (creating if needed) the store under `root` and removes what unfinished writes
    /// left behind: nobody can finish them after a restart. Fails if another process has the
    /// store open, whose unfinished writes those would be.
    pub async fn open(root: &Path) -> io::Result<Self> {
        tokio::fs::create_dir_all(root.join(INCOMING)).await?;
        tokio::fs::create_dir_all(root.join(BLOBS)).await?;
        let lock = std::fs::File::create(root.join(LOCK))?;
        lock.try_lock().map_err(|error| match error {
            std::fs::TryLockError::WouldBlock => io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is in use by another process", root.display()),
            ),
            std::fs::TryLockError::Error(error) => error,
        })?;
        let store = Self {
            incoming: root.join(INCOMING),
            blobs: root.join(BLOBS),
            _lock: std::sync::Arc::new(lock),
        };
        let mut leftovers = tokio::fs::read_dir(&store.incoming).await?;
        let mut swept = 0;
        while let Some(entry) = leftovers.next_entry().await? {
            tokio::fs::remove_file(entry.path()).await?;
            swept += 1;
        }
        if swept > 0 {
            tracing::info!(swept, "removed unfinished blobs from an earlier run");
        }
        Ok(store)
    }

    /// Where the blob `key` of the store at `root` lives once finished, for operators' tools
    /// (which must not [`open`](Self::open) a store that a running gateway uses).
    pub fn blob_path(root: &Path, key: &BlobKey) -> PathBuf {
        root.join(BLOBS).join(key.as_str())
    }

    fn path_of(&self, key: &BlobKey) -> PathBuf {
        self.blobs.join(key.as_str())
    }
}

async fn sync_directory(directory: PathBuf) -> io::Result<()> {
    tokio::task::spawn_blocking(move || std::fs::File::open(directory)?.sync_all())
        .await
        .map_err(io::Error::other)?
}

impl BlobStore for LocalBlobStore {
    type Writer = LocalBlobWriter;

    async fn create(&self) -> io::Result<LocalBlobWriter> {
        self.create_as(new_key()?).await
    }

    async fn create_as(&self, key: BlobKey) -> io::Result<LocalBlobWriter> {
        let temp_path = self.incoming.join(format!("{key}.part"));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&temp_path)
            .await?;
        Ok(LocalBlobWriter {
            file: Hashing::new(BufWriter::with_capacity(WRITE_BUFFER_BYTES, file)),
            final_path: self.path_of(&key),
            blobs: self.blobs.clone(),
            temp: TempFile(Some(temp_path)),
            key,
        })
    }

    async fn open(
        &self,
        key: &BlobKey,
        offset: u64,
    ) -> io::Result<Box<dyn AsyncRead + Send + Unpin>> {
        let mut file = File::open(self.path_of(key)).await?;
        if offset > 0 {
            file.seek(io::SeekFrom::Start(offset)).await?;
        }
        Ok(Box::new(file))
    }

    async fn ping(&self) -> io::Result<()> {
        tokio::fs::metadata(&self.blobs).await.map(drop)
    }

    async fn delete(&self, key: &BlobKey) -> io::Result<()> {
        match tokio::fs::remove_file(self.path_of(key)).await {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    async fn finished_before(&self, before: SystemTime) -> io::Result<Vec<BlobKey>> {
        let mut entries = tokio::fs::read_dir(&self.blobs).await?;
        let mut keys = Vec::new();
        while let Some(entry) = entries.next_entry().await? {
            // A finished blob is renamed into place and never written again: its
            // modification time is when it was finished.
            let finished = entry.metadata().await?.modified()?;
            // Anything else in the directory (an operator's copy, say) is not a blob.
            let key = entry.file_name().into_string().ok().map(BlobKey::parse);
            if let (Some(Ok(key)), true) = (key, finished < before) {
                keys.push(key);
            }
        }
        Ok(keys)
    }
}

pub struct LocalBlobWriter {
    file: Hashing<BufWriter<File>>,
    key: BlobKey,
    temp: TempFile,
    final_path: PathBuf,
    blobs: PathBuf,
}

/// The `.part` file of a writer, removed when dropped unless it was renamed into place.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        let Some(path) = self.0.take() else {
            return;
        };
        let remove = move || {
            if let Err(error) = std::fs::remove_file(&path) {
                tracing::warn!(%error, path = %path.display(), "could not remove an unfinished blob");
            }
        };
        // Off the async worker threads when there are some: a slow disk must not stall them.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

impl BlobWriter for LocalBlobWriter {
    fn key(&self) -> &BlobKey {
        &self.key
    }

    async fn finish(self) -> io::Result<BlobInfo> {
        let LocalBlobWriter {
            mut file,
            key,
            mut temp,
            final_path,
            blobs,
        } = self;
        file.flush().await?;
        file.get_mut().get_mut().sync_all().await?;
        let (_, size, sha256) = file.finish();
        let temp_path = temp.0.as_ref().expect("set until renamed");
        tokio::fs::rename(temp_path, &final_path).await?;
        temp.0 = None;
        if let Err(error) = sync_directory(blobs).await {
            // Renamed but perhaps not durable: the caller will not record it, so remove it.
            let _ = tokio::fs::remove_file(&final_path).await;
            return Err(error);
        }
        Ok(BlobInfo { key, size, sha256 })
    }
}

impl AsyncWrite for LocalBlobWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.file).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.file).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.file).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_in(directory: &Path) -> usize {
        std::fs::read_dir(directory).unwrap().count()
    }

    #[tokio::test]
    async fn one_process_at_a_time_owns_a_store() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(root.path()).await.unwrap();
        let second = LocalBlobStore::open(root.path()).await.unwrap_err();
        assert_eq!(second.kind(), io::ErrorKind::WouldBlock);
        let mut writer = store.create().await.unwrap();
        writer.write_all(b"k").await.unwrap();
        let key = writer.finish().await.unwrap().key;
        let later = SystemTime::now() + std::time::Duration::from_secs(1);
        assert_eq!(store.finished_before(later).await.unwrap(), [key]);
        drop(store);
        LocalBlobStore::open(root.path()).await.unwrap();
    }

    #[tokio::test]
    async fn an_unfinished_blob_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(root.path()).await.unwrap();
        let mut writer = store.create().await.unwrap();
        let key = writer.key().clone();
        writer.write_all(b"partial").await.unwrap();
        assert_eq!(files_in(&root.path().join(INCOMING)), 1);
        drop(writer);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while files_in(&root.path().join(INCOMING)) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the unfinished blob stayed"
            );
            tokio::task::yield_now().await;
        }
        assert!(store.open(&key, 0).await.is_err());
    }

    #[tokio::test]
    async fn opening_sweeps_what_a_crash_left_in_incoming() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(root.path()).await.unwrap();
        let mut writer = store.create().await.unwrap();
        writer.write_all(b"crash").await.unwrap();
        std::mem::forget(writer);
        assert_eq!(files_in(&root.path().join(INCOMING)), 1);
        drop(store);
        LocalBlobStore::open(root.path()).await.unwrap();
        assert_eq!(files_in(&root.path().join(INCOMING)), 0);
    }

    #[tokio::test]
    async fn keys_cannot_name_other_files() {
        for text in ["", "../incoming", "/etc/passwd", "ab/cd", "x", "LOCK"] {
            assert!(BlobKey::parse(text).is_err(), "{text}");
        }
        let root = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(root.path()).await.unwrap();
        let writer = store.create().await.unwrap();
        let key = writer.finish().await.unwrap().key;
        std::fs::write(root.path().join(BLOBS).join("notes.txt"), b"an operator's").unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        assert_eq!(store.finished_before(later).await.unwrap(), vec![key]);
    }
}
