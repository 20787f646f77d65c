//! Crash safety (issue 3, part 7): the gateway is killed with SIGKILL while uploads stream in
//! and while the heartbeat writes its answers. After a restart, every upload that got `226`
//! is a transaction with each of its four answers exactly once, uploads that did not finish
//! never show up, and work left undone is resumed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{Demo, DemoUser, heartbeat_files, list_until};
use tokio::io::AsyncWriteExt;

const HEARTBEAT: &str = "FTPSGW.Heartbeat";

/// What the clients saw: names that got `226`, and names whose upload was under way when
/// the gateway died (the gateway may or may not have committed those).
#[derive(Default)]
struct Outcomes {
    confirmed: BTreeSet<String>,
    in_flight: BTreeSet<String>,
}

/// Uploads `prefix-<n>.xml` files one after another until the connection dies.
async fn upload_until_killed(
    demo: Arc<Demo>,
    user: DemoUser,
    prefix: String,
    outcomes: Arc<Mutex<Outcomes>>,
) {
    let Ok(mut client) = demo.try_login(&user).await else {
        return;
    };
    for n in 0.. {
        let name = format!("{prefix}-{n:04}.xml");
        outcomes.lock().unwrap().in_flight.insert(name.clone());
        let body = vec![b'x'; 2048 + n % 5000];
        match client.upload(&format!("/{HEARTBEAT}/{name}"), &body).await {
            Ok(reply) if reply.code == 226 => {
                let mut outcomes = outcomes.lock().unwrap();
                outcomes.in_flight.remove(&name);
                outcomes.confirmed.insert(name);
            }
            _ => return,
        }
    }
}

/// Starts uploads that never end cleanly (no TLS close_notify), over and over.
async fn upload_unfinished_until_killed(demo: Arc<Demo>, user: DemoUser, prefix: String) {
    for n in 0.. {
        let Ok(mut client) = demo.try_login(&user).await else {
            return;
        };
        let Ok(mut data) = client
            .start_transfer(&format!("STOR /{HEARTBEAT}/{prefix}-{n:04}.xml"))
            .await
        else {
            return;
        };
        if data.write_all(&[b'u'; 10_000]).await.is_err() {
            return;
        }
        drop(data);
        if client.read_reply().await.is_err() {
            return;
        }
    }
}

/// Reads what the store holds per user through `mftgw transactions`: name → state.
fn transactions_by_user(demo: &Demo) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut by_user: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for line in demo.admin(&["transactions", "--limit", "1000000"]).lines() {
        let t: serde_json::Value = serde_json::from_str(line).unwrap();
        by_user
            .entry(t["username"].as_str().unwrap().to_string())
            .or_default()
            .insert(
                t["ftp_transaction_id"].as_str().unwrap().to_string(),
                t["state"].as_str().unwrap().to_string(),
            );
    }
    by_user
}

