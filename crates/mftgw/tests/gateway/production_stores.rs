//! The gateway on its production stores: `mftgw demo --database <url>` keeps its state in
//! the machine's PostgreSQL (`MFTGW_TEST_POSTGRES_URL`, in a schema of this test's own) and,
//! with `[blobs.s3]`, its blobs in a bucket of a real S3 server (`s3s-fs`). A heartbeat
//! upload goes as on the embedded stores: `226`, its body an object of the bucket, the
//! status files and the response in `/out`, an answered transaction that the admin CLI
//! reads from the same database; killed and started again, the gateway still has it all.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::support::{Demo, curl, heartbeat_files, out_names, run, wait_for_out};

#[path = "../../../blobs/tests/support/s3_server.rs"]
mod s3_server;
use s3_server::S3Server;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A schema of the test database, dropped with the guard.
struct Schema {
    name: String,
}

impl Schema {
    fn create() -> Schema {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "mftgw_gateway_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        psql(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
        ));
        Schema { name }
    }

    /// The database's URL with this schema as the search path.
    fn url(&self) -> String {
        format!("{}?options=-c%20search_path%3D{}", base_url(), self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        psql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

fn base_url() -> String {
    std::env::var("MFTGW_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// What `psql` prints for `sql`, unaligned and without headers.
fn psql(sql: &str) -> String {
    let (ok, out, err) =
        run(Command::new("psql")
            .arg(base_url())
            .args(["-v", "ON_ERROR_STOP=1", "-tAc", sql]));
    assert!(
        ok,
        "psql {sql}: {err} (is PostgreSQL at {} reachable?)",
        base_url()
    );
    out.trim().to_owned()
}

#[test]
fn a_gateway_on_postgresql_and_s3_answers_an_upload_and_keeps_it_across_a_crash() {
    let schema = Schema::create();
    let s3 = S3Server::start();
    let settings = s3.settings(8 * 1024 * 1024);
    let quoted = |text: &str| format!("\"{text}\"");
    let values = [
        ("MFTGW__BLOBS__S3__ENDPOINT", quoted(&s3.endpoint())),
        ("MFTGW__BLOBS__S3__BUCKET", quoted(&settings.bucket)),
        ("MFTGW__BLOBS__S3__PREFIX", quoted(&settings.prefix)),
        (
            "MFTGW__BLOBS__S3__ACCESS_KEY_ID",
            quoted(&settings.access_key_id),
        ),
        (
            "MFTGW__BLOBS__S3__SECRET_ACCESS_KEY",
            quoted(&settings.secret_access_key),
        ),
    ];
    let env: Vec<(&str, &str)> = values
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let mut demo = Demo::start_with_args(&env, &["--database", &schema.url()]);
    assert!(
        !demo.data_dir().join("mftgw.sqlite").exists(),
        "the demo opened the embedded store"
    );
    let users: u64 = psql(&format!("SELECT COUNT(*) FROM {}.users", schema.name))
        .parse()
        .unwrap();
    assert!(users >= 4, "{users} users in PostgreSQL");

    let user = demo.user(0);
    let name = format!("pg{}-hb01.xml", std::process::id());
    let body = demo.dir.path().join("ping.xml");
    std::fs::write(&body, "<ping/>\n").unwrap();
    let (ok, _, log) = curl(
        &demo,
        &user,
        &format!("/FTPSGW.Heartbeat/{name}"),
        &["-v", "-T", body.to_str().unwrap()],
    );
    assert!(ok, "upload failed: {log}");
    let skat_id = log
        .lines()
        .find_map(|line| line.strip_prefix("< 226 Transfer complete: transaction "))
        .unwrap_or_else(|| panic!("no 226 in:\n{log}"))
        .trim()
        .to_owned();

    let expected = heartbeat_files(&name);
    assert_eq!(wait_for_out(&demo, &user, &expected), expected);
    let state = psql(&format!(
        "SELECT state FROM {}.transactions WHERE skat_transaction_id = '{skat_id}'",
        schema.name
    ));
    assert_eq!(state, "answered");
    let blob_key = psql(&format!(
        "SELECT blob_key FROM {}.transactions WHERE skat_transaction_id = '{skat_id}'",
        schema.name
    ));
    assert_eq!(
        std::fs::read_to_string(s3.object_file(&blob_key)).unwrap(),
        "<ping/>\n",
        "the upload's body is an object of the bucket"
    );
    let local_blobs = demo.data_dir().join("files/blobs");
    assert!(
        !local_blobs.exists() || std::fs::read_dir(&local_blobs).unwrap().next().is_none(),
        "a blob was kept on the node"
    );

    demo.kill();
    demo.start_again(&env);
    assert_eq!(out_names(&demo, &user), expected);
    let transactions = demo.transactions(&user.username);
    let transaction = transactions
        .iter()
        .find(|t| t["skat_transaction_id"] == skat_id.as_str())
        .unwrap_or_else(|| panic!("{transactions:?}"));
    assert_eq!(transaction["state"], "answered");
}

#[test]
fn a_node_with_another_password_key_refuses_to_start() {
    let schema = Schema::create();
    let mut demo = Demo::start_with_args(&[], &["--database", &schema.url()]);
    demo.kill();
    let other_key = demo.dir.path().join("other-password.key");
    std::fs::write(&other_key, format!("{}\n", "ab".repeat(32))).unwrap();
    let (ok, _, err) = run(Command::new(crate::support::binary())
        .arg("--config")
        .arg(demo.config())
        .arg("serve")
        .env(
            "MFTGW__KEYS__PASSWORD_KEY_FILE",
            format!("\"{}\"", other_key.display()),
        ));
    assert!(!ok, "a node with another key started");
    assert!(
        err.contains("password key is not the one the store's users were registered with"),
        "{err}"
    );
}
