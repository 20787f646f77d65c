//! The audit trail (SPEC §8): the one place that writes audit records. Every record is also
//! mirrored to the structured log.
//!
//! Two lanes reach one writer task, which appends what has queued up in one commit:
//! - **decisions** ([`Auditor::record`], [`Auditor::record_detached`]): logins, sessions,
//!   operator and portal actions, refused data connections of someone holding a valid
//!   certificate. They are bounded by what holders of trusted certificates can do (the login
//!   throttle blocks an identity after a few failures) and by what operators do, and the
//!   writer takes them first, so no flood can crowd them out. `record` returns once its
//!   record is committed.
//! - **unauthenticated refusals** ([`Auditor::refused_unauthenticated`]): connections turned
//!   away before anyone proved who they are (limits, implicit TLS, failed handshakes). Anyone
//!   can cause them as fast as they can connect, so they are aggregated: the first refusal of
//!   an (action, reason, address) in an interval is written at once, the rest of the interval
//!   as one row with their count when it ends. Past [`ADDRESSES_PER_INTERVAL`] addresses,
//!   further ones are counted under their network prefix, and past [`PREFIXES_PER_INTERVAL`]
//!   prefixes under `*`; every refusal is counted in Prometheus as well. A presented
//!   certificate's fingerprint (and a typed username) is part of the key for the first
//!   [`PRESENTED_PER_ADDRESS`] of an address, so a client retrying with a refused
//!   certificate is recorded with it. The attempts of a blocked login identity are
//!   aggregated the same way: anyone with a trusted certificate can keep making them.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use mftgw_domain::audit::AuditEvent;
use mftgw_store::AuditLog;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::telemetry;

/// Decisions waiting for the writer.
const DECISION_QUEUE: usize = 16_384;
/// Unauthenticated refusals' rows waiting for the writer (bounded per interval anyway).
const REFUSAL_QUEUE: usize = 4_096;
/// Records the writer appends in one commit at most.
const BATCH: usize = 512;
/// Distinct addresses recorded on their own per interval; later ones by network prefix.
pub const ADDRESSES_PER_INTERVAL: usize = 1_024;
/// Distinct prefixes recorded per interval; later ones as `*`.
pub const PREFIXES_PER_INTERVAL: usize = 256;
/// Distinct certificates (and usernames) per (action, reason, address) recorded with them.
pub const PRESENTED_PER_ADDRESS: usize = 4;

/// A record for the writer, and who waits for it to be committed.
struct Queued {
    event: AuditEvent,
    written: Option<oneshot::Sender<()>>,
}

/// What the writer is asked to do.
enum Job {
    Write(Box<Queued>),
    /// Answer once everything queued before has been written.
    Drain(oneshot::Sender<()>),
}

pub struct Auditor {
    decisions: mpsc::Sender<Job>,
    refusals: mpsc::Sender<Job>,
    tallies: Mutex<Tallies>,
}

/// A refusal before anyone proved who they are.
#[derive(Debug, Clone)]
pub struct Unauthenticated<'a> {
    /// `ftps.connect`, `ftps.tls`, `ftps.data`.
    pub action: &'static str,
    /// A stable code, perhaps followed by `: detail` (the detail is kept as a sample).
    pub reason: &'a str,
    pub address: IpAddr,
    /// The network `address` is counted under once an interval has seen too many addresses
    /// (the adapter's, so that it matches the limits the adapter enforces).
    pub network: Network,
    pub fingerprint: Option<String>,
    /// The username typed (a blocked login's).
    pub username: Option<&'a str>,
}

/// A network as an address and a prefix length, e.g. `192.0.2.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Network {
    pub address: IpAddr,
    pub prefix_len: u8,
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// Who a refused client said it was: the certificate it presented, the username it typed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Presented {
    fingerprint: Option<String>,
    username: Option<String>,
}

/// Where aggregated refusals came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Source {
    Address(IpAddr),
    Prefix(Network),
    Everywhere,
}

