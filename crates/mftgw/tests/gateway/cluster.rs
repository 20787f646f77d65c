//! The cluster demo, `mftgw demo --nodes 3`: three gateway processes behind Debian's HAProxy
//! (PROXY protocol v2 to each), on one PostgreSQL schema of this test's own and one bucket of
//! a real S3 server (`s3s-fs`). Sessions through the balancer upload to the heartbeat and the
//! simulated backends; every status file appears exactly once and every node shows it; a
//! node killed with SIGKILL loses nothing, and so does a cut to the database or the bucket.
//!
//! Uploads whose outcome the client could not see (its connection broke before the reply)
//! are never sent again under the same name: each such name must end up either absent or
//! answered once, like any other.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mftgw::demo::DemoNode;
use mftgw_client::{DataOptions, FtpsClient};
use serde_json::Value;

use crate::production_stores::{Cuttable, Schema, readiness, readiness_at};
use crate::support::portal::Portal;
use crate::support::{Demo, DemoUser, curl_at, free_ports, heartbeat_files, nlst, run};

const MANIFEST: &str = "Manifest.MidlertidigOpbevaringOpret";
const HEARTBEAT: &str = "FTPSGW.Heartbeat";
/// Below the kernel's ephemeral ports, and so apart from every other test's ports: HAProxy
/// holds all of them.
const PASSIVE: &str = "31000-31299";
const LEGACY_PASSIVE: &str = "31300-31389";
/// A client whose address the nodes can tell from the balancer's (127.0.0.2) and from the
/// other sessions' (127.0.0.1).
const REAL_CLIENT: &str = "127.0.0.5";
/// Another client's address, to try a data connection from.
const OTHER_CLIENT: &str = "127.0.0.6";

/// Starts the cluster demo on `database`, with `env` for the demo and every node.
fn start_cluster(database: &str, env: &[(&str, &str)]) -> Demo {
    let [s3_port] = free_ports(0);
    let s3_port = s3_port.to_string();
    let demo = Demo::start_with_args(
        env,
        &[
            "--nodes",
            "3",
            "--database",
            database,
            "--s3-port",
            &s3_port,
            "--passive-ports",
            PASSIVE,
            "--legacy-passive-ports",
            LEGACY_PASSIVE,
        ],
    );
    let nodes = &demo.manifest().nodes;
    assert_eq!(nodes.len(), 3, "demo.json lists the nodes");
    let hosts: BTreeSet<&str> = nodes.iter().map(|node| node.ftps.host.as_str()).collect();
    assert_eq!(
        hosts,
        BTreeSet::from(["127.0.0.11", "127.0.0.12", "127.0.0.13"])
    );
    demo
}

/// What a user's upload of `name` to `service` makes in `/out`.
fn answers(service: &str, name: &str) -> Vec<String> {
    let status = |code: u8| format!("status_{service}_{name}_{code}.xml");
    match service {
        HEARTBEAT => heartbeat_files(name),
        MANIFEST => vec![
            status(1),
            status(2),
            format!("{MANIFEST}_{name}_response.txt"),
            status(3),
        ],
        "FATCA" => vec![status(1), status(0)],
        other => panic!("no answers known for {other}"),
    }
}

/// The demo user `index`'s service besides the heartbeat that a simulated backend answers
/// (the others' are eKapital services, whose record format a test file does not have).
fn simulated_service(index: usize) -> Option<&'static str> {
    [Some(MANIFEST), None, Some("FATCA"), None][index]
}

/// One upload of the load: who, where, under which name.
#[derive(Debug, Clone)]
struct Upload {
    user: usize,
    service: &'static str,
    name: String,
}

/// What came of the uploads: answered `226` (`confirmed`), or the connection broke before
/// any reply (`unknown`: the name may or may not be a transaction). Transient refusals
/// (`421`, `451`, …) are retried under the same name and counted.
#[derive(Debug, Default)]
struct Outcomes {
    confirmed: Vec<Upload>,
    unknown: Vec<Upload>,
    transient: usize,
    /// When each `226` came: none may come while the database or the bucket is cut off.
    confirmed_at: Vec<Instant>,
}

