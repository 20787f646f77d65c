//! Storage for the gateway: users and their certificates ([`IdentityStore`]), roles
//! ([`RoleStore`]), the append-only audit log ([`AuditLog`]), transactions with their
//! outstanding work ([`TransactionLog`]), each user's `/out` ([`MailboxStore`]) and the
//! portal's state ([`PortalStore`]), one trait per area; [`Store`] is all of them.
//! [`SqliteStore`] is the embedded implementation, [`PostgresStore`] the one several nodes
//! share; both run the same SQL (`shared/`), each with what is its own.
//!
//! Times are stored as ISO-8601 UTC text with microsecond precision
//! (`2025-03-01T10:00:00.000000Z`); sub-microsecond parts are dropped.

use std::future::Future;
use std::time::Duration;

use mftgw_domain::status::StatusCode;
use mftgw_domain::{
    AccountId, AuditEvent, BlobKey, CertificateOwner, Cvr, KnownUser, Mailbox, ServiceName,
    SkatTransactionId, Transaction, User, UserState, Username,
};
use time::OffsetDateTime;

mod copy;
mod error;
mod plan;
mod portal;
mod postgres;
mod sqlite;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod timestamp;
mod transactions;

pub use copy::{CopiedTable, copy_embedded};
pub use error::StoreError;
pub use portal::{
    InitialCode, NewRegistrationJob, PortalAccount, PortalProfile, PortalSession,
    QueuedRegistration, RegistrationJob, RegistrationJobState,
};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use transactions::{
    Advance, Advanced, Expired, LeaseToken, NewOutFile, NewOutbound, NewTransaction, OutContent,
    OutFileEntry, OutboundRecorded, Recorded, WorkItem,
};

pub type StoreResult<T> = Result<T, StoreError>;

/// Every area trait, for code that calls a concrete store's methods (`use
/// mftgw_store::prelude::*`); generic code names its bounds instead.
pub mod prelude {
    pub use crate::{
        AuditLog, IdentityStore, MailboxStore, Maintenance, PortalStore, RoleStore, Store,
        TransactionLog,
    };
}

/// A certificate presented for registration in the portal, with what it says about its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRegistration {
    pub username: Username,
    /// `None` for a person.
    pub cvr: Option<Cvr>,
    pub account: AccountId,
    pub kind: String,
    pub fingerprint: String,
    pub subject: String,
    pub serial_hex: String,
    pub not_after: OffsetDateTime,
    pub cert_der: Vec<u8>,
    /// Stored only if this registration creates the user; a renewal keeps the old password.
    pub new_password_hash: String,
    /// The same new password sealed for showing it again in the portal (see
    /// `PasswordKey::seal`); stored with `new_password_hash`.
    pub new_password_sealed: String,
    /// When a newly created user becomes active; ignored on renewal.
    pub activate_at: OffsetDateTime,
    /// On a renewal, replace the password with `new_password_hash` too (the replaced
    /// certificate was revoked: its holder may know the password).
    pub rotate_password: bool,
    /// Local roles granted in the same commit (an import's; none from the portal). Roles the
    /// user already holds stay as they are.
    pub roles: Vec<ServiceName>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationOutcome {
    pub user: User,
    /// Whether the user was created (and so `new_password_hash` is now their password).
    pub created: bool,
    /// Whether the certificate already was the user's current one, so nothing changed.
    pub unchanged: bool,
    /// Whether a renewal replaced the password with `new_password_hash`.
    pub password_rotated: bool,
    /// Those of the registration's `roles` the user did not hold before.
    pub roles_granted: Vec<ServiceName>,
}

/// Who granted a role. Each source grants and revokes only its own grants, so replication
/// from the central security system never removes an operator's grant, nor the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleSource {
    /// Granted by an operator of this gateway.
    Local,
    /// Replicated from the central security system.
    Replicated,
}

impl RoleSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Replicated => "replicated",
        }
    }
}

/// A certificate as registered to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredCertificate {
    pub fingerprint: String,
    pub subject: String,
    pub serial_hex: String,
    pub not_after: OffsetDateTime,
    pub registered_at: OffsetDateTime,
    /// When a renewal replaced it; `None` for the current certificate.
    pub replaced_at: Option<OffsetDateTime>,
    pub der: Vec<u8>,
}

/// A committed change that may withdraw the authorisation of `username`'s live sessions:
/// `change` is the new user state (`suspended`, `deleted`, ...), `certificate_replaced` or
/// `interfaces_changed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityChange {
    pub id: i64,
    pub username: Username,
    pub change: String,
}

