//! Tests of what is SQLite's own: the schema's triggers, migrations, files on disk, connection
//! settings and query plans. What every store must do is checked by the conformance suite
//! ([`crate::testing`]), run here on stores in files, which is how the gateway runs them.

use std::sync::Arc;

use mftgw_domain::{AuditEvent, Mailbox};
use time::OffsetDateTime;

use sqlx::Row;

use super::*;
use crate::prelude::*;
use crate::testing::{
    self, ACTIVATE_AT, FIRST_FINGERPRINT, FIRST_HASH, TempDir, USERNAME, id, registration,
    with_user,
};
use crate::testing::{service, user};
use crate::{AuditQuery, RoleSource};

/// The conformance suite on fresh stores in files: one writer connection and a pool of
/// readers, so that the racing checks meet the store as the gateway opens it.
mod conformance {
    use crate::SqliteStore;
    use crate::testing::TempDir;

    /// A new database file in a directory of its own, removed with the guard.
    async fn on_disk() -> (SqliteStore, TempDir) {
        let dir = TempDir::new();
        let store = SqliteStore::open(&dir.0.join("gateway.sqlite"))
            .await
            .unwrap();
        (store, dir)
    }

    crate::conformance_suite!(on_disk());
}

#[tokio::test]
async fn audit_log_is_append_only() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    store
        .append_audit(&[AuditEvent::info(
            OffsetDateTime::now_utc(),
            "admin.register",
        )])
        .await
        .unwrap();
    let id = store.audit_events(AuditQuery::default()).await.unwrap()[0].0;

    let update = sqlx::query("UPDATE audit_log SET action = 'tampered' WHERE id = $1")
        .bind(id)
        .execute(&store.writer)
        .await;
    let delete = sqlx::query("DELETE FROM audit_log WHERE id = $1")
        .bind(id)
        .execute(&store.writer)
        .await;
    for (statement, result) in [("UPDATE", update), ("DELETE", delete)] {
        let error = result.expect_err(statement).to_string();
        assert!(
            error.contains("audit_log is append-only"),
            "{statement}: {error}"
        );
    }
    let events = store.audit_events(AuditQuery::default()).await.unwrap();
    assert_eq!(events[0].1.action, "admin.register");
}

/// The schema itself refuses to delete an event within the retention, or to move the
/// cutoff back or past the present (here after the conformance check of the sweep).
#[tokio::test]
async fn the_schema_keeps_the_audit_log_append_only_within_its_retention() {
    let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    testing::audit::audit_events_are_deleted_only_before_the_retention_cutoff(Arc::clone(&store))
        .await;
    let delete = sqlx::query("DELETE FROM audit_log")
        .execute(&store.writer)
        .await
        .expect_err("a recent event was deleted");
    assert!(
        delete
            .to_string()
            .contains("append-only within its retention"),
        "{delete}"
    );
    let back = sqlx::query("UPDATE audit_retention SET cutoff = '2000-01-01T00:00:00.000000Z'")
        .execute(&store.writer)
        .await
        .expect_err("the cutoff moved back");
    assert!(back.to_string().contains("only moves forward"), "{back}");
    let ahead = sqlx::query("UPDATE audit_retention SET cutoff = '9999-01-01T00:00:00.000000Z'")
        .execute(&store.writer)
        .await
        .expect_err("the cutoff passed the present");
    assert!(
        ahead.to_string().contains("cannot pass the present"),
        "{ahead}"
    );
}

#[tokio::test]
async fn on_disk_store_keeps_its_data_across_reopening() {
    let dir = TempDir::new();
    let path = dir.0.join("gateway.sqlite");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .register_certificate(registration(USERNAME, FIRST_FINGERPRINT, FIRST_HASH))
            .await
            .unwrap();
        store
            .grant_role(&user(USERNAME), &service("FATCA"), RoleSource::Local)
            .await
            .unwrap();
        store
            .append_audit(&[AuditEvent::allowed(ACTIVATE_AT, "admin.register")])
            .await
            .unwrap();
        let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(journal_mode, "wal");
        store.writer.close().await;
        store.reader.close().await;
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let known = store.find_user(&user(USERNAME)).await.unwrap().unwrap();
    assert_eq!(known.password_hash, FIRST_HASH);
    assert_eq!(store.roles(&user(USERNAME)).await.unwrap(), ["FATCA"]);
    assert_eq!(
        store
            .audit_events(AuditQuery::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn open_names_the_file_it_could_not_open() {
    let dir = TempDir::new();
    let path = dir.0.join("missing-directory").join("gateway.sqlite");
    let error = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    assert!(error.to_string().contains("missing-directory"), "{error}");
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let dir = TempDir::new();
    let path = dir.0.join("gateway.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    migrations::apply(&store.writer).await.unwrap();
    drop(store);
    let store = SqliteStore::open(&path).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(&store.writer)
            .await
            .unwrap();
    let expected: Vec<i64> = migrations::MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(versions, expected);
}

#[test]
fn migration_versions_count_up_from_one() {
    for (index, migration) in migrations::MIGRATIONS.iter().enumerate() {
        assert_eq!(migration.version, index as i64 + 1, "{}", migration.name);
    }
}

#[tokio::test]
async fn a_schema_newer_than_the_program_is_refused() {
    let dir = TempDir::new();
    let path = dir.0.join("gateway.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    sqlx::query(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 'x')",
    )
    .execute(&store.writer)
    .await
    .unwrap();
    store.writer.close().await;
    store.reader.close().await;
    let error = SqliteStore::open(&path).await.unwrap_err();
    assert!(
        matches!(error, StoreError::SchemaTooNew { found: 999, .. }),
        "{error:?}"
    );
}

/// Whether a connection of `pool` has SQLite's query planner stability guarantee on.
async fn plans_ignore_bound_values(pool: &SqlitePool) -> bool {
    let mut connection = pool.acquire().await.unwrap();
    let mut handle = connection.lock_handle().await.unwrap();
    let mut enabled: std::ffi::c_int = -1;
    // SAFETY: an open, locked connection; -1 leaves the setting as it is and reads it out.
    let code = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            handle.as_raw_handle().as_ptr(),
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            -1 as std::ffi::c_int,
            &mut enabled as *mut std::ffi::c_int,
        )
    };
    assert_eq!(code, libsqlite3_sys::SQLITE_OK);
    enabled == 1
}

#[tokio::test]
async fn every_connection_plans_without_looking_at_bound_values() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0.join("gateway.sqlite"))
        .await
        .unwrap();
    assert!(plans_ignore_bound_values(&store.writer).await);
    assert!(plans_ignore_bound_values(&store.reader).await);
    let in_memory = SqliteStore::open_in_memory().await.unwrap();
    assert!(plans_ignore_bound_values(&in_memory.writer).await);
}

