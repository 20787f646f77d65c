//! Checks of [`TransactionLog`]: recording uploads, their work and delivery order, steps,
//! outbound files, replays and expiry.

use std::sync::Arc;
use std::time::Duration;

use mftgw_domain::status::StatusCode;
use mftgw_domain::{Mailbox, Transaction, TransactionState};
use time::OffsetDateTime;

use mftgw_domain::ServiceName;

use super::{
    HEARTBEAT, NODE, RECEIVED_AT, USERNAME, add_other_user, created, id, inline, names, race, step,
    upload, with_user,
};
use super::{blob_key_for, service, sha256, user};
use crate::{
    Advance, Expired, IdentityStore, MailboxStore, NewOutFile, NewOutbound, OutContent, Recorded,
    StoreError, TransactionLog, WorkItem,
};

/// A lease that lasts for the whole of a check.
const LEASE: Duration = Duration::from_secs(3600);

/// A lease that a check waits out by the database's clock (the only clock leases run by).
const SHORT_LEASE: Duration = Duration::from_secs(2);

/// The work due at `now` for `services`, claimed with a lease that runs out at once: a look
/// that holds nothing back, so that the next claim finds the same items.
async fn look<S: TransactionLog>(
    store: &S,
    services: &[ServiceName],
    now: OffsetDateTime,
) -> Vec<WorkItem> {
    store
        .claim_work(NODE, services, now, Duration::ZERO, 10)
        .await
        .unwrap()
}

/// Records the upload `skat_id` named `name` of [`upload`]; panics if the name was used.
async fn record<S: TransactionLog>(store: &S, skat_id: &str, name: &str) -> Transaction {
    created(
        store
            .record_transaction(upload(skat_id, name))
            .await
            .unwrap(),
    )
}

/// For the standard user: two uploads to [`HEARTBEAT`], then one to FATCA.
async fn two_uploads_and_one_to_fatca<S: IdentityStore + TransactionLog>(
    store: &S,
) -> [Transaction; 3] {
    with_user(store).await;
    let first = record(store, "ci1", "1.xml").await;
    let second = record(store, "ci2", "2.xml").await;
    let mut elsewhere = upload("ci3", "3.xml");
    elsewhere.service = service("FATCA");
    [
        first,
        second,
        created(store.record_transaction(elsewhere).await.unwrap()),
    ]
}

/// The transactions of `items`, in their order.
fn ids(items: &[WorkItem]) -> Vec<i64> {
    items.iter().map(|item| item.transaction.id).collect()
}

/// A recorded upload is due for delivery until a final step ends its work; a step applied
/// again changes nothing.
pub async fn a_recorded_transaction_has_work_until_a_final_step<
    S: IdentityStore + TransactionLog + MailboxStore,
>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let transaction = record(&*store, "ci1", "a.xml").await;
    assert_eq!(transaction.state, TransactionState::Received);
    assert_eq!(transaction.received_at, RECEIVED_AT);

    let services = [service(HEARTBEAT)];
    let due = look(&*store, &services, RECEIVED_AT).await;
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].transaction, transaction);
    assert_eq!((due[0].attempts, due[0].last_error.as_deref()), (0, None));
    assert!(
        look(&*store, &services, RECEIVED_AT - time::Duration::SECOND)
            .await
            .is_empty()
    );
    assert!(
        look(&*store, &[service("Other")], RECEIVED_AT)
            .await
            .is_empty()
    );

    let delivered = step(
        &transaction,
        TransactionState::Delivered,
        StatusCode::Delivered,
    );
    assert_eq!(
        store
            .advance(std::slice::from_ref(&delivered))
            .await
            .unwrap()
            .applied,
        vec![true]
    );
    // The same step again (a retry after a crash) changes nothing and adds no file.
    assert_eq!(
        store.advance(&[delivered]).await.unwrap().applied,
        vec![false]
    );
    let due = look(&*store, &services, RECEIVED_AT).await;
    assert_eq!(due[0].transaction.state, TransactionState::Delivered);

    let rejected = step(
        &due[0].transaction,
        TransactionState::Rejected,
        StatusCode::Error,
    );
    assert_eq!(
        store.advance(&[rejected]).await.unwrap().applied,
        vec![true]
    );
    assert!(look(&*store, &services, RECEIVED_AT).await.is_empty());
    assert_eq!(
        names(
            &store
                .out_files(&Mailbox::of_user(&user(USERNAME)))
                .await
                .unwrap()
        ),
        ["status_1", "status_0"]
    );
}

