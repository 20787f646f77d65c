//! Delivery to backends through the outbox: the demo's simulated backends (answer, reject),
//! a spool directory, and a backend that is down while uploads keep arriving: nothing is lost,
//! no status_0 appears, and when it is back everything is delivered in upload order per
//! (user, service). Operators see waiting deliveries and can retry one at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::{Demo, curl, out_names, wait_for_out, xml_element};
use mftgw_client::FtpsClient;

const MANIFEST: &str = "Manifest.MidlertidigOpbevaringOpret";

fn statuses(service: &str, name: &str, codes: &[u8]) -> Vec<String> {
    codes
        .iter()
        .map(|code| format!("status_{service}_{name}_{code}.xml"))
        .collect()
}

fn deliveries(demo: &Demo) -> Vec<serde_json::Value> {
    demo.admin(&["deliveries", "list", "--limit", "10000"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn simulated_backends_answer_accept_or_reject() {
    let demo = Demo::start();
    let manifest_user = demo.user(0);
    let fatca_user = demo.user(2);
    let mut client = demo.login(&manifest_user).await;
    let reply = client
        .upload(&format!("/{MANIFEST}/decl-1.xml"), b"<decl/>")
        .await
        .unwrap();
    assert_eq!(reply.code, 226, "{reply:?}");
    let response = format!("{MANIFEST}_decl-1.xml_response.txt");
    let mut expected = statuses(MANIFEST, "decl-1.xml", &[1, 2]);
    expected.push(response.clone());
    expected.extend(statuses(MANIFEST, "decl-1.xml", &[3]));
    assert_eq!(wait_for_out(&demo, &manifest_user, &expected), expected);
    let (ok, status_3, err) = curl(&demo, &manifest_user, &format!("/out/{}", expected[3]), &[]);
    assert!(ok, "{err}");
    let response_element = &status_3[status_3.find("<response>").unwrap()..];
    assert_eq!(
        xml_element(response_element, "filename").unwrap(),
        format!("/out/{response}")
    );

    let mut client = demo.login(&fatca_user).await;
    let reply = client
        .upload("/FATCA/report-1.xml", b"<fatca/>")
        .await
        .unwrap();
    assert_eq!(reply.code, 226, "{reply:?}");
    let expected = statuses("FATCA", "report-1.xml", &[1, 0]);
    assert_eq!(wait_for_out(&demo, &fatca_user, &expected), expected);
    let (ok, status_0, err) = curl(&demo, &fatca_user, &format!("/out/{}", expected[1]), &[]);
    assert!(ok, "{err}");
    assert_eq!(
        xml_element(&status_0, "error.code").as_deref(),
        Some("DEMO_BACKEND_REJECTED")
    );
    assert_eq!(
        xml_element(&status_0, "status.code").as_deref(),
        Some("ERROR")
    );
    let transactions = demo.transactions(&fatca_user.username);
    assert_eq!(transactions[0]["state"], "rejected");
    assert!(deliveries(&demo).is_empty(), "no work is left");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spool_backend_receives_each_file_with_its_metadata() {
    let spool = tempfile::tempdir().unwrap();
    let backends = format!(
        "[{{ name = \"manifest-spool\", kind = \"spool\", services = [\"{MANIFEST}\"], directory = \"{}\" }}]",
        spool.path().display()
    );
    let demo = Demo::start_with_env(&[("MFTGW__DELIVERY__BACKENDS", &backends)]);
    let user = demo.user(0);
    let mut client = demo.login(&user).await;
    let bodies: Vec<Vec<u8>> = (0..3u8)
        .map(|n| vec![b'a' + n; 1000 * (usize::from(n) + 1)])
        .collect();
    for (n, body) in bodies.iter().enumerate() {
        let reply = client
            .upload(&format!("/{MANIFEST}/spooled-{n}.xml"), body)
            .await
            .unwrap();
        assert_eq!(reply.code, 226, "{reply:?}");
    }
    let names: Vec<String> = (0..3).map(|n| format!("spooled-{n}.xml")).collect();
    let expected: Vec<String> = names
        .iter()
        .flat_map(|name| statuses(MANIFEST, name, &[1]))
        .collect();
    wait_for_out(&demo, &user, &expected);

    for (name, body) in names.iter().zip(&bodies) {
        let transaction = demo
            .transactions(&user.username)
            .into_iter()
            .find(|t| t["ftp_transaction_id"] == name.as_str())
            .unwrap();
        assert_eq!(transaction["state"], "delivered");
        let key = transaction["skat_transaction_id"].as_str().unwrap();
        let spooled = std::fs::read(spool.path().join(key)).unwrap();
        assert_eq!(&spooled, body, "{name}");
        let meta: serde_json::Value = serde_json::from_slice(
            &std::fs::read(spool.path().join(format!("{key}.meta.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(meta["ftp_transaction_id"], name.as_str());
        assert_eq!(meta["service"], MANIFEST);
        assert_eq!(meta["user"], user.username.as_str());
        assert_eq!(meta["cvr"], "19552101");
        assert_eq!(meta["size"], body.len());
        assert_eq!(meta["sha256"], transaction["sha256"]);
    }
    let leftovers: Vec<_> = std::fs::read_dir(spool.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    assert!(
        deliveries(&demo).is_empty(),
        "delivered work is done; answers come from the backend"
    );

    // The backend lost a file: an operator replays it; it arrives again, nothing else moves.
    let lost = demo.transactions(&user.username)[0]["skat_transaction_id"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(spool.path().join(&lost)).unwrap();
    demo.admin(&["deliveries", "replay", &lost]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !spool.path().join(&lost).exists() {
        assert!(Instant::now() < deadline, "the replay never arrived");
        std::thread::sleep(Duration::from_millis(100));
    }
    demo.wait_for_audit("admin.replay_delivery", "allowed", None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !deliveries(&demo).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the replay's work was not finished"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        out_names(&demo, &user),
        expected,
        "a replay writes no status file"
    );
}

/// The backend is down while 20 sessions upload 100 files; nothing is lost, nothing gets a
/// status; when it is back, everything is delivered in upload order per (user, service).
#[tokio::test(flavor = "multi_thread")]
async fn an_outage_delays_delivery_but_loses_nothing_and_keeps_the_order() {
    let down = "[{ name = \"down\", kind = \"simulated\", behaviour = \"down\", services = [\"FTPSGW.Heartbeat\"] }]";
    let fast_retries = [
        ("MFTGW__DELIVERY__BACKENDS", down),
        ("MFTGW__DELIVERY__RETRY_FIRST_MS", "100"),
        ("MFTGW__DELIVERY__RETRY_MAX_SECS", "1"),
    ];
    // The heartbeat is built in; a configured backend cannot take it over.
    let refused = std::panic::catch_unwind(|| Demo::start_with_env(&fast_retries));
    assert!(
        refused.is_err(),
        "a backend for FTPSGW.Heartbeat must be refused"
    );

    let down = format!(
        "[{{ name = \"down\", kind = \"simulated\", behaviour = \"down\", services = [\"{MANIFEST}\"] }}]"
    );
    let mut demo = Demo::start_with_env(&[
        ("MFTGW__DELIVERY__BACKENDS", &down),
        ("MFTGW__DELIVERY__RETRY_FIRST_MS", "100"),
        ("MFTGW__DELIVERY__RETRY_MAX_SECS", "1"),
    ]);
    let user = demo.user(0);
    let sessions: Vec<_> = (0..20)
        .map(|session| {
            let (addr, tls, user) = (demo.addr(), demo.tls(&user), user.clone());
            tokio::spawn(async move {
                let mut client = FtpsClient::login(addr, tls, &user.username, &user.password)
                    .await
                    .unwrap();
                for n in 0..5 {
                    let reply = client
                        .upload(&format!("/{MANIFEST}/o-{session:02}-{n}.xml"), b"<o/>")
                        .await
                        .unwrap();
                    assert_eq!(reply.code, 226, "{reply:?}");
                }
            })
        })
        .collect();
    for session in sessions {
        session.await.unwrap();
    }
    // Retries keep failing: the head of the queue is retried, the rest wait behind it.
    let deadline = Instant::now() + Duration::from_secs(15);
    while deliveries(&demo)[0]["attempts"].as_u64().unwrap() < 2 {
        assert!(
            Instant::now() < deadline,
            "the first upload was not retried"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        out_names(&demo, &user).is_empty(),
        "no status while the backend is down"
    );
    let waiting = deliveries(&demo);
    assert_eq!(waiting.len(), 100);
    assert!(
        waiting[0]["attempts"].as_u64().unwrap() >= 2,
        "{}",
        waiting[0]
    );
    assert_eq!(waiting[0]["last_error"], "the simulated backend is down");
    assert!(
        waiting[1..].iter().all(|w| w["attempts"] == 0),
        "later uploads wait behind the first"
    );

    // An operator can make a waiting delivery due at once.
    let head = waiting[0]["skat_transaction_id"].as_str().unwrap();
    demo.admin(&["deliveries", "retry", head]);
    demo.wait_for_audit("admin.retry_delivery", "allowed", None);

    // The backend comes back (the gateway restarts with the new config).
    demo.kill();
    let back = format!(
        "[{{ name = \"back\", kind = \"simulated\", behaviour = \"accept\", services = [\"{MANIFEST}\"] }}]"
    );
    demo.start_again(&[("MFTGW__DELIVERY__BACKENDS", &back)]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !deliveries(&demo).is_empty() {
        assert!(
            Instant::now() < deadline,
            "deliveries never finished: {:?}",
            deliveries(&demo)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = out_names(&demo, &user);
    assert_eq!(out.len(), 200, "status 1 and 2 for each upload");
    assert!(
        out.iter().all(|name| !name.ends_with("_0.xml")),
        "an outage never makes a status_0"
    );

    // Delivered in upload order: status 1 times never go backwards in upload order.
    let mut transactions = demo.transactions(&user.username);
    transactions.sort_by_key(|t| t["received_at"].as_str().unwrap().to_string());
    let delivered_at: Vec<String> = transactions
        .iter()
        .map(|t| {
            assert_eq!(t["state"], "accepted");
            t["history"][0]["at"].as_str().unwrap().to_string()
        })
        .collect();
    let mut sorted = delivered_at.clone();
    sorted.sort();
    assert_eq!(delivered_at, sorted);
    let per_session: BTreeMap<String, usize> =
        transactions.iter().fold(BTreeMap::new(), |mut m, t| {
            *m.entry(t["ftp_transaction_id"].as_str().unwrap()[..4].to_string())
                .or_default() += 1;
            m
        });
    assert_eq!(per_session.len(), 20, "{per_session:?}");
    assert!(per_session.values().all(|&n| n == 5), "{per_session:?}");
}