#[tokio::test]
async fn a_listing_reads_only_its_index() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    with_user(&store).await;
    let plan: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "EXPLAIN QUERY PLAN {}",
        OUT_LISTING
    )))
    .bind(1)
    .fetch_all(&store.reader)
    .await
    .unwrap()
    .iter()
    .map(|row| row.try_get("detail").unwrap())
    .collect();
    assert!(
        plan.len() == 1 && plan[0].contains("USING COVERING INDEX out_files_listing"),
        "{plan:?}"
    );
}

/// A database from before mailboxes (schema 8) keeps its users' `/out` files, and its
/// transactions report to their users' mailboxes from then on.
#[tokio::test]
async fn the_mailbox_migration_keeps_every_out_file_where_its_user_sees_it() {
    let dir = TempDir::new();
    let path = dir.0.join("gateway.sqlite");
    let before_mailboxes = migrations::MIGRATIONS
        .iter()
        .position(|m| m.name == "mailboxes")
        .unwrap();
    {
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        sqlx::raw_sql(
            "CREATE TABLE schema_migrations (
                 version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        for migration in &migrations::MIGRATIONS[..before_mailboxes] {
            sqlx::raw_sql(migration.sql).execute(&pool).await.unwrap();
            sqlx::query("INSERT INTO schema_migrations VALUES ($1, $2, 'then')")
                .bind(migration.version)
                .bind(migration.name)
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::raw_sql(
            "INSERT INTO users (id, username, cvr, account, kind, state, password_hash, created_at)
                 VALUES (7, 'CVR_12345678_UID_1', '12345678', 'UID_1', 'voces', 'active', 'h',
                         '2026-01-01T00:00:00.000000Z');
             INSERT INTO transactions
                 (id, skat_transaction_id, user_id, service, ftp_transaction_id, upload_path,
                  size, sha256, transfer_type, blob_key, state, received_at)
                 VALUES (3, 'ci1', 7, 'FTPSGW.Heartbeat', 'a.xml', '/p', 1,
                         'ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb', 'I', NULL,
                         'received', '2026-01-01T00:00:00.000000Z');
             INSERT INTO out_files (user_id, name, size, content, created_at)
                 VALUES (7, 'old.xml', 3, x'616263', '2026-01-01T00:00:00.000000Z');",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }

    let store = SqliteStore::open(&path).await.unwrap();
    let dangling_role = sqlx::query(
        "INSERT INTO roles (user_id, service, source, granted_at) VALUES (999, 'x', 'local', 'now')",
    )
    .execute(&store.writer)
    .await;
    assert!(
        dangling_role.is_err(),
        "foreign keys are enforced again after the users table was rebuilt"
    );
    let mailbox = Mailbox::of_user(&user(USERNAME));
    let listed = store.out_files(&mailbox).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "old.xml");
    let transaction = store.transaction(&id("ci1")).await.unwrap().unwrap();
    let delivered = testing::step(
        &transaction,
        mftgw_domain::TransactionState::Delivered,
        mftgw_domain::status::StatusCode::Delivered,
    );
    let advanced = store.advance(&[delivered]).await.unwrap();
    assert_eq!(advanced.applied, [true]);
    let names: Vec<String> = store
        .out_files(&mailbox)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.name)
        .collect();
    assert_eq!(names, ["old.xml", "status_1"]);
}

/// A write that a uniqueness constraint refuses is reported as a conflict, whoever made it:
/// with several writers the constraint decides races that no read before the write sees.
#[tokio::test]
async fn a_refused_unique_write_is_a_conflict() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    with_user(&store).await;
    let duplicate = sqlx::query(
        "INSERT INTO certificates
             (fingerprint, user_id, subject, serial_hex, not_after, der, registered_at)
         SELECT fingerprint, user_id, subject, serial_hex, not_after, der, registered_at
         FROM certificates",
    )
    .execute(&store.writer)
    .await
    .map_err(StoreError::from);
    assert!(
        matches!(duplicate, Err(StoreError::Conflict(_))),
        "{duplicate:?}"
    );
}