/// An upload refused on arrival is recorded rejected, with its status_0 in `/out` and no work;
/// it used its name.
pub async fn a_transaction_rejected_on_arrival_has_its_status_0_and_no_work<
    S: IdentityStore + TransactionLog + MailboxStore,
>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let mut refused = upload("ci1", "bad.txt");
    refused.rejection = Some(vec![inline("status_AKFA_bad.txt_0.xml", "xml")]);
    let transaction = created(store.record_transaction(refused).await.unwrap());
    assert_eq!(transaction.state, TransactionState::Rejected);
    let services = [service(HEARTBEAT)];
    assert!(look(&*store, &services, RECEIVED_AT).await.is_empty());
    assert_eq!(
        names(
            &store
                .out_files(&Mailbox::of_user(&user(USERNAME)))
                .await
                .unwrap()
        ),
        ["status_AKFA_bad.txt_0.xml"]
    );
    assert_eq!(
        store.status_history(transaction.id).await.unwrap(),
        [(StatusCode::Error, RECEIVED_AT)]
    );
    assert_eq!(
        store
            .record_transaction(upload("ci2", "bad.txt"))
            .await
            .unwrap(),
        Recorded::NameReused,
        "a rejected upload used its name"
    );
}

/// A user can use an FTPTransactionID once in all services; another user has names of its own.
pub async fn a_name_is_used_once_per_user_in_any_service<S: IdentityStore + TransactionLog>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    record(&*store, "ci1", "a.xml").await;
    let mut elsewhere = upload("ci2", "a.xml");
    elsewhere.service = service("FATCA");
    assert_eq!(
        store.record_transaction(elsewhere).await.unwrap(),
        Recorded::NameReused
    );

    let other_user = add_other_user(&*store).await;
    let mut theirs = upload("ci3", "a.xml");
    theirs.username = user(other_user);
    theirs.mailbox = Mailbox::of_user(&user(other_user));
    created(store.record_transaction(theirs).await.unwrap());
    assert_eq!(store.transactions(None, 10).await.unwrap().len(), 2);
    assert_eq!(
        store
            .transactions(Some(&user(other_user)), 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Racing uploads of one name by one user record one transaction; the others are told the
/// name was used.
pub async fn concurrent_uploads_of_one_name_make_one_transaction<
    S: IdentityStore + TransactionLog,
>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let attempts = race(16, |i| {
        let store = Arc::clone(&store);
        async move {
            store
                .record_transaction(upload(&format!("ci{i}"), "same.xml"))
                .await
        }
    })
    .await;
    let mut created_count = 0;
    for attempt in attempts {
        if let Recorded::Created(_) = attempt.unwrap() {
            created_count += 1;
        }
    }
    assert_eq!(created_count, 1);
    assert_eq!(
        store
            .transactions(Some(&user(USERNAME)), 100)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// A user's pending bytes are the sizes of their uploads that still wait for delivery.
pub async fn pending_upload_bytes_count_what_waits_for_delivery<
    S: IdentityStore + TransactionLog,
>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    assert_eq!(
        store.pending_upload_bytes(&user(USERNAME)).await.unwrap(),
        0
    );
    let waiting = record(&*store, "ci1", "a.xml").await;
    let delivered = record(&*store, "ci2", "b.xml").await;
    let size = waiting.size;
    assert_eq!(
        store.pending_upload_bytes(&user(USERNAME)).await.unwrap(),
        2 * size
    );
    store
        .advance(&[step(
            &delivered,
            TransactionState::Answered,
            StatusCode::Exposed,
        )])
        .await
        .unwrap();
    assert_eq!(
        store.pending_upload_bytes(&user(USERNAME)).await.unwrap(),
        size
    );
}

/// Expiry removes old `/out` files and the bodies of old finished uploads, returning their
/// blobs, and keeps the transactions and what is still in progress.
pub async fn expiry_removes_old_out_files_and_finished_upload_bodies<
    S: IdentityStore + TransactionLog + MailboxStore,
>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let old = record(&*store, "ci1", "old.xml").await;
    let mut fresh_upload = upload("ci2", "fresh.xml");
    fresh_upload.received_at = RECEIVED_AT + time::Duration::DAY;
    let unfinished = record(&*store, "ci3", "busy.xml").await;
    created(store.record_transaction(fresh_upload).await.unwrap());
    store
        .advance(&[step(&old, TransactionState::Rejected, StatusCode::Error)])
        .await
        .unwrap();
    let blob = NewOutFile {
        name: "big.bin".into(),
        content: OutContent::Blob {
            key: blob_key_for("k9"),
            size: 1,
        },
    };
    store
        .add_out_file(&Mailbox::of_user(&user(USERNAME)), blob, RECEIVED_AT)
        .await
        .unwrap();
    store
        .add_out_file(
            &Mailbox::of_user(&user(USERNAME)),
            inline("new.txt", "x"),
            RECEIVED_AT + time::Duration::DAY,
        )
        .await
        .unwrap();

    let expired = store
        .expire(RECEIVED_AT + time::Duration::HOUR)
        .await
        .unwrap();
    assert_eq!(expired.out_files, 2, "status_0 of old.xml and big.bin");
    let mut keys = expired.blob_keys.clone();
    keys.sort();
    assert_eq!(keys, [blob_key_for("ci1"), blob_key_for("k9")]);
    assert_eq!(
        names(
            &store
                .out_files(&Mailbox::of_user(&user(USERNAME)))
                .await
                .unwrap()
        ),
        ["new.txt"]
    );
    let kept = store.transactions(Some(&user(USERNAME)), 10).await.unwrap();
    assert_eq!(kept.len(), 3, "transactions are kept forever");
    let unfinished = kept.iter().find(|t| t.id == unfinished.id).unwrap();
    assert_eq!(unfinished.blob_key, Some(blob_key_for("ci3")));
    assert_eq!(
        store
            .expire(RECEIVED_AT + time::Duration::HOUR)
            .await
            .unwrap(),
        Expired::default()
    );
}

/// Delivery is FIFO per (user, service): an upload postponed for a retry holds back the later
/// ones of its user and service until it is delivered, but not those of another service.
pub async fn an_upload_waiting_for_a_retry_holds_back_later_ones_of_its_user_and_service<
    S: IdentityStore + TransactionLog,
>(
    store: Arc<S>,
) {
    let [first, second, other_service] = two_uploads_and_one_to_fatca(&*store).await;
    let services = [service(HEARTBEAT), service("FATCA")];
    let due = look(&*store, &services, RECEIVED_AT).await;
    assert_eq!(ids(&due), [first.id, second.id, other_service.id]);

    let later = RECEIVED_AT + time::Duration::MINUTE;
    assert!(
        store
            .postpone_work(first.id, due[0].lease, 1, later, "connection refused")
            .await
            .unwrap()
    );
    assert_eq!(
        ids(&look(&*store, &services, RECEIVED_AT).await),
        [other_service.id],
        "2.xml waits behind 1.xml; FATCA does not"
    );
    let pending = store.pending_work(10).await.unwrap();
    assert_eq!((pending[0].attempts, pending[0].due_at), (1, later));
    assert_eq!(pending[0].last_error.as_deref(), Some("connection refused"));
    assert_eq!(
        ids(&look(&*store, &services, later).await),
        [first.id, second.id, other_service.id]
    );

    assert!(store.retry_work(&id("ci1"), RECEIVED_AT).await.unwrap());
    let due = look(&*store, &services, RECEIVED_AT).await;
    assert_eq!(due.len(), 3);
    assert!(
        !store
            .retry_work(&id("ci-unknown"), RECEIVED_AT)
            .await
            .unwrap()
    );

    // Once 1.xml is delivered, it no longer holds anything back, even while due later.
    store
        .advance(&[step(
            &first,
            TransactionState::Delivered,
            StatusCode::Delivered,
        )])
        .await
        .unwrap();
    assert!(
        store
            .postpone_work(first.id, due[0].lease, 1, later, "answer pending")
            .await
            .unwrap()
    );
    assert_eq!(
        ids(&look(&*store, &services, RECEIVED_AT).await),
        [second.id, other_service.id]
    );
}

/// An outbound file gets a number and a status_3; posting it again changes nothing, with
/// other content it is a conflict.
pub async fn an_outbound_file_is_numbered_and_posted_once<
    S: IdentityStore + TransactionLog + MailboxStore,
>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let outbound = |name: &str| NewOutbound {
        username: user(USERNAME),
        mailbox: Mailbox::of_user(&user(USERNAME)),
        service: service("Manifest.X"),
        name: name.into(),
        sha256: sha256(&"ab".repeat(32)),
        skat_transaction_id: id(&format!("MAN_{name}")),
        file: inline(&format!("Manifest.X_{name}"), "body"),
        status_xml: b"xml".to_vec(),
        at: RECEIVED_AT,
    };
    let first = store.record_outbound(outbound("a.xml")).await.unwrap();
    assert!(first.created);
    let again = store.record_outbound(outbound("a.xml")).await.unwrap();
    assert_eq!((again.seq, again.created), (first.seq, false));
    assert_eq!(again.skat_transaction_id, "MAN_a.xml");
    let mut changed = outbound("a.xml");
    changed.sha256 = sha256(&"cd".repeat(32));
    assert!(matches!(
        store.record_outbound(changed).await,
        Err(StoreError::Conflict(_))
    ));
    let second = store.record_outbound(outbound("b.xml")).await.unwrap();
    assert!(second.seq > first.seq);
    assert_eq!(
        names(
            &store
                .out_files(&Mailbox::of_user(&user(USERNAME)))
                .await
                .unwrap()
        ),
        [
            "Manifest.X_a.xml".to_string(),
            format!("status_Manifest.X_outbound-{}_3.xml", first.seq),
            "Manifest.X_b.xml".to_string(),
            format!("status_Manifest.X_outbound-{}_3.xml", second.seq),
        ]
    );
    let recorded = record(&*store, "ci9", "t.xml").await;
    assert_eq!(store.transaction(&id("ci9")).await.unwrap(), Some(recorded));
    assert_eq!(store.transaction(&id("ci-none")).await.unwrap(), None);
}