/// What [`TransactionLog::counts`] reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub transactions_by_state: Vec<(String, u64)>,
    pub work_by_service: Vec<(ServiceName, u64)>,
}

/// What replacing the replicated roles did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicatedRoles {
    pub granted: u64,
    pub revoked: u64,
    /// Grants naming users this gateway does not know.
    pub unknown_users: Vec<Username>,
}

/// Which audit events to read: those after `since_id` (exclusive), oldest first, matching the
/// given username and action exactly, at most `limit` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub username: Option<String>,
    pub action: Option<String>,
    pub since_id: Option<i64>,
    /// Only events that happened before this.
    pub before: Option<OffsetDateTime>,
    pub limit: u32,
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self {
            username: None,
            action: None,
            since_id: None,
            before: None,
            limit: 100,
        }
    }
}

/// The gateway's persistent state, as one bound for whoever needs every area (the binary's
/// composition root, the conformance suite). Consumers name only the area traits they use.
///
/// Implementations write `async fn`; the returned futures are `Send` so that callers can hold
/// a store across `.await` in spawned tasks. Every method is one atomic commit: a caller never
/// sees half of it, and a method that returns `Err` changed nothing. The contracts below are
/// what callers rely on; none may come from there being a single writer, because the
/// PostgreSQL store has many (several nodes, each with a pool). The conformance suite
/// (`testing` feature) checks them against every implementation.
pub trait Store:
    IdentityStore + RoleStore + AuditLog + TransactionLog + MailboxStore + PortalStore + Maintenance
{
}

impl<T> Store for T where
    T: IdentityStore
        + RoleStore
        + AuditLog
        + TransactionLog
        + MailboxStore
        + PortalStore
        + Maintenance
{
}

