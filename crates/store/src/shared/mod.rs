//! The store traits' implementation in SQL that SQLite and PostgreSQL both run: this module
//! is compiled once under each backend (`sqlite/mod.rs`, `postgres/mod.rs` mount it with
//! `#[path]`), against that backend's `Db`, `Pool` and `DbRow`. What differs between them is
//! the backend's own: `begin_write` (SQLite takes its write lock up front), `serialize` (the
//! orders PostgreSQL's many writers must keep, which SQLite's one writer keeps by itself),
//! `checkpoint`, `announce_work` and `work_announcements`, `OUT_LISTING`,
//! `CLAIM_LOCKING`, `ROW_LOCKING` and `DATABASE_NOW`.

use std::collections::HashSet;

use mftgw_domain::portal::Interfaces;
use mftgw_domain::status::StatusCode;
use mftgw_domain::{
    AuditEvent, BlobKey, CertificateOwner, Cvr, KnownUser, Mailbox, ServiceName, SkatTransactionId,
    Transaction, User, UserState, Username,
};
use sqlx::Row;
use time::OffsetDateTime;

use super::{
    Backend, CLAIM_LOCKING, DATABASE_NOW, Db, DbRow, OUT_LISTING, Pool, ROW_LOCKING, announce_work,
    begin_write, checkpoint, serialize, work_announcements,
};
use crate::plan::{RegisteredTo, RegistrationPlan, Serialized, registration_plan};
use crate::{
    Advance, Advanced, AuditLog, AuditQuery, CertificateRegistration, Counts, Expired,
    IdentityStore, LeaseToken, MailboxStore, Maintenance, NewOutFile, NewOutbound,
    NewRegistrationJob, NewTransaction, OutContent, OutFileEntry, OutboundRecorded, PortalAccount,
    PortalProfile, PortalSession, PortalStore, QueuedRegistration, Recorded, RegisteredCertificate,
    RegistrationJob, RegistrationOutcome, ReplicatedRoles, RoleSource, RoleStore, SecurityChange,
    StoreError, StoreResult, TransactionLog, WorkItem, timestamp,
};

mod audit;
mod portal;
mod transactions;

type Connection = <Db as sqlx::Database>::Connection;

/// The columns [`user_from_row`] reads, as a macro because sqlx wants `&'static str` SQL.
macro_rules! user_columns {
    () => {
        "users.id, users.username, users.cvr, users.account, users.kind, users.state, \
         users.activate_at, users.created_at"
    };
}

/// Grants the user each of `roles` as a local role inside `transaction`; those that are new.
async fn grant_local_roles(
    transaction: &mut Connection,
    user_id: i64,
    roles: &[ServiceName],
    now: &str,
) -> StoreResult<Vec<ServiceName>> {
    let mut granted = Vec::new();
    for service in roles {
        if insert_role(&mut *transaction, user_id, service, RoleSource::Local, now).await? {
            granted.push(service.clone());
        }
    }
    Ok(granted)
}

/// Grants the role unless the user holds it from `source` already; whether it was new.
async fn insert_role(
    executor: impl sqlx::Executor<'_, Database = Db>,
    user_id: i64,
    service: &ServiceName,
    source: RoleSource,
    now: &str,
) -> StoreResult<bool> {
    let result = sqlx::query(
        "INSERT INTO roles (user_id, service, source, granted_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, service, source) DO NOTHING",
    )
    .bind(user_id)
    .bind(service.as_str())
    .bind(source.as_str())
    .bind(now)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() > 0)
}