/// Only a transaction its backend took can be replayed, once at a time, as work of its own.
pub async fn only_a_transaction_the_backend_took_can_be_replayed<
    S: IdentityStore + TransactionLog,
>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let services = [service(HEARTBEAT)];
    let transaction = record(&*store, "ci1", "r.xml").await;
    assert!(
        !store.replay_work(&id("ci1"), RECEIVED_AT).await.unwrap(),
        "not delivered yet"
    );
    let mut delivered = step(
        &transaction,
        TransactionState::Delivered,
        StatusCode::Delivered,
    );
    delivered.finishes_work = true;
    store.advance(&[delivered]).await.unwrap();
    assert!(look(&*store, &services, RECEIVED_AT).await.is_empty());

    assert!(store.replay_work(&id("ci1"), RECEIVED_AT).await.unwrap());
    assert!(
        !store.replay_work(&id("ci1"), RECEIVED_AT).await.unwrap(),
        "already scheduled"
    );
    let due = look(&*store, &services, RECEIVED_AT).await;
    assert_eq!(due.len(), 1);
    assert!(due[0].replay);
    store.complete_replay(transaction.id).await.unwrap();
    assert!(look(&*store, &services, RECEIVED_AT).await.is_empty());

    let mut refused = upload("ci2", "bad.txt");
    refused.rejection = Some(vec![inline("status_AKFA_bad.txt_0.xml", "xml")]);
    created(store.record_transaction(refused).await.unwrap());
    assert!(
        !store.replay_work(&id("ci2"), RECEIVED_AT).await.unwrap(),
        "never delivered"
    );
}

