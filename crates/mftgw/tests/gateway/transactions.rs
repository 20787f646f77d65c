//! Uploads as transactions, driven by the project's own FTPS client where exact reply codes
//! and badly behaved clients matter: isolation between users, uploads that end uncleanly,
//! the same name raced from two sessions, 50 sessions uploading at once, a 1 GiB upload
//! checked at the blob store, and retention.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{Demo, curl, heartbeat_files, list_until, nlst, out_names, run, wait_for_out};
use mftgw_client::FtpsClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HEARTBEAT: &str = "FTPSGW.Heartbeat";

/// `command`'s reply code.
async fn code(client: &mut FtpsClient, command: &str) -> u16 {
    client.command(command).await.unwrap().code
}

/// The code of `STOR path` (refused before any data connection is used, or after upload).
async fn store_code(client: &mut FtpsClient, path: &str) -> u16 {
    let addr = client.epsv().await.unwrap();
    let data = client
        .open_data(addr, &mftgw_client::DataOptions::default())
        .await
        .unwrap();
    let reply = client.command(&format!("STOR {path}")).await.unwrap();
    if reply.code != 150 {
        return reply.code;
    }
    let mftgw_client::DataConnection::Tls(mut stream) = data else {
        unreachable!()
    };
    stream.write_all(b"x").await.unwrap();
    stream.shutdown().await.unwrap();
    client.read_reply().await.unwrap().code
}

