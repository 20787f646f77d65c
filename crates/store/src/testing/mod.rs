//! The conformance suite: what every implementation of the store traits must do, written
//! against the traits alone, so that the SQLite store and the PostgreSQL store that follows
//! are held to the same behaviour (after `object_store`'s integration test functions).
//!
//! Each check is a `pub async fn <check>(store: Arc<S>)`, bounded by the area traits it uses,
//! that panics when the store misbehaves. Grouped by area ([`identities`], [`roles`],
//! [`audit`], [`transactions`], [`mailboxes`], [`portal`], [`maintenance`]), the checks cover
//! what the trait documentation promises: every operation's observable behaviour, and the
//! concurrency contracts, by racing tasks on the shared store (two registrations of one
//! fingerprint, one step advanced twice, a file replaced while a reader looks, a follower of
//! the security changes or the audit log that must miss nothing, ...). Those races can only
//! show a broken contract, never prove one: they are meant for a store with several
//! connections, as it runs in production.
//!
//! An implementation runs the whole suite with [`conformance_suite!`](crate::conformance_suite),
//! given a future that opens a fresh, empty store and whatever must outlive it (a temporary
//! directory, a database to drop):
//!
//! ```ignore
//! async fn fresh_store() -> (PostgresStore, TestDatabase) {
//!     let database = TestDatabase::create().await;
//!     (PostgresStore::connect(database.url()).await.unwrap(), database)
//! }
//!
//! mftgw_store::conformance_suite!(fresh_store());
//! ```
//!
//! That makes one `#[tokio::test]` per check (the invoking crate needs `tokio` with its
//! `macros` and `rt-multi-thread` features), grouped in a module per area; outside this
//! crate, the `testing` feature makes the suite available. The macro lists every check
//! itself, so an implementation cannot leave one out; a test of this module makes sure the
//! list names every check the area modules define.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use mftgw_domain::status::StatusCode;
use mftgw_domain::{
    BlobKey, ServiceName, Sha256, SkatTransactionId, Transaction, TransactionState, Username,
};
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::task::JoinHandle;

use crate::{
    Advance, CertificateRegistration, IdentityStore, NewOutFile, NewTransaction, OutContent,
    OutFileEntry, Recorded,
};

pub mod audit;
pub mod identities;
pub mod mailboxes;
pub mod maintenance;
pub mod portal;
pub mod roles;
pub mod transactions;

/// The standard user that [`with_user`] registers: account `UID_1` of CVR 12345678.
pub const USERNAME: &str = "CVR_12345678_UID_1";

/// The fingerprint of the certificate [`with_user`] registers.
pub const FIRST_FINGERPRINT: &str = "aa11";

/// The fingerprint of the certificate that renews [`FIRST_FINGERPRINT`].
pub const RENEWED_FINGERPRINT: &str = "bb22";

/// The gateway password hash [`with_user`] registers.
pub const FIRST_HASH: &str = "hmac-sha256:0001";

/// When the users that [`registration`] creates become active.
pub const ACTIVATE_AT: OffsetDateTime = datetime!(2025-03-01 10:15 UTC);

/// The service the uploads of [`upload`] go to.
pub const HEARTBEAT: &str = "FTPSGW.Heartbeat";

/// The node id the checks claim work as.
pub const NODE: &str = "node-1";

/// When the uploads of [`upload`] arrive, and the steps of [`step`] happen.
pub const RECEIVED_AT: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

/// A registration of the certificate `fingerprint` for `username` (which must look like
/// `CVR_<cvr>_<account>`), with `password_hash` as the new gateway password.
pub fn registration(
    username: &str,
    fingerprint: &str,
    password_hash: &str,
) -> CertificateRegistration {
    let (cvr, account) = username
        .strip_prefix("CVR_")
        .and_then(|rest| rest.split_once('_'))
        .expect("test usernames look like CVR_<cvr>_<account>");
    CertificateRegistration {
        username: user(username),
        cvr: Some(cvr.parse().unwrap()),
        account: account.parse().unwrap(),
        kind: "voces".into(),
        fingerprint: fingerprint.into(),
        subject: format!(
            "CN=Test, serialNumber=CVR:{cvr}-{}",
            account.replace('_', ":")
        ),
        serial_hex: "01ab".into(),
        not_after: datetime!(2028-01-01 00:00 UTC),
        cert_der: vec![0x30, 0x82, 0x01, 0x00],
        new_password_hash: password_hash.into(),
        new_password_sealed: format!("sealed:{password_hash}"),
        activate_at: ACTIVATE_AT,
        rotate_password: false,
        roles: Vec::new(),
    }
}

