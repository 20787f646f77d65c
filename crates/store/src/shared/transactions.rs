//! Transactions, their work and `/out` in SQLite. The trait documentation in the crate root
//! says what each operation promises; this module says how.

use std::collections::{HashMap, HashSet};

use mftgw_domain::status::{StatusCode, StatusFile};
use mftgw_domain::{
    BlobKey, Mailbox, ServiceName, SkatTransactionId, Transaction, TransactionState, TransferMode,
    Username,
};
use sqlx::Row;
use time::OffsetDateTime;

use super::{
    CLAIM_LOCKING, DATABASE_NOW, Db, DbRow, OUT_LISTING, Pool, ROW_LOCKING, begin_write,
    mailbox_id, serialize, user_id,
};
use crate::plan::{Serialized, last_of_each, transition_runs};
use crate::{
    Advance, Advanced, Expired, LeaseToken, NewOutFile, NewOutbound, NewTransaction, OutContent,
    OutFileEntry, OutboundRecorded, Recorded, StoreError, StoreResult, WorkItem, timestamp,
};

/// The columns [`transaction_from_row`] reads.
macro_rules! transaction_columns {
    () => {
        "transactions.id, transactions.skat_transaction_id, users.username, users.cvr,
         users.account, transactions.service,
         transactions.ftp_transaction_id, transactions.upload_path, transactions.size,
         transactions.sha256, transactions.transfer_type, transactions.blob_key,
         transactions.state, transactions.received_at,
         (SELECT owner FROM mailboxes WHERE mailboxes.id = transactions.mailbox_id)
             AS mailbox_owner"
    };
}

pub(super) async fn record_transaction(pool: &Pool, new: NewTransaction) -> StoreResult<Recorded> {
    let received_at = timestamp::to_text(new.received_at);
    let state = match new.rejection {
        Some(_) => TransactionState::Rejected,
        None => TransactionState::Received,
    };
    let mut transaction = begin_write(pool).await?;
    // One statement for the user and the mailbox: every statement of an upload's commit is
    // a hand-off to the connection's thread.
    let mailbox_key = new.mailbox.key();
    let (user_id, cvr, account, mailbox_id): (i64, Option<String>, String, Option<i64>) =
        sqlx::query_as(
            "SELECT id, cvr, account, (SELECT id FROM mailboxes WHERE owner = $2)
             FROM users WHERE username = $1",
        )
        .bind(new.username.as_str())
        .bind(&mailbox_key)
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or_else(|| StoreError::user_not_found(&new.username))?;
    let mailbox_id = mailbox_id.ok_or(StoreError::NotFound {
        what: "mailbox",
        key: mailbox_key,
    })?;
    serialize(
        &mut transaction,
        Serialized::Uploads {
            user_id,
            service: new.service.as_str(),
        },
    )
    .await?;
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO transactions
             (skat_transaction_id, user_id, service, ftp_transaction_id, upload_path, size,
              sha256, transfer_type, blob_key, state, received_at, mailbox_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (user_id, ftp_transaction_id) DO NOTHING
         RETURNING id",
    )
    .bind(new.skat_transaction_id.as_str())
    .bind(user_id)
    .bind(new.service.as_str())
    .bind(new.ftp_transaction_id.as_str())
    .bind(&new.upload_path)
    .bind(size_to_db(new.size)?)
    .bind(new.sha256.as_str())
    .bind(new.transfer_type.to_string())
    .bind(new.blob_key.as_str())
    .bind(state.as_str())
    .bind(&received_at)
    .bind(mailbox_id)
    .fetch_optional(&mut *transaction)
    .await?;
    let Some(id) = id else {
        return Ok(Recorded::NameReused);
    };
    match &new.rejection {
        None => {
            sqlx::query(
                "INSERT INTO work (transaction_id, due_at, created_at, user_id, size)
                 VALUES ($1, $2, $2, $3, $4)",
            )
            .bind(id)
            .bind(&received_at)
            .bind(user_id)
            .bind(size_to_db(new.size)?)
            .execute(&mut *transaction)
            .await?;
        }
        Some(files) => {
            record_statuses(
                &mut transaction,
                &[(id, StatusCode::Error, received_at.clone())],
            )
            .await?;
            // A fresh transaction's status_0 can only replace the status_0 of an earlier
            // reuse of its name, which is inline.
            let files = files
                .iter()
                .map(|file| (mailbox_id, file, received_at.clone()))
                .collect();
            replace_out_files(&mut transaction, files).await?;
        }
    }
    // Everything that can fail runs before the commit: once it is committed, the caller
    // must be told it was.
    let created = Transaction {
        id,
        skat_transaction_id: new.skat_transaction_id,
        username: new.username,
        mailbox: new.mailbox,
        cvr: parsed_optional("users.cvr", cvr)?,
        account: parsed("users.account", account)?,
        service: new.service,
        ftp_transaction_id: new.ftp_transaction_id,
        upload_path: new.upload_path,
        size: new.size,
        sha256: new.sha256,
        transfer_type: new.transfer_type,
        blob_key: Some(new.blob_key),
        state,
        received_at: timestamp::from_text("transactions.received_at", &received_at)?,
    };
    transaction.commit().await?;
    Ok(Recorded::Created(Box::new(created)))
}