fn names_of(transactions: &[serde_json::Value]) -> Vec<String> {
    transactions
        .iter()
        .map(|t| t["ftp_transaction_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn users_cannot_reach_each_others_files_nor_escape_their_tree() {
    let demo = Demo::start();
    let alice = demo.user(0);
    let bob = demo.user(3); // holds FTPSGW.Heartbeat only
    let mut a = demo.login(&alice).await;
    let mut b = demo.login(&bob).await;
    let reply = a
        .upload(&format!("/{HEARTBEAT}/alice-1.xml"), b"<a/>")
        .await
        .unwrap();
    assert_eq!(reply.code, 226, "{reply:?}");
    let alice_files = heartbeat_files("alice-1.xml");
    wait_for_out(&demo, &alice, &alice_files);
    let secret = format!("/out/{}", alice_files[3]);

    // Bob cannot list, read, size, date or delete Alice's files, by any path.
    assert!(nlst(&mut b, "/out").await.is_empty());
    for path in [
        secret.clone(),
        format!("/out/../out/{}", alice_files[3]),
        format!("out/{}", alice_files[3]),
    ] {
        assert_eq!(code(&mut b, &format!("SIZE {path}")).await, 550, "{path}");
        assert_eq!(code(&mut b, &format!("MDTM {path}")).await, 550, "{path}");
        assert_eq!(code(&mut b, &format!("MLST {path}")).await, 550, "{path}");
        assert_eq!(code(&mut b, &format!("DELE {path}")).await, 550, "{path}");
        client_retr_refused(&mut b, &path).await;
    }
    let username_path = format!("/{}/out/{}", alice.username, alice_files[3]);
    client_retr_refused(&mut b, &username_path).await;
    assert_eq!(code(&mut b, "CWD /CVR_19552101").await, 550);

    // Uploads outside a service folder Bob holds a role for, or with names no file may have.
    for (path, expected) in [
        ("/FATCA/x.xml".to_string(), 550),
        ("/out/x.xml".to_string(), 550),
        ("/x.xml".to_string(), 550),
        ("../../../etc/x.xml".to_string(), 550),
        (format!("/{HEARTBEAT}/../../out/x.xml"), 550),
        (format!("/{HEARTBEAT}/a\\b.xml"), 553),
        (format!("/{HEARTBEAT}/..\\..\\x.xml"), 553),
        (format!("/{HEARTBEAT}/{}", "n".repeat(256)), 553),
        // Fits a path component, but not status_FTPSGW.Heartbeat_<name>_3.xml.
        (format!("/{HEARTBEAT}/{}", "n".repeat(230)), 553),
        (format!("/{HEARTBEAT}/nothing/in/x.xml"), 550),
        // Reserved for the gateway's own outbound status files.
        (format!("/{HEARTBEAT}/outbound-1"), 553),
    ] {
        assert_eq!(store_code(&mut b, &path).await, expected, "STOR {path}");
    }
    // A NUL or other control character never reaches the tree.
    b.send_raw(format!("STOR /{HEARTBEAT}/a\0b.xml\r\n").as_bytes())
        .await
        .unwrap();
    let reply = b.read_reply().await.unwrap();
    assert!(matches!(reply.code, 501 | 553), "{reply:?}");
    for command in [
        "MKD /out/x",
        "MKD /x",
        "RMD /out",
        format!("RMD /{HEARTBEAT}").as_str(),
        format!("DELE /{HEARTBEAT}").as_str(),
        "DELE /out",
    ] {
        assert_eq!(code(&mut b, command).await, 550, "{command}");
    }
    assert_eq!(code(&mut b, "RNFR /out").await, 502);
    assert_eq!(code(&mut b, "APPE /out/x").await, 502);

    assert!(
        demo.transactions(&bob.username).is_empty(),
        "nothing was stored for Bob"
    );
    assert_eq!(
        nlst(&mut a, "/out").await,
        alice_files,
        "Alice's files are untouched"
    );
    assert_eq!(out_names(&demo, &bob), Vec::<String>::new());
}

async fn client_retr_refused(client: &mut FtpsClient, path: &str) {
    let addr = client.epsv().await.unwrap();
    let _data = client
        .open_data(addr, &mftgw_client::DataOptions::default())
        .await
        .unwrap();
    let reply = client.command(&format!("RETR {path}")).await.unwrap();
    assert_eq!(reply.code, 550, "RETR {path}: {reply:?}");
}

/// Every way an upload can end without the client's TLS close_notify leaves nothing, and the
/// name stays free: the next clean upload of it is a transaction.
#[tokio::test(flavor = "multi_thread")]
async fn unclean_ends_leave_nothing_and_keep_the_name_free() {
    let demo = Demo::start_with_env(&[("MFTGW__FTPS__DATA_STALL_TIMEOUT_SECS", "2")]);
    let user = demo.user(1);
    let mut client = demo.login(&user).await;

    let cases = [
        "no-close-notify",
        "tcp-reset",
        "abor",
        "stalled",
        "control-lost",
    ];
    for case in cases {
        let path = format!("/{HEARTBEAT}/{case}.xml");
        if case == "control-lost" {
            let mut doomed = demo.login(&user).await;
            let mut data = doomed
                .start_transfer(&format!("STOR {path}"))
                .await
                .unwrap();
            data.write_all(&[7u8; 100_000]).await.unwrap();
            data.flush().await.unwrap();
            drop(doomed);
            // The gateway aborts the upload and closes the data connection at once, well
            // before the 2 s stall timeout.
            let mut byte = [0u8; 1];
            let closed =
                tokio::time::timeout(Duration::from_millis(1500), data.read(&mut byte)).await;
            assert!(
                matches!(closed, Ok(Ok(0) | Err(_))),
                "data connection still open: {closed:?}"
            );
            continue;
        }
        let mut data = client
            .start_transfer(&format!("STOR {path}"))
            .await
            .unwrap();
        data.write_all(&[7u8; 100_000]).await.unwrap();
        data.flush().await.unwrap();
        match case {
            "no-close-notify" => drop(data),
            "tcp-reset" => {
                // Linger zero: the close sends RST (and does not block, the reason for
                // the deprecation).
                #[allow(deprecated)]
                data.get_ref().0.set_linger(Some(Duration::ZERO)).unwrap();
                drop(data);
            }
            "abor" => {
                let reply = client.command("ABOR").await.unwrap();
                assert_eq!(reply.code, 426, "{reply:?}");
                drop(data);
            }
            "stalled" => {
                // Send nothing more; the gateway gives up after the stall timeout.
                let reply = client.read_reply().await.unwrap();
                assert_eq!(reply.code, 426, "{reply:?}");
                drop(data);
                continue;
            }
            _ => unreachable!(),
        }
        let reply = client.read_reply().await.unwrap();
        assert_eq!(
            reply.code,
            if case == "abor" { 226 } else { 426 },
            "{case}: {reply:?}"
        );
    }
    // The session whose control connection was dropped cleans up on its own time: its
    // unfinished blob goes (and nothing ever commits it, as nothing answered 226).
    let incoming = demo.data_dir().join("files/incoming");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let leftovers: Vec<_> = std::fs::read_dir(&incoming).unwrap().collect();
        if leftovers.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "unfinished blobs left: {leftovers:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        demo.transactions(&user.username).is_empty(),
        "{:?}",
        demo.transactions(&user.username)
    );
    assert!(nlst(&mut client, "/out").await.is_empty());

    for case in cases {
        let reply = client
            .upload(&format!("/{HEARTBEAT}/{case}.xml"), b"<clean/>")
            .await
            .unwrap();
        assert!(
            reply.text.starts_with("Transfer complete: transaction"),
            "{case}: {reply:?}"
        );
    }
    let mut names = names_of(&demo.transactions(&user.username));
    names.sort();
    let mut expected: Vec<String> = cases.iter().map(|c| format!("{c}.xml")).collect();
    expected.sort();
    assert_eq!(names, expected);
}

/// Two sessions of one user upload the same name at the same moment: one transaction, one
/// status_0, both clients told what happened.
#[tokio::test(flavor = "multi_thread")]
async fn the_same_name_raced_from_two_sessions_is_one_transaction() {
    let demo = Arc::new(Demo::start());
    let user = demo.user(2);
    let names: Vec<String> = (0..5).map(|i| format!("race-{i}.xml")).collect();
    for name in &names {
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (demo, user, barrier, name) = (
                    Arc::clone(&demo),
                    user.clone(),
                    Arc::clone(&barrier),
                    name.clone(),
                );
                tokio::spawn(async move {
                    let mut client = demo.login(&user).await;
                    let mut data = client
                        .start_transfer(&format!("STOR /{HEARTBEAT}/{name}"))
                        .await
                        .unwrap();
                    data.write_all(b"<race/>").await.unwrap();
                    barrier.wait().await;
                    data.shutdown().await.unwrap();
                    client.read_reply().await.unwrap()
                })
            })
            .collect();
        let mut texts = Vec::new();
        for racer in racers {
            let reply = racer.await.unwrap();
            assert_eq!(reply.code, 226, "{reply:?}");
            texts.push(reply.text);
        }
        texts.sort();
        assert!(
            texts[0].starts_with("Transfer complete, but the name was used before"),
            "{texts:?}"
        );
        assert!(
            texts[1].starts_with("Transfer complete: transaction"),
            "{texts:?}"
        );
    }
    let mut expected: Vec<String> = Vec::new();
    for name in &names {
        expected.extend(heartbeat_files(name));
        expected.push(format!("status_{HEARTBEAT}_{name}_0.xml"));
    }
    let out = wait_for_out(&demo, &user, &expected);
    assert_eq!(out.len(), expected.len(), "{out:?}");
    let mut transacted = names_of(&demo.transactions(&user.username));
    transacted.sort();
    assert_eq!(transacted, names);
}