impl IdentityStore for Backend {
    async fn register_certificate(
        &self,
        registration: CertificateRegistration,
    ) -> StoreResult<RegistrationOutcome> {
        let now = timestamp::to_text(OffsetDateTime::now_utc());
        let mut transaction = begin_write(&self.writer).await?;
        serialize(&mut transaction, Serialized::Registrations).await?;
        let existing_user = fetch_user(&mut *transaction, &registration.username).await?;
        let existing_certificate = sqlx::query(
            "SELECT users.username, certificates.replaced_at
             FROM certificates JOIN users ON users.id = certificates.user_id
             WHERE certificates.fingerprint = $1",
        )
        .bind(&registration.fingerprint)
        .fetch_optional(&mut *transaction)
        .await?;

        let registered_to = existing_certificate
            .map(|row| {
                Ok::<_, StoreError>(RegisteredTo {
                    owner: transactions::parsed("users.username", row.try_get("username")?)?,
                    replaced_at: row.try_get("replaced_at")?,
                })
            })
            .transpose()?;
        let (user_id, created) =
            match registration_plan(&registration, existing_user, registered_to)? {
                RegistrationPlan::AlreadyCurrent(user) => {
                    let roles_granted =
                        grant_local_roles(&mut transaction, user.id, &registration.roles, &now)
                            .await?;
                    transaction.commit().await?;
                    return Ok(RegistrationOutcome {
                        user,
                        created: false,
                        unchanged: true,
                        password_rotated: false,
                        roles_granted,
                    });
                }
                RegistrationPlan::CreateUser => {
                    let user_id: i64 = sqlx::query_scalar(
                        "INSERT INTO users
                         (username, cvr, account, kind, state, password_hash, password_sealed,
                          activate_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     RETURNING id",
                    )
                    .bind(registration.username.as_str())
                    .bind(registration.cvr.as_ref().map(Cvr::as_str))
                    .bind(registration.account.as_str())
                    .bind(&registration.kind)
                    .bind(UserState::PendingActivation.as_str())
                    .bind(&registration.new_password_hash)
                    .bind(&registration.new_password_sealed)
                    .bind(timestamp::to_text(registration.activate_at))
                    .bind(&now)
                    .fetch_one(&mut *transaction)
                    .await?;
                    let legacy = match &registration.cvr {
                        Some(cvr) => Mailbox::Company(cvr.clone()),
                        None => Mailbox::Person(registration.username.clone()),
                    };
                    for mailbox in [
                        Mailbox::of_user(&registration.username),
                        legacy,
                        Mailbox::Calls(registration.username.clone()),
                    ] {
                        sqlx::query(
                            "INSERT INTO mailboxes (owner) VALUES ($1)
                             ON CONFLICT (owner) DO NOTHING",
                        )
                        .bind(mailbox.key())
                        .execute(&mut *transaction)
                        .await?;
                    }
                    (user_id, true)
                }
                RegistrationPlan::Renew(user) => {
                    sqlx::query(
                        "UPDATE certificates SET replaced_at = $1
                     WHERE user_id = $2 AND replaced_at IS NULL",
                    )
                    .bind(&now)
                    .bind(user.id)
                    .execute(&mut *transaction)
                    .await?;
                    if registration.rotate_password {
                        sqlx::query(
                        "UPDATE users SET password_hash = $1, password_sealed = $2 WHERE id = $3",
                    )
                    .bind(&registration.new_password_hash)
                    .bind(&registration.new_password_sealed)
                    .bind(user.id)
                    .execute(&mut *transaction)
                    .await?;
                    }
                    record_security_change(
                        &mut transaction,
                        &registration.username,
                        "certificate_replaced",
                        &now,
                    )
                    .await?;
                    (user.id, false)
                }
            };

        sqlx::query(
            "INSERT INTO certificates
                 (fingerprint, user_id, subject, serial_hex, not_after, der, registered_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&registration.fingerprint)
        .bind(user_id)
        .bind(&registration.subject)
        .bind(&registration.serial_hex)
        .bind(timestamp::to_text(registration.not_after))
        .bind(&registration.cert_der)
        .bind(&now)
        .execute(&mut *transaction)
        .await?;

        let roles_granted =
            grant_local_roles(&mut transaction, user_id, &registration.roles, &now).await?;
        let user = fetch_user(&mut *transaction, &registration.username)
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "user {} vanished while being registered",
                    registration.username
                ))
            })?;
        transaction.commit().await?;
        Ok(RegistrationOutcome {
            user,
            created,
            unchanged: false,
            password_rotated: !created && registration.rotate_password,
            roles_granted,
        })
    }

    async fn find_user(&self, username: &Username) -> StoreResult<Option<KnownUser>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            ", users.password_hash, certificates.fingerprint, portal_accounts.interfaces
             FROM users LEFT JOIN certificates
                 ON certificates.user_id = users.id AND certificates.replaced_at IS NULL
             LEFT JOIN portal_accounts ON portal_accounts.username = users.username
             WHERE users.username = $1"
        ))
        .bind(username.as_str())
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user = user_from_row(&row)?;
        let current_cert_fingerprint: Option<String> = row.try_get("fingerprint")?;
        let current_cert_fingerprint = current_cert_fingerprint.ok_or_else(|| {
            StoreError::Corrupt(format!("user {username} has no current certificate"))
        })?;
        let interfaces: Option<String> = row.try_get("interfaces")?;
        Ok(Some(KnownUser {
            user,
            current_cert_fingerprint,
            password_hash: row.try_get("password_hash")?,
            ftps_chosen: interfaces.is_none_or(|stored| Interfaces::from_stored(&stored).ftps),
        }))
    }

    async fn certificate_owner(&self, fingerprint: &str) -> StoreResult<Option<CertificateOwner>> {
        let row = sqlx::query(
            "SELECT users.username, certificates.replaced_at
             FROM certificates JOIN users ON users.id = certificates.user_id
             WHERE certificates.fingerprint = $1",
        )
        .bind(fingerprint)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| {
            let replaced_at: Option<String> = row.try_get("replaced_at")?;
            Ok(CertificateOwner {
                username: transactions::parsed("users.username", row.try_get("username")?)?,
                current: replaced_at.is_none(),
            })
        })
        .transpose()
    }

    async fn certificates(&self, username: &Username) -> StoreResult<Vec<RegisteredCertificate>> {
        let user_id = user_id(&self.reader, username).await?;
        type Row = (
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            Vec<u8>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT fingerprint, subject, serial_hex, not_after, registered_at, replaced_at, der
             FROM certificates WHERE user_id = $1
             ORDER BY replaced_at IS NOT NULL, registered_at DESC",
        )
        .bind(user_id)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(
                |(fingerprint, subject, serial_hex, not_after, registered_at, replaced_at, der)| {
                    Ok(RegisteredCertificate {
                        fingerprint,
                        subject,
                        serial_hex,
                        not_after: timestamp::from_text("certificates.not_after", &not_after)?,
                        registered_at: timestamp::from_text(
                            "certificates.registered_at",
                            &registered_at,
                        )?,
                        replaced_at: replaced_at
                            .map(|at| timestamp::from_text("certificates.replaced_at", &at))
                            .transpose()?,
                        der,
                    })
                },
            )
            .collect()
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users ORDER BY username"
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn set_user_state(&self, username: &Username, state: UserState) -> StoreResult<()> {
        let mut transaction = begin_write(&self.writer).await?;
        let result = sqlx::query("UPDATE users SET state = $1 WHERE username = $2")
            .bind(state.as_str())
            .bind(username.as_str())
            .execute(&mut *transaction)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::user_not_found(username));
        }
        let now = timestamp::to_text(OffsetDateTime::now_utc());
        record_security_change(&mut transaction, username, state.as_str(), &now).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn security_changes(
        &self,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<SecurityChange>> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT id, username, change FROM security_changes WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|(id, username, change)| {
                Ok(SecurityChange {
                    id,
                    username: transactions::parsed("security_changes.username", username)?,
                    change,
                })
            })
            .collect()
    }

    async fn latest_security_change(&self) -> StoreResult<i64> {
        let latest: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM security_changes")
            .fetch_one(&self.reader)
            .await?;
        Ok(latest.unwrap_or(0))
    }

    async fn gateway_password_sealed(&self, username: &Username) -> StoreResult<Option<String>> {
        portal::gateway_password_sealed(&self.reader, username).await
    }
}