/// The columns [`work_item_from_row`] reads besides the transaction's.
macro_rules! work_columns {
    () => {
        ", work.attempts, work.due_at, work.last_error, work.replay, work.lease_token"
    };
}

/// The database's time, as stored text: what leases start from and run out by, whichever
/// node asks.
async fn database_now(transaction: &mut sqlx::Transaction<'_, Db>) -> StoreResult<String> {
    let (now,): (String,) = sqlx::query_as(DATABASE_NOW)
        .fetch_one(&mut **transaction)
        .await?;
    Ok(now)
}

/// The stored text of `lease` after the database's time `now`.
fn lease_end(now: &str, lease: std::time::Duration) -> StoreResult<String> {
    let lease = time::Duration::try_from(lease)
        .map_err(|_| StoreError::Corrupt(format!("a lease of {lease:?}")))?;
    Ok(timestamp::to_text(
        timestamp::from_text("database time", now)? + lease,
    ))
}

pub(super) async fn claim_work(
    pool: &Pool,
    owner: &str,
    services: &[ServiceName],
    now: OffsetDateTime,
    lease: std::time::Duration,
    limit: u32,
) -> StoreResult<Vec<WorkItem>> {
    if services.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..services.len())
        .map(|index| format!("${}", index + 4))
        .collect();
    // A (user, service) is held back from its first upload that waits for a retry, or that
    // someone else holds a lease on: that group's earliest such work, found once per query
    // (a correlated NOT EXISTS per row made the query quadratic in the backlog, which is
    // exactly when it runs most). `CROSS JOIN` makes SQLite start from the outbox (small)
    // rather than scan every transaction ever received; PostgreSQL plans it like any inner
    // join.
    let sql = format!(
        concat!(
            "WITH held_back AS (
                SELECT waiting.user_id, waiting.service, MIN(earlier.id) AS from_work_id
                FROM work AS earlier CROSS JOIN transactions AS waiting
                WHERE waiting.id = earlier.transaction_id
                  AND (earlier.due_at > $1 OR earlier.lease_until > $3)
                  AND waiting.state = 'received'
                GROUP BY waiting.user_id, waiting.service)
             SELECT ",
            transaction_columns!(),
            work_columns!(),
            " FROM work
              JOIN transactions ON transactions.id = work.transaction_id
              JOIN users ON users.id = transactions.user_id
              LEFT JOIN held_back ON held_back.user_id = transactions.user_id
                                 AND held_back.service = transactions.service
              WHERE work.due_at <= $1 AND transactions.service IN ({})
                AND (work.lease_until IS NULL OR work.lease_until <= $3)
                AND (held_back.from_work_id IS NULL OR work.id < held_back.from_work_id)
              ORDER BY work.id
              LIMIT $2{}"
        ),
        placeholders.join(", "),
        CLAIM_LOCKING,
    );
    // Read and claim in one write transaction, so that no other claim comes between.
    let mut transaction = begin_write(pool).await?;
    serialize(&mut transaction, Serialized::Claims).await?;
    let database_now = database_now(&mut transaction).await?;
    let lease_until = lease_end(&database_now, lease)?;
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(timestamp::to_text(now))
        .bind(i64::from(limit))
        .bind(&database_now);
    for service in services {
        query = query.bind(service.as_str());
    }
    let rows = query.fetch_all(&mut *transaction).await?;
    let mut items = rows
        .iter()
        .map(work_item_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    for chunk in items.chunks_mut(ROWS_PER_STATEMENT) {
        let ids: Vec<String> = chunk
            .iter()
            .map(|item| item.transaction.id.to_string())
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE work SET lease_until = $1, lease_owner = $2, lease_token = lease_token + 1
             WHERE transaction_id IN ({})",
            ids.join(", ")
        )))
        .bind(&lease_until)
        .bind(owner)
        .execute(&mut *transaction)
        .await?;
        for item in chunk {
            item.lease = LeaseToken(item.lease.0 + 1);
        }
    }
    transaction.commit().await?;
    Ok(items)
}