/// 50 sessions upload 20 files each, all at once: 1000 transactions, 4000 heartbeat files,
/// no duplicates, no losses.
#[tokio::test(flavor = "multi_thread")]
async fn fifty_sessions_upload_twenty_files_each() {
    let demo = Arc::new(Demo::start());
    let users = demo.users();
    let sessions: Vec<_> = (0..50)
        .map(|session| {
            let demo = Arc::clone(&demo);
            let user = users[session % users.len()].clone();
            tokio::spawn(async move {
                let mut client = demo.login(&user).await;
                for file in 0..20 {
                    let name = format!("s{session:02}-f{file:02}.xml");
                    let body = format!("<session>{session}</session><file>{file}</file>");
                    let reply = client
                        .upload(&format!("/{HEARTBEAT}/{name}"), body.as_bytes())
                        .await
                        .unwrap();
                    assert!(
                        reply.text.starts_with("Transfer complete: transaction"),
                        "{name}: {reply:?}"
                    );
                }
                client.command("QUIT").await.unwrap();
            })
        })
        .collect();
    for session in sessions {
        session.await.unwrap();
    }

    let mut expected_by_user: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for session in 0..50 {
        let user = &users[session % users.len()];
        for file in 0..20 {
            expected_by_user
                .entry(user.username.clone())
                .or_default()
                .extend(heartbeat_files(&format!("s{session:02}-f{file:02}.xml")));
        }
    }
    let mut total = 0;
    for user in &users {
        let expected = &expected_by_user[&user.username];
        let mut client = demo.login(user).await;
        let listed = list_until(
            &mut client,
            "/out",
            expected.len(),
            Duration::from_secs(120),
        )
        .await;
        let unique: BTreeSet<String> = listed.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            listed.len(),
            "duplicates in /out of {}",
            user.username
        );
        assert_eq!(&unique, expected, "/out of {}", user.username);
        total += listed.len();
        let transactions = demo.transactions(&user.username);
        assert!(transactions.iter().all(|t| t["state"] == "answered"));
        assert_eq!(transactions.len() * 4, expected.len());
    }
    assert_eq!(total, 4000);
}

