//! Delivery to a real HTTPS backend (an axum server in the test that requires a client
//! certificate): the file and its metadata arrive; a gateway without a client certificate
//! is refused and keeps retrying; and while the backend refuses connections, answers 503 and
//! hangs past the attempt timeout, 500 uploads from 20 sessions wait in the outbox and then
//! reach it in upload order per (user, service), each once per idempotency key, with status 1
//! only after the backend really took the file and never a status_0.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::backend::{Mode, TestBackend};
use crate::support::{Demo, out_names};
use mftgw_client::FtpsClient;

const MANIFEST: &str = "Manifest.MidlertidigOpbevaringOpret";

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The `[[delivery.backends]]` value for an HTTPS backend at `addr`.
fn http_backend(pki: &Path, addr: SocketAddr, with_client_certificate: bool) -> String {
    let identity = if with_client_certificate {
        format!(
            ", client_certificate = \"{}\", client_key = \"{}\"",
            pki.join("clients/voces.pem").display(),
            pki.join("clients/voces.key.pem").display()
        )
    } else {
        String::new()
    };
    format!(
        "[{{ name = \"manifest-http\", kind = \"http\", services = [\"{MANIFEST}\"], url = \"https://{addr}/deliver\", ca_file = \"{}\"{identity} }}]",
        pki.join("ca/root.pem").display()
    )
}

fn generate_pki(data: &Path) {
    mftgw_testpki::TestPki::generate(&data.join("pki")).unwrap();
}