pub(super) async fn renew_leases(
    pool: &Pool,
    items: &[(i64, LeaseToken)],
    lease: std::time::Duration,
) -> StoreResult<u64> {
    let mut transaction = begin_write(pool).await?;
    let lease_until = lease_end(&database_now(&mut transaction).await?, lease)?;
    let mut renewed = 0;
    // A statement per few hundred claims: the worker renews a whole batch at once.
    for chunk in items.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "UPDATE work SET lease_until = ${}
             WHERE transaction_id IN (SELECT transaction_id FROM work
                 WHERE (transaction_id, lease_token) IN (VALUES {}){ROW_LOCKING})",
            chunk.len() * 2 + 1,
            value_tuples(chunk.len(), 2)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
        for &(transaction_id, lease) in chunk {
            query = query.bind(transaction_id).bind(lease.0);
        }
        renewed += query
            .bind(&lease_until)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
    }
    transaction.commit().await?;
    Ok(renewed)
}

pub(super) async fn postpone_work(
    pool: &Pool,
    transaction_id: i64,
    lease: LeaseToken,
    attempts: u32,
    due_at: OffsetDateTime,
    error: &str,
) -> StoreResult<bool> {
    let mut transaction = begin_write(pool).await?;
    serialize(&mut transaction, Serialized::Claims).await?;
    let updated = sqlx::query(
        "UPDATE work SET attempts = $1, due_at = $2, last_error = $3, last_attempt_at = $4,
                         lease_until = NULL, lease_owner = NULL
         WHERE transaction_id = $5 AND lease_token = $6",
    )
    .bind(i64::from(attempts))
    .bind(timestamp::to_text(due_at))
    .bind(error)
    .bind(timestamp::to_text(OffsetDateTime::now_utc()))
    .bind(transaction_id)
    .bind(lease.0)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(updated.rows_affected() > 0)
}

pub(super) async fn pending_work(pool: &Pool, limit: u32) -> StoreResult<Vec<WorkItem>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        transaction_columns!(),
        work_columns!(),
        " FROM work
          JOIN transactions ON transactions.id = work.transaction_id
          JOIN users ON users.id = transactions.user_id
          ORDER BY work.id
          LIMIT $1"
    ))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(work_item_from_row).collect()
}

pub(super) async fn retry_work(
    pool: &Pool,
    skat_transaction_id: &SkatTransactionId,
    now: OffsetDateTime,
) -> StoreResult<bool> {
    let updated = sqlx::query(
        "UPDATE work SET due_at = $1
         WHERE transaction_id = (SELECT id FROM transactions WHERE skat_transaction_id = $2)",
    )
    .bind(timestamp::to_text(now))
    .bind(skat_transaction_id.as_str())
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() > 0)
}

fn work_item_from_row(row: &DbRow) -> StoreResult<WorkItem> {
    let attempts: i64 = row.try_get("attempts")?;
    let due_at: String = row.try_get("due_at")?;
    Ok(WorkItem {
        transaction: transaction_from_row(row)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("work.attempts {attempts}")))?,
        due_at: timestamp::from_text("work.due_at", &due_at)?,
        last_error: row.try_get("last_error")?,
        replay: row.try_get::<i64, _>("replay")? != 0,
        lease: LeaseToken(row.try_get("lease_token")?),
    })
}