/// Registers the standard user [`USERNAME`] (certificate [`FIRST_FINGERPRINT`], password
/// [`FIRST_HASH`]) on an empty store.
pub async fn with_user<S: IdentityStore>(store: &S) {
    store
        .register_certificate(registration(USERNAME, FIRST_FINGERPRINT, FIRST_HASH))
        .await
        .unwrap();
}

/// Registers a second user of the standard user's company; returns its username.
pub async fn add_other_user<S: IdentityStore>(store: &S) -> &'static str {
    let username = "CVR_12345678_UID_2";
    store
        .register_certificate(registration(username, "cc33", "hmac-sha256:02"))
        .await
        .unwrap();
    username
}

/// An upload of [`USERNAME`] to [`HEARTBEAT`] named `name`, received at [`RECEIVED_AT`].
pub fn upload(skat_id: &str, name: &str) -> NewTransaction {
    NewTransaction {
        skat_transaction_id: id(skat_id),
        username: user(USERNAME),
        mailbox: mftgw_domain::Mailbox::of_user(&user(USERNAME)),
        service: service(HEARTBEAT),
        ftp_transaction_id: name.parse().unwrap(),
        upload_path: format!("/CVR_12345678/UID_1/{HEARTBEAT}/{name}"),
        size: 3,
        sha256: sha256(&"ab".repeat(32)),
        transfer_type: mftgw_domain::TransferMode::Binary,
        blob_key: blob_key_for(skat_id),
        received_at: RECEIVED_AT,
        rejection: None,
    }
}

/// `text` as a gateway username; panics if it is not one.
pub fn user(text: &str) -> Username {
    text.parse().unwrap()
}

/// `text` as a service name; panics if it is not one.
pub fn service(text: &str) -> ServiceName {
    text.parse().unwrap()
}

/// `text` as a SHA-256; panics if it is not one.
pub fn sha256(text: &str) -> Sha256 {
    text.parse().unwrap()
}

/// A blob key of its own for each `seed`: the hex of its bytes.
pub fn blob_key_for(seed: &str) -> BlobKey {
    let hex: String = seed.bytes().map(|byte| format!("{byte:02x}")).collect();
    hex.parse().unwrap()
}

/// `text` as a SKATTransactionId; panics if it is not one.
pub fn id(text: &str) -> SkatTransactionId {
    text.parse().unwrap()
}

/// The transaction that was recorded; panics if the name had been used.
pub fn created(recorded: Recorded) -> Transaction {
    match recorded {
        Recorded::Created(transaction) => *transaction,
        Recorded::NameReused => panic!("expected a new transaction"),
    }
}

/// An `/out` file kept in the store itself.
pub fn inline(name: &str, body: &str) -> NewOutFile {
    NewOutFile {
        name: name.into(),
        content: OutContent::Inline(body.as_bytes().to_vec()),
    }
}

/// The step of `transaction` from its current state to `to`, at [`RECEIVED_AT`], with a
/// `status_<digit>` file; a final state finishes the work.
pub fn step(transaction: &Transaction, to: TransactionState, status: StatusCode) -> Advance {
    Advance {
        transaction_id: transaction.id,
        from: transaction.state,
        to,
        status,
        at: RECEIVED_AT,
        files: vec![inline(&format!("status_{}", status.digit()), "xml")],
        finishes_work: to.is_final(),
        lease: None,
    }
}