impl RoleStore for Backend {
    async fn grant_role(
        &self,
        username: &Username,
        service: &ServiceName,
        source: RoleSource,
    ) -> StoreResult<bool> {
        let user_id = user_id(&self.writer, username).await?;
        let now = timestamp::to_text(OffsetDateTime::now_utc());
        insert_role(&self.writer, user_id, service, source, &now).await
    }

    async fn revoke_role(
        &self,
        username: &Username,
        service: &ServiceName,
        source: RoleSource,
    ) -> StoreResult<bool> {
        let mut transaction = begin_write(&self.writer).await?;
        let user_id = user_id(&mut *transaction, username).await?;
        let result =
            sqlx::query("DELETE FROM roles WHERE user_id = $1 AND service = $2 AND source = $3")
                .bind(user_id)
                .bind(service.as_str())
                .bind(source.as_str())
                .execute(&mut *transaction)
                .await?;
        let revoked = result.rows_affected() > 0;
        if revoked {
            let now = timestamp::to_text(OffsetDateTime::now_utc());
            note_role_ended(&mut *transaction, user_id, service, &now).await?;
        }
        transaction.commit().await?;
        Ok(revoked)
    }

    async fn replace_replicated_roles(
        &self,
        roles: &[(Username, ServiceName)],
    ) -> StoreResult<ReplicatedRoles> {
        let now = timestamp::to_text(OffsetDateTime::now_utc());
        let source = RoleSource::Replicated.as_str();
        let mut transaction = begin_write(&self.writer).await?;
        let mut outcome = ReplicatedRoles::default();
        let mut wanted = HashSet::new();
        for (username, service) in roles {
            let Some(user_id) =
                sqlx::query_scalar::<_, i64>("SELECT id FROM users WHERE username = $1")
                    .bind(username.as_str())
                    .fetch_optional(&mut *transaction)
                    .await?
            else {
                outcome.unknown_users.push(username.clone());
                continue;
            };
            wanted.insert((user_id, service.as_str()));
            let inserted = insert_role(
                &mut *transaction,
                user_id,
                service,
                RoleSource::Replicated,
                &now,
            )
            .await?;
            outcome.granted += u64::from(inserted);
        }
        let held: Vec<(i64, String)> =
            sqlx::query_as("SELECT user_id, service FROM roles WHERE source = $1")
                .bind(source)
                .fetch_all(&mut *transaction)
                .await?;
        for (user_id, service) in held {
            let service: ServiceName = transactions::parsed("roles.service", service)?;
            if !wanted.contains(&(user_id, service.as_str())) {
                sqlx::query(
                    "DELETE FROM roles WHERE user_id = $1 AND service = $2 AND source = $3",
                )
                .bind(user_id)
                .bind(service.as_str())
                .bind(source)
                .execute(&mut *transaction)
                .await?;
                note_role_ended(&mut *transaction, user_id, &service, &now).await?;
                outcome.revoked += 1;
            }
        }
        transaction.commit().await?;
        outcome.unknown_users.sort();
        outcome.unknown_users.dedup();
        Ok(outcome)
    }