/// A batch of hundreds of steps applies in order, in one commit: a step may build on an earlier
/// one of the batch, files of one name replace each other, and stale steps are skipped.
pub async fn a_batch_of_steps_larger_than_one_statement_applies_in_order<
    S: IdentityStore + TransactionLog + MailboxStore,
>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let mut received = Vec::new();
    for i in 0..450 {
        received.push(created(
            store
                .record_transaction(upload(&format!("ci{i}"), &format!("{i}.xml")))
                .await
                .unwrap(),
        ));
    }
    let blob = |name: &str, key: &str| NewOutFile {
        name: name.into(),
        content: OutContent::Blob {
            key: blob_key_for(key),
            size: 1,
        },
    };
    let mut steps: Vec<Advance> = received
        .iter()
        .map(|transaction| {
            let mut delivered = step(
                transaction,
                TransactionState::Delivered,
                StatusCode::Delivered,
            );
            delivered.files = vec![inline(&format!("status_{}_1.xml", transaction.id), "1")];
            delivered
        })
        .collect();
    // The first transaction goes on to status 3 in the same batch; its answer replaces a
    // file put there by the batch's own status 1 step, then is replaced once more.
    let first = &received[0];
    steps[0].files.push(blob("answer.xml", "early"));
    let mut answered = step(first, TransactionState::Answered, StatusCode::Exposed);
    answered.from = TransactionState::Delivered;
    answered.files = vec![blob("answer.xml", "middle"), blob("answer.xml", "last")];
    steps.push(answered);
    // A step from a state the transaction is not in (any more) is not applied.
    for transaction in [first, &received[1]] {
        steps.push(step(
            transaction,
            TransactionState::Delivered,
            StatusCode::Delivered,
        ));
    }

    let advanced = store.advance(&steps).await.unwrap();
    let mut expected = vec![true; 451];
    expected.extend([false, false]);
    assert_eq!(advanced.applied, expected);
    assert_eq!(
        advanced.replaced_blobs,
        [blob_key_for("early"), blob_key_for("middle")]
    );

    let out = store
        .out_files(&Mailbox::of_user(&user(USERNAME)))
        .await
        .unwrap();
    assert_eq!(out.len(), 451);
    assert_eq!(
        names(&out).last(),
        Some(&"answer.xml"),
        "a replacement is listed where it was put, after the files before it"
    );
    let (_, answer) = store
        .out_file(&Mailbox::of_user(&user(USERNAME)), "answer.xml")
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(answer, OutContent::Blob { ref key, .. } if *key == blob_key_for("last")));
    assert_eq!(
        store.status_history(first.id).await.unwrap(),
        [
            (StatusCode::Delivered, RECEIVED_AT),
            (StatusCode::Exposed, RECEIVED_AT)
        ]
    );
    assert_eq!(
        store.status_history(received[449].id).await.unwrap(),
        [(StatusCode::Delivered, RECEIVED_AT)]
    );
    // Only the answered transaction's work ended.
    assert_eq!(store.pending_work(1000).await.unwrap().len(), 449);
}

