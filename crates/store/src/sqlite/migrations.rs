//! The schema migrations of the SQLite store and the runner that applies them: each file
//! under `migrations/sqlite/` runs once, in order, in its own transaction, and is recorded
//! in `schema_migrations`.

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, SqlitePool};
use time::OffsetDateTime;

use crate::{StoreError, StoreResult, timestamp};

pub(super) struct Migration {
    pub(super) version: i64,
    pub(super) name: &'static str,
    pub(super) sql: &'static str,
    /// Whether it rebuilds a table others refer to (SQLite cannot relax a column in place):
    /// it then runs with foreign keys off, and is checked for dangling references before its
    /// commit, as SQLite's ALTER TABLE documentation prescribes.
    pub(super) rebuilds_tables: bool,
}

/// In version order; append, never edit a migration that has shipped.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../../migrations/sqlite/001_initial.sql"),
        rebuilds_tables: false,
    },
    Migration {
        version: 2,
        name: "transactions",
        sql: include_str!("../../migrations/sqlite/002_transactions.sql"),
        rebuilds_tables: false,
    },
    Migration {
        version: 3,
        name: "delivery_attempts",
        sql: include_str!("../../migrations/sqlite/003_delivery_attempts.sql"),
        rebuilds_tables: false,
    },
    Migration {
        version: 4,
        name: "outbound",
        sql: include_str!("../../migrations/sqlite/004_outbound.sql"),
        rebuilds_tables: false,
    },
    Migration {
        version: 5,
        name: "portal",
        sql: include_str!("../../migrations/sqlite/005_portal.sql"),
        rebuilds_tables: false,
    },
    Migration {
        version: 6,
        name: "out_listing",
        sql: include_str!("../../migrations/sqlite/006_out_listing.sql"),
        rebuilds_tables: false,
    },
    Migration {
        version: 7,
        name: "hardening",
        sql: include_str!("../../migrations/sqlite/007_hardening.sql"),
        rebuilds_tables: false,
    },
    Migration {
        version: 8,
        name: "work_leases",
        sql: include_str!("../../migrations/sqlite/008_work_leases.sql"),
        rebuilds_tables: false,
    },
    Migration {
        version: 9,
        name: "mailboxes",
        sql: include_str!("../../migrations/sqlite/009_mailboxes.sql"),
        rebuilds_tables: false,
    },
    Migration {
        version: 10,
        name: "company_mailboxes",
        sql: include_str!("../../migrations/sqlite/010_company_mailboxes.sql"),
        rebuilds_tables: false,
    },
    Migration {
        version: 11,
        name: "personal_users",
        sql: include_str!("../../migrations/sqlite/011_personal_users.sql"),
        rebuilds_tables: true,
    },
    Migration {
        version: 12,
        name: "call_mailboxes",
        sql: include_str!("../../migrations/sqlite/012_call_mailboxes.sql"),
        rebuilds_tables: false,
    },
    Migration {
        version: 13,
        name: "key_fingerprints",
        sql: include_str!("../../migrations/sqlite/013_key_fingerprints.sql"),
        rebuilds_tables: false,
    },
    Migration {
        version: 14,
        name: "job_leads",
        sql: include_str!("../../migrations/sqlite/014_job_leads.sql"),
        rebuilds_tables: false,
    },
    Migration {
        version: 15,
        name: "audit_node",
        sql: include_str!("../../migrations/sqlite/015_audit_node.sql"),
        rebuilds_tables: false,
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

    let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(pool)
        .await?;
    StoreError::refuse_newer_schema(found, MIGRATIONS.last().map(|migration| migration.version))?;

    for migration in MIGRATIONS {
        let mut connection = pool.acquire().await?;
        if !migration.rebuilds_tables {
            apply_one(&mut connection, migration).await?;
            continue;
        }
        // The pragma is a no-op inside a transaction; the connection goes back to the pool
        // only with foreign keys on again.
        set_foreign_keys(&mut connection, false).await?;
        let applied = apply_one(&mut connection, migration).await;
        if set_foreign_keys(&mut connection, true).await.is_err() {
            connection.close_on_drop();
        }
        applied?;
    }
    Ok(())
}

async fn set_foreign_keys(connection: &mut SqliteConnection, on: bool) -> StoreResult<()> {
    let pragma = if on {
        "PRAGMA foreign_keys = ON"
    } else {
        "PRAGMA foreign_keys = OFF"
    };
    sqlx::query(pragma).execute(&mut *connection).await?;
    Ok(())
}

/// Applies `migration` unless it was, in a transaction of its own.
async fn apply_one(connection: &mut SqliteConnection, migration: &Migration) -> StoreResult<()> {
    // IMMEDIATE takes the write lock before the check, so two processes opening the same
    // file cannot both decide to apply a migration.
    let mut transaction = connection.begin_with("BEGIN IMMEDIATE").await?;
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(migration.version)
            .fetch_optional(&mut *transaction)
            .await?;
    if applied.is_some() {
        return Ok(());
    }
    sqlx::raw_sql(migration.sql)
        .execute(&mut *transaction)
        .await
        .map_err(|source| StoreError::Migration {
            version: migration.version,
            name: migration.name,
            source,
        })?;
    if migration.rebuilds_tables {
        let dangling: Vec<(String,)> = sqlx::query_as("PRAGMA foreign_key_check")
            .fetch_all(&mut *transaction)
            .await?;
        if let Some((table,)) = dangling.first() {
            return Err(StoreError::Corrupt(format!(
                "migration {} ({}) would leave rows of {table} referring to nothing",
                migration.version, migration.name
            )));
        }
    }
    sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
        .bind(migration.version)
        .bind(migration.name)
        .bind(timestamp::to_text(OffsetDateTime::now_utc()))
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(())
}
