//! The audit log: batched appends, queries, and the retention sweep's deletion (allowed by
//! the schema only before the retention cutoff, which only moves forward).

use mftgw_domain::AuditEvent;
use sqlx::Row;
use time::OffsetDateTime;

use super::{DbRow, Pool, begin_write, serialize};
use crate::plan::Serialized;
use crate::{AuditQuery, StoreError, StoreResult, timestamp};

/// One commit for the batch, one prepared (and cached) statement run per event: batches are
/// mostly a few events, and a statement built for each batch's size would be parsed anew.
pub(super) async fn append(pool: &Pool, events: &[AuditEvent]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut transaction = begin_write(pool).await?;
    serialize(&mut transaction, Serialized::Audit).await?;
    for event in events {
        sqlx::query(
            "INSERT INTO audit_log
                 (at, action, outcome, reason, username, peer_ip, cert_fingerprint, detail, node)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(timestamp::to_text(event.at))
        .bind(&event.action)
        .bind(event.outcome.as_str())
        .bind(&event.reason)
        .bind(&event.username)
        .bind(&event.peer_ip)
        .bind(&event.cert_fingerprint)
        .bind(event.detail.as_ref().map(ToString::to_string))
        .bind(&event.node)
        .execute(&mut *transaction)
        .await?;
    }
    transaction.commit().await?;
    Ok(())
}

pub(super) async fn events(pool: &Pool, query: AuditQuery) -> StoreResult<Vec<(i64, AuditEvent)>> {
    let rows = sqlx::query(
        "SELECT id, at, action, outcome, reason, username, peer_ip, cert_fingerprint, detail,
                node
         FROM audit_log
         WHERE ($1 IS NULL OR username = $1)
           AND ($2 IS NULL OR action = $2)
           AND id > $3
           AND ($4 IS NULL OR at < $4)
         ORDER BY id
         LIMIT $5",
    )
    .bind(&query.username)
    .bind(&query.action)
    .bind(query.since_id.unwrap_or(0))
    .bind(query.before.map(timestamp::to_text))
    .bind(i64::from(query.limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(event_from_row).collect()
}

/// Moves the retention cutoff to `before` (never back) and deletes the events before it up to
/// id `through_id`, in one commit.
pub(super) async fn expire(
    pool: &Pool,
    before: OffsetDateTime,
    through_id: i64,
) -> StoreResult<u64> {
    let before = timestamp::to_text(before);
    let mut transaction = begin_write(pool).await?;
    sqlx::query("UPDATE audit_retention SET cutoff = $1 WHERE cutoff < $1")
        .bind(&before)
        .execute(&mut *transaction)
        .await?;
    let deleted = sqlx::query("DELETE FROM audit_log WHERE id <= $1 AND at < $2")
        .bind(through_id)
        .bind(&before)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(deleted.rows_affected())
}

fn event_from_row(row: &DbRow) -> StoreResult<(i64, AuditEvent)> {
    let id: i64 = row.try_get("id")?;
    let at: String = row.try_get("at")?;
    let outcome: String = row.try_get("outcome")?;
    let detail: Option<String> = row.try_get("detail")?;
    let event = AuditEvent {
        at: timestamp::from_text("audit_log.at", &at)?,
        action: row.try_get("action")?,
        outcome: outcome.parse().map_err(|error| {
            StoreError::Corrupt(format!("audit_log.outcome of event {id}: {error}"))
        })?,
        reason: row.try_get("reason")?,
        username: row.try_get("username")?,
        peer_ip: row.try_get("peer_ip")?,
        cert_fingerprint: row.try_get("cert_fingerprint")?,
        detail: detail
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|error| {
                StoreError::Corrupt(format!("audit_log.detail of event {id}: {error}"))
            })?,
        node: row.try_get("node")?,
    };
    Ok((id, event))
}