/// Applies `steps` in one commit, in order. The state changes go in runs of steps with the
/// same transition and distinct transactions, one conditional `UPDATE` per run (so a step
/// may build on an earlier one); what the applied steps add (history, `/out` files, the end
/// of their work) is then written a few hundred rows per statement. Under load every
/// statement costs a hand-off to the connection's thread, and the delivery worker's batches
/// of hundreds of steps took about a millisecond per step when each row was a statement.
pub(super) async fn advance(pool: &Pool, steps: &[Advance]) -> StoreResult<Advanced> {
    let mut transaction = begin_write(pool).await?;
    let stale = stale_claims(&mut transaction, steps).await?;
    // Per step, the mailbox of its transaction if the step moved it.
    let mut owners: Vec<Option<i64>> = Vec::with_capacity(steps.len());
    for run in transition_runs(steps, ROWS_PER_STATEMENT) {
        owners.extend(change_states(&mut transaction, &steps[run], &stale).await?);
    }
    let mut statuses = Vec::new();
    let mut files = Vec::new();
    let mut finished = Vec::new();
    for (step, owner) in steps.iter().zip(&owners) {
        let Some(mailbox_id) = *owner else {
            continue;
        };
        let at = timestamp::to_text(step.at);
        statuses.push((step.transaction_id, step.status, at.clone()));
        files.extend(step.files.iter().map(|file| (mailbox_id, file, at.clone())));
        if step.finishes_work {
            finished.push(step.transaction_id);
        }
    }
    record_statuses(&mut transaction, &statuses).await?;
    let replaced_blobs = replace_out_files(&mut transaction, files).await?;
    finish_work(&mut transaction, &finished).await?;
    transaction.commit().await?;
    Ok(Advanced {
        applied: owners.iter().map(Option::is_some).collect(),
        replaced_blobs,
        refused_stale: steps
            .iter()
            .filter(|step| stale.contains(&step.transaction_id))
            .count(),
    })
}

/// The transactions of `steps` taken under a claim that is no longer current: another
/// claim replaced it, its lease ran out by the database's clock, or its work is gone. Their
/// steps are refused. The current claims stay locked until the commit, so none of them runs
/// out in between.
async fn stale_claims(
    transaction: &mut sqlx::Transaction<'_, Db>,
    steps: &[Advance],
) -> StoreResult<HashSet<i64>> {
    let mut claimed: Vec<(i64, LeaseToken)> = steps
        .iter()
        .filter_map(|step| Some((step.transaction_id, step.lease?)))
        .collect();
    claimed.sort_unstable();
    claimed.dedup();
    if claimed.is_empty() {
        return Ok(HashSet::new());
    }
    let mut current = HashSet::with_capacity(claimed.len());
    for chunk in claimed.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "SELECT transaction_id, lease_token FROM work
             WHERE (transaction_id, lease_token) IN (VALUES {})
               AND lease_until > ({DATABASE_NOW}){ROW_LOCKING}",
            value_tuples(chunk.len(), 2)
        );
        let mut query = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(sql)).persistent(false);
        for &(transaction_id, lease) in chunk {
            query = query.bind(transaction_id).bind(lease.0);
        }
        current.extend(query.fetch_all(&mut **transaction).await?);
    }
    Ok(claimed
        .into_iter()
        .filter(|&(transaction_id, lease)| !current.contains(&(transaction_id, lease.0)))
        .map(|(transaction_id, _)| transaction_id)
        .collect())
}

/// Moves the transactions of `run` (one transition, distinct transactions) from its `from`
/// to its `to` state where they are still in `from`, except those whose claim is `stale`;
/// per step, its mailbox if it moved.
async fn change_states(
    transaction: &mut sqlx::Transaction<'_, Db>,
    run: &[Advance],
    stale: &HashSet<i64>,
) -> StoreResult<Vec<Option<i64>>> {
    let admitted: Vec<&Advance> = run
        .iter()
        .filter(|step| !stale.contains(&step.transaction_id))
        .collect();
    if admitted.is_empty() {
        return Ok(vec![None; run.len()]);
    }
    let ids: Vec<String> = (3..admitted.len() + 3).map(|n| format!("${n}")).collect();
    let sql = format!(
        "UPDATE transactions SET state = $1 WHERE state = $2 AND id IN ({})
         RETURNING id, mailbox_id",
        ids.join(", ")
    );
    let mut query = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(sql))
        .persistent(false)
        .bind(run[0].to.as_str())
        .bind(run[0].from.as_str());
    for step in admitted {
        query = query.bind(step.transaction_id);
    }
    let moved: HashMap<i64, i64> = query
        .fetch_all(&mut **transaction)
        .await?
        .into_iter()
        .collect();
    Ok(run
        .iter()
        .map(|step| moved.get(&step.transaction_id).copied())
        .collect())
}

/// Rows per multi-row statement: far below SQLite's 32,766 parameters.
const ROWS_PER_STATEMENT: usize = 200;

