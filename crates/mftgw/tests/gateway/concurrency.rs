//! Many sessions at once against one real `mftgw demo`: 200 logged-in sessions of four users,
//! every one served, every one seeing exactly its own user's tree.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::*;
use mftgw_client::FtpsClient;
use serde_json::Value;
use tokio::task::JoinSet;

const SESSIONS_PER_USER: usize = 50;

/// Names in an `MLSD` listing (`facts; name` per line), sorted.
fn mlsd_names(listing: &str) -> Vec<String> {
    let mut names: Vec<String> = listing
        .split("\r\n")
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (facts, name) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("not an MLSD line: {line:?}"));
            assert!(facts.contains("type=dir;"), "{line:?}");
            name.to_string()
        })
        .collect();
    names.sort();
    names
}

/// Names in a `LIST` (ls -l style) listing, sorted.
fn list_names(listing: &str) -> Vec<String> {
    let mut names: Vec<String> = listing
        .split("\r\n")
        .filter(|line| !line.is_empty())
        .map(|line| {
            assert!(line.starts_with('d'), "not a directory line: {line:?}");
            line.split_whitespace().last().unwrap().to_string()
        })
        .collect();
    names.sort();
    names
}

/// Audit entries with `action` and `outcome` from 127.0.0.1, per username.
fn count(demo: &Demo, action: &str, outcome: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for entry in demo.audit() {
        if entry["action"] == action
            && entry["outcome"] == outcome
            && entry["peer_ip"] == "127.0.0.1"
        {
            let user = entry["username"].as_str().unwrap_or_default().to_string();
            *counts.entry(user).or_default() += 1;
        }
    }
    counts
}

fn per_user(users: &[DemoUser], sessions: usize) -> BTreeMap<String, usize> {
    users
        .iter()
        .map(|user| (user.username.clone(), sessions))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_sessions_of_four_users_at_once_each_see_exactly_their_own_tree() {
    let demo = Demo::start();
    let users = demo.users();
    assert_eq!(users.len(), 4);
    let total = users.len() * SESSIONS_PER_USER;

    let run = async {
        // Log in all 200 sessions concurrently, and keep every one of them open.
        let mut logins = JoinSet::new();
        for (index, user) in users.iter().enumerate() {
            for _ in 0..SESSIONS_PER_USER {
                let (addr, tls) = (demo.addr(), demo.tls(user));
                let (username, password) = (user.username.clone(), user.password.clone());
                logins.spawn(async move {
                    let client = FtpsClient::login(addr, tls, &username, &password)
                        .await
                        .unwrap_or_else(|e| panic!("login of {username}: {e}"));
                    (index, client)
                });
            }
        }
        let mut sessions = Vec::new();
        while let Some(joined) = logins.join_next().await {
            sessions.push(joined.unwrap());
        }
        assert_eq!(sessions.len(), total);

        // All 200 are logged in and none has ended.
        let (logins, logouts) = tokio::task::block_in_place(|| {
            (
                count(&demo, "ftps.login", "allowed"),
                count(&demo, "ftps.logout", "info"),
            )
        });
        assert_eq!(logins, per_user(&users, SESSIONS_PER_USER));
        assert!(logouts.is_empty(), "sessions ended early: {logouts:?}");

        // Every session: PWD, MLSD of / and LIST of /, all at once.
        let mut work = JoinSet::new();
        for (index, mut client) in sessions {
            let expected = users[index].expected_root();
            let username = users[index].username.clone();
            work.spawn(async move {
                let pwd = client.command("PWD").await.unwrap();
                assert_eq!(
                    (pwd.code, pwd.text.as_str()),
                    (257, "\"/\" is the current directory"),
                    "{username}"
                );
                let mlsd = client.download("MLSD /").await.unwrap();
                let mlsd = String::from_utf8(mlsd).unwrap();
                assert_eq!(mlsd_names(&mlsd), expected, "MLSD / of {username}");
                let list = client.download("LIST").await.unwrap();
                let list = String::from_utf8(list).unwrap();
                assert_eq!(list_names(&list), expected, "LIST of {username}");
                (index, client)
            });
        }
        let mut served = Vec::new();
        while let Some(joined) = work.join_next().await {
            served.push(joined.unwrap());
        }
        assert_eq!(served.len(), total, "not every session was served");

        // Only now do the sessions end.
        let mut quits = JoinSet::new();
        for (index, mut client) in served {
            quits.spawn(async move { (index, client.command("QUIT").await.unwrap().code) });
        }
        let mut quit_per_user = BTreeMap::new();
        while let Some(joined) = quits.join_next().await {
            let (index, code) = joined.unwrap();
            assert_eq!(code, 221);
            *quit_per_user
                .entry(users[index].username.clone())
                .or_insert(0) += 1;
        }
        assert_eq!(quit_per_user, per_user(&users, SESSIONS_PER_USER));
    };
    tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("200 sessions not served within 300 s");

    // The operator sees 200 sessions closed, 50 per user.
    tokio::task::block_in_place(|| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let logouts = count(&demo, "ftps.logout", "info");
            if logouts == per_user(&users, SESSIONS_PER_USER) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "logouts audited: {logouts:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let refused: Vec<Value> = demo
            .audit()
            .into_iter()
            .filter(|e| e["outcome"] == "refused")
            .collect();
        assert!(refused.is_empty(), "refusals under load: {refused:#?}");
    });
}
