//! Tests of transactions, their work and `/out` in the SQLite store.

use std::sync::Arc;

use mftgw_domain::TransactionState;
use mftgw_domain::status::StatusCode;
use time::macros::datetime;

use super::tests::{TempDir, USERNAME, registration, store_with_user};
use super::*;

const HEARTBEAT: &str = "FTPSGW.Heartbeat";
const RECEIVED_AT: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

fn upload(skat_id: &str, name: &str) -> NewTransaction {
    NewTransaction {
        skat_transaction_id: skat_id.into(),
        username: USERNAME.into(),
        service: HEARTBEAT.into(),
        ftp_transaction_id: name.into(),
        upload_path: format!("/CVR_12345678/UID_1/{HEARTBEAT}/{name}"),
        size: 3,
        sha256: "ab".repeat(32),
        transfer_type: 'I',
        blob_key: format!("blob{skat_id}"),
        received_at: RECEIVED_AT,
        rejection: None,
    }
}

/// A second user of the same company; returns its username.
async fn add_other_user(store: &SqliteStore) -> &'static str {
    let username = "CVR_12345678_UID_2";
    store
        .register_certificate(registration(username, "cc33", "hmac-sha256:02"))
        .await
        .unwrap();
    username
}

fn created(recorded: Recorded) -> Transaction {
    match recorded {
        Recorded::Created(transaction) => *transaction,
        Recorded::NameReused => panic!("expected a new transaction"),
    }
}

fn inline(name: &str, body: &str) -> NewOutFile {
    NewOutFile {
        name: name.into(),
        content: OutContent::Inline(body.as_bytes().to_vec()),
    }
}

fn step(transaction: &Transaction, to: TransactionState, status: StatusCode) -> Advance {
    Advance {
        transaction_id: transaction.id,
        from: transaction.state,
        to,
        status,
        at: RECEIVED_AT,
        files: vec![inline(&format!("status_{}", status.digit()), "xml")],
        finishes_work: to.is_final(),
    }
}

fn names(entries: &[OutFileEntry]) -> Vec<&str> {
    entries.iter().map(|entry| entry.name.as_str()).collect()
}

