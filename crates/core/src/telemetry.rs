//! The gateway's metrics, in one place so their names and labels stay consistent. They are
//! recorded through the `metrics` facade and rendered in Prometheus text format at
//! `/metrics`; counts kept in the store (transactions by state, delivery backlog) are read
//! when scraped.

use metrics::{counter, gauge, histogram};
use mftgw_domain::ServiceName;
use mftgw_domain::status::StatusCode;

pub fn session_opened() {
    gauge!("mftgw_ftps_sessions").increment(1.0);
}

pub fn session_closed() {
    gauge!("mftgw_ftps_sessions").decrement(1.0);
}

/// A login whose password was accepted, but which the engine turned away (session limit).
pub fn login_over_limit() {
    counter!("mftgw_ftps_logins_over_limit_total").increment(1);
}

pub fn login(allowed: bool) {
    let outcome = if allowed { "allowed" } else { "refused" };
    counter!("mftgw_ftps_logins_total", "outcome" => outcome).increment(1);
}

/// An upload committed: `outcome` is `transaction`, `name_reused` or `rejected_on_arrival`.
pub fn upload(outcome: &'static str, bytes: u64) {
    counter!("mftgw_uploads_total", "outcome" => outcome).increment(1);
    counter!("mftgw_upload_bytes_total").increment(bytes);
}

pub fn status_file_written(code: StatusCode) {
    counter!("mftgw_status_files_total", "status" => code.digit().to_string()).increment(1);
}

pub fn delivery_attempt(service: &ServiceName, delivered: bool, seconds: f64) {
    let outcome = if delivered { "delivered" } else { "failed" };
    counter!("mftgw_delivery_attempts_total", "service" => service.to_string(), "outcome" => outcome)
        .increment(1);
    histogram!("mftgw_delivery_seconds", "service" => service.to_string()).record(seconds);
}

/// A delivery attempt that failed, by why (`DeliveryFailure::as_str`).
pub fn delivery_failed(service: &ServiceName, reason: &'static str) {
    counter!("mftgw_delivery_failures_total", "service" => service.to_string(), "reason" => reason)
        .increment(1);
}

/// An audit record dropped because its queue was full (`lane`: `decisions`, `refusals`).
pub fn audit_dropped(lane: &'static str) {
    counter!("mftgw_audit_events_dropped_total", "lane" => lane).increment(1);
}

/// Audit records lost because the store refused the write.
pub fn audit_write_failed(records: usize) {
    counter!("mftgw_audit_write_failures_total").increment(records as u64);
}

/// A connection refused before anyone proved who they are (aggregated in the audit log).
pub fn refused_unauthenticated(action: &'static str, reason: &str) {
    counter!(
        "mftgw_refused_connections_total",
        "action" => action,
        "reason" => reason.to_string()
    )
    .increment(1);
}

/// A live session ended because its authorisation was withdrawn.
pub fn session_revoked() {
    counter!("mftgw_ftps_sessions_revoked_total").increment(1);
}