/// The names of a listing, in its order.
pub fn names(entries: &[OutFileEntry]) -> Vec<&str> {
    entries.iter().map(|entry| entry.name.as_str()).collect()
}

/// Runs `task(0)` to `task(count - 1)` at once, each spawned on its own (so on any worker
/// thread), and returns their outputs in that order; a task's panic fails the check.
pub async fn race<T, F>(count: usize, task: impl Fn(usize) -> F) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    join((0..count).map(|n| tokio::spawn(task(n))).collect()).await
}

/// Calls `look` over and over while the `writers` run, and once they have all finished, until
/// it finds nothing new (`look` returns whether it did); then returns the writers' outputs.
/// A reader that checks each state it sees returns `false`; a follower that reads what came
/// after what it saw returns whether anything did.
pub async fn watch<T>(writers: Vec<JoinHandle<T>>, mut look: impl AsyncFnMut() -> bool) -> Vec<T> {
    loop {
        let finished = writers.iter().all(JoinHandle::is_finished);
        let found = look().await;
        if finished && !found {
            break;
        }
        tokio::task::yield_now().await;
    }
    join(writers).await
}

/// The outputs of `tasks`, in order, once they have all finished.
async fn join<T>(tasks: Vec<JoinHandle<T>>) -> Vec<T> {
    let mut outputs = Vec::with_capacity(tasks.len());
    for task in tasks {
        outputs.push(task.await.unwrap());
    }
    outputs
}

/// A directory under the system temp dir, removed with everything in it when dropped: the
/// guard of a store kept in files.
#[derive(Debug)]
pub struct TempDir(
    /// The directory.
    pub PathBuf,
);

impl TempDir {
    /// Creates a directory of its own (unique within the process and among processes).
    #[allow(
        clippy::new_without_default,
        reason = "creating a directory is no default"
    )]
    pub fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "mftgw-store-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Generates one test per conformance check, each on a fresh store.