impl Source {
    fn label(&self) -> String {
        match self {
            Source::Address(address) => address.to_string(),
            Source::Prefix(network) => network.to_string(),
            Source::Everywhere => "*".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RefusalKey {
    action: &'static str,
    reason: String,
    source: Source,
    presented: Option<Presented>,
}

/// The refusals of one key after its first in this interval.
#[derive(Debug)]
struct Tally {
    repeats: u64,
    first_repeat_at: Option<OffsetDateTime>,
    last_at: OffsetDateTime,
}

#[derive(Debug, Default)]
struct Tallies {
    keys: HashMap<RefusalKey, Tally>,
    /// The addresses recorded on their own in this interval.
    addresses: HashSet<IpAddr>,
    prefixes: usize,
    /// How many distinct [`Presented`] each (action, reason, address) has had its own row for.
    presented: HashMap<(&'static str, String, IpAddr), usize>,
}

/// How the auditor aggregates and keeps records.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// How long an aggregation interval of unauthenticated refusals lasts.
    pub refusal_interval: Duration,
    /// This node's id, written with every event it records.
    pub node: String,
}

impl Auditor {
    /// Starts the writer and the interval flusher; call it in a runtime. They stop when the
    /// last `Arc` is dropped, after writing what was queued.
    pub fn start<S: AuditLog>(store: Arc<S>, settings: AuditSettings) -> Arc<Auditor> {
        let (decisions, decision_queue) = mpsc::channel(DECISION_QUEUE);
        let (refusals, refusal_queue) = mpsc::channel(REFUSAL_QUEUE);
        let auditor = Arc::new(Auditor {
            decisions,
            refusals,
            tallies: Mutex::default(),
        });
        tokio::spawn(write(
            store,
            settings.node.clone(),
            decision_queue,
            refusal_queue,
        ));
        tokio::spawn(flush_intervals(
            Arc::downgrade(&auditor),
            settings.refusal_interval,
        ));
        auditor
    }

    /// Writes `event` and returns once it is committed (or its write failed, which is logged).
    pub async fn record(&self, event: AuditEvent) {
        mirror(&event);
        let (written, committed) = oneshot::channel();
        let job = Job::Write(Box::new(Queued {
            event,
            written: Some(written),
        }));
        if self.decisions.send(job).await.is_ok() {
            let _ = committed.await;
        }
    }

    /// Queues `event` without waiting; for callers that must not block (engine events).
    pub fn record_detached(&self, event: AuditEvent) {
        queue_detached(&self.decisions, "decisions", event);
    }

    /// Counts an unauthenticated refusal and records it aggregated (see the module docs).
    pub fn refused_unauthenticated(&self, refusal: Unauthenticated<'_>) {
        let code = reason_code(refusal.reason);
        telemetry::refused_unauthenticated(refusal.action, code);
        let now = OffsetDateTime::now_utc();
        let first = {
            let mut tallies = self.tallies.lock().expect("audit tallies poisoned");
            let key = tallies.key(&refusal, code);
            match tallies.keys.get_mut(&key) {
                Some(tally) => {
                    tally.repeats += 1;
                    tally.first_repeat_at.get_or_insert(now);
                    tally.last_at = now;
                    None
                }
                None => {
                    tallies.keys.insert(
                        key.clone(),
                        Tally {
                            repeats: 0,
                            first_repeat_at: None,
                            last_at: now,
                        },
                    );
                    Some(key)
                }
            }
        };
        if let Some(key) = first {
            let mut event = refusal_event(&key, now);
            if code != refusal.reason {
                event = event.with_detail(serde_json::json!({ "sample": refusal.reason }));
            }
            queue_detached(&self.refusals, "refusals", event);
        }
    }

    /// Writes the current interval's tallies and waits until everything queued so far is
    /// committed (at shutdown, and in tests).
    pub async fn drain(&self) {
        self.flush_tallies();
        for queue in [&self.refusals, &self.decisions] {
            let (done, drained) = oneshot::channel();
            if queue.send(Job::Drain(done)).await.is_ok() {
                let _ = drained.await;
            }
        }
    }

    /// Ends the interval: one row per key that was refused again after its first row.
    fn flush_tallies(&self) {
        let ended = std::mem::take(&mut *self.tallies.lock().expect("audit tallies poisoned"));
        for (key, tally) in ended.keys {
            let Some(from) = tally.first_repeat_at else {
                continue;
            };
            let rfc3339 = |at: OffsetDateTime| {
                at.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            };
            let event = refusal_event(&key, from).with_detail(serde_json::json!({
                "count": tally.repeats,
                "from": rfc3339(from),
                "until": rfc3339(tally.last_at),
            }));
            queue_detached(&self.refusals, "refusals", event);
        }
    }
}

/// Queues `event` on `lane` without waiting; a full lane drops it and counts the drop.
fn queue_detached(lane: &mpsc::Sender<Job>, name: &'static str, event: AuditEvent) {
    mirror(&event);
    let job = Job::Write(Box::new(Queued {
        event,
        written: None,
    }));
    if lane.try_send(job).is_err() {
        telemetry::audit_dropped(name);
    }
}

impl Tallies {
    /// The key `refusal` is counted under, given how many addresses, prefixes and presented
    /// identities this interval has already recorded.
    fn key(&mut self, refusal: &Unauthenticated<'_>, code: &str) -> RefusalKey {
        let address = refusal.address;
        let mut key = RefusalKey {
            action: refusal.action,
            reason: code.to_owned(),
            source: Source::Address(address),
            presented: None,
        };
        if self.addresses.contains(&address) || self.addresses.len() < ADDRESSES_PER_INTERVAL {
            self.addresses.insert(address);
            if refusal.fingerprint.is_some() || refusal.username.is_some() {
                let with = RefusalKey {
                    presented: Some(Presented {
                        fingerprint: refusal.fingerprint.clone(),
                        username: refusal.username.map(str::to_owned),
                    }),
                    ..key.clone()
                };
                if self.keys.contains_key(&with) {
                    return with;
                }
                let recorded = self
                    .presented
                    .entry((refusal.action, code.to_owned(), address))
                    .or_default();
                if *recorded < PRESENTED_PER_ADDRESS {
                    *recorded += 1;
                    return with;
                }
            }
            return key;
        }
        key.source = Source::Prefix(refusal.network);
        if self.keys.contains_key(&key) {
            return key;
        }
        if self.prefixes < PREFIXES_PER_INTERVAL {
            self.prefixes += 1;
            return key;
        }
        key.source = Source::Everywhere;
        key
    }
}

/// The stable part of a reason: what comes before `: detail`.
fn reason_code(reason: &str) -> &str {
    reason.split_once(':').map_or(reason, |(code, _)| code)
}

fn refusal_event(key: &RefusalKey, at: OffsetDateTime) -> AuditEvent {
    let mut event =
        AuditEvent::refused(at, key.action, &key.reason).with_peer_ip(key.source.label());
    let presented = key.presented.as_ref();
    if let Some(fingerprint) = presented.and_then(|p| p.fingerprint.as_ref()) {
        event = event.with_cert_fingerprint(fingerprint);
    }
    if let Some(username) = presented.and_then(|p| p.username.as_ref()) {
        event = event.with_username(username);
    }
    event
}

fn mirror(event: &AuditEvent) {
    tracing::info!(
        target: "audit",
        action = %event.action,
        outcome = event.outcome.as_str(),
        reason = event.reason.as_deref().unwrap_or(""),
        username = event.username.as_deref().unwrap_or(""),
        peer_ip = event.peer_ip.as_deref().unwrap_or(""),
        fingerprint = event.cert_fingerprint.as_deref().unwrap_or(""),
    );
}

/// Ends each interval of unauthenticated refusals, until the auditor is gone.
async fn flush_intervals(auditor: Weak<Auditor>, every: Duration) {
    let mut ticker = tokio::time::interval(every.max(Duration::from_millis(100)));
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(auditor) = auditor.upgrade() else {
            return;
        };
        auditor.flush_tallies();
    }
}

/// Appends what has queued up, decisions first, one commit per batch.
async fn write<S: AuditLog>(
    store: Arc<S>,
    node: String,
    mut decisions: mpsc::Receiver<Job>,
    mut refusals: mpsc::Receiver<Job>,
) {
    let mut jobs = Vec::with_capacity(BATCH);
    loop {
        let job = tokio::select! {
            biased;
            Some(job) = decisions.recv() => job,
            Some(job) = refusals.recv() => job,
            else => break,
        };
        jobs.push(job);
        // Whatever else is waiting joins the batch, decisions first.
        while jobs.len() < BATCH
            && let Ok(job) = decisions.try_recv()
        {
            jobs.push(job);
        }
        while jobs.len() < BATCH
            && let Ok(job) = refusals.try_recv()
        {
            jobs.push(job);
        }
        let mut events = Vec::with_capacity(jobs.len());
        let mut waiting = Vec::new();
        for job in jobs.drain(..) {
            match job {
                Job::Write(queued) => {
                    let Queued { mut event, written } = *queued;
                    event.node.get_or_insert_with(|| node.clone());
                    events.push(event);
                    waiting.extend(written);
                }
                Job::Drain(done) => waiting.push(done),
            }
        }
        append_with_retries(&*store, &events).await;
        for done in waiting {
            let _ = done.send(());
        }
    }
}

/// An audit event as `mftgw audit` prints it and the archives hold it: one JSON object.
pub fn event_json(id: i64, event: &AuditEvent) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "at": event.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "action": event.action,
        "outcome": event.outcome.as_str(),
        "reason": event.reason,
        "username": event.username,
        "peer_ip": event.peer_ip,
        "cert_fingerprint": event.cert_fingerprint,
        "detail": event.detail,
        "node": event.node,
    })
}

