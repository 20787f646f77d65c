//! Blobs in an S3-compatible bucket, through `object_store`: the store several gateway nodes
//! share. A blob is written through `object_store`'s `BufWriter`: held in memory up to
//! [`S3Settings::part_bytes`] and put whole, or streamed as a multipart upload in parts of
//! that size with at most [`MAX_PARTS_IN_FLIGHT`] in flight, so an upload never holds more
//! than a few parts in memory. The object exists only once `finish` has completed the put or
//! the multipart upload; a writer dropped before that aborts its multipart upload.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, RetryConfig};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::{BlobInfo, BlobKey, BlobStore, BlobWriter, Hashing, new_key};

/// Parts of one multipart upload sent at the same time.
const MAX_PARTS_IN_FLIGHT: usize = 2;

/// A request is tried again at most this often, and no longer than this after its first
/// try: a client waiting on an upload hears `451` in seconds, not minutes, when the bucket
/// cannot be reached.
const MAX_RETRIES: usize = 3;
const RETRY_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the bucket is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// The S3 endpoint (`https://s3.eu-north-1.amazonaws.com`, `http://127.0.0.1:9000`);
    /// `None`: AWS's own for `region`.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `bucket.host` addressing instead of `host/bucket`.
    pub virtual_hosted_style: bool,
    /// Under which prefix of the bucket the blobs are (`mftgw/`), or none.
    pub prefix: String,
    /// The size of a multipart upload's parts, and of the largest blob put whole.
    pub part_bytes: usize,
}

/// The blobs of a bucket (under its prefix), each an object named by its key.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    part_bytes: usize,
}

impl S3BlobStore {
    /// A store on the bucket `settings` names. Nothing is sent until the first request.
    pub fn new(settings: &S3Settings) -> io::Result<Self> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(&settings.secret_access_key)
            .with_virtual_hosted_style_request(settings.virtual_hosted_style)
            .with_retry(RetryConfig {
                max_retries: MAX_RETRIES,
                retry_timeout: RETRY_TIMEOUT,
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &settings.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder.build().map_err(io::Error::other)?;
        Ok(Self {
            store: Arc::new(store),
            prefix: Path::from(settings.prefix.trim_matches('/')),
            part_bytes: settings.part_bytes,
        })
    }

    fn path_of(&self, key: &BlobKey) -> Path {
        self.prefix.clone().join(key.as_str())
    }
}

/// `object_store`'s errors as I/O errors, a missing object as `NotFound`.
fn io_error(error: object_store::Error) -> io::Error {
    match error {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, error),
        error => io::Error::other(error),
    }
}

impl BlobStore for S3BlobStore {
    type Writer = S3BlobWriter;

    async fn create(&self) -> io::Result<S3BlobWriter> {
        self.create_as(new_key()?).await
    }

    async fn create_as(&self, key: BlobKey) -> io::Result<S3BlobWriter> {
        let writer =
            BufWriter::with_capacity(Arc::clone(&self.store), self.path_of(&key), self.part_bytes)
                .with_max_concurrency(MAX_PARTS_IN_FLIGHT);
        Ok(S3BlobWriter {
            key,
            upload: Some(Hashing::new(writer)),
        })
    }

    async fn open(
        &self,
        key: &BlobKey,
        offset: u64,
    ) -> io::Result<Box<dyn AsyncRead + Send + Unpin>> {
        let options = GetOptions {
            range: (offset > 0).then_some(GetRange::Offset(offset)),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&self.path_of(key), options)
            .await
            .map_err(io_error)?;
        let stream = result.into_stream().map_err(io_error);
        Ok(Box::new(tokio_util::io::StreamReader::new(stream)))
    }

    /// A `HEAD` of a name no blob has: "not found" is an answer.
    async fn ping(&self) -> io::Result<()> {
        match self.store.head(&self.prefix.clone().join(".ping")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(io_error(error)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> io::Result<()> {
        match self.store.delete(&self.path_of(key)).await {
            Err(object_store::Error::NotFound { .. }) | Ok(()) => Ok(()),
            Err(error) => Err(io_error(error)),
        }
    }

    /// Listed by the objects' last modification, which for an object written once is when
    /// it was finished. Objects under the prefix that are not named like a blob are not
    /// blobs.
    async fn finished_before(&self, before: SystemTime) -> io::Result<Vec<BlobKey>> {
        let mut listing = self.store.list(Some(&self.prefix));
        let mut keys = Vec::new();
        while let Some(object) = listing.next().await {
            let object = object.map_err(io_error)?;
            let finished = SystemTime::from(object.last_modified);
            let key = object.location.filename().map(BlobKey::parse);
            if let (Some(Ok(key)), true) = (key, finished < before) {
                keys.push(key);
            }
        }
        Ok(keys)
    }
}

pub struct S3BlobWriter {
    key: BlobKey,
    /// Until finished.
    upload: Option<Hashing<BufWriter>>,
}

impl S3BlobWriter {
    fn upload(&mut self) -> io::Result<&mut Hashing<BufWriter>> {
        self.upload
            .as_mut()
            .ok_or_else(|| io::Error::other("the blob was finished"))
    }
}

impl BlobWriter for S3BlobWriter {
    fn key(&self) -> &BlobKey {
        &self.key
    }

    async fn finish(mut self) -> io::Result<BlobInfo> {
        let mut upload = self.upload.take().expect("set until finished");
        // Puts the object, or completes the multipart upload: the object exists after this.
        upload.shutdown().await?;
        let (_, size, sha256) = upload.finish();
        Ok(BlobInfo {
            key: self.key.clone(),
            size,
            sha256,
        })
    }
}

impl Drop for S3BlobWriter {
    fn drop(&mut self) {
        let Some(upload) = self.upload.take() else {
            return;
        };
        let (mut writer, ..) = upload.finish();
        // A multipart upload begun and never completed would keep its parts in the bucket.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            drop(runtime.spawn(async move {
                if let Err(error) = writer.abort().await {
                    tracing::warn!(%error, "could not abort an unfinished multipart upload");
                }
            }));
        }
    }
}

impl AsyncWrite for S3BlobWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.upload()?).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.upload()?).poll_flush(cx)
    }

    /// Finishing is [`BlobWriter::finish`]'s: a shutdown here would put the object before
    /// the caller decided to keep it.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.upload()?).poll_flush(cx)
    }
}
