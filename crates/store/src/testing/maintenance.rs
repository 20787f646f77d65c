//! Checks of [`Maintenance`]: the health check, the checkpoint and the key fingerprints.

use std::sync::Arc;

use mftgw_domain::AuditEvent;
use time::macros::datetime;

use crate::{AuditLog, AuditQuery, Maintenance};

/// A store answers its health check, and checkpoints without losing what was written.
pub async fn a_store_answers_and_checkpoints<S: Maintenance + AuditLog>(store: Arc<S>) {
    store.ping().await.unwrap();
    let event = AuditEvent::info(datetime!(2025-03-01 10:00 UTC), "admin.register");
    store
        .append_audit(std::slice::from_ref(&event))
        .await
        .unwrap();
    store.checkpoint().await.unwrap();
    store.checkpoint().await.unwrap();
    store.ping().await.unwrap();
    let events = store.audit_events(AuditQuery::default()).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1, event);
}

/// The first fingerprint recorded for a purpose stays; another purpose has its own; of
/// nodes racing to record one, all are told the same.
pub async fn the_first_key_fingerprint_recorded_stays<S: Maintenance>(store: Arc<S>) {
    assert_eq!(store.key_fingerprint("password", "a1").await.unwrap(), "a1");
    assert_eq!(store.key_fingerprint("password", "b2").await.unwrap(), "a1");
    assert_eq!(store.key_fingerprint("sealing", "c3").await.unwrap(), "c3");

    let racers: Vec<_> = (0..8)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.key_fingerprint("race", &format!("r{n}")).await })
        })
        .collect();
    let mut told = Vec::new();
    for racer in racers {
        told.push(racer.await.unwrap().unwrap());
    }
    told.dedup();
    assert_eq!(told.len(), 1, "{told:?}");
}

/// One node leads a job at a time: the leader renews its lead, another node takes it only
/// once it ran out, and of nodes racing for a free lead one wins.
pub async fn one_node_at_a_time_leads_a_job<S: Maintenance>(store: Arc<S>) {
    let at = |minute: i64| datetime!(2026-11-22 10:00 UTC) + time::Duration::minutes(minute);
    assert!(store.lead_job("sweep", "a", at(0), at(10)).await.unwrap());
    assert!(!store.lead_job("sweep", "b", at(5), at(15)).await.unwrap());
    assert!(
        store.lead_job("sweep", "a", at(6), at(16)).await.unwrap(),
        "renewed"
    );
    assert!(!store.lead_job("sweep", "b", at(15), at(25)).await.unwrap());
    assert!(
        store.lead_job("other", "b", at(15), at(25)).await.unwrap(),
        "its own job"
    );
    assert!(
        store.lead_job("sweep", "b", at(16), at(26)).await.unwrap(),
        "ran out"
    );
    assert!(!store.lead_job("sweep", "a", at(17), at(27)).await.unwrap());

    let racers: Vec<_> = (0..8)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .lead_job("race", &format!("node-{n}"), at(0), at(10))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut leaders = 0;
    for racer in racers {
        leaders += u32::from(racer.await.unwrap());
    }
    assert_eq!(leaders, 1);
}