/// Users, their certificates and gateway passwords, and the log of security changes.
///
/// Concurrency contract:
/// - a certificate fingerprint belongs to at most one user, ever: of two registrations
///   racing for one fingerprint, one wins and the other gets [`StoreError::Conflict`] (or
///   "already current", for the same user), never two owners;
/// - a user has at most one current certificate: of two registrations racing to create one
///   user with different certificates, one creates it and the other renews it (as if it came
///   second), never two users or two current certificates;
/// - both hold by uniqueness constraints (`certificates_one_current_per_user`, the
///   fingerprint's key), not only by a read before the write; a write a constraint refuses
///   is a [`StoreError::Conflict`] (`StoreError`'s conversion from `sqlx::Error` says so for
///   every sqlx-based store);
/// - security changes get strictly increasing ids in commit order as a watcher reading
///   "after `id`" sees them: no change may appear later with a smaller id than one already
///   read.
pub trait IdentityStore: Send + Sync + 'static {
    /// Registers a certificate in one transaction. A new username creates a pending user with
    /// `new_password_hash`; a known username gets this certificate as its current one (the
    /// previous one is kept, marked replaced) and keeps its password and state. Registering the
    /// current certificate again changes nothing. A certificate of another user, or one this
    /// user has already replaced, is a [`StoreError::Conflict`]. A new user brings their
    /// mailbox and, with the company's first user, the company's
    /// ([`Mailbox::Company`]).
    fn register_certificate(
        &self,
        registration: CertificateRegistration,
    ) -> impl Future<Output = StoreResult<RegistrationOutcome>> + Send;

    /// The user with this username, their current certificate and password hash.
    fn find_user(
        &self,
        username: &Username,
    ) -> impl Future<Output = StoreResult<Option<KnownUser>>> + Send;

    /// Who registered the certificate with this fingerprint, if anyone ever did.
    fn certificate_owner(
        &self,
        fingerprint: &str,
    ) -> impl Future<Output = StoreResult<Option<CertificateOwner>>> + Send;

    /// Every certificate the user has registered, the current one first.
    fn certificates(
        &self,
        username: &Username,
    ) -> impl Future<Output = StoreResult<Vec<RegisteredCertificate>>> + Send;

    /// All users, ordered by username.
    fn list_users(&self) -> impl Future<Output = StoreResult<Vec<User>>> + Send;

    /// Sets the user's state and records the [`SecurityChange`], in one commit.
    fn set_user_state(
        &self,
        username: &Username,
        state: UserState,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Security changes after `after_id`, oldest first (a renewal and a changed interface
    /// choice record one too).
    fn security_changes(
        &self,
        after_id: i64,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<SecurityChange>>> + Send;

    /// The id of the latest security change (0: none yet), where a follower starts.
    fn latest_security_change(&self) -> impl Future<Output = StoreResult<i64>> + Send;

    /// The user's gateway password as sealed at registration, to show it again in the portal.
    fn gateway_password_sealed(
        &self,
        username: &Username,
    ) -> impl Future<Output = StoreResult<Option<String>>> + Send;
}

/// Who may use which service: roles granted locally by operators and replicated from the
/// central security system, each source managing only its own grants.
///
/// Concurrency contract: granting and revoking are idempotent (granting twice is one grant);
/// [`RoleStore::replace_replicated_roles`] replaces the whole replicated set in one commit,
/// so a reader sees the old set or the new one.
pub trait RoleStore: Send + Sync + 'static {
    /// Grants `service` to the user on behalf of `source`; `false` if that source already had.
    /// The service name is not checked against the catalogue here; that is the caller's job.
    fn grant_role(
        &self,
        username: &Username,
        service: &ServiceName,
        source: RoleSource,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Withdraws `source`'s grant of `service`; `false` if it had none. The user keeps the
    /// role while the other source still grants it.
    fn revoke_role(
        &self,
        username: &Username,
        service: &ServiceName,
        source: RoleSource,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Makes the replicated roles exactly `roles` (username, service), in one commit; grants
    /// of users this store does not know are skipped and returned. Local grants stay.
    fn replace_replicated_roles(
        &self,
        roles: &[(Username, ServiceName)],
    ) -> impl Future<Output = StoreResult<ReplicatedRoles>> + Send;

    /// The services the user holds a role for from any source, sorted and distinct.
    fn roles(
        &self,
        username: &Username,
    ) -> impl Future<Output = StoreResult<Vec<ServiceName>>> + Send;

    /// Whether the user holds the role for `service` now, or held it at or after `since`.
    fn held_role_since(
        &self,
        username: &Username,
        service: &ServiceName,
        since: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
}

/// The append-only audit log.
///
/// Concurrency contract: events get increasing ids in commit order (readers page with
/// `since_id`); a batch appends all or nothing; expiry removes only what is older than its
/// bound and at most through the id it was given, so events appended meanwhile stay.
pub trait AuditLog: Send + Sync + 'static {
    /// Appends events to the audit log, in order, in one commit.
    fn append_audit(&self, events: &[AuditEvent]) -> impl Future<Output = StoreResult<()>> + Send;

    /// The retention sweep: deletes the events before `before` with ids up to `through_id`
    /// (the ones archived), and from then on refuses to delete any event at or after `before`.
    fn expire_audit(
        &self,
        before: OffsetDateTime,
        through_id: i64,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    fn audit_events(
        &self,
        query: AuditQuery,
    ) -> impl Future<Output = StoreResult<Vec<(i64, AuditEvent)>>> + Send;
}

/// Transactions, their status history, and the outbox of work (deliveries and replays).
///
/// Concurrency contract:
/// - an upload's FTPTransactionID is unique per user: of two racing commits of the same name
///   one records the transaction, the other is told the name was used;
/// - work is claimed, not just read: [`TransactionLog::claim_work`] hands each due item to
///   one caller until its lease runs out (then to the next caller that asks, with a new
///   [`LeaseToken`]); failures are recorded only under the current claim;
/// - delivery is FIFO per (user, service) by transaction id: [`TransactionLog::claim_work`]
///   never returns an upload while an older one of the same user and service waits for a
///   retry or is claimed by someone else;
/// - [`TransactionLog::advance`] applies a step only from its `from` state (compare and set),
///   together with its `/out` files, so a step applied twice (two workers, or a retry after a
///   crash) takes effect once.
pub trait TransactionLog: Send + Sync + 'static {
    /// Commits a received upload as a transaction in state `received` together with its
    /// outstanding work (due now), unless the user has used its FTPTransactionID before.
    fn record_transaction(
        &self,
        transaction: NewTransaction,
    ) -> impl Future<Output = StoreResult<Recorded>> + Send;

    /// Claims work due at `now` for transactions in any of `services`, oldest first, for
    /// `owner` (a node id), for `lease` by the database's clock: nobody else is given these
    /// items before it runs out, and then they are due again. Only the database's clock
    /// decides when a lease ends, so nodes whose clocks differ agree on it. Delivery is FIFO
    /// per (user, service): an upload waiting for a retry, or claimed by another caller,
    /// holds back the later uploads of the same user and service.
    fn claim_work(
        &self,
        owner: &str,
        services: &[ServiceName],
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<WorkItem>>> + Send;

    /// Extends the leases of the claimed `items` (transaction id and claim) to `lease` from
    /// the database's time (`Duration::ZERO` ends them); a claim that is no longer current
    /// is left alone. Returns how many were extended.
    fn renew_leases(
        &self,
        items: &[(i64, LeaseToken)],
        lease: Duration,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Hints to the workers of every node on this store that there is new work (after the
    /// commit that made it; returns at once). A hint may be lost: workers poll as well.
    fn announce_work(&self);

    /// What moves when a node announced work (this one's own hints included); `None` where
    /// no other process shares the store.
    fn work_announcements(&self) -> Option<tokio::sync::watch::Receiver<u64>>;

    /// Ends every claim of `owner` (a node starting again: the process that claimed is
    /// gone, and its work need not wait for the leases to run out); how many there were.
    fn release_claims(&self, owner: &str) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Records a failed delivery attempt under the claim `lease`: the attempt count, when
    /// to try again, and why; the claim ends. `false` if the claim is no longer current
    /// (its lease ran out and the work was claimed again), and nothing changed.
    fn postpone_work(
        &self,
        transaction_id: i64,
        lease: LeaseToken,
        attempts: u32,
        due_at: OffsetDateTime,
        error: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// All outstanding work, oldest first.
    fn pending_work(&self, limit: u32) -> impl Future<Output = StoreResult<Vec<WorkItem>>> + Send;

    /// Schedules delivering the transaction `skat_transaction_id` again, now. Only a
    /// transaction its backend has taken (delivered, accepted or answered) can be replayed;
    /// `false` if it cannot, or already has work.
    fn replay_work(
        &self,
        skat_transaction_id: &SkatTransactionId,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Removes the replay work of a transaction whose file the backend took again.
    fn complete_replay(&self, transaction_id: i64) -> impl Future<Output = StoreResult<()>> + Send;

    /// Makes the work of the transaction `skat_transaction_id` due now; `false` if it has none.
    fn retry_work(
        &self,
        skat_transaction_id: &SkatTransactionId,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Applies the steps in one commit. A step whose transaction is no longer in its `from`
    /// state is skipped (it was applied before), so a step retried after a crash produces its
    /// files exactly once. A file replaces one of the same name in `/out`.
    fn advance(&self, steps: &[Advance]) -> impl Future<Output = StoreResult<Advanced>> + Send;

    /// The transaction with this SKATTransactionId.
    fn transaction(
        &self,
        skat_transaction_id: &SkatTransactionId,
    ) -> impl Future<Output = StoreResult<Option<Transaction>>> + Send;

    /// The mailbox the latest transaction of `username` with `service` was reported to; `None`
    /// if they never sent that service anything.
    fn latest_mailbox(
        &self,
        username: &Username,
        service: &ServiceName,
    ) -> impl Future<Output = StoreResult<Option<Mailbox>>> + Send;

    /// Puts an unrelated outbound file and its numbered status file in `outbound.mailbox`, in
    /// one commit; posting the same (user, service, name) again changes nothing.
    fn record_outbound(
        &self,
        outbound: NewOutbound,
    ) -> impl Future<Output = StoreResult<OutboundRecorded>> + Send;

    /// The user's transactions, newest first, or all users' when `username` is `None`.
    fn transactions(
        &self,
        username: Option<&Username>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<Transaction>>> + Send;

    /// The statuses a transaction has reached, in the order it reached them.
    fn status_history(
        &self,
        transaction_id: i64,
    ) -> impl Future<Output = StoreResult<Vec<(StatusCode, OffsetDateTime)>>> + Send;

    /// The bytes of the user's uploads that wait for delivery.
    fn pending_upload_bytes(
        &self,
        username: &Username,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Transactions per state, and outstanding work per service, for monitoring.
    fn counts(&self) -> impl Future<Output = StoreResult<Counts>> + Send;

    /// Which of `keys` a transaction or an `/out` file refers to.
    fn referenced_blobs(
        &self,
        keys: &[BlobKey],
    ) -> impl Future<Output = StoreResult<Vec<BlobKey>>> + Send;

    /// Removes `/out` files created before `before`, and forgets the bodies of finished
    /// transactions received before it (the transactions themselves are kept forever).
    fn expire(&self, before: OffsetDateTime) -> impl Future<Output = StoreResult<Expired>> + Send;
}

/// The mailboxes (each a `/out`): status files, responses and outbound files. A
/// transaction's files go to the mailbox it was recorded with.
///
/// Concurrency contract: a name is unique in a mailbox; a file that replaces another of its
/// name (a rewritten status file) does so in one commit, so a reader sees the old file or
/// the new one, never neither.
pub trait MailboxStore: Send + Sync + 'static {
    /// Puts a file in `mailbox` unless one of that name is there; `false` if one is.
    fn add_out_file(
        &self,
        mailbox: &Mailbox,
        file: NewOutFile,
        at: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// The files of `mailbox`, in the order they appeared; [`StoreError::NotFound`] for a
    /// mailbox that does not exist (a user's exists from their registration on).
    fn out_files(
        &self,
        mailbox: &Mailbox,
    ) -> impl Future<Output = StoreResult<Vec<OutFileEntry>>> + Send;

    /// One file of `mailbox` with its body.
    fn out_file(
        &self,
        mailbox: &Mailbox,
        name: &str,
    ) -> impl Future<Output = StoreResult<Option<(OutFileEntry, OutContent)>>> + Send;

    /// Removes a file from `mailbox`; `None` if there was none, else its body (a blob for the
    /// caller to delete).
    fn delete_out_file(
        &self,
        mailbox: &Mailbox,
        name: &str,
    ) -> impl Future<Output = StoreResult<Option<OutContent>>> + Send;
}

/// The Certificate Portal's accounts, sessions and registration jobs.
///
/// Concurrency contract: a session token hash is unique; at most one registration job per
/// certificate is queued at a time (a second request returns the queued one).
pub trait PortalStore: Send + Sync + 'static {
    /// The portal account of `username`, if the person has ever changed its password or
    /// profile.
    fn portal_account(
        &self,
        username: &Username,
    ) -> impl Future<Output = StoreResult<Option<PortalAccount>>> + Send;

    /// Sets the portal password (creating the account if needed).
    fn set_portal_password(
        &self,
        username: &Username,
        password_hash: &str,
        at: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Sets SE-number, e-mail and interfaces (creating the account if needed).
    fn set_portal_profile(
        &self,
        username: &Username,
        profile: &PortalProfile,
        at: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    fn create_portal_session(
        &self,
        session: &PortalSession,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    fn portal_session(
        &self,
        token_hash: &str,
    ) -> impl Future<Output = StoreResult<Option<PortalSession>>> + Send;

    /// Records activity on a session (for the idle timeout).
    fn touch_portal_session(
        &self,
        token_hash: &str,
        at: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    fn delete_portal_session(
        &self,
        token_hash: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Deletes the sessions of `username` (after a password change or a suspension, the
    /// browsers must log in again), but those of `except_certificate` (after a renewal, the
    /// new certificate's); returns how many.
    fn delete_portal_sessions_of(
        &self,
        username: &Username,
        except_certificate: Option<&str>,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Sets a one-time first portal password (its argon2id hash), valid until `expires_at`
    /// and only while the account has no password of its own.
    fn set_portal_initial_code(
        &self,
        username: &Username,
        code_hash: &str,
        expires_at: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Deletes sessions last used before `before`; returns how many.
    fn expire_portal_sessions(
        &self,
        before: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Queues a registration of the certificate, unless one is queued already: then that job
    /// is returned, and `false`.
    fn request_registration(
        &self,
        job: NewRegistrationJob,
    ) -> impl Future<Output = StoreResult<(RegistrationJob, bool)>> + Send;

    /// The latest registration job for the certificate.
    fn latest_registration(
        &self,
        cert_fingerprint: &str,
    ) -> impl Future<Output = StoreResult<Option<RegistrationJob>>> + Send;

    /// Queued jobs, oldest first.
    fn queued_registrations(
        &self,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<QueuedRegistration>>> + Send;

    /// Ends a queued job: done, or failed with the reason (and forgets its certificate); a
    /// job no longer queued is left as it is.
    fn finish_registration(
        &self,
        job_id: i64,
        outcome: Result<(), String>,
        at: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Health and housekeeping of the store itself.
pub trait Maintenance: Send + Sync + 'static {
    /// Answers if the store can be reached.
    fn ping(&self) -> impl Future<Output = StoreResult<()>> + Send;

    /// Bounds the write-ahead log: copies it into the database and truncates it, as far as
    /// readers allow. Where the database does that itself, nothing.
    fn checkpoint(&self) -> impl Future<Output = StoreResult<()>> + Send;

    /// The fingerprint of the key for `purpose` that the store's data depends on: the one
    /// recorded first, or `fingerprint`, recorded now if none was. Of nodes racing to record
    /// one, the first to commit wins and the others are told its fingerprint.
    fn key_fingerprint(
        &self,
        purpose: &str,
        fingerprint: &str,
    ) -> impl Future<Output = StoreResult<String>> + Send;

    /// Whether `node` leads `job` (one that one node at a time should run) until `until`: it
    /// led it already, or nobody's lead is current at `now`; then it leads until `until`.
    /// Of nodes asking at once, one leads.
    fn lead_job(
        &self,
        job: &str,
        node: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
}