    async fn roles(&self, username: &Username) -> StoreResult<Vec<ServiceName>> {
        let user_id = user_id(&self.reader, username).await?;
        let services: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT service FROM roles WHERE user_id = $1")
                .bind(user_id)
                .fetch_all(&self.reader)
                .await?;
        let mut services = services
            .into_iter()
            .map(|service| transactions::parsed("roles.service", service))
            .collect::<StoreResult<Vec<ServiceName>>>()?;
        // Sorted here rather than by ORDER BY: the database's collation would decide where
        // æ and ø go, and it differs between SQLite and PostgreSQL.
        services.sort_unstable();
        Ok(services)
    }

    async fn held_role_since(
        &self,
        username: &Username,
        service: &ServiceName,
        since: OffsetDateTime,
    ) -> StoreResult<bool> {
        let user_id = user_id(&self.reader, username).await?;
        let held: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM roles WHERE user_id = $1 AND service = $2)
                 OR EXISTS (SELECT 1 FROM roles_ended
                            WHERE user_id = $1 AND service = $2 AND ended_at >= $3)",
        )
        .bind(user_id)
        .bind(service.as_str())
        .bind(timestamp::to_text(since))
        .fetch_one(&self.reader)
        .await?;
        Ok(held)
    }
}

impl AuditLog for Backend {
    async fn append_audit(&self, events: &[AuditEvent]) -> StoreResult<()> {
        audit::append(&self.writer, events).await
    }

