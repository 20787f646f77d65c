//! The schema migrations of the PostgreSQL store and the runner that applies them: each file
//! under `migrations/postgres/` runs once, in order, in its own transaction, and is recorded
//! in `schema_migrations`. Nodes starting together take turns: each migration's transaction
//! first takes an advisory lock that only migrations take.

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::{StoreError, StoreResult, timestamp};

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// In version order; append, never edit a migration that has shipped.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../../migrations/postgres/001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "key_fingerprints",
        sql: include_str!("../../migrations/postgres/002_key_fingerprints.sql"),
    },
    Migration {
        version: 3,
        name: "job_leads",
        sql: include_str!("../../migrations/postgres/003_job_leads.sql"),
    },
    Migration {
        version: 4,
        name: "audit_node",
        sql: include_str!("../../migrations/postgres/004_audit_node.sql"),
    },
];

/// The class of the advisory lock migrations take (see `serialize` for the others).
const MIGRATION_LOCK: i32 = 0;

pub(super) async fn apply(pool: &PgPool) -> StoreResult<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    BIGINT PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )",
    )
    .execute(pool)
    .await
    .or_else(|error| match &error {
        // Two nodes creating it at once: one of them wins, which is all we need.
        sqlx::Error::Database(database) if database.is_unique_violation() => Ok(Default::default()),
        _ => Err(error),
    })?;

    let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(pool)
        .await?;
    StoreError::refuse_newer_schema(found, MIGRATIONS.last().map(|migration| migration.version))?;

    for migration in MIGRATIONS {
        let mut transaction = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, 0)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *transaction)
            .await?;
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(migration.version)
                .fetch_optional(&mut *transaction)
                .await?;
        if applied.is_some() {
            // Ended here, not by the drop: a dropped transaction's rollback waits for the
            // connection's next use, and the lock with it.
            transaction.rollback().await?;
            continue;
        }
        sqlx::raw_sql(migration.sql)
            .execute(&mut *transaction)
            .await
            .map_err(|source| StoreError::Migration {
                version: migration.version,
                name: migration.name,
                source,
            })?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(timestamp::to_text(OffsetDateTime::now_utc()))
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
    }
    Ok(())
}
