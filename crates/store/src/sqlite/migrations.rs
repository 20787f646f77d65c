//! The schema migrations of the SQLite store and the runner that applies them: each file
//! under `migrations/sqlite/` runs once, in order, in its own transaction, and is recorded
//! in `schema_migrations`.

use sqlx::SqlitePool;
use time::OffsetDateTime;

use crate::{StoreError, StoreResult, timestamp};

pub(super) struct Migration {
    pub(super) version: i64,
    pub(super) name: &'static str,
    pub(super) sql: &'static str,
}

/// In version order; append, never edit a migration that has shipped.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../../migrations/sqlite/001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "transactions",
        sql: include_str!("../../migrations/sqlite/002_transactions.sql"),
    },
    Migration {
        version: 3,
        name: "delivery_attempts",
        sql: include_str!("../../migrations/sqlite/003_delivery_attempts.sql"),
    },
    Migration {
        version: 4,
        name: "outbound",
        sql: include_str!("../../migrations/sqlite/004_outbound.sql"),
    },
    Migration {
        version: 5,
        name: "portal",
        sql: include_str!("../../migrations/sqlite/005_portal.sql"),
    },
    Migration {
        version: 6,
        name: "out_listing",
        sql: include_str!("../../migrations/sqlite/006_out_listing.sql"),
    },
    Migration {
        version: 7,
        name: "hardening",
        sql: include_str!("../../migrations/sqlite/007_hardening.sql"),
    },
    Migration {
        version: 8,
        name: "work_leases",
        sql: include_str!("../../migrations/sqlite/008_work_leases.sql"),
    },
    Migration {
        version: 9,
        name: "mailboxes",
        sql: include_str!("../../migrations/sqlite/009_mailboxes.sql"),
    },
    Migration {
        version: 10,
        name: "company_mailboxes",
        sql: include_str!("../../migrations/sqlite/010_company_mailboxes.sql"),
    },
];

pub(super) async fn apply(pool: &SqlitePool) -> StoreResult<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )",
    )
    .execute(pool)
    .await?;

    let supported = MIGRATIONS.last().map_or(0, |migration| migration.version);
    let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(pool)
        .await?;
    if let Some(found) = found.filter(|&found| found > supported) {
        return Err(StoreError::SchemaTooNew { found, supported });
    }

    for migration in MIGRATIONS {
        // IMMEDIATE takes the write lock before the check, so two processes opening the same
        // file cannot both decide to apply a migration.
        let mut transaction = pool.begin_with("BEGIN IMMEDIATE").await?;
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(migration.version)
                .fetch_optional(&mut *transaction)
                .await?;
        if applied.is_some() {
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