/// `($first, $first+1, …), (…), …`: `rows` tuples of `columns` numbered parameters.
fn value_tuples(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let parameters: Vec<String> = (1..=columns)
                .map(|column| format!("${}", row * columns + column))
                .collect();
            format!("({})", parameters.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn record_statuses(
    transaction: &mut sqlx::Transaction<'_, Db>,
    statuses: &[(i64, StatusCode, String)],
) -> StoreResult<()> {
    for chunk in statuses.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO status_history (transaction_id, status_code, at) VALUES {}",
            value_tuples(chunk.len(), 3)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
        for (transaction_id, status, at) in chunk {
            query = query
                .bind(*transaction_id)
                .bind(status.digit().to_string())
                .bind(at);
        }
        query.execute(&mut **transaction).await?;
    }
    Ok(())
}

/// Puts files in `/out`, each replacing one of the same name (a later status_0 replaces an
/// earlier one: a reused name, then a rejection), in the order given; returns the blob keys
/// of the files replaced, for the caller to delete.
async fn replace_out_files(
    transaction: &mut sqlx::Transaction<'_, Db>,
    files: Vec<(i64, &NewOutFile, String)>,
) -> StoreResult<Vec<BlobKey>> {
    let (latest, superseded) =
        last_of_each(files, |(mailbox_id, file, _)| (*mailbox_id, &file.name));
    let mut replaced: Vec<BlobKey> = superseded
        .into_iter()
        .filter_map(|(_, file, _)| match &file.content {
            OutContent::Blob { key, .. } => Some(key.clone()),
            OutContent::Inline(_) => None,
        })
        .collect();
    let mut mailboxes: Vec<i64> = latest.iter().map(|(mailbox_id, ..)| *mailbox_id).collect();
    mailboxes.sort_unstable();
    mailboxes.dedup();
    for mailbox_id in mailboxes {
        serialize(&mut *transaction, Serialized::Mailbox(mailbox_id)).await?;
    }
    for chunk in latest.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "DELETE FROM out_files WHERE (mailbox_id, name) IN (VALUES {}) RETURNING blob_key",
            value_tuples(chunk.len(), 2)
        );
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).persistent(false);
        for (mailbox_id, file, _) in chunk {
            query = query.bind(*mailbox_id).bind(&file.name);
        }
        let blob_keys: Vec<Option<String>> = query.fetch_all(&mut **transaction).await?;
        replaced.extend(parsed_all(
            "out_files.blob_key",
            blob_keys.into_iter().flatten(),
        )?);

        let sql = format!(
            "INSERT INTO out_files (mailbox_id, name, size, content, blob_key, created_at) VALUES {}",
            value_tuples(chunk.len(), 6)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
        for (mailbox_id, file, at) in chunk {
            let (content, blob_key) = content_columns(&file.content);
            query = query
                .bind(*mailbox_id)
                .bind(&file.name)
                .bind(size_to_db(file.content.size())?)
                .bind(content)
                .bind(blob_key)
                .bind(at);
        }
        query.execute(&mut **transaction).await?;
    }
    Ok(replaced)
}

/// Ends the work of finished transactions (a replay's work is ended by the replay).
async fn finish_work(
    transaction: &mut sqlx::Transaction<'_, Db>,
    transaction_ids: &[i64],
) -> StoreResult<()> {
    for chunk in transaction_ids.chunks(ROWS_PER_STATEMENT) {
        let parameters: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "DELETE FROM work WHERE replay = 0 AND transaction_id IN ({})",
            parameters.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
        for transaction_id in chunk {
            query = query.bind(*transaction_id);
        }
        query.execute(&mut **transaction).await?;
    }
    Ok(())
}

fn content_columns(content: &OutContent) -> (Option<&[u8]>, Option<&str>) {
    match content {
        OutContent::Inline(bytes) => (Some(bytes.as_slice()), None),
        OutContent::Blob { key, .. } => (None, Some(key.as_str())),
    }
}

pub(super) async fn transaction(
    pool: &Pool,
    skat_transaction_id: &SkatTransactionId,
) -> StoreResult<Option<Transaction>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        transaction_columns!(),
        " FROM transactions JOIN users ON users.id = transactions.user_id
          WHERE transactions.skat_transaction_id = $1"
    ))
    .bind(skat_transaction_id.as_str())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(transaction_from_row).transpose()
}