    async fn expire_audit(&self, before: OffsetDateTime, through_id: i64) -> StoreResult<u64> {
        audit::expire(&self.writer, before, through_id).await
    }

    async fn audit_events(&self, query: AuditQuery) -> StoreResult<Vec<(i64, AuditEvent)>> {
        audit::events(&self.reader, query).await
    }
}

impl TransactionLog for Backend {
    async fn record_transaction(&self, transaction: NewTransaction) -> StoreResult<Recorded> {
        transactions::record_transaction(&self.writer, transaction).await
    }

    async fn claim_work(
        &self,
        owner: &str,
        services: &[ServiceName],
        now: OffsetDateTime,
        lease: std::time::Duration,
        limit: u32,
    ) -> StoreResult<Vec<WorkItem>> {
        transactions::claim_work(&self.writer, owner, services, now, lease, limit).await
    }

    fn announce_work(&self) {
        announce_work(self);
    }

    fn work_announcements(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        work_announcements(self)
    }

    async fn release_claims(&self, owner: &str) -> StoreResult<u64> {
        let released = sqlx::query(
            "UPDATE work SET lease_until = NULL, lease_owner = NULL WHERE lease_owner = $1",
        )
        .bind(owner)
        .execute(&self.writer)
        .await?;
        Ok(released.rows_affected())
    }

    async fn renew_leases(
        &self,
        items: &[(i64, LeaseToken)],
        lease: std::time::Duration,
    ) -> StoreResult<u64> {
        transactions::renew_leases(&self.writer, items, lease).await
    }

    async fn postpone_work(
        &self,
        transaction_id: i64,
        lease: LeaseToken,
        attempts: u32,
        due_at: OffsetDateTime,
        error: &str,
    ) -> StoreResult<bool> {
        transactions::postpone_work(&self.writer, transaction_id, lease, attempts, due_at, error)
            .await
    }

    async fn pending_work(&self, limit: u32) -> StoreResult<Vec<WorkItem>> {
        transactions::pending_work(&self.reader, limit).await
    }

    async fn replay_work(
        &self,
        skat_transaction_id: &SkatTransactionId,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        // SQLite needs a WHERE in an INSERT … SELECT before ON CONFLICT (parsing ambiguity).
        let inserted = sqlx::query(
            "INSERT INTO work (transaction_id, due_at, created_at, replay)
             SELECT id, $1, $1, 1 FROM transactions
             WHERE skat_transaction_id = $2 AND state IN ('delivered', 'accepted', 'answered')
               AND blob_key IS NOT NULL
             ON CONFLICT (transaction_id) DO NOTHING",
        )
        .bind(timestamp::to_text(now))
        .bind(skat_transaction_id.as_str())
        .execute(&self.writer)
        .await?;
        Ok(inserted.rows_affected() > 0)
    }

