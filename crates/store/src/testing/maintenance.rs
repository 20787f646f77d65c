//! Checks of [`Maintenance`]: the health check and the checkpoint.

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