pub(super) async fn record_outbound(
    pool: &Pool,
    outbound: NewOutbound,
) -> StoreResult<OutboundRecorded> {
    let at = timestamp::to_text(outbound.at);
    let mut transaction = begin_write(pool).await?;
    let user_id = user_id(&mut *transaction, &outbound.username).await?;
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO outbound_files
             (user_id, service, name, sha256, skat_transaction_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (user_id, service, name) DO NOTHING
         RETURNING id",
    )
    .bind(user_id)
    .bind(outbound.service.as_str())
    .bind(&outbound.name)
    .bind(outbound.sha256.as_str())
    .bind(outbound.skat_transaction_id.as_str())
    .bind(&at)
    .fetch_optional(&mut *transaction)
    .await?;
    let Some(seq) = inserted else {
        let (seq, sha256, skat_transaction_id): (i64, String, String) = sqlx::query_as(
            "SELECT id, sha256, skat_transaction_id FROM outbound_files
             WHERE user_id = $1 AND service = $2 AND name = $3",
        )
        .bind(user_id)
        .bind(outbound.service.as_str())
        .bind(&outbound.name)
        .fetch_one(&mut *transaction)
        .await?;
        if outbound.sha256 != sha256.as_str() {
            return Err(StoreError::Conflict(format!(
                "{} was posted for {} before with other content",
                outbound.name, outbound.username
            )));
        }
        return Ok(OutboundRecorded {
            seq,
            created: false,
            skat_transaction_id: parsed("outbound_files.skat_transaction_id", skat_transaction_id)?,
            replaced_blobs: Vec::new(),
        });
    };
    let status_file = NewOutFile {
        name: StatusFile::outbound_file_name(outbound.mailbox.profile(), &outbound.service, seq),
        content: OutContent::Inline(outbound.status_xml),
    };
    let mailbox_id = mailbox_id(&mut *transaction, &outbound.mailbox).await?;
    let replaced_blobs = replace_out_files(
        &mut transaction,
        vec![
            (mailbox_id, &outbound.file, at.clone()),
            (mailbox_id, &status_file, at),
        ],
    )
    .await?;
    transaction.commit().await?;
    Ok(OutboundRecorded {
        seq,
        created: true,
        skat_transaction_id: outbound.skat_transaction_id,
        replaced_blobs,
    })
}

pub(super) async fn transactions(
    pool: &Pool,
    username: Option<&Username>,
    limit: u32,
) -> StoreResult<Vec<Transaction>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        transaction_columns!(),
        " FROM transactions JOIN users ON users.id = transactions.user_id
          WHERE ($1 IS NULL OR users.username = $1)
          ORDER BY transactions.id DESC
          LIMIT $2"
    ))
    .bind(username.map(|username| username.as_str()))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(transaction_from_row).collect()
}

pub(super) async fn status_history(
    pool: &Pool,
    transaction_id: i64,
) -> StoreResult<Vec<(StatusCode, OffsetDateTime)>> {
    let rows = sqlx::query(
        "SELECT status_code, at FROM status_history WHERE transaction_id = $1 ORDER BY id",
    )
    .bind(transaction_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let code: String = row.try_get("status_code")?;
            let at: String = row.try_get("at")?;
            let code = code
                .chars()
                .next()
                .and_then(StatusCode::from_digit)
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("status_history.status_code {code:?}"))
                })?;
            Ok((code, timestamp::from_text("status_history.at", &at)?))
        })
        .collect()
}

pub(super) async fn add_out_file(
    pool: &Pool,
    mailbox: &Mailbox,
    file: NewOutFile,
    at: OffsetDateTime,
) -> StoreResult<bool> {
    let mut transaction = begin_write(pool).await?;
    let mailbox_id = mailbox_id(&mut *transaction, mailbox).await?;
    serialize(&mut transaction, Serialized::Mailbox(mailbox_id)).await?;
    let (content, blob_key) = content_columns(&file.content);
    let inserted = sqlx::query(
        "INSERT INTO out_files (mailbox_id, name, size, content, blob_key, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (mailbox_id, name) DO NOTHING",
    )
    .bind(mailbox_id)
    .bind(&file.name)
    .bind(size_to_db(file.content.size())?)
    .bind(content)
    .bind(blob_key)
    .bind(timestamp::to_text(at))
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(inserted.rows_affected() > 0)
}