fn deliveries(demo: &Demo) -> Vec<serde_json::Value> {
    demo.admin(&["deliveries", "list", "--limit", "100000"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Waits (up to 60 s) until `done`; panics naming `what` if it never is.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "not within 60 s: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn wait_until_delivered(demo: &Demo, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let waiting = deliveries(demo);
        if waiting.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still waiting: {} deliveries, first {}",
            waiting.len(),
            waiting[0]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_backend_receives_the_file_and_its_metadata_and_refuses_a_gateway_without_certificate()
{
    let addr = free_addr();
    let pki_dir = std::sync::Mutex::new(None);
    let mut demo = Demo::start_with_setup(
        &[
            ("MFTGW__DELIVERY__RETRY_FIRST_MS", "100"),
            ("MFTGW__DELIVERY__RETRY_MAX_SECS", "1"),
        ],
        |data| {
            generate_pki(data);
            *pki_dir.lock().unwrap() = Some(data.join("pki"));
        },
    );
    let pki = pki_dir.lock().unwrap().clone().unwrap();
    let backend = TestBackend::start(&pki, addr, Mode::Accept).await;
    demo.kill();
    demo.start_again(&[
        (
            "MFTGW__DELIVERY__BACKENDS",
            &http_backend(&pki, addr, false),
        ),
        ("MFTGW__DELIVERY__RETRY_FIRST_MS", "100"),
        ("MFTGW__DELIVERY__RETRY_MAX_SECS", "1"),
    ]);
    let user = demo.user(0);
    let mut client = demo.login(&user).await;
    let body = "<declaration>æøå</declaration>".repeat(1000);
    let reply = client
        .upload(&format!("/{MANIFEST}/ærø 1.xml"), body.as_bytes())
        .await
        .unwrap();
    assert_eq!(reply.code, 226, "{reply:?}");

    // Without a client certificate the backend refuses the TLS handshake: nothing arrives,
    // nothing is reported, the delivery waits with the reason.
    let deadline = Instant::now() + Duration::from_secs(15);
    while deliveries(&demo)[0]["last_error"].is_null() {
        assert!(Instant::now() < deadline, "no delivery attempt was made");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(backend.received().is_empty());
    assert!(out_names(&demo, &user).is_empty());
    let waiting = deliveries(&demo);
    assert_eq!(waiting.len(), 1);
    assert!(waiting[0]["attempts"].as_u64().unwrap() >= 1);
    assert!(
        waiting[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("POST https://"),
        "{}",
        waiting[0]
    );

    // With its certificate configured, the gateway delivers.
    demo.kill();
    demo.start_again(&[("MFTGW__DELIVERY__BACKENDS", &http_backend(&pki, addr, true))]);
    wait_until_delivered(&demo, Duration::from_secs(30));
    let received = backend.received();
    assert_eq!(received.len(), 1);
    let transaction = &demo.transactions(&user.username)[0];
    let delivery = &received[0];
    assert_eq!(delivery.body, body.as_bytes());
    assert_eq!(
        delivery.idempotency_key,
        transaction["skat_transaction_id"].as_str().unwrap()
    );
    assert_eq!(delivery.ftp_transaction_id, "%C3%A6r%C3%B8%201.xml");
    assert_eq!(delivery.user, user.username);
    assert_eq!(delivery.service, MANIFEST);
    assert_eq!(
        delivery.sha256_header,
        transaction["sha256"].as_str().unwrap()
    );
    assert_eq!(transaction["state"], "delivered");
    assert_eq!(
        out_names(&demo, &user),
        [format!("status_{MANIFEST}_ærø 1.xml_1.xml")]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_of_every_kind_loses_nothing_and_keeps_the_order() {
    let addr = free_addr();
    let pki_dir = std::sync::Mutex::new(None);
    let demo = Demo::start_with_setup(&[], |data| {
        generate_pki(data);
        *pki_dir.lock().unwrap() = Some(data.join("pki"));
    });
    let pki = pki_dir.lock().unwrap().clone().unwrap();
    let users = demo.users();
    for user in &users[1..] {
        demo.admin(&["role", "grant", &user.username, MANIFEST]);
    }
    let mut demo = demo;
    demo.kill();
    demo.start_again(&[
        ("MFTGW__DELIVERY__BACKENDS", &http_backend(&pki, addr, true)),
        ("MFTGW__DELIVERY__RETRY_FIRST_MS", "100"),
        ("MFTGW__DELIVERY__RETRY_MAX_SECS", "1"),
        ("MFTGW__DELIVERY__ATTEMPT_TIMEOUT_SECS", "1"),
    ]);

    // 20 sessions, 5 per user, 25 files each; the backend is not even listening yet.
    let sessions: Vec<_> = (0..20)
        .map(|session| {
            let user = users[session % users.len()].clone();
            let (addr, tls) = (demo.addr(), demo.tls(&user));
            tokio::spawn(async move {
                let mut client = FtpsClient::login(addr, tls, &user.username, &user.password)
                    .await
                    .unwrap();
                for n in 0..25 {
                    let body = format!("<session>{session}</session><n>{n}</n>");
                    let reply = client
                        .upload(
                            &format!("/{MANIFEST}/s{session:02}-{n:02}.xml"),
                            body.as_bytes(),
                        )
                        .await
                        .unwrap();
                    assert_eq!(reply.code, 226, "{reply:?}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();

    // Each phase lasts until the gateway has met it: an attempt failed on the closed port,
    // a 503 answered, an attempt timed out against the hanging backend.
    let failed_with = |text: &str| {
        deliveries(&demo)
            .iter()
            .any(|d| d["last_error"].as_str().is_some_and(|e| e.contains(text)))
    };
    until("an attempt on the closed port", || failed_with("POST")).await;
    let backend = TestBackend::start(&pki, addr, Mode::Unavailable).await;
    until("a 503 answered", || failed_with("HTTP 503")).await;
    backend.set_mode(Mode::Hang(Duration::from_secs(3)));
    until("an attempt timed out", || failed_with("no answer within")).await;
    assert!(
        users.iter().all(|user| out_names(&demo, user).is_empty()),
        "no status while the backend is unavailable"
    );
    backend.set_mode(Mode::Accept);
    for session in sessions {
        session.await.unwrap();
    }
    wait_until_delivered(&demo, Duration::from_secs(120));

    let mut transactions = Vec::new();
    for user in &users {
        transactions.extend(demo.transactions(&user.username));
    }
    assert_eq!(transactions.len(), 500);
    let received = backend.received();
    let accepted: Vec<_> = received
        .iter()
        .filter(|r| r.answered.is_success())
        .collect();
    assert!(
        received.iter().any(|r| !r.answered.is_success()),
        "the 503 phase was not reached"
    );

    // Every transaction reached the backend; the backend saw nothing else.
    let keys: BTreeSet<&str> = accepted
        .iter()
        .map(|r| r.idempotency_key.as_str())
        .collect();
    let expected: BTreeSet<&str> = transactions
        .iter()
        .map(|t| t["skat_transaction_id"].as_str().unwrap())
        .collect();
    assert_eq!(keys, expected);

    // In upload order per (user, service), counting each key at its first arrival. The
    // uploads of one session come one after another, so their order is the clients' own
    // (across sessions of one user, the order is that of the commits).
    let mut first_arrival: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, r) in received.iter().enumerate() {
        first_arrival
            .entry(r.idempotency_key.as_str())
            .or_insert(index);
    }
    let mut by_session: BTreeMap<&str, Vec<&serde_json::Value>> = BTreeMap::new();
    for t in &transactions {
        by_session
            .entry(&t["ftp_transaction_id"].as_str().unwrap()[..3])
            .or_default()
            .push(t);
    }
    for (session, mut uploads) in by_session {
        uploads.sort_by_key(|t| t["ftp_transaction_id"].as_str().unwrap().to_string());
        let arrivals: Vec<usize> = uploads
            .iter()
            .map(|t| first_arrival[t["skat_transaction_id"].as_str().unwrap()])
            .collect();
        assert!(
            arrivals.is_sorted(),
            "session {session}: delivered out of upload order: {arrivals:?}"
        );
    }

    // Status 1 only after the backend took the file, and never a status_0.
    let taken_at: BTreeMap<&str, time::OffsetDateTime> = accepted
        .iter()
        .map(|r| (r.idempotency_key.as_str(), r.at))
        .collect();
    for t in &transactions {
        assert_eq!(t["state"], "delivered");
        let history = t["history"].as_array().unwrap();
        assert_eq!(history.len(), 1, "{t}");
        let status_1_at = time::OffsetDateTime::parse(
            history[0]["at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let key = t["skat_transaction_id"].as_str().unwrap();
        assert!(
            status_1_at >= taken_at[key],
            "{key}: status 1 before the backend took it"
        );
    }
    for user in &users {
        let out = out_names(&demo, user);
        assert_eq!(out.len(), 125);
        assert!(out.iter().all(|name| name.ends_with("_1.xml")), "{out:?}");
    }
}

/// Starts the demo with an HTTPS backend for `MANIFEST` at `addr` (and the demo's PKI placed
/// beforehand); returns the demo and the PKI directory.
fn demo_with_http_backend(addr: SocketAddr, env: &[(&str, &str)]) -> (Demo, std::path::PathBuf) {
    let pki_dir = std::sync::Mutex::new(None);
    let mut demo = Demo::start_with_setup(&[], |data| {
        generate_pki(data);
        *pki_dir.lock().unwrap() = Some(data.join("pki"));
    });
    let pki = pki_dir.lock().unwrap().clone().unwrap();
    let backends = http_backend(&pki, addr, true);
    let mut env = env.to_vec();
    env.push(("MFTGW__DELIVERY__BACKENDS", &backends));
    demo.kill();
    demo.start_again(&env);
    (demo, pki)
}

async fn upload_all(demo: &Demo, names: &[String], body: &[u8]) {
    let user = demo.user(0);
    let mut client = demo.login(&user).await;
    for name in names {
        let reply = client
            .upload(&format!("/{MANIFEST}/{name}"), body)
            .await
            .unwrap();
        assert_eq!(reply.code, 226, "{reply:?}");
    }
}

/// The gateway is killed while a delivery is in flight; after the restart every upload is
/// delivered, and each has exactly one status_1.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_delivery_loses_nothing_and_duplicates_no_status() {
    let addr = free_addr();
    let (mut demo, pki) = demo_with_http_backend(addr, &[]);
    let backend = TestBackend::start(&pki, addr, Mode::Hang(Duration::from_secs(5))).await;
    let names: Vec<String> = (0..10).map(|n| format!("k-{n}.xml")).collect();
    upload_all(&demo, &names, b"<k/>").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend.received().is_empty() {
        assert!(Instant::now() < deadline, "no delivery started");
        std::thread::sleep(Duration::from_millis(50));
    }
    demo.kill();
    backend.set_mode(Mode::Accept);
    demo.start_again(&[("MFTGW__DELIVERY__BACKENDS", &http_backend(&pki, addr, true))]);
    wait_until_delivered(&demo, Duration::from_secs(60));

    let user = demo.user(0);
    let out = out_names(&demo, &user);
    let expected: Vec<String> = names
        .iter()
        .map(|name| format!("status_{MANIFEST}_{name}_1.xml"))
        .collect();
    assert_eq!(out, expected, "one status_1 per upload, in order");
    let keys: BTreeSet<String> = backend
        .received()
        .iter()
        .filter(|r| r.answered.is_success())
        .map(|r| r.idempotency_key.clone())
        .collect();
    assert_eq!(keys.len(), 10, "every upload reached the backend");
}

/// A backend that reads the file slowly makes the attempt time out, and one that redirects
/// has not taken the file: neither is a delivery; both are retried.
#[tokio::test(flavor = "multi_thread")]
async fn a_backend_that_reads_slowly_or_redirects_is_a_failed_attempt_until_it_takes_the_file() {
    let addr = free_addr();
    let (demo, pki) = demo_with_http_backend(
        addr,
        &[
            ("MFTGW__DELIVERY__ATTEMPT_TIMEOUT_SECS", "1"),
            ("MFTGW__DELIVERY__RETRY_FIRST_MS", "200"),
            ("MFTGW__DELIVERY__RETRY_MAX_SECS", "1"),
        ],
    );
    let backend = TestBackend::start(&pki, addr, Mode::Drip(Duration::from_millis(300))).await;
    let body: Vec<u8> = (0..4_000_000u32).map(|n| (n % 253) as u8).collect();
    upload_all(&demo, &["big.bin".to_string()], &body).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while deliveries(&demo)[0]["last_error"].is_null() {
        assert!(
            Instant::now() < deadline,
            "no attempt finished against the dripping backend"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let user = demo.user(0);
    assert!(
        out_names(&demo, &user).is_empty(),
        "no status while the backend drips"
    );
    let waiting = deliveries(&demo);
    assert!(
        waiting[0]["attempts"].as_u64().unwrap() >= 1,
        "{}",
        waiting[0]
    );
    assert!(
        waiting[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("no answer within 1 s"),
        "{}",
        waiting[0]
    );

    // A redirect is no delivery either (followed, it would turn the POST into a GET). Wait
    // for an attempt to meet it (one may still be dripping), then check nothing was reported.
    backend.set_mode(Mode::Redirect);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let waiting = deliveries(&demo);
        if waiting[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("HTTP 302")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no attempt met the redirect: {}",
            waiting[0]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        out_names(&demo, &user).is_empty(),
        "a redirect counted as a delivery"
    );

    backend.set_mode(Mode::Accept);
    wait_until_delivered(&demo, Duration::from_secs(30));
    assert_eq!(
        out_names(&demo, &user),
        [format!("status_{MANIFEST}_big.bin_1.xml")]
    );
    let delivered: Vec<_> = backend
        .received()
        .into_iter()
        .filter(|r| r.answered.is_success())
        .collect();
    assert!(delivered.iter().any(|r| r.body == body));
}
