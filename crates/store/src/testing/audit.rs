//! Checks of [`AuditLog`]: appending, querying, following, and the retention sweep.

use std::collections::BTreeMap;
use std::sync::Arc;

use mftgw_domain::{AuditEvent, AuditOutcome};
use time::macros::datetime;

use super::{FIRST_FINGERPRINT, USERNAME, watch};
use crate::{AuditLog, AuditQuery};

/// Events come back as appended, every field intact, filtered by user and action, after an
/// id, and limited.
pub async fn audit_events_are_appended_and_queried<S: AuditLog>(store: Arc<S>) {
    let at = datetime!(2025-03-01 10:00:00.123456 UTC);
    let refused = AuditEvent::refused(at, "ftps.login", "wrong_password")
        .with_username(USERNAME)
        .with_peer_ip("192.0.2.7")
        .with_cert_fingerprint(FIRST_FINGERPRINT)
        .with_detail(serde_json::json!({ "attempt": 4, "client": "WinSCP" }));
    let allowed = AuditEvent::allowed(at, "ftps.login").with_username(USERNAME);
    let tls = AuditEvent::info(at, "ftps.tls").with_peer_ip("192.0.2.8");
    let other_user = AuditEvent::allowed(at, "ftps.login").with_username("CVR_2_UID_1");

    store
        .append_audit(&[refused.clone(), allowed.clone()])
        .await
        .unwrap();
    store
        .append_audit(&[tls.clone(), other_user.clone()])
        .await
        .unwrap();
    let everything = store.audit_events(AuditQuery::default()).await.unwrap();
    let ids: Vec<i64> = everything.iter().map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    assert_eq!(
        everything
            .iter()
            .map(|(_, event)| event.clone())
            .collect::<Vec<_>>(),
        [
            refused.clone(),
            allowed.clone(),
            tls.clone(),
            other_user.clone()
        ],
        "appended in order"
    );
    assert_eq!(everything.len(), 4);
    assert_eq!(
        everything[0],
        (ids[0], refused.clone()),
        "every field round-trips"
    );
    assert_eq!(everything[2].1.outcome, AuditOutcome::Info);

    let by_user = AuditQuery {
        username: Some(USERNAME.into()),
        ..AuditQuery::default()
    };
    let events = store.audit_events(by_user.clone()).await.unwrap();
    assert_eq!(
        events.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [ids[0], ids[1]]
    );

    let by_action = AuditQuery {
        action: Some("ftps.login".into()),
        ..AuditQuery::default()
    };
    assert_eq!(store.audit_events(by_action).await.unwrap().len(), 3);

    let after_first = AuditQuery {
        since_id: Some(ids[0]),
        ..by_user
    };
    assert_eq!(
        store.audit_events(after_first).await.unwrap(),
        [(ids[1], allowed)]
    );

    let limited = AuditQuery {
        limit: 2,
        ..AuditQuery::default()
    };
    let events = store.audit_events(limited).await.unwrap();
    assert_eq!(
        events.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [ids[0], ids[1]]
    );
}

/// The retention sweep deletes the events before its cutoff, and a later sweep with an
/// earlier cutoff deletes nothing. (Leaves one event of 2025-06-01 behind a cutoff of
/// 2025-01-01, for implementations to check their own enforcement on.)
pub async fn audit_events_are_deleted_only_before_the_retention_cutoff<S: AuditLog>(store: Arc<S>) {
    let old = AuditEvent::info(datetime!(2024-01-01 00:00 UTC), "admin.register");
    let recent = AuditEvent::info(datetime!(2025-06-01 00:00 UTC), "admin.register");
    store
        .append_audit(&[old.clone(), recent.clone()])
        .await
        .unwrap();
    let cutoff = datetime!(2025-01-01 00:00 UTC);
    let expiring = store
        .audit_events(AuditQuery {
            before: Some(cutoff),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(expiring.len(), 1);
    assert_eq!(expiring[0].1, old);
    assert_eq!(store.expire_audit(cutoff, expiring[0].0).await.unwrap(), 1);
    let kept = store.audit_events(AuditQuery::default()).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].1, recent);
    assert_eq!(
        store
            .expire_audit(datetime!(2024-06-01 00:00 UTC), i64::MAX)
            .await
            .unwrap(),
        0,
        "an earlier cutoff changes nothing"
    );
}

/// The sweep deletes no event after the id it was given (the last one it archived), however
/// old: an event appended after the archive was read stays until the next sweep.
pub async fn expiry_deletes_no_event_after_the_id_it_was_given<S: AuditLog>(store: Arc<S>) {
    let archived = AuditEvent::info(datetime!(2024-01-01 00:00 UTC), "admin.register");
    store
        .append_audit(std::slice::from_ref(&archived))
        .await
        .unwrap();
    let cutoff = datetime!(2025-01-01 00:00 UTC);
    let archive = store
        .audit_events(AuditQuery {
            before: Some(cutoff),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let late = AuditEvent::info(datetime!(2023-01-01 00:00 UTC), "admin.register");
    store
        .append_audit(std::slice::from_ref(&late))
        .await
        .unwrap();
    assert_eq!(store.expire_audit(cutoff, archive[0].0).await.unwrap(), 1);
    let kept = store.audit_events(AuditQuery::default()).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].1, late);
    assert_eq!(store.expire_audit(cutoff, kept[0].0).await.unwrap(), 1);
    assert!(
        store
            .audit_events(AuditQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
}

/// A follower reading the events after the last id it saw, while batches are appended from
/// several tasks, sees every event in increasing ids, each batch whole and in its order.
pub async fn a_follower_of_the_audit_log_sees_whole_batches_and_misses_none<S: AuditLog>(
    store: Arc<S>,
) {
    const WRITERS: usize = 4;
    const BATCHES: usize = 10;
    const BATCH: usize = 3;
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for batch in 0..BATCHES {
                    let events: Vec<AuditEvent> = (0..BATCH)
                        .map(|n| {
                            AuditEvent::info(datetime!(2025-03-01 10:00 UTC), "test.batch")
                                .with_detail(
                                    serde_json::json!({ "batch": [writer, batch], "n": n }),
                                )
                        })
                        .collect();
                    store.append_audit(&events).await.unwrap();
                }
            })
        })
        .collect();
    let whole_batch: Vec<u64> = (0..BATCH as u64).collect();
    let mut seen = Vec::new();
    let mut last = 0;
    watch(writers, async || {
        let events = store
            .audit_events(AuditQuery {
                since_id: Some(last),
                limit: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let mut batches: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (id, event) in &events {
            assert!(*id > last, "{id} after {last}");
            last = *id;
            seen.push(*id);
            let detail = event.detail.as_ref().unwrap();
            batches
                .entry(detail["batch"].to_string())
                .or_default()
                .push(detail["n"].as_u64().unwrap());
        }
        for (batch, numbers) in batches {
            assert_eq!(numbers, whole_batch, "batch {batch}");
        }
        !events.is_empty()
    })
    .await;
    let all: Vec<i64> = store
        .audit_events(AuditQuery {
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(all.len(), WRITERS * BATCHES * BATCH);
    assert_eq!(seen, all);
}