pub(super) async fn pending_upload_bytes(pool: &Pool, username: &Username) -> StoreResult<u64> {
    let user_id = user_id(pool, username).await?;
    let bytes: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM work WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await?;
    Ok(u64::try_from(bytes).unwrap_or_default())
}

/// The files of `mailbox`, in the order they appeared ([`super::OUT_LISTING`]).
pub(super) async fn out_files(pool: &Pool, mailbox: &Mailbox) -> StoreResult<Vec<OutFileEntry>> {
    let mailbox_id = mailbox_id(pool, mailbox).await?;
    let listing: String = sqlx::query_scalar(OUT_LISTING)
        .bind(mailbox_id)
        .fetch_one(pool)
        .await?;
    let mut entries: Vec<(i64, String, i64, String)> = serde_json::from_str(&listing)
        .map_err(|error| StoreError::Corrupt(format!("out_files listing: {error}")))?;
    entries.sort_unstable_by_key(|(id, ..)| *id);
    entries
        .into_iter()
        .map(|(_, name, size, created_at)| {
            Ok(OutFileEntry {
                name,
                size: size_from_db("out_files.size", size)?,
                created_at: timestamp::from_text("out_files.created_at", &created_at)?,
            })
        })
        .collect()
}

pub(super) async fn out_file(
    pool: &Pool,
    mailbox: &Mailbox,
    name: &str,
) -> StoreResult<Option<(OutFileEntry, OutContent)>> {
    let mailbox_id = mailbox_id(pool, mailbox).await?;
    let row = sqlx::query(
        "SELECT name, size, created_at, content, blob_key FROM out_files
         WHERE mailbox_id = $1 AND name = $2",
    )
    .bind(mailbox_id)
    .bind(name)
    .fetch_optional(pool)
    .await?;
    row.map(|row| Ok((out_file_entry_from_row(&row)?, out_content_from_row(&row)?)))
        .transpose()
}

pub(super) async fn delete_out_file(
    pool: &Pool,
    mailbox: &Mailbox,
    name: &str,
) -> StoreResult<Option<OutContent>> {
    let mailbox_id = mailbox_id(pool, mailbox).await?;
    let row = sqlx::query(
        "DELETE FROM out_files WHERE mailbox_id = $1 AND name = $2
         RETURNING size, content, blob_key",
    )
    .bind(mailbox_id)
    .bind(name)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(out_content_from_row).transpose()
}

pub(super) async fn referenced_blobs(pool: &Pool, keys: &[BlobKey]) -> StoreResult<Vec<BlobKey>> {
    let mut referenced = Vec::new();
    // SQLite allows 32,766 parameters per statement; stay well below.
    for chunk in keys.chunks(500) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
        let list = placeholders.join(", ");
        let sql = format!(
            "SELECT blob_key FROM transactions WHERE blob_key IN ({list})
             UNION SELECT blob_key FROM out_files WHERE blob_key IN ({list})"
        );
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
        for key in chunk {
            query = query.bind(key.as_str());
        }
        let found: Vec<String> = query.fetch_all(pool).await?;
        referenced.extend(parsed_all("blob_key", found)?);
    }
    Ok(referenced)
}

pub(super) async fn expire(pool: &Pool, before: OffsetDateTime) -> StoreResult<Expired> {
    let before = timestamp::to_text(before);
    let mut transaction = begin_write(pool).await?;
    let out_blobs: Vec<Option<String>> =
        sqlx::query_scalar("DELETE FROM out_files WHERE created_at < $1 RETURNING blob_key")
            .bind(&before)
            .fetch_all(&mut *transaction)
            .await?;
    let upload_blobs: Vec<String> = sqlx::query_scalar(
        "SELECT blob_key FROM transactions
         WHERE received_at < $1 AND blob_key IS NOT NULL AND state IN ('answered', 'rejected')
           AND id NOT IN (SELECT transaction_id FROM work)",
    )
    .bind(&before)
    .fetch_all(&mut *transaction)
    .await?;
    sqlx::query(
        "UPDATE transactions SET blob_key = NULL
         WHERE received_at < $1 AND blob_key IS NOT NULL AND state IN ('answered', 'rejected')
           AND id NOT IN (SELECT transaction_id FROM work)",
    )
    .bind(&before)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    let out_files = out_blobs.len() as u64;
    let blob_keys = parsed_all(
        "blob_key",
        out_blobs.into_iter().flatten().chain(upload_blobs),
    )?;
    Ok(Expired {
        out_files,
        blob_keys,
    })
}

