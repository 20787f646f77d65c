//! In-process tests of the application core: the delivery worker and the transactions
//! service on an in-memory SQLite store, with a recording connector and tokio's paused clock
//! (the core's clock follows it), so that an hour of backoff passes in milliseconds and the
//! connector's view of order and spacing is exact.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mftgw_blobs::BlobStore;
use mftgw_blobs::{BlobWriter, LocalBlobStore};
use mftgw_core::BoxFuture;
use mftgw_core::clock::Clock;
use mftgw_core::delivery::{
    Answer, Backends, Connector, DeliveryError, DeliveryFailure, DeliveryPolicy, Parcel,
    run_delivery,
};
use mftgw_core::periodic::Leadership;
use mftgw_core::transactions::{
    Answered, Committed, OrphanSweep, Transactions, TransitionError, UploadTarget, run_orphan_sweep,
};
use mftgw_domain::delivery::RetryPolicy;
use mftgw_domain::errors::ErrorEntry;
use mftgw_domain::status::StatusCode;
use mftgw_domain::{Transaction, TransactionState, Username};
use mftgw_store::prelude::*;
use mftgw_store::{CertificateRegistration, SqliteStore};
use time::OffsetDateTime;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::time::Instant;

type Core = Transactions<SqliteStore, LocalBlobStore>;

/// What the connector saw of one delivery attempt.
#[derive(Debug, Clone)]
struct Attempt {
    username: Username,
    name: String,
    body: Vec<u8>,
    at: Instant,
    taken: bool,
}

/// Decides whether an attempt is taken, from the transaction and the clock.
type Plan = Box<dyn Fn(&Transaction, Instant) -> bool + Send + Sync>;

/// A backend that records every attempt, takes it or not as its plan says, and answers on
/// its own with `answers` (if any).
struct Recording {
    attempts: Mutex<Vec<Attempt>>,
    plan: Plan,
    answers: Vec<Answer>,
}

impl Recording {
    fn new(plan: Plan, answers: Vec<Answer>) -> Arc<Self> {
        Arc::new(Self {
            attempts: Mutex::new(Vec::new()),
            plan,
            answers,
        })
    }

    fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().unwrap().clone()
    }

    fn taken(&self) -> Vec<Attempt> {
        self.attempts().into_iter().filter(|a| a.taken).collect()
    }
}

impl Connector for Recording {
    fn deliver<'a>(&'a self, mut parcel: Parcel<'a>) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let mut body = Vec::new();
            parcel
                .body
                .read_to_end(&mut body)
                .await
                .map_err(|error| DeliveryError::new(DeliveryFailure::Gateway, error.to_string()))?;
            let transaction = parcel.transaction;
            let at = Instant::now();
            let taken = (self.plan)(transaction, at);
            self.attempts.lock().unwrap().push(Attempt {
                username: transaction.username.clone(),
                name: transaction.ftp_transaction_id.to_string(),
                body,
                at,
                taken,
            });
            if taken {
                Ok(())
            } else {
                Err(DeliveryError::new(
                    DeliveryFailure::Unavailable,
                    "the recording backend is down",
                ))
            }
        })
    }

    fn answers_on_its_own(&self) -> bool {
        !self.answers.is_empty()
    }

    fn answers(&self, _transaction: &Transaction) -> Vec<Answer> {
        self.answers.clone()
    }
}

struct Harness {
    core: Arc<Core>,
    store: Arc<SqliteStore>,
    blobs: Arc<LocalBlobStore>,
    stop: watch::Sender<bool>,
    worker: Option<tokio::task::JoinHandle<()>>,
    _blobs: tempfile::TempDir,
}

/// Simulated time a retry may come late by: the worker's polling, and the store's work.
const SLACK: Duration = Duration::from_secs(10);

const RETRY: RetryPolicy = RetryPolicy {
    first: Duration::from_secs(2),
    max: Duration::from_secs(300),
};

