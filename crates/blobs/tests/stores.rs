//! What every blob store must do, checked on each: the local directory, and an S3 bucket
//! served by a real S3 implementation (`s3s-fs`, which checks SigV4 signatures) on
//! 127.0.0.1. `scripts/test` builds `s3s-fs` into a cache and names it in `MFTGW_S3S_FS`; a
//! missing server fails the S3 checks, never skips them.

use std::time::{Duration, SystemTime};

use mftgw_blobs::{BlobKey, BlobStore, BlobWriter, LocalBlobStore, S3BlobStore, S3Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "support/s3_server.rs"]
mod s3_server;
use s3_server::S3Server;

/// The smallest part S3 takes (but the last).
const PART_BYTES: usize = 5 * 1024 * 1024;

async fn read_all<B: BlobStore>(store: &B, key: &BlobKey, offset: u64) -> Vec<u8> {
    let mut content = Vec::new();
    store
        .open(key, offset)
        .await
        .unwrap()
        .read_to_end(&mut content)
        .await
        .unwrap();
    content
}

async fn finished_blobs<B: BlobStore>(store: &B) -> Vec<BlobKey> {
    let later = SystemTime::now() + Duration::from_secs(60);
    let mut keys = store.finished_before(later).await.unwrap();
    keys.sort();
    keys
}

/// A finished blob reads back whole and from an offset, with the size and hash of what was
/// written; deleting it twice is fine.
async fn a_finished_blob_reads_back_with_its_hash<B: BlobStore>(store: &B) {
    let mut writer = store.create().await.unwrap();
    let key = writer.key().clone();
    writer.write_all(b"hello ").await.unwrap();
    writer.write_all(b"world").await.unwrap();
    let info = writer.finish().await.unwrap();
    assert_eq!(info.key, key);
    assert_eq!(info.size, 11);
    assert_eq!(
        info.sha256,
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    );
    assert_eq!(read_all(store, &key, 0).await, b"hello world");
    assert_eq!(read_all(store, &key, 6).await, b"world");
    assert!(finished_blobs(store).await.contains(&key));
    store.delete(&key).await.unwrap();
    assert!(store.open(&key, 0).await.is_err());
    store.delete(&key).await.unwrap();
}

/// A reachable store answers its ping.
async fn a_store_answers_its_ping<B: BlobStore>(store: &B) {
    store.ping().await.unwrap();
}

/// A blob created under a key another store gave it reads back under that key, and one
/// created under it again replaces it.
async fn a_blob_is_created_under_a_given_key<B: BlobStore>(store: &B) {
    let key = store.create().await.unwrap().finish().await.unwrap().key;
    for content in [&b"first"[..], b"second"] {
        let mut writer = store.create_as(key.clone()).await.unwrap();
        writer.write_all(content).await.unwrap();
        assert_eq!(writer.finish().await.unwrap().key, key);
        assert_eq!(read_all(store, &key, 0).await, content);
    }
}

/// A blob larger than several parts (a multipart upload on S3) arrives whole.
async fn a_large_blob_arrives_whole<B: BlobStore>(store: &B) {
    let content: Vec<u8> = (0..(2 * PART_BYTES + PART_BYTES / 2))
        .map(|i| (i % 251) as u8)
        .collect();
    let mut writer = store.create().await.unwrap();
    for chunk in content.chunks(64 * 1024) {
        writer.write_all(chunk).await.unwrap();
    }
    let info = writer.finish().await.unwrap();
    assert_eq!(info.size, content.len() as u64);
    assert_eq!(read_all(store, &info.key, 0).await, content);
    let offset = PART_BYTES + 7;
    assert_eq!(
        read_all(store, &info.key, offset as u64).await,
        &content[offset..]
    );
}

/// A blob dropped before it was finished, small or as far as a multipart upload, is never
/// listed nor readable.
async fn an_unfinished_blob_leaves_nothing<B: BlobStore>(store: &B) {
    let before = finished_blobs(store).await;
    for size in [7, PART_BYTES + 1] {
        let mut writer = store.create().await.unwrap();
        let key = writer.key().clone();
        writer.write_all(&vec![b'x'; size]).await.unwrap();
        drop(writer);
        assert!(store.open(&key, 0).await.is_err(), "{size} bytes");
    }
    assert_eq!(finished_blobs(store).await, before);
}