/// Racing workers applying the same step: it takes effect once, with its files once and
/// nothing replaced.
pub async fn racing_advances_of_one_step_take_effect_once<
    S: IdentityStore + TransactionLog + MailboxStore,
>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let transaction = record(&*store, "ci1", "a.xml").await;
    let outcomes = race(8, |worker| {
        let store = Arc::clone(&store);
        let mut delivered = step(
            &transaction,
            TransactionState::Delivered,
            StatusCode::Delivered,
        );
        delivered.files = vec![NewOutFile {
            name: "status_1".into(),
            content: OutContent::Blob {
                key: blob_key_for(&format!("worker{worker}")),
                size: 1,
            },
        }];
        async move { store.advance(&[delivered]).await }
    })
    .await;
    let mut applied = 0;
    for outcome in outcomes {
        let advanced = outcome.unwrap();
        assert!(advanced.replaced_blobs.is_empty(), "{advanced:?}");
        applied += advanced.applied.iter().filter(|applied| **applied).count();
    }
    assert_eq!(applied, 1);
    assert_eq!(
        store.status_history(transaction.id).await.unwrap(),
        [(StatusCode::Delivered, RECEIVED_AT)]
    );
    assert_eq!(
        names(
            &store
                .out_files(&Mailbox::of_user(&user(USERNAME)))
                .await
                .unwrap()
        ),
        ["status_1"]
    );
    let delivered = store.transaction(&id("ci1")).await.unwrap().unwrap();
    assert_eq!(delivered.state, TransactionState::Delivered);
}

/// Workers racing to claim the due work each get items of their own: every item goes to one
/// of them until its lease runs out, and then to the next claim, with a new token.
pub async fn racing_claims_hand_each_item_to_one_worker_until_its_lease_runs_out<
    S: IdentityStore + TransactionLog,