/// How long audit events are kept, and where they go then.
#[derive(Debug, Clone)]
pub struct AuditRetention {
    pub keep_for: Duration,
    /// Where expiring events are archived first (JSON lines); `None`: they are dropped.
    pub archive: Option<std::path::PathBuf>,
    pub sweep_every: Duration,
}

/// Events archived and deleted per round.
const SWEEP_BATCH: u32 = 10_000;

/// Archives and deletes the events past the retention, now and every `sweep_every`, until
/// `shutdown`, while this node leads the job (one archive, not one per node).
pub async fn run_audit_retention<S: AuditLog>(
    store: Arc<S>,
    retention: AuditRetention,
    leadership: Arc<dyn crate::periodic::Leadership>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let period = retention.sweep_every;
    crate::periodic::every_led(
        "audit_retention",
        &*leadership,
        period,
        shutdown,
        || async {
            match sweep_audit(&*store, &retention).await {
                Ok(0) => {}
                Ok(expired) => tracing::info!(
                    expired,
                    "audit events past the retention archived and removed"
                ),
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "audit retention sweep failed")
                }
            }
        },
    )
    .await;
}

/// One sweep: batch by batch, archive (durably) then delete. A crash between the two archives
/// the batch again, under the same file name.
pub async fn sweep_audit<S: AuditLog>(
    store: &S,
    retention: &AuditRetention,
) -> anyhow::Result<u64> {
    use anyhow::Context;
    let before = OffsetDateTime::now_utc() - retention.keep_for;
    let mut expired = 0;
    loop {
        let events = store
            .audit_events(mftgw_store::AuditQuery {
                before: Some(before),
                limit: SWEEP_BATCH,
                ..Default::default()
            })
            .await?;
        let (Some((first, _)), Some((last, _))) = (events.first(), events.last()) else {
            return Ok(expired);
        };
        let (first, last) = (*first, *last);
        if let Some(dir) = &retention.archive {
            let mut lines = Vec::new();
            for (id, event) in &events {
                serde_json::to_writer(&mut lines, &event_json(*id, event))?;
                lines.push(b'\n');
            }
            let path = dir.join(format!("audit-{first:012}-{last:012}.jsonl"));
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&dir)?;
                crate::files::replace(&path, &lines)
            })
            .await?
            .with_context(|| format!("archiving audit events {first}-{last}"))?;
        }
        expired += store.expire_audit(before, last).await?;
    }
}