/// The orphan sweep's listing: blobs by when they were finished.
async fn blobs_are_listed_by_when_they_were_finished<B: BlobStore>(store: &B) {
    let mut writer = store.create().await.unwrap();
    writer.write_all(b"old").await.unwrap();
    let old = writer.finish().await.unwrap().key;
    // Past any store's time granularity (S3 keeps seconds).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let between = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut writer = store.create().await.unwrap();
    writer.write_all(b"new").await.unwrap();
    let new = writer.finish().await.unwrap().key;
    let finished_first = store.finished_before(between).await.unwrap();
    assert!(finished_first.contains(&old), "{finished_first:?}");
    assert!(!finished_first.contains(&new), "{finished_first:?}");
    let all = finished_blobs(store).await;
    assert!(all.contains(&old) && all.contains(&new), "{all:?}");
}

/// One `#[tokio::test]` per check, on a fresh store that `$fresh` makes (with a guard).
macro_rules! suite {
    ($module:ident, $fresh:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn a_finished_blob_reads_back_with_its_hash() {
                let (store, _guard) = $fresh;
                super::a_finished_blob_reads_back_with_its_hash(&store).await;
            }

            #[tokio::test]
            async fn a_store_answers_its_ping() {
                let (store, _guard) = $fresh;
                super::a_store_answers_its_ping(&store).await;
            }

            #[tokio::test]
            async fn a_blob_is_created_under_a_given_key() {
                let (store, _guard) = $fresh;
                super::a_blob_is_created_under_a_given_key(&store).await;
            }

            #[tokio::test]
            async fn a_large_blob_arrives_whole() {
                let (store, _guard) = $fresh;
                super::a_large_blob_arrives_whole(&store).await;
            }

            #[tokio::test]
            async fn an_unfinished_blob_leaves_nothing() {
                let (store, _guard) = $fresh;
                super::an_unfinished_blob_leaves_nothing(&store).await;
            }

            #[tokio::test]
            async fn blobs_are_listed_by_when_they_were_finished() {
                let (store, _guard) = $fresh;
                super::blobs_are_listed_by_when_they_were_finished(&store).await;
            }
        }
    };
}

suite!(local, {
    let root = tempfile::tempdir().unwrap();
    (LocalBlobStore::open(root.path()).await.unwrap(), root)
});

suite!(s3, {
    let server = S3Server::start();
    let store = S3BlobStore::new(&server.settings(PART_BYTES)).unwrap();
    (store, server)
});

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_s3_server() {
    let server = S3Server::start();
    let settings = S3Settings {
        secret_access_key: "not-the-secret".into(),
        ..server.settings(PART_BYTES)
    };
    let store = S3BlobStore::new(&settings).unwrap();
    let mut writer = store.create().await.unwrap();
    writer.write_all(b"refused").await.unwrap();
    let error = format!("{:?}", writer.finish().await.unwrap_err());
    assert!(
        error.contains("403") || error.contains("Signature"),
        "{error}"
    );
    let store = S3BlobStore::new(&server.settings(PART_BYTES)).unwrap();
    assert!(finished_blobs(&store).await.is_empty());
}

#[tokio::test]
async fn a_finished_blob_is_an_object_under_the_prefix() {
    let server = S3Server::start();
    let store = S3BlobStore::new(&server.settings(PART_BYTES)).unwrap();
    let mut writer = store.create().await.unwrap();
    writer.write_all(b"in the bucket").await.unwrap();
    let key = writer.key().clone();
    assert!(!server.object_file(key.as_str()).exists(), "before finish");
    writer.finish().await.unwrap();
    assert_eq!(
        std::fs::read(server.object_file(key.as_str())).unwrap(),
        b"in the bucket"
    );
}

#[tokio::test]
async fn a_bucket_that_cannot_be_reached_fails_its_ping() {
    let server = S3Server::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = S3Settings {
        endpoint: Some(format!("http://127.0.0.1:{closed}")),
        ..server.settings(PART_BYTES)
    };
    let store = S3BlobStore::new(&settings).unwrap();
    assert!(store.ping().await.is_err());
}