fn size_to_db(size: u64) -> StoreResult<i64> {
    i64::try_from(size).map_err(|_| StoreError::Conflict(format!("size {size} is too large")))
}

fn size_from_db(column: &str, size: i64) -> StoreResult<u64> {
    u64::try_from(size).map_err(|_| StoreError::Corrupt(format!("{column}: negative size {size}")))
}

/// `text` from `column` as the identifier it holds.
pub(super) fn parsed<T: std::str::FromStr<Err = mftgw_domain::InvalidId>>(
    column: &str,
    text: String,
) -> StoreResult<T> {
    text.parse()
        .map_err(|error| StoreError::Corrupt(format!("{column}: {error}")))
}

/// The text from a nullable `column` as the identifier it holds, if any.
pub(super) fn parsed_optional<T: std::str::FromStr<Err = mftgw_domain::InvalidId>>(
    column: &str,
    text: Option<String>,
) -> StoreResult<Option<T>> {
    text.map(|text| parsed(column, text)).transpose()
}

/// Every text from `column` as the identifier it holds.
fn parsed_all<T: std::str::FromStr<Err = mftgw_domain::InvalidId>>(
    column: &str,
    texts: impl IntoIterator<Item = String>,
) -> StoreResult<Vec<T>> {
    texts.into_iter().map(|text| parsed(column, text)).collect()
}

fn transaction_from_row(row: &DbRow) -> StoreResult<Transaction> {
    let id: i64 = row.try_get("id")?;
    let state: String = row.try_get("state")?;
    let transfer_type: String = row.try_get("transfer_type")?;
    let received_at: String = row.try_get("received_at")?;
    Ok(Transaction {
        id,
        skat_transaction_id: parsed(
            "transactions.skat_transaction_id",
            row.try_get("skat_transaction_id")?,
        )?,
        username: parsed("users.username", row.try_get("username")?)?,
        mailbox: Mailbox::from_key(row.try_get::<&str, _>("mailbox_owner")?)
            .map_err(|error| StoreError::Corrupt(format!("mailboxes.owner: {error}")))?,
        cvr: parsed_optional("users.cvr", row.try_get("cvr")?)?,
        account: parsed("users.account", row.try_get("account")?)?,
        service: parsed("transactions.service", row.try_get("service")?)?,
        ftp_transaction_id: parsed(
            "transactions.ftp_transaction_id",
            row.try_get("ftp_transaction_id")?,
        )?,
        upload_path: row.try_get("upload_path")?,
        size: size_from_db("transactions.size", row.try_get("size")?)?,
        sha256: parsed("transactions.sha256", row.try_get("sha256")?)?,
        transfer_type: transfer_type
            .chars()
            .next()
            .and_then(TransferMode::from_char)
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "transactions.transfer_type of {id}: {transfer_type:?}"
                ))
            })?,
        blob_key: row
            .try_get::<Option<String>, _>("blob_key")?
            .map(|key| parsed("transactions.blob_key", key))
            .transpose()?,
        state: state
            .parse()
            .map_err(|error| StoreError::Corrupt(format!("transactions.state of {id}: {error}")))?,
        received_at: timestamp::from_text("transactions.received_at", &received_at)?,
    })
}

fn out_file_entry_from_row(row: &DbRow) -> StoreResult<OutFileEntry> {
    let created_at: String = row.try_get("created_at")?;
    Ok(OutFileEntry {
        name: row.try_get("name")?,
        size: size_from_db("out_files.size", row.try_get("size")?)?,
        created_at: timestamp::from_text("out_files.created_at", &created_at)?,
    })
}

fn out_content_from_row(row: &DbRow) -> StoreResult<OutContent> {
    let content: Option<Vec<u8>> = row.try_get("content")?;
    let blob_key: Option<String> = row.try_get("blob_key")?;
    match (content, blob_key) {
        (Some(bytes), None) => Ok(OutContent::Inline(bytes)),
        (None, Some(key)) => Ok(OutContent::Blob {
            key: parsed("out_files.blob_key", key)?,
            size: size_from_db("out_files.size", row.try_get("size")?)?,
        }),
        _ => Err(StoreError::Corrupt(
            "an out_files row has both or neither of content and blob_key".into(),
        )),
    }
}