>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    // A service per upload, so that delivery order holds none of them back.
    let services: Vec<ServiceName> = (0..12).map(|i| service(&format!("Service{i}"))).collect();
    let mut recorded = Vec::new();
    for (i, name) in services.iter().enumerate() {
        let mut new = upload(&format!("ci{i}"), &format!("{i}.xml"));
        new.service = name.clone();
        recorded.push(created(store.record_transaction(new).await.unwrap()).id);
    }
    recorded.sort_unstable();
    let claims = race(6, |_| {
        let store = Arc::clone(&store);
        let services = services.clone();
        async move {
            store
                .claim_work(NODE, &services, RECEIVED_AT, SHORT_LEASE, 3)
                .await
        }
    })
    .await;
    let claimed: Vec<WorkItem> = claims.into_iter().flat_map(Result::unwrap).collect();
    let mut claimed_ids = ids(&claimed);
    claimed_ids.sort_unstable();
    assert_eq!(claimed_ids, recorded, "every item claimed, and once");
    assert!(
        store
            .claim_work(NODE, &services, RECEIVED_AT, SHORT_LEASE, 100)
            .await
            .unwrap()
            .is_empty(),
        "nothing is handed out again while its lease lasts"
    );
    tokio::time::sleep(SHORT_LEASE).await;
    let again = store
        .claim_work(NODE, &services, RECEIVED_AT, LEASE, 100)
        .await
        .unwrap();
    assert_eq!(
        again.len(),
        recorded.len(),
        "due again once the leases ran out"
    );
    for item in &again {
        let first = claimed
            .iter()
            .find(|first| first.transaction.id == item.transaction.id)
            .unwrap();
        assert_ne!(item.lease, first.lease, "a new claim, a new token");
    }
}

/// Only the current claim of an item records a failure or extends its lease: a worker whose
/// lease ran out, and whose item was claimed again, is told so and changes nothing.
/// Postponing ends the claim.
pub async fn only_the_current_claim_postpones_or_renews<S: IdentityStore + TransactionLog>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let id = record(&*store, "ci1", "a.xml").await.id;
    let services = [service(HEARTBEAT)];
    let minutes = |n: i64| RECEIVED_AT + time::Duration::minutes(n);
    let stale = store
        .claim_work(NODE, &services, RECEIVED_AT, Duration::ZERO, 10)
        .await
        .unwrap();
    let current = store
        .claim_work(NODE, &services, minutes(2), SHORT_LEASE, 10)
        .await
        .unwrap();
    assert_eq!((stale.len(), current.len()), (1, 1));
    let (stale, current) = (stale[0].lease, current[0].lease);

    assert_eq!(store.renew_leases(&[(id, stale)], LEASE).await.unwrap(), 0);
    assert!(
        !store
            .postpone_work(id, stale, 1, minutes(5), "stale")
            .await
            .unwrap()
    );
    let pending = store.pending_work(10).await.unwrap();
    assert_eq!(
        (pending[0].attempts, pending[0].last_error.as_deref()),
        (0, None),
        "the stale claim changed nothing"
    );

    assert_eq!(
        store.renew_leases(&[(id, current)], LEASE).await.unwrap(),
        1
    );
    tokio::time::sleep(SHORT_LEASE).await;
    assert!(
        store
            .claim_work(NODE, &services, minutes(4), LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "the renewed lease holds past the claim's own"
    );
    assert!(
        store
            .postpone_work(id, current, 1, minutes(5), "refused")
            .await
            .unwrap()
    );
    let pending = store.pending_work(10).await.unwrap();
    assert_eq!(
        (
            pending[0].attempts,
            pending[0].due_at,
            pending[0].last_error.as_deref()
        ),
        (1, minutes(5), Some("refused"))
    );
    assert_eq!(
        store
            .claim_work(NODE, &services, minutes(6), LEASE, 10)
            .await
            .unwrap()
            .len(),
        1,
        "postponing ended the claim"
    );
}

/// A step taken under a claim (its fencing token) applies only while that claim is the
/// current one and its lease lasts by the database's clock: a worker whose lease ran out, or
/// whose work was claimed again, changes nothing, and the current claimant's step applies.
/// A step under no claim (a backend's own answer) is not fenced.
pub async fn a_step_under_a_claim_no_longer_current_is_refused<
    S: IdentityStore + TransactionLog + MailboxStore,