/// Attempts at writing one batch before its records are given up (counted and logged).
const WRITE_ATTEMPTS: u32 = 3;
const WRITE_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Appends `events`, trying again after a pause when the store refuses (another process may
/// hold its lock beyond the busy timeout); the records are lost only if every attempt fails.
async fn append_with_retries<S: AuditLog>(store: &S, events: &[AuditEvent]) {
    for attempt in 1..=WRITE_ATTEMPTS {
        match store.append_audit(events).await {
            Ok(()) => return,
            Err(error) if attempt < WRITE_ATTEMPTS => {
                tracing::warn!(%error, attempt, "audit log write failed; trying again");
                tokio::time::sleep(WRITE_RETRY_PAUSE).await;
            }
            Err(error) => {
                telemetry::audit_write_failed(events.len());
                tracing::error!(%error, records = events.len(), "audit log write failed; records lost");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal<'a>(
        address: &str,
        reason: &'a str,
        fingerprint: Option<&str>,
    ) -> Unauthenticated<'a> {
        let address: IpAddr = address.parse().unwrap();
        let IpAddr::V4(v4) = address else {
            panic!("the tests use IPv4 addresses");
        };
        let [a, b, c, _] = v4.octets();
        Unauthenticated {
            action: "ftps.tls",
            reason,
            address,
            network: Network {
                address: IpAddr::from([a, b, c, 0]),
                prefix_len: 24,
            },
            fingerprint: fingerprint.map(str::to_owned),
            username: None,
        }
    }

    #[test]
    fn addresses_fold_into_prefixes_then_everywhere() {
        let mut tallies = Tallies::default();
        let insert = |tallies: &mut Tallies, address: String| {
            let r = refusal(&address, "tls_invalid_message", None);
            let key = tallies.key(&r, "tls_invalid_message");
            tallies.keys.entry(key.clone()).or_insert(Tally {
                repeats: 0,
                first_repeat_at: None,
                last_at: OffsetDateTime::now_utc(),
            });
            key.source
        };
        for n in 0..ADDRESSES_PER_INTERVAL {
            let address = format!("10.{}.{}.1", n / 256, n % 256);
            assert!(matches!(insert(&mut tallies, address), Source::Address(_)));
        }
        assert_eq!(
            insert(&mut tallies, "192.0.2.9".into()),
            Source::Prefix(Network {
                address: "192.0.2.0".parse().unwrap(),
                prefix_len: 24
            })
        );
        assert_eq!(
            insert(&mut tallies, "192.0.2.10".into()),
            Source::Prefix(Network {
                address: "192.0.2.0".parse().unwrap(),
                prefix_len: 24
            }),
            "the same prefix again"
        );
        for n in 1..PREFIXES_PER_INTERVAL {
            insert(&mut tallies, format!("172.16.{n}.1"));
        }
        assert_eq!(
            insert(&mut tallies, "198.51.100.1".into()),
            Source::Everywhere
        );
        assert!(tallies.keys.len() <= ADDRESSES_PER_INTERVAL + PREFIXES_PER_INTERVAL + 1);
    }

    #[test]
    fn only_the_first_certificates_of_an_address_keep_their_fingerprint() {
        let mut tallies = Tallies::default();
        let mut fingerprints = Vec::new();
        for n in 0..PRESENTED_PER_ADDRESS + 3 {
            let fingerprint = format!("{n:064x}");
            let r = refusal("192.0.2.1", "certificate_expired", Some(&fingerprint));
            let key = tallies.key(&r, "certificate_expired");
            tallies.keys.entry(key.clone()).or_insert(Tally {
                repeats: 0,
                first_repeat_at: None,
                last_at: OffsetDateTime::now_utc(),
            });
            fingerprints.push(key.presented.and_then(|p| p.fingerprint));
        }
        assert!(
            fingerprints[..PRESENTED_PER_ADDRESS]
                .iter()
                .all(Option::is_some)
        );
        assert!(
            fingerprints[PRESENTED_PER_ADDRESS..]
                .iter()
                .all(Option::is_none)
        );
        let again = refusal(
            "192.0.2.1",
            "certificate_expired",
            Some(&format!("{:064x}", 0)),
        );
        assert!(
            tallies
                .key(&again, "certificate_expired")
                .presented
                .is_some(),
            "a certificate already recorded keeps its key"
        );
    }

    #[test]
    fn reasons_lose_their_detail() {
        assert_eq!(
            reason_code("tls_handshake_io_error: reset"),
            "tls_handshake_io_error"
        );
        assert_eq!(reason_code("certificate_expired"), "certificate_expired");
    }
}