#[test]
fn a_one_gib_upload_is_stored_with_its_hash() {
    let demo = Demo::start();
    let user = demo.user(0);
    let source = demo.dir.path().join("big.bin");
    let (ok, _, err) = run(Command::new("sh").arg("-c").arg(format!(
        "head -c 1073741824 /dev/urandom > {}",
        source.display()
    )));
    assert!(ok, "{err}");
    let sha256 = |path: &std::path::Path| {
        let (ok, out, err) = run(Command::new("sha256sum").arg(path));
        assert!(ok, "{err}");
        out.split_whitespace().next().unwrap().to_string()
    };
    let expected = sha256(&source);
    let (ok, _, err) = curl(
        &demo,
        &user,
        &format!("/{HEARTBEAT}/big.bin"),
        &["-T", source.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let transactions = demo.transactions(&user.username);
    assert_eq!(transactions.len(), 1);
    assert_eq!(transactions[0]["size"], 1u64 << 30);
    assert_eq!(transactions[0]["sha256"], expected.as_str());
    let blob = std::path::PathBuf::from(transactions[0]["blob_path"].as_str().unwrap());
    std::fs::remove_file(&source).unwrap();
    assert_eq!(
        sha256(&blob),
        expected,
        "the blob store holds exactly what was sent"
    );
    wait_for_out(&demo, &user, &heartbeat_files("big.bin"));
}

#[test]
fn retention_removes_old_files_for_good_and_names_stay_used() {
    let demo = Demo::start_with_env(&[
        ("MFTGW__TRANSACTIONS__RETENTION_SECS", "3"),
        ("MFTGW__TRANSACTIONS__RETENTION_SWEEP_SECS", "1"),
    ]);
    let user = demo.user(0);
    let body = demo.dir.path().join("ping.xml");
    std::fs::write(&body, "<ping/>").unwrap();
    let upload = || {
        let (ok, _, err) = curl(
            &demo,
            &user,
            &format!("/{HEARTBEAT}/old.xml"),
            &["-T", body.to_str().unwrap()],
        );
        assert!(ok, "{err}");
    };
    upload();
    wait_for_out(&demo, &user, &heartbeat_files("old.xml"));
    let blob = std::path::PathBuf::from(
        demo.transactions(&user.username)[0]["blob_path"]
            .as_str()
            .unwrap(),
    );
    assert!(blob.exists());

    let deadline = Instant::now() + Duration::from_secs(20);
    while !out_names(&demo, &user).is_empty() {
        assert!(
            Instant::now() < deadline,
            "retention never removed {:?}",
            out_names(&demo, &user)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let (ok, _, _) = curl(
        &demo,
        &user,
        &format!("/out/{}", heartbeat_files("old.xml")[3]),
        &[],
    );
    assert!(!ok, "an expired file could still be downloaded");
    // The body is deleted just after the expiry commit that emptied /out.
    while blob.exists() {
        assert!(
            Instant::now() < deadline,
            "the uploaded body outlived the retention"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(demo.transactions(&user.username)[0]["blob_path"].is_null());

    // The transaction itself is kept: its name stays used.
    upload();
    wait_for_out(&demo, &user, &[format!("status_{HEARTBEAT}_old.xml_0.xml")]);
    assert_eq!(demo.transactions(&user.username).len(), 1);
}