>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let transaction = record(&*store, "fs1", "a.xml").await;
    let services = [service(HEARTBEAT)];
    let claim = async |lease| {
        let claimed = store
            .claim_work(NODE, &services, RECEIVED_AT, lease, 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        claimed[0].lease
    };
    let delivered_under = |lease| Advance {
        lease: Some(lease),
        ..step(
            &transaction,
            TransactionState::Delivered,
            StatusCode::Delivered,
        )
    };
    let advance = async |step: Advance| store.advance(&[step]).await.unwrap();

    let ran_out = claim(Duration::ZERO).await;
    let refused = advance(delivered_under(ran_out)).await;
    assert_eq!(
        (refused.applied, refused.refused_stale),
        (vec![false], 1),
        "the lease ran out: refused"
    );
    let replaced = ran_out;
    let current = claim(LEASE).await;
    assert_ne!(replaced, current);
    let refused = advance(delivered_under(replaced)).await;
    assert_eq!(
        (refused.applied, refused.refused_stale),
        (vec![false], 1),
        "another claim replaced it: refused"
    );
    let mailbox = Mailbox::of_user(&user(USERNAME));
    assert!(
        store.out_files(&mailbox).await.unwrap().is_empty(),
        "a refused step adds no file"
    );
    assert_eq!(
        store.status_history(transaction.id).await.unwrap().len(),
        0,
        "nor a status"
    );
    let applied = advance(delivered_under(current)).await;
    assert_eq!((applied.applied, applied.refused_stale), (vec![true], 0));

    let delivered = Transaction {
        state: TransactionState::Delivered,
        ..transaction.clone()
    };
    let answered = advance(step(
        &delivered,
        TransactionState::Accepted,
        StatusCode::Accepted,
    ))
    .await;
    assert_eq!(
        answered.applied,
        vec![true],
        "an unclaimed step is not fenced"
    );
}

/// Delivery is FIFO per (user, service) among workers too: while one holds the claim of an
/// upload, the later uploads of its user and service are held back from the others, those of
/// another service are not; once the lease runs out, all are due in order.
pub async fn a_claimed_upload_holds_back_later_ones_of_its_user_and_service<
    S: IdentityStore + TransactionLog,
>(
    store: Arc<S>,
) {
    let [first, second, other_service] = two_uploads_and_one_to_fatca(&*store).await;
    let services = [service(HEARTBEAT), service("FATCA")];
    let claim = async |limit| {
        ids(&store
            .claim_work(NODE, &services, RECEIVED_AT, SHORT_LEASE, limit)
            .await
            .unwrap())
    };

    assert_eq!(claim(1).await, [first.id]);
    assert_eq!(
        claim(10).await,
        [other_service.id],
        "2.xml waits behind the claimed 1.xml; FATCA does not"
    );
    tokio::time::sleep(SHORT_LEASE).await;
    assert_eq!(claim(10).await, [first.id, second.id, other_service.id]);
}

/// A node that starts again ends the claims of its earlier run at once, and no other node's.
pub async fn a_node_starting_again_ends_its_own_claims_only<S: IdentityStore + TransactionLog>(
    store: Arc<S>,
) {
    with_user(&*store).await;
    let other = add_other_user(&*store).await;
    let mine = record(&*store, "rc1", "1.xml").await;
    let mut theirs = upload("rc2", "2.xml");
    theirs.username = user(other);
    theirs.mailbox = Mailbox::of_user(&user(other));
    let theirs = created(store.record_transaction(theirs).await.unwrap());
    let services = [service(HEARTBEAT)];
    let claim = async |owner, limit| {
        ids(&store
            .claim_work(owner, &services, RECEIVED_AT, LEASE, limit)
            .await
            .unwrap())
    };
    assert_eq!(claim(NODE, 1).await, [mine.id]);
    assert_eq!(claim("node-2", 1).await, [theirs.id]);
    assert!(claim("node-3", 10).await.is_empty(), "both are claimed");

    assert_eq!(store.release_claims(NODE).await.unwrap(), 1);
    assert_eq!(
        claim("node-3", 10).await,
        [mine.id],
        "node-2's claim still holds"
    );
    assert_eq!(store.release_claims(NODE).await.unwrap(), 0);
}
