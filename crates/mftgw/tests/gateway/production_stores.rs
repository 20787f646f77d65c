//! The gateway on its production stores: `mftgw demo --database <url>` keeps its state in
//! the machine's PostgreSQL (`MFTGW_TEST_POSTGRES_URL`, in a schema of this test's own) and,
//! with `[blobs.s3]`, its blobs in a bucket of a real S3 server (`s3s-fs`). A heartbeat
//! upload goes as on the embedded stores: `226`, its body an object of the bucket, the
//! status files and the response in `/out`, an answered transaction that the admin CLI
//! reads from the same database; killed and started again, the gateway still has it all.

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::support::{
    Demo, DemoUser, curl, curl_at, heartbeat_files, out_names, run, wait_for_out,
};

#[path = "../../../blobs/tests/support/s3_server.rs"]
mod s3_server;
use s3_server::S3Server;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A schema of the test database, dropped with the guard.
pub(crate) struct Schema {
    name: String,
}

impl Schema {
    pub(crate) fn create() -> Schema {
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

    /// A link to the database that the test can cut, and the URL of this schema through it.
    pub(crate) fn behind_a_cuttable_link(&self) -> (Cuttable, String) {
        let base = base_url();
        let (before_host, after_host) = base.split_once('@').expect("user@host in the URL");
        let (host, database) = after_host.split_once('/').expect("a database in the URL");
        let target = std::net::ToSocketAddrs::to_socket_addrs(host)
            .unwrap()
            .next()
            .unwrap();
        let link = Cuttable::start(target);
        let url = format!(
            "{before_host}@127.0.0.1:{}/{database}?options=-c%20search_path%3D{}",
            link.port, self.name
        );
        (link, url)
    }

    /// The database's URL with this schema as the search path.
    pub(crate) fn url(&self) -> String {
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

/// The `[blobs.s3]` of a node on `s3`, as environment overrides.
fn s3_environment(s3: &S3Server) -> Vec<(&'static str, String)> {
    let settings = s3.settings(8 * 1024 * 1024);
    let quoted = |text: &str| format!("\"{text}\"");
    vec![
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
    ]
}

fn borrowed<'a>(values: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    values
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect()
}

#[test]
fn a_gateway_on_postgresql_and_s3_answers_an_upload_and_keeps_it_across_a_crash() {
    let schema = Schema::create();
    let s3 = S3Server::start();
    let values = s3_environment(&s3);
    let env = borrowed(&values);
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

/// The configuration of another node of `demo`'s installation: the same store, bucket, key
/// and PKI, its own data directory (`<demo>/<name>`), ports and node id, then `configure`d;
/// where it is written, and the node's FTPS port.
fn node_config(
    demo: &Demo,
    name: &str,
    configure: impl FnOnce(&mut toml::Table),
) -> (std::path::PathBuf, u16) {
    let text = std::fs::read_to_string(demo.config()).unwrap();
    let mut config: toml::Table = toml::from_str(&text).unwrap();
    let data_dir = demo.dir.path().join(name);
    std::fs::create_dir_all(&data_dir).unwrap();
    let ports: Vec<u16> = (0..3)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let listen = |port: u16| toml::Value::String(format!("127.0.0.1:{port}"));
    config.insert("data_dir".into(), data_dir.display().to_string().into());
    for (section, port) in [("ftps", ports[0]), ("portal", ports[1]), ("api", ports[2])] {
        config[section]
            .as_table_mut()
            .unwrap()
            .insert("listen".into(), listen(port));
    }
    config.remove("legacy");
    config.remove("emcs");
    config
        .entry("transactions")
        .or_insert_with(|| toml::Table::new().into())
        .as_table_mut()
        .unwrap()
        .insert("node_id".into(), name.into());
    configure(&mut config);
    let path = data_dir.join("mftgw.toml");
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    (path, ports[0])
}

/// `mftgw serve` on a configuration, with `env`; killed with the guard.
struct Node {
    child: std::process::Child,
    ftps_port: u16,
}

impl Node {
    fn start(config: &std::path::Path, ftps_port: u16, env: &[(&str, &str)]) -> Node {
        let log = config.with_file_name("gateway.log");
        let mut command = Command::new(crate::support::binary());
        command
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env("MFTGW_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", ftps_port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the node did not start:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Node { child, ftps_port }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The names in `user`'s `/out` as the node on `port` lists them, once they include
/// `expected` (30 s at most).
fn wait_for_out_at(demo: &Demo, port: u16, user: &DemoUser, expected: &[String]) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (ok, names, err) = curl_at(demo, port, user, "/out/", &["--list-only"]);
        assert!(ok, "listing /out on port {port}: {err}");
        let names: Vec<String> = names.lines().map(str::to_owned).collect();
        if expected.iter().all(|name| names.contains(name)) {
            return names;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/out on port {port} never held {expected:?}: {names:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn two_nodes_on_one_store_serve_each_others_uploads_once() {
    let schema = Schema::create();
    let s3 = S3Server::start();
    let values = s3_environment(&s3);
    let env = borrowed(&values);
    let demo = Demo::start_with_args(&env, &["--database", &schema.url()]);
    let (config, port) = node_config(&demo, "2", |_| {});
    let second = Node::start(&config, port, &env);
    let user = demo.user(0);
    let body = demo.dir.path().join("ping.xml");
    std::fs::write(&body, "<ping/>\n").unwrap();

    let mut all = Vec::new();
    for (from, to, tag) in [
        (demo.port, second.ftps_port, "a"),
        (second.ftps_port, demo.port, "b"),
    ] {
        let name = format!("two{}{tag}-hb01.xml", std::process::id());
        let (ok, _, log) = curl_at(
            &demo,
            from,
            &user,
            &format!("/FTPSGW.Heartbeat/{name}"),
            &["-T", body.to_str().unwrap()],
        );
        assert!(ok, "upload on port {from}: {log}");
        let expected = heartbeat_files(&name);
        let seen = wait_for_out_at(&demo, to, &user, &expected);
        for file in &expected {
            assert_eq!(
                seen.iter().filter(|seen| *seen == file).count(),
                1,
                "{seen:?}"
            );
        }
        all.extend(expected);
    }
    assert_eq!(
        wait_for_out_at(&demo, demo.port, &user, &all).len(),
        all.len()
    );

    // Each upload one transaction, made by the node it came to, its statuses once each.
    let transactions = demo.transactions(&user.username);
    assert_eq!(transactions.len(), 2, "{transactions:?}");
    for transaction in &transactions {
        assert_eq!(transaction["state"], "answered");
        let history: Vec<&str> = transaction["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|step| step["status"].as_str().unwrap())
            .collect();
        assert_eq!(history, ["1", "2", "3"], "{transaction}");
    }
    // SKATTransactionIds name their node: `ci<time>_<node>_<sequence>`.
    let ids: Vec<String> = psql(&format!(
        "SELECT skat_transaction_id FROM {}.transactions ORDER BY id",
        schema.name
    ))
    .lines()
    .map(str::to_owned)
    .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids[0].contains("_1_") && ids[1].contains("_2_"), "{ids:?}");
    // And so does every audit record: each node's logins are its own.
    for node in ["1", "2"] {
        let login = demo.wait_for_audit_where(&format!("a login on node {node}"), |event| {
            event["action"] == "ftps.login" && event["node"] == node
        });
        assert_eq!(login["outcome"], "allowed", "{login}");
    }
    assert_eq!(
        demo.count_audit(|event| event["node"].is_null()),
        0,
        "an audit record without its node"
    );
}

/// A TCP forwarder to `target` that can be cut (every connection closed, new ones refused)
/// and restored: the database going away and coming back, as a node sees it.
pub(crate) struct Cuttable {
    pub(crate) port: u16,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl Cuttable {
    pub(crate) fn start(target: std::net::SocketAddr) -> Cuttable {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::default();
        let (accepting, tracked) = (Arc::clone(&up), Arc::clone(&open));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !accepting.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(target) else {
                    continue;
                };
                let mut tracked = tracked.lock().unwrap();
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
                tracked.extend([client, server]);
            }
        });
        Cuttable { port, up, open }
    }

    pub(crate) fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    pub(crate) fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// The HTTP status of `GET <api>/readyz`.
pub(crate) fn readiness(demo: &Demo) -> String {
    readiness_at(demo, &demo.manifest().api.url)
}

/// The HTTP status of `GET <api_url>/readyz`.
pub(crate) fn readiness_at(demo: &Demo, api_url: &str) -> String {
    let (_, status, _) = run(Command::new("curl")
        .args(["--silent", "--max-time", "20", "--output", "/dev/null"])
        .args(["--write-out", "%{http_code}", "--cacert"])
        .arg(demo.ca())
        .arg(format!("{api_url}/readyz")));
    status
}

#[test]
fn a_node_whose_database_goes_away_says_so_loses_nothing_and_recovers() {
    let schema = Schema::create();
    let (database_link, url) = schema.behind_a_cuttable_link();
    let demo = Demo::start_with_args(&[], &["--database", &url]);
    let (ok, _, log) = upload(&demo, "before-hb01.xml");
    assert!(ok, "{log}");
    an_outage_is_transient(&demo, &database_link, &["451", "421"], "during-hb01.xml");
    // The upload before the outage is answered too: nothing was lost.
    wait_for_out(&demo, &demo.user(0), &heartbeat_files("before-hb01.xml"));
    assert_eq!(demo.transactions(&demo.user(0).username).len(), 2);
}

/// A heartbeat upload of the demo's first user, named `name`, with curl's log.
fn upload(demo: &Demo, name: &str) -> (bool, String, String) {
    let body = demo.dir.path().join("ping.xml");
    std::fs::write(&body, "<ping/>\n").unwrap();
    curl(
        demo,
        &demo.user(0),
        &format!("/FTPSGW.Heartbeat/{name}"),
        &["-v", "-T", body.to_str().unwrap()],
    )
}

/// With `link` (to a store the node needs) cut, an upload named `name` gets one of the
/// `transient` replies and never `226`, and `/readyz` says 503; with it restored, the node
/// is ready again by itself, the name is still free, and the upload is answered.
fn an_outage_is_transient(demo: &Demo, link: &Cuttable, transient: &[&str], name: &str) {
    assert_eq!(readiness(demo), "200");
    link.cut();
    let (ok, _, log) = upload(demo, name);
    assert!(!ok, "an upload succeeded during the outage:\n{log}");
    assert!(!log.contains("< 226"), "{log}");
    assert!(
        log.lines().any(|line| transient
            .iter()
            .any(|code| line.starts_with(&format!("< {code}")))),
        "no transient reply:\n{log}"
    );
    assert_eq!(readiness(demo), "503");

    link.restore();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while readiness(demo) != "200" {
        assert!(
            std::time::Instant::now() < deadline,
            "the node stayed unready"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // The refused upload was never recorded: its name is free, and it goes through now.
    let (ok, _, log) = upload(demo, name);
    assert!(ok, "{log}");
    let expected = heartbeat_files(name);
    let listing = wait_for_out(demo, &demo.user(0), &expected);
    for file in &expected {
        let times = listing.iter().filter(|listed| *listed == file).count();
        assert_eq!(times, 1, "{file} in {listing:?}");
    }
}

#[test]
fn an_embedded_installation_migrates_to_postgresql_and_s3_and_serves_from_there() {
    let mut demo = Demo::start();
    let user = demo.user(0);
    let body = demo.dir.path().join("ping.xml");
    std::fs::write(&body, "<ping/>\n").unwrap();
    let name = "migrated-hb01.xml";
    let (ok, _, log) = curl(
        &demo,
        &user,
        &format!("/FTPSGW.Heartbeat/{name}"),
        &["-T", body.to_str().unwrap()],
    );
    assert!(ok, "{log}");
    let expected = heartbeat_files(name);
    wait_for_out(&demo, &user, &expected);
    demo.kill();

    let schema = Schema::create();
    let s3 = S3Server::start();
    let settings = s3.settings(8 * 1024 * 1024);
    let (target, port) = node_config(&demo, "pg", |config| {
        let mut store = toml::Table::new();
        store.insert("database".into(), schema.url().into());
        config.insert("store".into(), store.into());
        let mut bucket = toml::Table::new();
        bucket.insert("endpoint".into(), s3.endpoint().into());
        bucket.insert("bucket".into(), settings.bucket.clone().into());
        bucket.insert("prefix".into(), settings.prefix.clone().into());
        bucket.insert(
            "access_key_id".into(),
            settings.access_key_id.clone().into(),
        );
        bucket.insert(
            "secret_access_key".into(),
            settings.secret_access_key.clone().into(),
        );
        let mut blobs = toml::Table::new();
        blobs.insert("s3".into(), bucket.into());
        config.insert("blobs".into(), blobs.into());
    });
    let migrate = || {
        let (ok, out, err) = run(Command::new(crate::support::binary())
            .arg("migrate")
            .arg("--from")
            .arg(demo.data_dir())
            .arg("--to")
            .arg(&target));
        assert!(ok, "mftgw migrate: {err}");
        out.lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .collect::<Vec<_>>()
    };
    let first = migrate();
    let table = |report: &[serde_json::Value], name: &str| {
        report
            .iter()
            .find(|line| line["table"] == name)
            .unwrap_or_else(|| panic!("{name} in {report:?}"))
            .clone()
    };
    assert_eq!(table(&first, "transactions")["rows"], 1, "{first:?}");
    assert_eq!(table(&first, "transactions")["copied_now"], 1);
    assert!(table(&first, "users")["rows"].as_u64().unwrap() >= 4);
    let blobs = first.last().unwrap();
    assert_eq!(blobs["verified_by_sha256"], 1, "{blobs}");
    // Again: nothing is copied twice.
    let again = migrate();
    assert!(
        again
            .iter()
            .filter(|line| line.get("table").is_some())
            .all(|line| line["copied_now"] == 0),
        "{again:?}"
    );

    // The migrated installation serves from PostgreSQL and the bucket.
    let node = Node::start(&target, port, &[]);
    assert_eq!(
        wait_for_out_at(&demo, node.ftps_port, &user, &expected),
        expected
    );
    let blob_key = psql(&format!(
        "SELECT blob_key FROM {}.transactions WHERE ftp_transaction_id = '{name}'",
        schema.name
    ));
    assert_eq!(
        std::fs::read_to_string(s3.object_file(&blob_key)).unwrap(),
        "<ping/>\n"
    );
    let (ok, _, log) = curl_at(
        &demo,
        node.ftps_port,
        &user,
        "/FTPSGW.Heartbeat/after-migration-hb01.xml",
        &["-T", body.to_str().unwrap()],
    );
    assert!(ok, "an upload after the migration: {log}");
}

#[test]
fn a_node_whose_bucket_goes_away_says_so_loses_nothing_and_recovers() {
    let schema = Schema::create();
    let s3 = S3Server::start();
    let bucket_link = Cuttable::start(format!("127.0.0.1:{}", s3.port).parse().unwrap());
    let mut values = s3_environment(&s3);
    for (name, value) in &mut values {
        if *name == "MFTGW__BLOBS__S3__ENDPOINT" {
            *value = format!("\"http://127.0.0.1:{}\"", bucket_link.port);
        }
    }
    let env = borrowed(&values);
    let demo = Demo::start_with_args(&env, &["--database", &schema.url()]);
    an_outage_is_transient(&demo, &bucket_link, &["451"], "bucketless-hb01.xml");
    assert_eq!(demo.transactions(&demo.user(0).username).len(), 1);
}