#[tokio::test]
async fn a_recorded_transaction_has_work_until_a_final_step() {
    let store = store_with_user().await;
    let transaction = created(
        store
            .record_transaction(upload("ci1", "a.xml"))
            .await
            .unwrap(),
    );
    assert_eq!(transaction.state, TransactionState::Received);
    assert_eq!(transaction.received_at, RECEIVED_AT);

    let services = [HEARTBEAT.to_string()];
    let due = store.due_work(&services, RECEIVED_AT, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].transaction, transaction);
    assert_eq!((due[0].attempts, due[0].last_error.as_deref()), (0, None));
    assert!(
        store
            .due_work(&services, RECEIVED_AT - time::Duration::SECOND, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .due_work(&["Other".to_string()], RECEIVED_AT, 10)
            .await
            .unwrap()
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
    let due = store.due_work(&services, RECEIVED_AT, 10).await.unwrap();
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
    assert!(
        store
            .due_work(&services, RECEIVED_AT, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        names(&store.out_files(USERNAME).await.unwrap()),
        ["status_1", "status_0"]
    );
}

#[tokio::test]
async fn a_transaction_rejected_on_arrival_has_its_status_0_and_no_work() {
    let store = store_with_user().await;
    let mut refused = upload("ci1", "bad.txt");
    refused.rejection = Some(inline("status_AKFA_bad.txt_0.xml", "xml"));
    let transaction = created(store.record_transaction(refused).await.unwrap());
    assert_eq!(transaction.state, TransactionState::Rejected);
    let services = [HEARTBEAT.to_string()];
    assert!(
        store
            .due_work(&services, RECEIVED_AT, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        names(&store.out_files(USERNAME).await.unwrap()),
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

#[tokio::test]
async fn a_name_is_used_once_per_user_in_any_service() {
    let store = store_with_user().await;
    created(
        store
            .record_transaction(upload("ci1", "a.xml"))
            .await
            .unwrap(),
    );
    let mut elsewhere = upload("ci2", "a.xml");
    elsewhere.service = "FATCA".into();
    assert_eq!(
        store.record_transaction(elsewhere).await.unwrap(),
        Recorded::NameReused
    );

    let other_user = add_other_user(&store).await;
    let mut theirs = upload("ci3", "a.xml");
    theirs.username = other_user.into();
    created(store.record_transaction(theirs).await.unwrap());
    assert_eq!(store.transactions(None, 10).await.unwrap().len(), 2);
    assert_eq!(
        store
            .transactions(Some(other_user), 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn concurrent_uploads_of_one_name_make_one_transaction() {
    let dir = TempDir::new();
    let store = Arc::new(SqliteStore::open(&dir.0.join("gateway.db")).await.unwrap());
    store
        .register_certificate(registration(USERNAME, "aa11", "hmac-sha256:01"))
        .await
        .unwrap();
    let attempts: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .record_transaction(upload(&format!("ci{i}"), "same.xml"))
                    .await
            })
        })
        .collect();
    let mut created_count = 0;
    for attempt in attempts {
        if let Recorded::Created(_) = attempt.await.unwrap().unwrap() {
            created_count += 1;
        }
    }
    assert_eq!(created_count, 1);
    assert_eq!(
        store.transactions(Some(USERNAME), 100).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn out_files_are_per_user_and_added_once_by_name() {
    let store = store_with_user().await;
    let other_user = add_other_user(&store).await;
    let at = RECEIVED_AT;
    assert!(
        store
            .add_out_file(USERNAME, inline("r.txt", "first"), at)
            .await
            .unwrap()
    );
    let blob = NewOutFile {
        name: "r.txt".into(),
        content: OutContent::Blob {
            key: "k1".into(),
            size: 9,
        },
    };
    assert!(
        !store.add_out_file(USERNAME, blob, at).await.unwrap(),
        "a name already in /out is left as it is"
    );
    let (entry, content) = store.out_file(USERNAME, "r.txt").await.unwrap().unwrap();
    assert_eq!(
        (entry.size, content),
        (5, OutContent::Inline(b"first".to_vec()))
    );
    assert!(store.out_file(other_user, "r.txt").await.unwrap().is_none());
    assert!(store.out_files(other_user).await.unwrap().is_empty());
    assert!(
        store
            .add_out_file(other_user, inline("r.txt", "theirs"), at)
            .await
            .unwrap(),
        "names are per user"
    );
    assert_eq!(
        store.delete_out_file(other_user, "r.txt").await.unwrap(),
        Some(OutContent::Inline(b"theirs".to_vec()))
    );
    assert_eq!(
        store.delete_out_file(USERNAME, "r.txt").await.unwrap(),
        Some(OutContent::Inline(b"first".to_vec()))
    );
    assert!(store.out_files(USERNAME).await.unwrap().is_empty());
}

#[tokio::test]
async fn pending_upload_bytes_count_what_waits_for_delivery() {
    let store = store_with_user().await;
    assert_eq!(store.pending_upload_bytes(USERNAME).await.unwrap(), 0);
    let waiting = created(
        store
            .record_transaction(upload("ci1", "a.xml"))
            .await
            .unwrap(),
    );
    let delivered = created(
        store
            .record_transaction(upload("ci2", "b.xml"))
            .await
            .unwrap(),
    );
    let size = waiting.size;
    assert_eq!(
        store.pending_upload_bytes(USERNAME).await.unwrap(),
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
    assert_eq!(store.pending_upload_bytes(USERNAME).await.unwrap(), size);
}

#[tokio::test]
async fn expiry_removes_old_out_files_and_finished_upload_bodies() {
    let store = store_with_user().await;
    let old = created(
        store
            .record_transaction(upload("ci1", "old.xml"))
            .await
            .unwrap(),
    );
    let mut fresh_upload = upload("ci2", "fresh.xml");
    fresh_upload.received_at = RECEIVED_AT + time::Duration::DAY;
    let unfinished = created(
        store
            .record_transaction(upload("ci3", "busy.xml"))
            .await
            .unwrap(),
    );
    created(store.record_transaction(fresh_upload).await.unwrap());
    store
        .advance(&[step(&old, TransactionState::Rejected, StatusCode::Error)])
        .await
        .unwrap();
    let blob = NewOutFile {
        name: "big.bin".into(),
        content: OutContent::Blob {
            key: "k9".into(),
            size: 1,
        },
    };
    store
        .add_out_file(USERNAME, blob, RECEIVED_AT)
        .await
        .unwrap();
    store
        .add_out_file(
            USERNAME,
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
    assert_eq!(keys, ["blobci1", "k9"]);
    assert_eq!(
        names(&store.out_files(USERNAME).await.unwrap()),
        ["new.txt"]
    );
    let kept = store.transactions(Some(USERNAME), 10).await.unwrap();
    assert_eq!(kept.len(), 3, "transactions are kept forever");
    let unfinished = kept.iter().find(|t| t.id == unfinished.id).unwrap();
    assert_eq!(unfinished.blob_key.as_deref(), Some("blobci3"));
    assert_eq!(
        store
            .expire(RECEIVED_AT + time::Duration::HOUR)
            .await
            .unwrap(),
        Expired::default()
    );
}

#[tokio::test]
async fn an_upload_waiting_for_a_retry_holds_back_later_ones_of_its_user_and_service() {
    let store = store_with_user().await;
    let first = created(
        store
            .record_transaction(upload("ci1", "1.xml"))
            .await
            .unwrap(),
    );
    let second = created(
        store
            .record_transaction(upload("ci2", "2.xml"))
            .await
            .unwrap(),
    );
    let mut elsewhere = upload("ci3", "3.xml");
    elsewhere.service = "FATCA".into();
    let other_service = created(store.record_transaction(elsewhere).await.unwrap());
    let services = [HEARTBEAT.to_string(), "FATCA".to_string()];
    let ids =
        |items: Vec<WorkItem>| -> Vec<i64> { items.iter().map(|w| w.transaction.id).collect() };
    assert_eq!(
        ids(store.due_work(&services, RECEIVED_AT, 10).await.unwrap()),
        [first.id, second.id, other_service.id]
    );

    let later = RECEIVED_AT + time::Duration::MINUTE;
    store
        .postpone_work(first.id, 1, later, "connection refused")
        .await
        .unwrap();
    assert_eq!(
        ids(store.due_work(&services, RECEIVED_AT, 10).await.unwrap()),
        [other_service.id],
        "2.xml waits behind 1.xml; FATCA does not"
    );
    let pending = store.pending_work(10).await.unwrap();
    assert_eq!((pending[0].attempts, pending[0].due_at), (1, later));
    assert_eq!(pending[0].last_error.as_deref(), Some("connection refused"));
    assert_eq!(
        ids(store.due_work(&services, later, 10).await.unwrap()),
        [first.id, second.id, other_service.id]
    );

    assert!(store.retry_work("ci1", RECEIVED_AT).await.unwrap());
    assert_eq!(
        store
            .due_work(&services, RECEIVED_AT, 10)
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(!store.retry_work("ci-unknown", RECEIVED_AT).await.unwrap());

    // Once 1.xml is delivered, it no longer holds anything back, even while due later.
    store
        .advance(&[step(
            &first,
            TransactionState::Delivered,
            StatusCode::Delivered,
        )])
        .await
        .unwrap();
    store
        .postpone_work(first.id, 1, later, "answer pending")
        .await
        .unwrap();
    assert_eq!(
        ids(store.due_work(&services, RECEIVED_AT, 10).await.unwrap()),
        [second.id, other_service.id]
    );
}

#[tokio::test]
async fn an_outbound_file_is_numbered_and_posted_once() {
    let store = store_with_user().await;
    let outbound = |name: &str| NewOutbound {
        username: USERNAME.into(),
        service: "Manifest.X".into(),
        name: name.into(),
        sha256: "ab".repeat(32),
        skat_transaction_id: format!("MAN_{name}"),
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
    changed.sha256 = "cd".repeat(32);
    assert!(matches!(
        store.record_outbound(changed).await,
        Err(StoreError::Conflict(_))
    ));
    let second = store.record_outbound(outbound("b.xml")).await.unwrap();
    assert!(second.seq > first.seq);
    assert_eq!(
        names(&store.out_files(USERNAME).await.unwrap()),
        [
            "Manifest.X_a.xml".to_string(),
            format!("status_Manifest.X_outbound-{}_3.xml", first.seq),
            "Manifest.X_b.xml".to_string(),
            format!("status_Manifest.X_outbound-{}_3.xml", second.seq),
        ]
    );
    let recorded = created(
        store
            .record_transaction(upload("ci9", "t.xml"))
            .await
            .unwrap(),
    );
    assert_eq!(store.transaction("ci9").await.unwrap(), Some(recorded));
    assert_eq!(store.transaction("ci-none").await.unwrap(), None);
}

#[tokio::test]
async fn only_a_transaction_the_backend_took_can_be_replayed() {
    let store = store_with_user().await;
    let services = [HEARTBEAT.to_string()];
    let transaction = created(
        store
            .record_transaction(upload("ci1", "r.xml"))
            .await
            .unwrap(),
    );
    assert!(
        !store.replay_work("ci1", RECEIVED_AT).await.unwrap(),
        "not delivered yet"
    );
    let mut delivered = step(
        &transaction,
        TransactionState::Delivered,
        StatusCode::Delivered,
    );
    delivered.finishes_work = true;
    store.advance(&[delivered]).await.unwrap();
    assert!(
        store
            .due_work(&services, RECEIVED_AT, 10)
            .await
            .unwrap()
            .is_empty()
    );

    assert!(store.replay_work("ci1", RECEIVED_AT).await.unwrap());
    assert!(
        !store.replay_work("ci1", RECEIVED_AT).await.unwrap(),
        "already scheduled"
    );
    let due = store.due_work(&services, RECEIVED_AT, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert!(due[0].replay);
    store.complete_replay(transaction.id).await.unwrap();
    assert!(
        store
            .due_work(&services, RECEIVED_AT, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let mut refused = upload("ci2", "bad.txt");
    refused.rejection = Some(inline("status_AKFA_bad.txt_0.xml", "xml"));
    created(store.record_transaction(refused).await.unwrap());
    assert!(
        !store.replay_work("ci2", RECEIVED_AT).await.unwrap(),
        "never delivered"
    );
}

#[tokio::test]
async fn a_batch_of_steps_larger_than_one_statement_applies_in_order() {
    let store = store_with_user().await;
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
            key: key.into(),
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
    assert_eq!(advanced.replaced_blobs, ["early", "middle"]);

    let out = store.out_files(USERNAME).await.unwrap();
    assert_eq!(out.len(), 451);
    assert_eq!(
        names(&out).last(),
        Some(&"answer.xml"),
        "a replacement is listed where it was put, after the files before it"
    );
    let (_, answer) = store
        .out_file(USERNAME, "answer.xml")
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(answer, OutContent::Blob { ref key, .. } if key == "last"));
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

#[tokio::test]
async fn a_listing_returns_names_exactly_in_the_order_they_came() {
    let store = store_with_user().await;
    let names_put = ["b.xml", "\"quoted\" \\ æøå 日本.xml", "a.xml"];
    for (second, name) in names_put.iter().enumerate() {
        let at = RECEIVED_AT + time::Duration::seconds(second as i64);
        store
            .add_out_file(USERNAME, inline(name, "body"), at)
            .await
            .unwrap();
    }
    let listed = store.out_files(USERNAME).await.unwrap();
    assert_eq!(names(&listed), names_put);
    assert!(listed.iter().all(|entry| entry.size == 4));
    assert_eq!(
        listed[2].created_at,
        RECEIVED_AT + time::Duration::seconds(2)
    );
    assert!(
        store.out_files("CVR_12345678_UID_2").await.is_err(),
        "no such user"
    );
}

#[tokio::test]
async fn a_listing_reads_only_its_index() {
    let store = store_with_user().await;
    let plan: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "EXPLAIN QUERY PLAN {}",
        transactions::OUT_LISTING
    )))
    .bind(1)
    .fetch_all(&store.reader)
    .await
    .unwrap()
    .iter()
    .map(|row| row.try_get("detail").unwrap())
    .collect();
    assert!(
        plan.len() == 1 && plan[0].contains("USING COVERING INDEX out_files_listing"),
        "{plan:?}"
    );
}