/// `sessions` sessions through the balancer, `files` uploads in all, a third of each
/// session's to its user's simulated backend, the rest heartbeats, each session waiting
/// `pace` after each upload; `confirmed` counts the `226`s as they come. A session that
/// breaks logs in again (through the balancer, to whichever node) and goes on with a new
/// name.
async fn upload_load(
    demo: &Demo,
    sessions: usize,
    files: usize,
    tag: &str,
    pace: Duration,
    confirmed: &Arc<AtomicUsize>,
) -> Outcomes {
    let users: Vec<DemoUser> = demo.users();
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let mut tasks = tokio::task::JoinSet::new();
    for session in 0..sessions {
        let user_index = session % users.len();
        let user = users[user_index].clone();
        let tls = demo.tls(&user);
        let balancer = demo.addr();
        let outcomes = Arc::clone(&outcomes);
        let confirmed = Arc::clone(confirmed);
        let count = files / sessions + usize::from(session < files % sessions);
        let tag = tag.to_owned();
        tasks.spawn(async move {
            let mut client: Option<FtpsClient> = None;
            let deadline = Instant::now() + Duration::from_secs(300);
            let mut attempt = 0;
            let mut done = 0;
            while done < count {
                assert!(
                    Instant::now() < deadline,
                    "session {session} did not finish"
                );
                let service = match simulated_service(user_index) {
                    Some(simulated) if done % 3 == 2 => simulated,
                    _ => HEARTBEAT,
                };
                let upload = Upload {
                    user: user_index,
                    service,
                    name: format!("{tag}{session:02}-{done:03}-{attempt}-hb01.xml"),
                };
                if client.is_none() {
                    match FtpsClient::login(
                        balancer,
                        Arc::clone(&tls),
                        &user.username,
                        &user.password,
                    )
                    .await
                    {
                        Ok(logged_in) => client = Some(logged_in),
                        Err(_) => {
                            outcomes.lock().unwrap().transient += 1;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                    }
                }
                let session_client = client.as_mut().expect("logged in above");
                let path = format!("/{service}/{}", upload.name);
                match session_client.upload(&path, b"<ping/>\n").await {
                    Ok(reply) if reply.code == 226 => {
                        assert!(reply.text.contains("transaction"), "{reply:?}");
                        {
                            let mut seen = outcomes.lock().unwrap();
                            seen.confirmed.push(upload);
                            seen.confirmed_at.push(Instant::now());
                        }
                        confirmed.fetch_add(1, Ordering::SeqCst);
                        done += 1;
                        attempt = 0;
                        tokio::time::sleep(pace).await;
                    }
                    Ok(reply) if (400..500).contains(&reply.code) => {
                        // Refused and not recorded: the same name again.
                        outcomes.lock().unwrap().transient += 1;
                        client = None;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Ok(reply) => panic!("{path}: {reply:?}"),
                    Err(_) => {
                        // No reply: the upload may have been committed. Never that name again.
                        outcomes.lock().unwrap().unknown.push(upload);
                        client = None;
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            if let Some(mut client) = client {
                let _ = client.command("QUIT").await;
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("a session panicked");
    }
    Arc::into_inner(outcomes).unwrap().into_inner().unwrap()
}

/// Every name in `/out` of `user`, as the node at `node` lists it.
async fn out_at(demo: &Demo, node: SocketAddr, user: &DemoUser) -> Vec<String> {
    let mut client = FtpsClient::login(node, demo.tls(user), &user.username, &user.password)
        .await
        .unwrap_or_else(|error| panic!("login on {node}: {error}"));
    let names = nlst(&mut client, "/out").await;
    let _ = client.command("QUIT").await;
    names
}

fn node_address(node: &DemoNode) -> SocketAddr {
    SocketAddr::new(node.ftps.host.parse().unwrap(), node.ftps.port)
}

/// The direct FTPS addresses of the demo's nodes but `down`.
fn nodes_but(demo: &Demo, down: Option<&str>) -> Vec<SocketAddr> {
    demo.manifest()
        .nodes
        .iter()
        .filter(|node| Some(node.node_id.as_str()) != down)
        .map(node_address)
        .collect()
}

/// Waits until `/out` of every user, as the first of `nodes` lists it, holds the answers of
/// every `confirmed` upload; then checks that each of `nodes` lists the same, each answer
/// exactly once, and every `unknown` upload either answered in full or absent.
async fn every_answer_once_on(demo: &Demo, outcomes: &Outcomes, nodes: &[SocketAddr]) {
    let users = demo.users();
    let mut expected: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for upload in &outcomes.confirmed {
        expected
            .entry(upload.user)
            .or_default()
            .extend(answers(upload.service, &upload.name));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for (&user, files) in &expected {
        loop {
            let listed: BTreeSet<String> = out_at(demo, nodes[0], &users[user])
                .await
                .into_iter()
                .collect();
            let missing: Vec<&String> = files.iter().filter(|f| !listed.contains(*f)).collect();
            if missing.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {} answers missing for {}, e.g. {:?}",
                missing.len(),
                files.len(),
                users[user].username,
                &missing[..missing.len().min(5)]
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    for (user_index, user) in users.iter().enumerate() {
        let mut listings = Vec::new();
        for node in nodes {
            listings.push(out_at(demo, *node, user).await);
        }
        for (node, listing) in nodes.iter().zip(&listings) {
            assert_eq!(listing, &listings[0], "node {node} lists another /out");
            let distinct: BTreeSet<&String> = listing.iter().collect();
            assert_eq!(distinct.len(), listing.len(), "a file twice in {listing:?}");
        }
        let listed: BTreeSet<&String> = listings[0].iter().collect();
        for upload in outcomes.unknown.iter().filter(|u| u.user == user_index) {
            let answers = answers(upload.service, &upload.name);
            let present = answers.iter().filter(|a| listed.contains(a)).count();
            assert!(
                present == 0 || present == answers.len(),
                "{} (no reply seen) is half answered: {present} of {answers:?}",
                upload.name
            );
        }
    }
}

/// Per user, the transactions the store holds (newest first), with their node-named ids.
fn transactions_by_user(demo: &Demo) -> BTreeMap<usize, Vec<Value>> {
    demo.users()
        .iter()
        .enumerate()
        .map(|(index, user)| (index, demo.transactions(&user.username)))
        .collect()
}

/// One transaction per confirmed upload, none for a name never sent, at most one per
/// unknown name; each (user, service)'s status 1 in upload order (FIFO, across nodes).
fn one_transaction_each_in_order(demo: &Demo, outcomes: &Outcomes) -> BTreeSet<String> {
    let mut nodes_seen = BTreeSet::new();
    for (user, transactions) in transactions_by_user(demo) {
        let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
        for transaction in &transactions {
            *by_name
                .entry(transaction["ftp_transaction_id"].as_str().unwrap())
                .or_default() += 1;
            let id = transaction["skat_transaction_id"].as_str().unwrap();
            nodes_seen.insert(id.split('_').nth(1).unwrap().to_owned());
        }
        for upload in outcomes.confirmed.iter().filter(|u| u.user == user) {
            assert_eq!(by_name.get(upload.name.as_str()), Some(&1), "{upload:?}");
        }
        let sent: BTreeSet<&str> = outcomes
            .confirmed
            .iter()
            .chain(&outcomes.unknown)
            .filter(|u| u.user == user)
            .map(|u| u.name.as_str())
            .collect();
        for (name, count) in &by_name {
            assert!(sent.contains(name), "a transaction {name} nobody sent");
            assert_eq!(*count, 1, "{name} recorded {count} times");
        }
        // FIFO: in upload order (the listing is newest first), status 1 never earlier than
        // the one before.
        let mut by_service: BTreeMap<&str, Vec<(&str, time::OffsetDateTime)>> = BTreeMap::new();
        for transaction in transactions.iter().rev() {
            let delivered = transaction["history"]
                .as_array()
                .unwrap()
                .iter()
                .find(|step| step["status"] == "1")
                .map(|step| {
                    let at = step["at"].as_str().unwrap();
                    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                        .unwrap()
                });
            if let Some(delivered) = delivered {
                by_service
                    .entry(transaction["service"].as_str().unwrap())
                    .or_default()
                    .push((
                        transaction["ftp_transaction_id"].as_str().unwrap(),
                        delivered,
                    ));
            }
        }
        for (service, deliveries) in by_service {
            for pair in deliveries.windows(2) {
                assert!(
                    pair[0].1 <= pair[1].1,
                    "{service}: {} delivered before the earlier {}",
                    pair[1].0,
                    pair[0].0
                );
            }
        }
    }
    nodes_seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_behind_haproxy_answer_a_thousand_uploads_once_each_on_every_node() {
    let schema = Schema::create();
    let demo = start_cluster(&schema.url(), &[]);
    let outcomes = upload_load(&demo, 30, 1000, "load", Duration::ZERO, &Arc::default()).await;
    assert_eq!(outcomes.confirmed.len(), 1000);
    assert!(outcomes.unknown.is_empty(), "{:?}", outcomes.unknown);
    every_answer_once_on(&demo, &outcomes, &nodes_but(&demo, None)).await;
    let nodes = one_transaction_each_in_order(&demo, &outcomes);
    assert_eq!(
        nodes,
        BTreeSet::from(["n1".to_owned(), "n2".to_owned(), "n3".to_owned()]),
        "the balancer spread the sessions over every node"
    );

    // A client on its own address: through the balancer, a node sees that address, on the
    // control and the data connection alike (curl binds both to it).
    let user = demo.user(0);
    let body = demo.dir.path().join("ping.xml");
    std::fs::write(&body, "<ping/>\n").unwrap();
    let (ok, _, log) = curl_at(
        &demo,
        demo.port,
        &user,
        &format!("/{HEARTBEAT}/real-client-hb01.xml"),
        &["--interface", REAL_CLIENT, "-T", body.to_str().unwrap()],
    );
    assert!(ok, "curl from {REAL_CLIENT} through the balancer: {log}");
    let login = demo.wait_for_audit_where("a login from the real client", |event| {
        event["action"] == "ftps.login" && event["peer_ip"] == REAL_CLIENT
    });
    assert_eq!(login["outcome"], "allowed", "{login}");
    // A data connection from another address than the control connection's is refused, and
    // audited with that address, though both reach the node from the balancer; the session
    // still gets its own.
    let (mut client, greeting) =
        FtpsClient::connect_from(demo.addr(), Some(REAL_CLIENT.parse().unwrap()))
            .await
            .unwrap();
    assert_eq!(greeting.code, 220);
    client.auth_tls(demo.tls(&user)).await.unwrap();
    client
        .command(&format!("USER {}", user.username))
        .await
        .unwrap();
    let reply = client
        .command(&format!("PASS {}", user.password))
        .await
        .unwrap();
    assert_eq!(reply.code, 230, "{reply:?}");
    client.command("PBSZ 0").await.unwrap();
    client.command("PROT P").await.unwrap();
    let data_address = client.epsv().await.unwrap();
    let from = |address: &str| DataOptions {
        source_ip: Some(address.parse().unwrap()),
        ..DataOptions::default()
    };
    let _refused = client.open_data(data_address, &from(OTHER_CLIENT)).await;
    let own = client
        .open_data(data_address, &from(REAL_CLIENT))
        .await
        .unwrap();
    let reply = client.command("NLST /out").await.unwrap();
    assert_eq!(reply.code, 150, "{reply:?}");
    let mftgw_client::DataConnection::Tls(mut own) = own else {
        panic!("a TLS data connection")
    };
    let mut listing = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut own, &mut listing)
        .await
        .unwrap();
    assert!(listing.contains("real-client-hb01.xml"), "{listing}");
    assert_eq!(client.read_reply().await.unwrap().code, 226);
    let refusal = demo.wait_for_audit_where("the other address's data connection", |event| {
        event["action"] == "ftps.data" && event["peer_ip"] == OTHER_CLIENT
    });
    assert_eq!(refusal["outcome"], "refused", "{refusal}");
}

/// Every listener of the single-node demo answers at the same address through the balancer
/// (the legacy listener, the EMCS WSDL, the API), and the portal's sessions are in the
/// shared store: one begun on a node (a first login, which leads to the password change)
/// holds on the other nodes and through the balancer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_answers_through_the_balancer_and_portal_sessions_hold_on_every_node() {
    let schema = Schema::create();
    let demo = start_cluster(&schema.url(), &[]);
    let (ok, listing, log) = curl_at(&demo, demo.legacy_port(), &demo.user(0), "/", &[]);
    assert!(ok, "the legacy listener through the balancer: {log}");
    assert!(!listing.is_empty());
    let emcs = demo.manifest().emcs.as_ref().expect("the demo serves EMCS");
    let wsdl_url = emcs.wsdl_urls.values().next().unwrap();
    let (ok, wsdl, log) = run(Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--cacert"])
        .arg(demo.ca())
        .arg(wsdl_url));
    assert!(ok && wsdl.contains("definitions"), "{wsdl_url}: {log}");
    assert_eq!(readiness(&demo), "200", "the API through the balancer");

    let nodes = &demo.manifest().nodes;
    let on = |node: &DemoNode| node.portal_url.trim_end_matches('/').to_owned();
    let mut portal = Portal::new(&demo, &demo.certificate("unregistered"));
    portal.base = on(&nodes[0]);
    let csrf = portal.get("/").await.csrf();
    let username = portal.username.clone();
    let page = portal
        .post("/login", &[("csrf", &csrf), ("password", &username)])
        .await;
    assert_eq!(
        page.location(),
        "/password",
        "a first login on {}",
        nodes[0].node_id
    );
    for node in &nodes[1..] {
        portal.base = on(node);
        assert_eq!(
            portal.get("/").await.location(),
            "/password",
            "on {}",
            node.node_id
        );
    }
    portal.base = demo.portal_url();
    assert_eq!(
        portal.get("/").await.location(),
        "/password",
        "through the balancer"
    );
    portal.cookies.clear();
    portal
        .get("/")
        .await
        .assert(reqwest::StatusCode::OK, "id=\"password\"");
}

/// A node started again by hand, as an operator would after it died.
struct Restarted {
    child: Child,
}

impl Restarted {
    fn start(node: &DemoNode, env: &[(&str, &str)]) -> Restarted {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&node.log)
            .unwrap();
        let mut command = Command::new(crate::support::binary());
        command
            .arg("--config")
            .arg(&node.config)
            .arg("serve")
            .env("MFTGW_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(node_address(node)).is_err() {
            assert!(Instant::now() < deadline, "the node did not start again");
            std::thread::sleep(Duration::from_millis(50));
        }
        Restarted { child }
    }
}

impl Drop for Restarted {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kill_9(pid: u32) {
    let (ok, _, err) = run(Command::new("kill").args(["-9", &pid.to_string()]));
    assert!(ok, "kill -9 {pid}: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_run_loses_nothing_and_its_deliveries_are_taken_over() {
    let schema = Schema::create();
    // A short lease, so that the others take the killed node's claims over within seconds.
    let env = [("MFTGW__DELIVERY__LEASE_SECS", "3")];
    let demo = start_cluster(&schema.url(), &env);
    let victim = &demo.manifest().nodes[1];
    let confirmed = Arc::default();
    let load = upload_load(&demo, 30, 600, "kill", Duration::ZERO, &confirmed);
    let killer = async {
        // Mid-run: a quarter of the uploads confirmed, the others being sent, and the
        // confirmed ones' deliveries under way.
        let deadline = Instant::now() + Duration::from_secs(60);
        while confirmed.load(Ordering::SeqCst) < 150 {
            assert!(
                Instant::now() < deadline,
                "150 uploads not confirmed in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        kill_9(victim.pid);
    };
    let (outcomes, ()) = tokio::join!(load, killer);
    assert_eq!(outcomes.confirmed.len(), 600);
    eprintln!(
        "uploads without a reply: {}, refused and sent again: {}",
        outcomes.unknown.len(),
        outcomes.transient
    );
    assert!(
        !outcomes.unknown.is_empty() || outcomes.transient > 0,
        "the kill broke no session: it came after the load"
    );
    // Without the killed node, the others answer everything, its claims included.
    every_answer_once_on(&demo, &outcomes, &nodes_but(&demo, Some(&victim.node_id))).await;
    let nodes = one_transaction_each_in_order(&demo, &outcomes);
    assert!(nodes.contains(&victim.node_id), "{nodes:?}");
    // Started again, it serves the same /out, and nothing is delivered twice.
    let _restarted = Restarted::start(victim, &env);
    every_answer_once_on(&demo, &outcomes, &nodes_but(&demo, None)).await;
    one_transaction_each_in_order(&demo, &outcomes);
}

const UPLOADS_ACROSS_THE_CUTS: usize = 750;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_the_database_then_the_bucket_for_30_s_the_nodes_give_no_false_226_and_recover() {
    let schema = Schema::create();
    let (database_link, url) = schema.behind_a_cuttable_link();
    let [s3_port] = free_ports(0);
    let bucket_link = Cuttable::start(SocketAddr::from(([127, 0, 0, 1], s3_port)));
    let endpoint = format!("\"http://127.0.0.1:{}\"", bucket_link.port);
    let env = [("MFTGW__BLOBS__S3__ENDPOINT", endpoint.as_str())];
    let demo = Demo::start_with_args(
        &env,
        &[
            "--nodes",
            "3",
            "--database",
            &url,
            "--s3-port",
            &s3_port.to_string(),
            "--passive-ports",
            PASSIVE,
            "--legacy-passive-ports",
            LEGACY_PASSIVE,
        ],
    );
    // About 30 uploads a second, before, between and after the outages.
    let confirmed = Arc::default();
    let load = upload_load(
        &demo,
        30,
        UPLOADS_ACROSS_THE_CUTS,
        "cut",
        Duration::from_secs(1),
        &confirmed,
    );
    let outages = async {
        let mut windows = Vec::new();
        for link in [&database_link, &bucket_link] {
            tokio::time::sleep(Duration::from_secs(5)).await;
            link.cut();
            let cut_at = Instant::now();
            tokio::time::sleep(Duration::from_secs(30)).await;
            link.restore();
            windows.push((cut_at, Instant::now()));
        }
        windows
    };
    let (outcomes, windows) = tokio::join!(load, outages);
    assert_eq!(outcomes.confirmed.len(), UPLOADS_ACROSS_THE_CUTS);
    eprintln!(
        "uploads without a reply: {}, refused and sent again: {}",
        outcomes.unknown.len(),
        outcomes.transient
    );
    assert!(outcomes.transient > 0, "the outages refused nothing");
    // The first second of a cut may still see a commit that began before it.
    for (cut_at, restored_at) in &windows {
        let during = outcomes
            .confirmed_at
            .iter()
            .filter(|at| **at > *cut_at + Duration::from_secs(1) && *at < restored_at)
            .count();
        assert_eq!(during, 0, "226 while a store was cut off");
    }
    for node in &demo.manifest().nodes {
        assert_eq!(
            readiness_at(&demo, &node.api_url),
            "200",
            "{}",
            node.node_id
        );
    }
    assert_eq!(readiness(&demo), "200");
    every_answer_once_on(&demo, &outcomes, &nodes_but(&demo, None)).await;
    one_transaction_each_in_order(&demo, &outcomes);
}