/// Waits until every transaction has its four answers, then checks `/out` holds exactly
/// those, each once.
async fn assert_every_transaction_answered_once(demo: &Demo, users: &[DemoUser]) {
    let transactions = transactions_by_user(demo);
    for user in users {
        let names: BTreeSet<String> = transactions
            .get(&user.username)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        let expected: BTreeSet<String> = names
            .iter()
            .flat_map(|name| heartbeat_files(name))
            .collect();
        let mut client = demo.login(user).await;
        let listed = list_until(&mut client, "/out", expected.len(), Duration::from_secs(60)).await;
        let unique: BTreeSet<String> = listed.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            listed.len(),
            "a file appeared twice for {}",
            user.username
        );
        assert_eq!(unique, expected, "/out of {}", user.username);
        // Listings are in order of appearance: each transaction's answers came 1, 2, 3.
        for name in &names {
            let positions: Vec<usize> = heartbeat_files(name)
                .iter()
                .map(|file| listed.iter().position(|listed| listed == file).unwrap())
                .collect();
            assert!(
                positions.is_sorted(),
                "{name}: answers out of order in {listed:?}"
            );
        }
    }
    // Every body in the blob store belongs to a transaction: nothing a crash left behind.
    let mut referenced: Vec<String> = demo
        .admin(&["transactions", "--limit", "1000000"])
        .lines()
        .filter_map(|line| {
            let t: serde_json::Value = serde_json::from_str(line).unwrap();
            t["blob_key"].as_str().map(str::to_string)
        })
        .collect();
    referenced.sort();
    let mut stored: Vec<String> = std::fs::read_dir(demo.data_dir().join("files/blobs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    stored.sort();
    assert_eq!(stored, referenced, "blobs without a transaction");
    let after = transactions_by_user(demo);
    assert!(
        after
            .values()
            .flat_map(|t| t.values())
            .all(|state| state == "answered"),
        "work left undone after restart: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_uploads_loses_no_confirmed_upload_and_shows_no_unfinished_one() {
    let mut demo = Demo::start();
    let users = demo.users();
    for round in 0..3 {
        let shared = Arc::new(demo);
        let outcomes = Arc::new(Mutex::new(Outcomes::default()));
        let mut tasks = Vec::new();
        for (i, user) in users.iter().enumerate() {
            for session in 0..2 {
                tasks.push(tokio::spawn(upload_until_killed(
                    Arc::clone(&shared),
                    user.clone(),
                    format!("r{round}-u{i}-s{session}"),
                    Arc::clone(&outcomes),
                )));
            }
            tasks.push(tokio::spawn(upload_unfinished_until_killed(
                Arc::clone(&shared),
                user.clone(),
                format!("r{round}-u{i}-unfinished"),
            )));
        }
        // Let uploads run until some are confirmed (however loaded the machine is), then
        // kill at a moment that differs per round.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while outcomes.lock().unwrap().confirmed.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "no upload was confirmed within a minute"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300 + 450 * round)).await;
        shared.signal("KILL");
        for task in tasks {
            task.await.unwrap();
        }
        let mut demo_back = Arc::try_unwrap(shared)
            .ok()
            .expect("every task has ended and dropped the demo");
        demo_back.kill();
        demo_back.start_again(&[]);
        let outcomes = outcomes.lock().unwrap();

        let stored: BTreeSet<String> = transactions_by_user(&demo_back)
            .into_values()
            .flat_map(|t| t.into_keys())
            .filter(|name| name.starts_with(&format!("r{round}-")))
            .collect();
        let lost: Vec<&String> = outcomes.confirmed.difference(&stored).collect();
        assert!(
            lost.is_empty(),
            "uploads confirmed with 226 but lost: {lost:?}"
        );
        let unexplained: Vec<&String> = stored
            .iter()
            .filter(|name| {
                !outcomes.confirmed.contains(*name) && !outcomes.in_flight.contains(*name)
            })
            .collect();
        assert!(
            unexplained.is_empty(),
            "uploads that never finished were stored: {unexplained:?}"
        );
        let incoming = demo_back.data_dir().join("files/incoming");
        assert_eq!(
            std::fs::read_dir(&incoming).unwrap().count(),
            0,
            "unfinished blobs survived the restart"
        );
        demo = demo_back;
    }
    assert_every_transaction_answered_once(&demo, &users).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_while_status_files_are_written_resumes_each_exactly_once() {
    // A slow heartbeat, so that the kill lands between its answers.
    let slow = [("MFTGW__DELIVERY__ANSWER_DELAY_MS", "400")];
    let mut demo = Demo::start_with_env(&slow);
    let users = demo.users();
    for round in 0..3 {
        for (i, user) in users.iter().enumerate() {
            let mut client = demo.login(user).await;
            for n in 0..25 {
                let reply = client
                    .upload(&format!("/{HEARTBEAT}/k{round}-u{i}-{n:02}.xml"), b"<k/>")
                    .await
                    .unwrap();
                assert_eq!(reply.code, 226, "{reply:?}");
            }
        }
        tokio::time::sleep(Duration::from_millis(150 + 300 * round as u64)).await;
        demo.kill();
        // What the store held when the gateway died: some answers must be outstanding.
        let states: Vec<String> = transactions_by_user(&demo)
            .into_values()
            .flat_map(|t| t.into_values())
            .collect();
        assert!(
            states.iter().any(|state| state != "answered"),
            "the kill came after all work was done; nothing was tested"
        );
        assert!(
            states.iter().any(|state| state != "received"),
            "the kill came before any answer was written; nothing was tested"
        );
        demo.start_again(&slow);
    }
    assert_every_transaction_answered_once(&demo, &users).await;
}