    async fn complete_replay(&self, transaction_id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM work WHERE transaction_id = $1 AND replay = 1")
            .bind(transaction_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn retry_work(
        &self,
        skat_transaction_id: &SkatTransactionId,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        transactions::retry_work(&self.writer, skat_transaction_id, now).await
    }

    async fn advance(&self, steps: &[Advance]) -> StoreResult<Advanced> {
        transactions::advance(&self.writer, steps).await
    }

    async fn transaction(
        &self,
        skat_transaction_id: &SkatTransactionId,
    ) -> StoreResult<Option<Transaction>> {
        transactions::transaction(&self.reader, skat_transaction_id).await
    }

    async fn latest_mailbox(
        &self,
        username: &Username,
        service: &ServiceName,
    ) -> StoreResult<Option<Mailbox>> {
        let owner: Option<String> = sqlx::query_scalar(
            "SELECT mailboxes.owner FROM transactions
             JOIN users ON users.id = transactions.user_id
             JOIN mailboxes ON mailboxes.id = transactions.mailbox_id
             WHERE users.username = $1 AND transactions.service = $2
             ORDER BY transactions.id DESC LIMIT 1",
        )
        .bind(username.as_str())
        .bind(service.as_str())
        .fetch_optional(&self.reader)
        .await?;
        owner
            .map(|owner| {
                Mailbox::from_key(&owner)
                    .map_err(|error| StoreError::Corrupt(format!("mailboxes.owner: {error}")))
            })
            .transpose()
    }

    async fn record_outbound(&self, outbound: NewOutbound) -> StoreResult<OutboundRecorded> {
        transactions::record_outbound(&self.writer, outbound).await
    }

    async fn transactions(
        &self,
        username: Option<&Username>,
        limit: u32,
    ) -> StoreResult<Vec<Transaction>> {
        transactions::transactions(&self.reader, username, limit).await
    }

    async fn status_history(
        &self,
        transaction_id: i64,
    ) -> StoreResult<Vec<(StatusCode, OffsetDateTime)>> {
        transactions::status_history(&self.reader, transaction_id).await
    }

    async fn pending_upload_bytes(&self, username: &Username) -> StoreResult<u64> {
        transactions::pending_upload_bytes(&self.reader, username).await
    }

    async fn counts(&self) -> StoreResult<Counts> {
        let count = |rows: Vec<(String, i64)>| -> Vec<(String, u64)> {
            rows.into_iter()
                .map(|(key, n)| (key, u64::try_from(n).unwrap_or_default()))
                .collect()
        };
        let states: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM transactions GROUP BY state")
                .fetch_all(&self.reader)
                .await?;
        let work: Vec<(String, i64)> = sqlx::query_as(
            "SELECT transactions.service, COUNT(*) FROM work
             JOIN transactions ON transactions.id = work.transaction_id
             GROUP BY transactions.service",
        )
        .fetch_all(&self.reader)
        .await?;
        let work = count(work)
            .into_iter()
            .map(|(service, n)| Ok((transactions::parsed("transactions.service", service)?, n)))
            .collect::<StoreResult<_>>()?;
        Ok(Counts {
            transactions_by_state: count(states),
            work_by_service: work,
        })
    }

    async fn referenced_blobs(&self, keys: &[BlobKey]) -> StoreResult<Vec<BlobKey>> {
        transactions::referenced_blobs(&self.reader, keys).await
    }

    async fn expire(&self, before: OffsetDateTime) -> StoreResult<Expired> {
        transactions::expire(&self.writer, before).await
    }
}

impl MailboxStore for Backend {
    async fn add_out_file(
        &self,
        mailbox: &Mailbox,
        file: NewOutFile,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        transactions::add_out_file(&self.writer, mailbox, file, at).await
    }

    async fn out_files(&self, mailbox: &Mailbox) -> StoreResult<Vec<OutFileEntry>> {
        transactions::out_files(&self.reader, mailbox).await
    }

    async fn out_file(
        &self,
        mailbox: &Mailbox,
        name: &str,
    ) -> StoreResult<Option<(OutFileEntry, OutContent)>> {
        transactions::out_file(&self.reader, mailbox, name).await
    }

    async fn delete_out_file(
        &self,
        mailbox: &Mailbox,
        name: &str,
    ) -> StoreResult<Option<OutContent>> {
        transactions::delete_out_file(&self.writer, mailbox, name).await
    }
}

impl PortalStore for Backend {
    async fn portal_account(&self, username: &Username) -> StoreResult<Option<PortalAccount>> {
        portal::portal_account(&self.reader, username).await
    }

    async fn set_portal_password(
        &self,
        username: &Username,
        password_hash: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        portal::set_portal_password(&self.writer, username, password_hash, at).await
    }

    async fn set_portal_profile(
        &self,
        username: &Username,
        profile: &PortalProfile,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        portal::set_portal_profile(&self.writer, username, profile, at).await
    }

    async fn create_portal_session(&self, session: &PortalSession) -> StoreResult<()> {
        portal::create_portal_session(&self.writer, session).await
    }

    async fn portal_session(&self, token_hash: &str) -> StoreResult<Option<PortalSession>> {
        portal::portal_session(&self.reader, token_hash).await
    }

    async fn touch_portal_session(&self, token_hash: &str, at: OffsetDateTime) -> StoreResult<()> {
        portal::touch_portal_session(&self.writer, token_hash, at).await
    }

    async fn delete_portal_session(&self, token_hash: &str) -> StoreResult<()> {
        portal::delete_portal_session(&self.writer, token_hash).await
    }

    async fn delete_portal_sessions_of(
        &self,
        username: &Username,
        except_certificate: Option<&str>,
    ) -> StoreResult<u64> {
        portal::delete_portal_sessions_of(&self.writer, username, except_certificate).await
    }

    async fn set_portal_initial_code(
        &self,
        username: &Username,
        code_hash: &str,
        expires_at: OffsetDateTime,
    ) -> StoreResult<()> {
        portal::set_portal_initial_code(&self.writer, username, code_hash, expires_at).await
    }

    async fn expire_portal_sessions(&self, before: OffsetDateTime) -> StoreResult<u64> {
        portal::expire_portal_sessions(&self.writer, before).await
    }

    async fn request_registration(
        &self,
        job: NewRegistrationJob,
    ) -> StoreResult<(RegistrationJob, bool)> {
        portal::request_registration(&self.writer, job).await
    }

    async fn latest_registration(
        &self,
        cert_fingerprint: &str,
    ) -> StoreResult<Option<RegistrationJob>> {
        portal::latest_registration(&self.reader, cert_fingerprint).await
    }

    async fn queued_registrations(&self, limit: u32) -> StoreResult<Vec<QueuedRegistration>> {
        portal::queued_registrations(&self.reader, limit).await
    }

    async fn finish_registration(
        &self,
        job_id: i64,
        outcome: Result<(), String>,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        portal::finish_registration(&self.writer, job_id, outcome, at).await
    }
}

async fn fetch_user<'e>(
    executor: impl sqlx::Executor<'e, Database = Db>,
    username: &Username,
) -> StoreResult<Option<User>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE username = $1"
    ))
    .bind(username.as_str())
    .fetch_optional(executor)
    .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// The id of `mailbox`; [`StoreError::NotFound`] if it does not exist.