impl Harness {
    async fn new() -> Harness {
        // Under the paused clock, tokio jumps to the next timer whenever every task waits:
        // also while SQLite works on its own thread. A timer always due in a millisecond keeps
        // each jump that short, so simulated time passes in small steps beside the store.
        tokio::spawn(async {
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let blobs_dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
        let blobs = Arc::new(LocalBlobStore::open(blobs_dir.path()).await.unwrap());
        let core = Arc::new(
            Transactions::new(Arc::clone(&store), Arc::clone(&blobs), "t1")
                .unwrap()
                .with_clock(Clock::following_tokio()),
        );
        let (stop, _) = watch::channel(false);
        Harness {
            core,
            store,
            blobs,
            stop,
            worker: None,
            _blobs: blobs_dir,
        }
    }

    fn start(&mut self, routes: &[(&str, Arc<Recording>)], answer_delay: Duration) {
        let mut backends = Backends::new();
        for (service, connector) in routes {
            assert!(backends.add(
                &service.parse().unwrap(),
                Arc::clone(connector) as Arc<dyn Connector>
            ));
        }
        let policy = DeliveryPolicy {
            retry: RETRY,
            attempt_timeout: Duration::from_secs(30),
            answer_delay,
            lease: Duration::from_secs(60),
        };
        self.worker = Some(tokio::spawn(run_delivery(
            Arc::clone(&self.core),
            backends,
            policy,
            self.stop.subscribe(),
        )));
    }

    async fn stop(mut self) {
        self.stop.send(true).unwrap();
        if let Some(worker) = self.worker.take() {
            worker.await.unwrap();
        }
    }

    async fn user(&self, n: u32) -> Username {
        let username: Username = format!("CVR_1000000{n}_UID_{n}").parse().unwrap();
        let now = OffsetDateTime::now_utc();
        self.store
            .register_certificate(CertificateRegistration {
                username: username.clone(),
                cvr: Some(format!("1000000{n}").parse().unwrap()),
                account: format!("UID_{n}").parse().unwrap(),
                kind: "moces".into(),
                fingerprint: format!("{n:064x}"),
                subject: format!("CN=Test {n}"),
                serial_hex: format!("{n:x}"),
                not_after: now + time::Duration::days(365),
                cert_der: vec![n as u8],
                new_password_hash: "unused".into(),
                new_password_sealed: "unused".into(),
                activate_at: now,
                rotate_password: false,
                roles: Vec::new(),
            })
            .await
            .unwrap();
        username
    }

    async fn upload(&self, username: &Username, service: &str, name: &str) -> Transaction {
        let mut writer = self.core.create_blob().await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut writer, name.as_bytes())
            .await
            .unwrap();
        let blob = writer.finish().await.unwrap();
        let (cvr, account) = username
            .as_str()
            .strip_prefix("CVR_")
            .and_then(|rest| rest.split_once('_'))
            .unwrap();
        let target = UploadTarget {
            username: username.clone(),
            mailbox: mftgw_domain::Mailbox::of_user(username),
            cvr: Some(cvr.parse().unwrap()),
            account: account.parse().unwrap(),
            service: service.parse().unwrap(),
            name: name.parse().unwrap(),
            transfer_type: mftgw_domain::TransferMode::Binary,
        };
        let Committed::Transaction {
            skat_transaction_id,
        } = self.core.commit_upload(&target, blob, None).await.unwrap()
        else {
            panic!("{name} was used before");
        };
        self.core.find(&skat_transaction_id).await.unwrap().unwrap()
    }

    async fn current(&self, transaction: &Transaction) -> Transaction {
        let id = &transaction.skat_transaction_id;
        self.core.find(id).await.unwrap().unwrap()
    }

    async fn statuses(&self, transaction: &Transaction) -> Vec<(StatusCode, OffsetDateTime)> {
        self.core.history(transaction).await.unwrap()
    }

    /// The status codes `transaction` has reached, in order.
    async fn codes(&self, transaction: &Transaction) -> Vec<StatusCode> {
        let history = self.statuses(transaction).await;
        history.into_iter().map(|(code, _)| code).collect()
    }

    /// Waits (in simulated time, a step at a time) until `done` holds; panics after `limit`.
    async fn until<F, Fut>(&self, limit: Duration, what: &str, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while !done().await {
            assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn always() -> Plan {
    Box::new(|_, _| true)
}

#[tokio::test(start_paused = true)]
async fn each_user_and_service_is_delivered_in_upload_order_as_the_backend_sees_it() {
    let mut harness = Harness::new().await;
    let alice = harness.user(1).await;
    let bob = harness.user(2).await;
    // FATCA's backend refuses every third attempt at first, so that retries hold later
    // uploads back; VAT's takes everything.
    let attempts = Arc::new(Mutex::new(0u32));
    let counted = Arc::clone(&attempts);
    let flaky = Recording::new(
        Box::new(move |_, _| {
            let mut n = counted.lock().unwrap();
            *n += 1;
            *n > 30 || !n.is_multiple_of(3)
        }),
        Vec::new(),
    );
    let steady = Recording::new(always(), Vec::new());
    // All waiting before the worker starts, so that its batches hold several uploads of a
    // group and a refused one has later ones beside it.
    let mut uploaded = Vec::new();
    for n in 0..12 {
        for user in [&alice, &bob] {
            for service in ["FATCA", "VAT"] {
                let name = format!("{service}-{n:02}.xml");
                uploaded.push(harness.upload(user, service, &name).await);
            }
        }
    }
    harness.start(
        &[("FATCA", Arc::clone(&flaky)), ("VAT", Arc::clone(&steady))],
        Duration::ZERO,
    );
    let total = uploaded.len();
    harness
        .until(Duration::from_secs(3600), "every upload delivered", || {
            let (flaky, steady) = (Arc::clone(&flaky), Arc::clone(&steady));
            async move { flaky.taken().len() + steady.taken().len() >= total }
        })
        .await;

    for (backend, service) in [(&flaky, "FATCA"), (&steady, "VAT")] {
        for user in [&alice, &bob] {
            let seen: Vec<String> = backend
                .taken()
                .into_iter()
                .filter(|a| &a.username == user)
                .map(|a| a.name)
                .collect();
            let expected: Vec<String> = (0..12).map(|n| format!("{service}-{n:02}.xml")).collect();
            assert_eq!(
                seen, expected,
                "{user}'s {service} files, in the order taken"
            );
        }
    }
    assert!(
        flaky.attempts().iter().any(|a| !a.taken),
        "the flaky backend refused some attempts"
    );
    assert!(
        flaky
            .taken()
            .iter()
            .chain(steady.taken().iter())
            .all(|a| a.body == a.name.as_bytes()),
        "each body is its upload's"
    );
    for transaction in &uploaded {
        harness
            .until(Duration::from_secs(60), "status 1 committed", || async {
                harness.current(transaction).await.state == TransactionState::Delivered
            })
            .await;
    }
    harness.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_backend_down_for_an_hour_gets_every_file_after_it_and_no_status_0() {
    let mut harness = Harness::new().await;
    let user = harness.user(1).await;
    let down_until = Instant::now() + Duration::from_secs(3600);
    let backend = Recording::new(Box::new(move |_, at| at >= down_until), Vec::new());
    harness.start(&[("FATCA", Arc::clone(&backend))], Duration::ZERO);
    let first = harness.upload(&user, "FATCA", "first.xml").await;
    let second = harness.upload(&user, "FATCA", "second.xml").await;

    harness
        .until(Duration::from_secs(7200), "delivered once up", || async {
            backend.taken().len() == 2
        })
        .await;
    for transaction in [&first, &second] {
        harness
            .until(Duration::from_secs(60), "status 1 committed", || async {
                harness.current(transaction).await.state == TransactionState::Delivered
            })
            .await;
        let codes = harness.codes(transaction).await;
        assert_eq!(codes, [StatusCode::Delivered], "only status 1, never 0");
    }

    // Only the first upload was tried while down (FIFO holds the second back); the waits
    // between its attempts follow the backoff: at least half of it (equal jitter), and at
    // most all of it plus the worker's polling and the simulated time that passes while
    // the store works.
    let attempts = backend.attempts();
    let tried: Vec<&Attempt> = attempts.iter().filter(|a| a.name == "first.xml").collect();
    assert!(
        attempts
            .iter()
            .filter(|a| a.name == "second.xml")
            .all(|a| a.at >= down_until),
        "the second file waits for the first"
    );
    assert!(tried.len() >= 10, "{} attempts in an hour", tried.len());
    for (n, pair) in tried.windows(2).enumerate() {
        let waited = pair[1].at - pair[0].at;
        let backoff = RETRY.first.saturating_mul(1 << n.min(20)).min(RETRY.max);
        assert!(
            waited >= backoff / 2 && waited <= backoff + SLACK,
            "wait {n}: {waited:?} for a backoff of {backoff:?}"
        );
    }
    assert!(
        tried.last().unwrap().at - down_until <= RETRY.max + SLACK,
        "taken within one capped backoff of coming back"
    );
    harness.stop().await;
}

#[tokio::test(start_paused = true)]
async fn answers_of_a_backend_appear_in_order_with_the_answer_delay_between() {
    let mut harness = Harness::new().await;
    let user = harness.user(1).await;
    let response = Answer::Respond {
        name: "FATCA_reply.xml".into(),
        content: mftgw_store::OutContent::Inline(b"<reply/>".to_vec()),
    };
    let backend = Recording::new(always(), vec![Answer::Accept, response]);
    let delay = Duration::from_secs(5);
    harness.start(&[("FATCA", Arc::clone(&backend))], delay);
    let transaction = harness.upload(&user, "FATCA", "a.xml").await;
    harness
        .until(Duration::from_secs(120), "answered", || async {
            harness.current(&transaction).await.state == TransactionState::Answered
        })
        .await;
    let history = harness.statuses(&transaction).await;
    let codes: Vec<StatusCode> = history.iter().map(|(code, _)| *code).collect();
    assert_eq!(
        codes,
        [
            StatusCode::Delivered,
            StatusCode::Accepted,
            StatusCode::Exposed
        ]
    );
    for pair in history.windows(2) {
        assert!(
            pair[1].1 - pair[0].1 >= delay,
            "{:?} then {:?}",
            pair[0],
            pair[1]
        );
    }
    let out: Vec<String> = harness
        .store
        .out_files(&mftgw_domain::Mailbox::of_user(&user))
        .await
        .unwrap()
        .into_iter()
        .map(|file| file.name)
        .collect();
    assert!(out.contains(&"FATCA_reply.xml".to_string()), "{out:?}");
    assert_eq!(
        out.iter()
            .filter(|name| name.starts_with("status_"))
            .count(),
        3,
        "{out:?}"
    );
    harness.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_replay_delivers_the_file_again_and_changes_no_status() {
    let mut harness = Harness::new().await;
    let user = harness.user(1).await;
    let backend = Recording::new(always(), Vec::new());
    harness.start(&[("FATCA", Arc::clone(&backend))], Duration::ZERO);
    let transaction = harness.upload(&user, "FATCA", "again.xml").await;
    harness
        .until(Duration::from_secs(60), "delivered", || async {
            harness.current(&transaction).await.state == TransactionState::Delivered
        })
        .await;
    let before = harness.statuses(&transaction).await;
    assert!(
        harness
            .store
            .replay_work(&transaction.skat_transaction_id, harness.core.now())
            .await
            .unwrap()
    );
    // A later upload's delivery proves the worker has passed the replay.
    let later = harness.upload(&user, "FATCA", "later.xml").await;
    harness
        .until(
            Duration::from_secs(60),
            "the later upload delivered",
            || async { harness.current(&later).await.state == TransactionState::Delivered },
        )
        .await;
    let names: Vec<String> = backend.taken().into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["again.xml", "again.xml", "later.xml"]);
    assert_eq!(harness.statuses(&transaction).await, before);
    harness.stop().await;
}

#[tokio::test(start_paused = true)]
async fn backend_answers_follow_the_state_table_and_repeat_as_one() {
    let harness = Harness::new().await;
    let user = harness.user(1).await;
    // No worker: the backend answers before its delivery attempt has returned.
    let accepted = harness.upload(&user, "FATCA", "accept.xml").await;
    assert_eq!(harness.core.accept(&accepted).await.unwrap(), Answered::Now);
    let accepted = harness.current(&accepted).await;
    assert_eq!(accepted.state, TransactionState::Accepted);
    assert_eq!(
        harness.core.accept(&accepted).await.unwrap(),
        Answered::Before
    );
    let codes = harness.codes(&accepted).await;
    assert_eq!(codes, [StatusCode::Delivered, StatusCode::Accepted]);

    let error = ErrorEntry {
        code: "FATCA-17".into(),
        message: "The file is not valid".into(),
        resolution: String::new(),
    };
    let rejected = harness.upload(&user, "FATCA", "reject.xml").await;
    assert_eq!(
        harness.core.reject(&rejected, error.clone()).await.unwrap(),
        Answered::Now
    );
    let rejected = harness.current(&rejected).await;
    assert!(matches!(
        harness.core.accept(&rejected).await,
        Err(TransitionError::AcceptAfterReject { .. })
    ));
    assert!(matches!(
        harness.core.may_respond(&rejected),
        Err(TransitionError::ResponseAfterReject { .. })
    ));
    let received = harness.upload(&user, "FATCA", "early.xml").await;
    let refusal = harness.core.may_respond(&received).unwrap_err();
    assert!(matches!(
        refusal,
        TransitionError::ResponseBeforeAccept { .. }
    ));
    assert_eq!(
        refusal.to_string(),
        format!(
            "accept {} before answering it",
            received.skat_transaction_id
        )
    );

    let mut writer = harness.core.create_blob().await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut writer, b"answer")
        .await
        .unwrap();
    let blob = writer.finish().await.unwrap();
    assert_eq!(
        harness
            .core
            .respond(&accepted, "FATCA_answer.txt".into(), blob)
            .await
            .unwrap(),
        Answered::Now
    );
    let answered = harness.current(&accepted).await;
    assert!(matches!(
        harness.core.reject(&answered, error).await,
        Err(TransitionError::RejectAfterResponse { .. })
    ));
    assert_eq!(
        harness.core.may_respond(&answered).unwrap(),
        Answered::Before
    );
}

/// ARCHITECTURE.md's crate invariants, read from the workspace's manifests: the protocol
/// engines know nothing of the gateway, and the core knows no wire format. Checked over each
/// crate's normal dependencies and those of every workspace crate it reaches.
#[tokio::test(start_paused = true)]
async fn uploads_behind_a_failure_follow_its_retry_not_the_lease() {
    let mut harness = Harness::new().await;
    let alice = harness.user(1).await;
    let first = harness.upload(&alice, "FATCA", "first.xml").await;
    let second = harness.upload(&alice, "FATCA", "second.xml").await;
    // The first attempt fails; the second upload, claimed in the same batch, was not tried.
    let refused_once = Mutex::new(false);
    let backend = Recording::new(
        Box::new(move |_, _| std::mem::replace(&mut *refused_once.lock().unwrap(), true)),
        Vec::new(),
    );
    harness.start(&[("FATCA", Arc::clone(&backend))], Duration::ZERO);
    // Both follow the first one's retry (2 s), well before the batch's lease (60 s) ends.
    harness
        .until(RETRY.first + SLACK, "both delivered", || async {
            harness.current(&second).await.state == TransactionState::Delivered
        })
        .await;
    assert_eq!(
        harness.current(&first).await.state,
        TransactionState::Delivered
    );
    let taken: Vec<String> = backend.taken().into_iter().map(|a| a.name).collect();
    assert_eq!(taken, ["first.xml", "second.xml"]);
    harness.stop().await;
}

/// On the real clock: a lease runs out by the database's clock, which a paused tokio clock
/// does not move.
#[tokio::test]
async fn work_a_dead_worker_claimed_is_delivered_when_its_lease_runs_out() {
    let mut harness = Harness::new().await;
    let alice = harness.user(1).await;
    let bob = harness.user(2).await;
    let orphaned = harness.upload(&alice, "FATCA", "orphaned.xml").await;
    // Another node claims it and dies.
    let now = harness.core.now();
    let lease = Duration::from_secs(3);
    let claimed = harness
        .store
        .claim_work("dead-node", &["FATCA".parse().unwrap()], now, lease, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let backend = Recording::new(always(), Vec::new());
    harness.start(&[("FATCA", Arc::clone(&backend))], Duration::ZERO);
    // Bob's delivery proves the worker has polled while the claim held.
    let later = harness.upload(&bob, "FATCA", "later.xml").await;
    harness
        .until(Duration::from_secs(2), "bob's upload delivered", || async {
            harness.current(&later).await.state == TransactionState::Delivered
        })
        .await;
    assert_eq!(
        harness.current(&orphaned).await.state,
        TransactionState::Received
    );
    let names: Vec<String> = backend.taken().into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["later.xml"]);
    // Once the lease runs out, this node's worker claims and delivers it, once.
    harness
        .until(
            Duration::from_secs(30),
            "the orphaned upload delivered",
            || async { harness.current(&orphaned).await.state == TransactionState::Delivered },
        )
        .await;
    let elapsed = harness.core.now() - now;
    assert!(
        elapsed >= lease,
        "delivered after {elapsed} of a {lease:?} lease"
    );
    let names: Vec<String> = backend.taken().into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["later.xml", "orphaned.xml"]);
    harness.stop().await;
}

/// Leads every job: a node on its own.
struct Alone;

impl Leadership for Alone {
    fn leads<'a>(&'a self, _: &'static str, _: Duration) -> BoxFuture<'a, bool> {
        Box::pin(async { true })
    }
}

/// On the real clock, which blobs' ages are measured by: the periodic orphan sweep takes a
/// blob nothing refers to once it is older than the sweep's age, and leaves a younger one
/// (an upload still on its way to its commit, on this node or another) and every body a
/// transaction refers to.
#[tokio::test]
async fn the_orphan_sweep_takes_old_unreferenced_blobs_only() {
    let harness = Harness::new().await;
    let alice = harness.user(1).await;
    let kept = harness.upload(&alice, "FATCA", "kept.xml").await;
    let unreferenced = async || {
        let mut writer = harness.core.create_blob().await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut writer, b"orphan")
            .await
            .unwrap();
        writer.finish().await.unwrap().key
    };
    let orphan = unreferenced().await;
    let age = Duration::from_secs(2);
    tokio::time::sleep(age + Duration::from_millis(100)).await;
    let young = unreferenced().await;
    let (stop, shutdown) = watch::channel(false);
    let sweep = tokio::spawn(run_orphan_sweep(
        Arc::clone(&harness.core),
        OrphanSweep {
            older_than: age,
            sweep_every: Duration::from_millis(100),
        },
        Arc::new(Alone),
        shutdown,
    ));
    harness
        .until(Duration::from_secs(1), "the orphan swept", || async {
            harness.blobs.open(&orphan, 0).await.is_err()
        })
        .await;
    stop.send(true).unwrap();
    sweep.await.unwrap();
    assert!(
        harness.blobs.open(&young, 0).await.is_ok(),
        "a young blob taken"
    );
    let body = kept.blob_key.as_ref().unwrap();
    assert!(
        harness.blobs.open(body, 0).await.is_ok(),
        "an upload's body taken"
    );
}

#[test]
fn the_crate_graph_keeps_the_architecture_invariants() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let direct = |package: &str| -> Vec<String> {
        let found = packages
            .iter()
            .find(|p| p["name"] == package)
            .unwrap_or_else(|| panic!("no workspace crate {package}"));
        found["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|dependency| dependency["kind"].is_null())
            .map(|dependency| dependency["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let reached = |root: &str| -> Vec<String> {
        let mut seen = vec![root.to_owned()];
        let mut all = Vec::new();
        while let Some(package) = seen.pop() {
            for dependency in direct(&package) {
                if dependency.starts_with("mftgw-") && !all.contains(&dependency) {
                    seen.push(dependency.clone());
                }
                if !all.contains(&dependency) {
                    all.push(dependency);
                }
            }
        }
        all
    };

    // Engines may build on one another (EMCS on WS-Security), never on the gateway.
    let engines = ["mftgw-ftps", "mftgw-wssec", "mftgw-emcs"];
    for engine in engines {
        let engine_deps = reached(engine);
        let gateway: Vec<&String> = engine_deps
            .iter()
            .filter(|name| name.starts_with("mftgw-") && !engines.contains(&name.as_str()))
            .collect();
        assert!(gateway.is_empty(), "{engine} depends on {gateway:?}");
    }

    let wire_formats = [
        "axum",
        "hyper",
        "hyper-util",
        "http",
        "reqwest",
        "askama",
        "tokio-rustls",
        "mftgw-ftps",
        "mftgw-wssec",
        "mftgw-emcs",
        "suppaftp",
        "quick-xml",
        "roxmltree",
    ];
    let core_deps = reached("mftgw-core");
    let forbidden: Vec<&String> = core_deps
        .iter()
        .filter(|name| wire_formats.contains(&name.as_str()))
        .collect();
    assert!(forbidden.is_empty(), "mftgw-core reaches {forbidden:?}");
}
