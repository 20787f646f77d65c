//! Blob storage for file bodies: uploads while they stream in, and large files in `/out`.
//!
//! The shape follows `object_store`'s multipart upload so that an S3 implementation can sit
//! behind the same trait: a blob is written once through a [`BlobWriter`], becomes durable
//! and visible under its key only when [`BlobWriter::finish`] returns, and is never changed
//! after. Every writer hashes what passes through it, so the caller learns the size and
//! SHA-256 of exactly the bytes that were stored.

#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::time::SystemTime;

pub use mftgw_domain::{BlobKey, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};

mod hashing;
mod local;
mod s3;

pub use hashing::Hashing;
pub use local::{LocalBlobStore, LocalBlobWriter};
pub use s3::{S3BlobStore, S3BlobWriter, S3Settings};

/// What a finished blob holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub key: BlobKey,
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: Sha256,
}

pub trait BlobStore: Send + Sync + 'static {
    type Writer: BlobWriter;

    /// Starts a new blob under a fresh key.
    fn create(&self) -> impl Future<Output = io::Result<Self::Writer>> + Send;

    /// Starts the blob `key`, one that another store holds under that key (an installation
    /// being copied); finishing it replaces a blob of that key.
    fn create_as(&self, key: BlobKey) -> impl Future<Output = io::Result<Self::Writer>> + Send;

    /// Reads the blob `key` from byte `offset` on.
    fn open(
        &self,
        key: &BlobKey,
        offset: u64,
    ) -> impl Future<Output = io::Result<Box<dyn AsyncRead + Send + Unpin>>> + Send;

    /// Answers if the store can be reached.
    fn ping(&self) -> impl Future<Output = io::Result<()>> + Send;

    /// Removes the blob `key`; removing a blob that is not there is not an error.
    fn delete(&self, key: &BlobKey) -> impl Future<Output = io::Result<()>> + Send;

    /// The keys of the blobs finished before `before`. An orphan sweep passes a time before
    /// which no upload still in flight can have finished its body (in a process that holds
    /// the store alone, now), so that it never takes a body whose commit is on its way.
    fn finished_before(
        &self,
        before: SystemTime,
    ) -> impl Future<Output = io::Result<Vec<BlobKey>>> + Send;
}

/// A fresh key: 128 random bits.
fn new_key() -> io::Result<BlobKey> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| io::Error::other("no randomness"))?;
    Ok(BlobKey::from_bytes(&bytes))
}

/// A blob being written. Dropping it without [`finish`](BlobWriter::finish) discards it.
pub trait BlobWriter: AsyncWrite + Send + Unpin + 'static {
    /// The key the blob will have once finished.
    fn key(&self) -> &BlobKey;

    /// Makes the blob durable (on disk and fsynced, or completed in the object store) and
    /// returns what it holds.
    fn finish(self) -> impl Future<Output = io::Result<BlobInfo>> + Send;
}
