//! An `s3s-fs` S3 server (it checks SigV4 signatures) on 127.0.0.1, serving a fresh
//! directory with one bucket, for the tests of the S3 blob store and of the gateway on it.
//! `scripts/test` builds it into a cache and names it in `MFTGW_S3S_FS`; a missing server
//! fails the tests that need it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mftgw_blobs::S3Settings;

const ACCESS_KEY: &str = "mftgw-test";
const SECRET_KEY: &str = "mftgw-test-secret";
const BUCKET: &str = "blobs";
const PREFIX: &str = "mftgw";

/// An `s3s-fs` serving a fresh directory with one bucket; killed with the guard.
pub struct S3Server {
    child: Child,
    pub port: u16,
    root: tempfile::TempDir,
}

impl S3Server {
    pub fn start() -> S3Server {
        let binary = std::env::var("MFTGW_S3S_FS")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                let home = std::env::var("HOME").unwrap();
                PathBuf::from(home).join(".cache/mftgw-tools/s3s-fs-0.14.1/bin/s3s-fs")
            });
        assert!(
            binary.exists(),
            "{} is missing: scripts/test builds s3s-fs (or set MFTGW_S3S_FS)",
            binary.display()
        );
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        S3Server { child, port, root }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Settings that reach the bucket, with parts of `part_bytes`.
    pub fn settings(&self, part_bytes: usize) -> S3Settings {
        S3Settings {
            endpoint: Some(self.endpoint()),
            bucket: BUCKET.into(),
            region: "us-east-1".into(),
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
            virtual_hosted_style: false,
            prefix: format!("{PREFIX}/"),
            part_bytes,
        }
    }

    /// The object `key` of the blob prefix as `s3s-fs` keeps it: a file.
    pub fn object_file(&self, key: &str) -> PathBuf {
        self.root.path().join(BUCKET).join(PREFIX).join(key)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