///
/// `$fresh` is a future (an `async fn` call, or an `async` block) that yields `(store,
/// guard)`: a new, empty store, and anything that must live until the test ends (a temporary
/// directory, say). Every check runs on a multi-threaded runtime with two workers, so that
/// the racing checks race for real. The tests are grouped in a module per area, named like
/// the modules of [`testing`](crate::testing), so invoke it in a module of its own; they see
/// the items of the invoking module.
#[macro_export]
macro_rules! conformance_suite {
    ($fresh:expr $(,)?) => {
        $crate::conformance_suite! { @areas $fresh;
            identities {
                registration_creates_a_pending_user,
                renewal_keeps_the_password_and_marks_the_old_certificate_replaced,
                registering_the_current_certificate_again_changes_nothing,
                conflicting_registrations_are_refused_without_changes,
                a_person_is_a_user_without_a_company,
                list_users_is_ordered_by_username,
                state_changes,
                a_renewal_can_rotate_the_password_and_every_authorisation_change_is_a_security_change,
                the_sealed_gateway_password_survives_renewal,
                concurrent_registrations_all_succeed,
                racing_registrations_of_one_fingerprint_leave_one_owner,
                racing_registrations_of_one_user_leave_one_current_certificate,
                a_follower_of_the_security_changes_misses_none,
            }
            roles {
                a_registration_grants_its_roles_in_the_same_commit,
                roles_from_both_sources,
                replication_replaces_only_replicated_roles,
                a_role_counts_as_held_within_the_retention_after_it_ends,
                racing_grants_and_revokes_of_one_role_take_effect_once,
                a_reader_sees_the_old_replicated_roles_or_the_new,
            }
            audit {
                audit_events_are_appended_and_queried,
                audit_events_are_deleted_only_before_the_retention_cutoff,
                expiry_deletes_no_event_after_the_id_it_was_given,
                a_follower_of_the_audit_log_sees_whole_batches_and_misses_none,
            }
            transactions {
                a_recorded_transaction_has_work_until_a_final_step,
                a_transaction_rejected_on_arrival_has_its_status_0_and_no_work,
                a_name_is_used_once_per_user_in_any_service,
                concurrent_uploads_of_one_name_make_one_transaction,
                pending_upload_bytes_count_what_waits_for_delivery,
                expiry_removes_old_out_files_and_finished_upload_bodies,
                an_upload_waiting_for_a_retry_holds_back_later_ones_of_its_user_and_service,
                an_outbound_file_is_numbered_and_posted_once,
                only_a_transaction_the_backend_took_can_be_replayed,
                a_batch_of_steps_larger_than_one_statement_applies_in_order,
                racing_advances_of_one_step_take_effect_once,
                racing_claims_hand_each_item_to_one_worker_until_its_lease_runs_out,
                only_the_current_claim_postpones_or_renews,
                a_step_under_a_claim_no_longer_current_is_refused,
                a_claimed_upload_holds_back_later_ones_of_its_user_and_service,
                a_node_starting_again_ends_its_own_claims_only,
            }
            mailboxes {
                out_files_are_per_user_and_added_once_by_name,
                a_listing_returns_names_exactly_in_the_order_they_came,
                racing_additions_of_one_name_add_one_file,
                a_replaced_file_is_never_missing_from_out,
                a_company_mailbox_is_shared_by_its_users_and_no_one_else,
                the_latest_transaction_of_a_service_names_its_mailbox,
            }
            portal {
                portal_account_password_and_profile_are_independent,
                sessions_are_found_by_hash_touched_and_expired,
                an_initial_code_is_kept_with_its_expiry,
                a_registration_is_queued_once_and_finished_once,
                the_interface_choice_reaches_the_ftps_login,
                racing_registration_requests_queue_one_job,
                racing_sessions_of_one_token_hash_make_one,
            }
            maintenance {
                a_store_answers_and_checkpoints,
                the_first_key_fingerprint_recorded_stays,
                one_node_at_a_time_leads_a_job,
            }
        }
    };
    (@areas $fresh:expr; $($area:ident { $($check:ident,)+ })+) => {
        $(
            mod $area {
                #[allow(unused_imports)]
                use super::*;

                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $check() {
                        let (store, _guard) = $fresh.await;
                        $crate::testing::$area::$check(::std::sync::Arc::new(store)).await;
                    }
                )+
            }
        )+
    };
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    /// The checks an area module defines: its `pub async fn`s, sorted.
    fn defined(source: &str) -> Vec<&str> {
        let mut checks: Vec<&str> = source
            .lines()
            .filter_map(|line| line.strip_prefix("pub async fn "))
            .map(|rest| rest.split(['<', '(']).next().unwrap_or(rest))
            .collect();
        checks.sort_unstable();
        checks
    }

    /// The checks [`conformance_suite!`](crate::conformance_suite) lists, sorted, by area.
    fn listed(suite: &str) -> BTreeMap<&str, Vec<&str>> {
        let start = suite.find("@areas $fresh;").unwrap();
        let end = suite.find("(@areas $fresh:expr;").unwrap();
        let mut lines = suite[start..end].lines();
        let mut areas = BTreeMap::new();
        while let Some(line) = lines.next() {
            if let Some(area) = line.trim().strip_suffix(" {") {
                let mut checks: Vec<&str> = lines
                    .by_ref()
                    .take_while(|line| line.trim() != "}")
                    .map(|line| line.trim().trim_end_matches(','))
                    .collect();
                checks.sort_unstable();
                areas.insert(area, checks);
            }
        }
        areas
    }

    #[test]
    fn the_suite_runs_every_check_of_every_area() {
        let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/src/testing");
        let mut sources = BTreeMap::new();
        for entry in std::fs::read_dir(directory).unwrap() {
            let path = entry.unwrap().path();
            let area = path.file_stem().unwrap().to_str().unwrap().to_owned();
            if area != "mod" {
                sources.insert(area, std::fs::read_to_string(&path).unwrap());
            }
        }
        let defined: BTreeMap<&str, Vec<&str>> = sources
            .iter()
            .map(|(area, source)| (area.as_str(), defined(source)))
            .collect();
        assert_eq!(listed(include_str!("mod.rs")), defined);
    }
}