async fn mailbox_id<'e>(
    executor: impl sqlx::Executor<'e, Database = Db>,
    mailbox: &Mailbox,
) -> StoreResult<i64> {
    let key = mailbox.key();
    sqlx::query_scalar("SELECT id FROM mailboxes WHERE owner = $1")
        .bind(&key)
        .fetch_optional(executor)
        .await?
        .ok_or(StoreError::NotFound {
            what: "mailbox",
            key,
        })
}

async fn user_id<'e>(
    executor: impl sqlx::Executor<'e, Database = Db>,
    username: &Username,
) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
        .bind(username.as_str())
        .fetch_optional(executor)
        .await?
        .ok_or_else(|| StoreError::user_not_found(username))
}

fn user_from_row(row: &DbRow) -> StoreResult<User> {
    let username: Username = transactions::parsed("users.username", row.try_get("username")?)?;
    let state: String = row.try_get("state")?;
    let state = state
        .parse()
        .map_err(|error| StoreError::Corrupt(format!("users.state of {username}: {error}")))?;
    let activate_at: Option<String> = row.try_get("activate_at")?;
    let created_at: String = row.try_get("created_at")?;
    Ok(User {
        id: row.try_get("id")?,
        cvr: transactions::parsed_optional("users.cvr", row.try_get("cvr")?)?,
        account: transactions::parsed("users.account", row.try_get("account")?)?,
        kind: row.try_get("kind")?,
        state,
        activate_at: activate_at
            .map(|text| timestamp::from_text("users.activate_at", &text))
            .transpose()?,
        created_at: timestamp::from_text("users.created_at", &created_at)?,
        username,
    })
}

