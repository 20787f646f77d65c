//! Copying an embedded installation's SQLite store into PostgreSQL (`mftgw migrate`): every
//! table, row by row with its ids, in an order that keeps the references whole. A row the
//! target holds already is left as it is, so a copy stopped halfway runs again to its end;
//! each table's counts are compared afterwards.

use sqlx::Row;

use crate::{PostgresStore, SqliteStore, StoreError, StoreResult};

/// How a column is read from SQLite and written to PostgreSQL.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Integer,
    Text,
    Bytes,
    /// An integer 0 or 1 in SQLite, a boolean in PostgreSQL.
    Boolean,
}

use Kind::{Boolean, Bytes, Integer, Text};

/// The tables of the schema in an order that keeps references whole, with their columns.
/// `audit_retention` is not among them: its one row is moved forward, never inserted.
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    (
        "users",
        &[
            ("id", Integer),
            ("username", Text),
            ("cvr", Text),
            ("account", Text),
            ("kind", Text),
            ("state", Text),
            ("password_hash", Text),
            ("activate_at", Text),
            ("created_at", Text),
            ("password_sealed", Text),
        ],
    ),
    (
        "certificates",
        &[
            ("fingerprint", Text),
            ("user_id", Integer),
            ("subject", Text),
            ("serial_hex", Text),
            ("not_after", Text),
            ("der", Bytes),
            ("registered_at", Text),
            ("replaced_at", Text),
        ],
    ),
    (
        "roles",
        &[
            ("user_id", Integer),
            ("service", Text),
            ("source", Text),
            ("granted_at", Text),
        ],
    ),
    (
        "roles_ended",
        &[("user_id", Integer), ("service", Text), ("ended_at", Text)],
    ),
    (
        "security_changes",
        &[
            ("id", Integer),
            ("at", Text),
            ("username", Text),
            ("change", Text),
        ],
    ),
    (
        "audit_log",
        &[
            ("id", Integer),
            ("at", Text),
            ("action", Text),
            ("outcome", Text),
            ("reason", Text),
            ("username", Text),
            ("peer_ip", Text),
            ("cert_fingerprint", Text),
            ("detail", Text),
            ("node", Text),
        ],
    ),
    ("mailboxes", &[("id", Integer), ("owner", Text)]),
    (
        "transactions",
        &[
            ("id", Integer),
            ("skat_transaction_id", Text),
            ("user_id", Integer),
            ("service", Text),
            ("ftp_transaction_id", Text),
            ("upload_path", Text),
            ("size", Integer),
            ("sha256", Text),
            ("transfer_type", Text),
            ("blob_key", Text),
            ("state", Text),
            ("received_at", Text),
            ("mailbox_id", Integer),
        ],
    ),
    (
        "work",
        &[
            ("id", Integer),
            ("transaction_id", Integer),
            ("due_at", Text),
            ("attempts", Integer),
            ("created_at", Text),
            ("last_error", Text),
            ("last_attempt_at", Text),
            ("replay", Integer),
            ("user_id", Integer),
            ("size", Integer),
            ("lease_until", Text),
            ("lease_owner", Text),
            ("lease_token", Integer),
        ],
    ),
    (
        "status_history",
        &[
            ("id", Integer),
            ("transaction_id", Integer),
            ("status_code", Text),
            ("at", Text),
        ],
    ),
    (
        "out_files",
        &[
            ("id", Integer),
            ("mailbox_id", Integer),
            ("name", Text),
            ("size", Integer),
            ("content", Bytes),
            ("blob_key", Text),
            ("created_at", Text),
        ],
    ),
    (
        "outbound_files",
        &[
            ("id", Integer),
            ("user_id", Integer),
            ("service", Text),
            ("name", Text),
            ("sha256", Text),
            ("skat_transaction_id", Text),
            ("created_at", Text),
        ],
    ),
    (
        "portal_accounts",
        &[
            ("username", Text),
            ("password_hash", Text),
            ("se_number", Text),
            ("email", Text),
            ("interfaces", Text),
            ("updated_at", Text),
            ("initial_code_hash", Text),
            ("initial_code_expires_at", Text),
        ],
    ),
    (
        "portal_sessions",
        &[
            ("token_hash", Text),
            ("username", Text),
            ("cert_fingerprint", Text),
            ("csrf_token", Text),
            ("must_change_password", Boolean),
            ("created_at", Text),
            ("last_seen_at", Text),
        ],
    ),
    (
        "registration_jobs",
        &[
            ("id", Integer),
            ("username", Text),
            ("cert_fingerprint", Text),
            ("cert_der", Bytes),
            ("state", Text),
            ("requested_at", Text),
            ("finished_at", Text),
            ("error", Text),
        ],
    ),
    (
        "key_fingerprints",
        &[
            ("purpose", Text),
            ("fingerprint", Text),
            ("recorded_at", Text),
        ],
    ),
];