/// Records, in the caller's transaction, that `username`'s live sessions must be checked again.
async fn record_security_change(
    connection: &mut Connection,
    username: &Username,
    change: &str,
    at: &str,
) -> StoreResult<()> {
    serialize(&mut *connection, Serialized::SecurityChanges).await?;
    sqlx::query("INSERT INTO security_changes (at, username, change) VALUES ($1, $2, $3)")
        .bind(at)
        .bind(username.as_str())
        .bind(change)
        .execute(connection)
        .await?;
    Ok(())
}

/// Notes when the user stopped holding `service`, if no source grants it any more.
async fn note_role_ended<'e>(
    executor: impl sqlx::Executor<'e, Database = Db>,
    user_id: i64,
    service: &ServiceName,
    at: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO roles_ended (user_id, service, ended_at)
         SELECT $1, $2, $3
         WHERE NOT EXISTS (SELECT 1 FROM roles WHERE user_id = $1 AND service = $2)
         ON CONFLICT (user_id, service) DO UPDATE SET ended_at = excluded.ended_at",
    )
    .bind(user_id)
    .bind(service.as_str())
    .bind(at)
    .execute(executor)
    .await?;
    Ok(())
}

impl Maintenance for Backend {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn checkpoint(&self) -> StoreResult<()> {
        checkpoint(self).await
    }

    async fn key_fingerprint(&self, purpose: &str, fingerprint: &str) -> StoreResult<String> {
        let mut transaction = begin_write(&self.writer).await?;
        sqlx::query(
            "INSERT INTO key_fingerprints (purpose, fingerprint, recorded_at) VALUES ($1, $2, $3)
             ON CONFLICT (purpose) DO NOTHING",
        )
        .bind(purpose)
        .bind(fingerprint)
        .bind(timestamp::to_text(OffsetDateTime::now_utc()))
        .execute(&mut *transaction)
        .await?;
        let recorded: String =
            sqlx::query_scalar("SELECT fingerprint FROM key_fingerprints WHERE purpose = $1")
                .bind(purpose)
                .fetch_one(&mut *transaction)
                .await?;
        transaction.commit().await?;
        Ok(recorded)
    }

    async fn lead_job(
        &self,
        job: &str,
        node: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<bool> {
        let led: Option<String> = sqlx::query_scalar(
            "INSERT INTO job_leads (job, node, lead_until) VALUES ($1, $2, $4)
             ON CONFLICT (job) DO UPDATE
                 SET node = excluded.node, lead_until = excluded.lead_until
             WHERE job_leads.node = excluded.node OR job_leads.lead_until <= $3
             RETURNING node",
        )
        .bind(job)
        .bind(node)
        .bind(timestamp::to_text(now))
        .bind(timestamp::to_text(until))
        .fetch_optional(&self.writer)
        .await?;
        Ok(led.is_some())
    }
}