/// What a copy did to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedTable {
    pub table: &'static str,
    /// Rows in the source.
    pub source_rows: u64,
    /// Rows this copy inserted (the others were there from an earlier one).
    pub inserted: u64,
    /// Rows in the target afterwards.
    pub target_rows: u64,
}

/// Copies every table of `source` into `target`, which must hold nothing but what an
/// earlier copy of the same source put there; refuses (after copying) when a table's counts
/// differ.
pub async fn copy_embedded(
    source: &SqliteStore,
    target: &PostgresStore,
) -> StoreResult<Vec<CopiedTable>> {
    let mut report = Vec::new();
    for (table, columns) in TABLES {
        report.push(copy_table(source, target, table, columns).await?);
    }
    let cutoff: String = sqlx::query_scalar("SELECT cutoff FROM audit_retention")
        .fetch_one(&source.reader)
        .await?;
    sqlx::query("UPDATE audit_retention SET cutoff = $1 WHERE cutoff < $1")
        .bind(cutoff)
        .execute(&target.writer)
        .await?;
    if let Some(differs) = report
        .iter()
        .find(|copied| copied.source_rows != copied.target_rows)
    {
        return Err(StoreError::Corrupt(format!(
            "{} has {} rows in the embedded store and {} in PostgreSQL: the target held rows \
             of its own",
            differs.table, differs.source_rows, differs.target_rows
        )));
    }
    Ok(report)
}

async fn copy_table(
    source: &SqliteStore,
    target: &PostgresStore,
    table: &'static str,
    columns: &[(&str, Kind)],
) -> StoreResult<CopiedTable> {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let select = format!("SELECT {} FROM {table}", names.join(", "));
    let parameters: Vec<String> = (1..=columns.len()).map(|n| format!("${n}")).collect();
    let insert = format!(
        "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
        names.join(", "),
        parameters.join(", ")
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(select))
        .fetch_all(&source.reader)
        .await?;
    let mut transaction = target.writer.begin().await?;
    let mut inserted = 0;
    for row in &rows {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(insert.as_str()));
        for (index, (_, kind)) in columns.iter().enumerate() {
            query = match kind {
                Integer => query.bind(row.try_get::<Option<i64>, _>(index)?),
                Text => query.bind(row.try_get::<Option<String>, _>(index)?),
                Bytes => query.bind(row.try_get::<Option<Vec<u8>>, _>(index)?),
                Boolean => query.bind(row.try_get::<Option<i64>, _>(index)?.map(|n| n != 0)),
            };
        }
        inserted += query.execute(&mut *transaction).await?.rows_affected();
    }
    if names.contains(&"id") {
        // Rows inserted with their ids leave the identity behind: new rows continue after.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                           GREATEST((SELECT MAX(id) FROM {table}), 1))"
        )))
        .execute(&mut *transaction)
        .await?;
    }
    transaction.commit().await?;
    let count = format!("SELECT COUNT(*) FROM {table}");
    let source_rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count.as_str()))
        .fetch_one(&source.reader)
        .await?;
    let target_rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count.as_str()))
        .fetch_one(&target.writer)
        .await?;
    Ok(CopiedTable {
        table,
        source_rows: u64::try_from(source_rows).unwrap_or_default(),
        inserted,
        target_rows: u64::try_from(target_rows).unwrap_or_default(),
    })
}
