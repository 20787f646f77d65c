//! The conformance suite on the machine's PostgreSQL, each check in a schema of its own of
//! the database that `MFTGW_TEST_POSTGRES_URL` names (default: the local server's `test`
//! database as `postgres`). A server that cannot be reached fails the checks, never skips
//! them.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::PostgresStore;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn url() -> String {
    std::env::var("MFTGW_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A schema of its own, dropped with the guard.
pub(crate) struct TestSchema {
    name: String,
}

impl TestSchema {
    pub(crate) async fn create() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "mftgw_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut connection = connect_admin().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
        )))
        .execute(&mut connection)
        .await
        .unwrap();
        Self { name }
    }

    pub(crate) fn options(&self) -> PgConnectOptions {
        url()
            .parse::<PgConnectOptions>()
            .unwrap()
            .options([("search_path", self.name.as_str())])
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Dropped on a thread of its own: the test's runtime may be ending.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut connection) = PgConnection::connect(&url()).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {name} CASCADE"
                    )))
                    .execute(&mut connection)
                    .await;
                }
            });
        })
        .join();
    }
}

async fn connect_admin() -> PgConnection {
    let url = url();
    PgConnection::connect(&url).await.unwrap_or_else(|error| {
        panic!(
            "PostgreSQL at {url} cannot be reached ({error}); set MFTGW_TEST_POSTGRES_URL to a \
             server the tests may create schemas in"
        )
    })
}

mod conformance {
    use super::TestSchema;
    use crate::PostgresStore;

    async fn fresh() -> (PostgresStore, TestSchema) {
        let schema = TestSchema::create().await;
        let store = PostgresStore::connect_with(schema.options()).await.unwrap();
        (store, schema)
    }

    crate::conformance_suite!(fresh());
}

#[tokio::test]
async fn nodes_starting_together_migrate_once() {
    let schema = TestSchema::create().await;
    let nodes = (0..4).map(|_| PostgresStore::connect_with(schema.options()));
    for store in futures_join_all(nodes).await {
        store.unwrap();
    }
    let store = PostgresStore::connect_with(schema.options()).await.unwrap();
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&store.reader)
        .await
        .unwrap();
    assert_eq!(applied, [1, 2, 3, 4]);
}

/// Runs the futures side by side on the test's runtime.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    outputs
}

/// An embedded store's users, transactions with their steps and files, roles, audit and key
/// reach PostgreSQL whole; copying again inserts nothing; and what comes next continues the
/// ids rather than meeting them.
/// Announces work on `announcing` until `hears` moves (a listener needs a moment to
/// LISTEN); panics after 10 s.
async fn announce_until_heard(
    announcing: &PostgresStore,
    hears: &mut tokio::sync::watch::Receiver<u64>,
) {
    use crate::TransactionLog;
    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            announcing.announce_work();
            tokio::select! {
                changed = hears.changed() => return changed,
                () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
            }
        }
    })
    .await;
    assert!(matches!(heard, Ok(Ok(()))), "no hint within 10 s");
}

/// A node's hint that it made work reaches the other nodes on its schema (after the
/// commit, by NOTIFY), and not a store on another schema of the same database.
#[tokio::test]
async fn a_hint_of_new_work_reaches_the_nodes_of_its_schema_only() {
    use crate::TransactionLog;
    let (schema, elsewhere) = (TestSchema::create().await, TestSchema::create().await);
    let announcing = PostgresStore::connect_with(schema.options()).await.unwrap();
    let other_node = PostgresStore::connect_with(schema.options()).await.unwrap();
    let other_schema = PostgresStore::connect_with(elsewhere.options())
        .await
        .unwrap();
    let mut hears = other_node.work_announcements().unwrap();
    let mut must_not_hear = other_schema.work_announcements().unwrap();
    // Its own hint shows that the other schema's store listens.
    announce_until_heard(&other_schema, &mut must_not_hear).await;
    // Its later hints, sent before the first was heard, have come by now.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    must_not_hear.borrow_and_update();
    announce_until_heard(&announcing, &mut hears).await;
    // The other schema's listener has had the hint's time to hear it: as long as the first.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !must_not_hear.has_changed().unwrap(),
        "a store on another schema was woken"
    );
}

#[tokio::test]
async fn an_embedded_store_is_copied_whole_and_again_changes_nothing() {
    use mftgw_domain::status::StatusCode;
    use mftgw_domain::{AuditEvent, Mailbox, TransactionState};

    use crate::prelude::*;
    use crate::testing::{self, USERNAME};
    use crate::{AuditQuery, RoleSource, SqliteStore};

    let directory = crate::testing::TempDir::new();
    let source = SqliteStore::open(&directory.0.join("mftgw.sqlite"))
        .await
        .unwrap();
    testing::with_user(&source).await;
    let user = testing::user(USERNAME);
    source
        .grant_role(&user, &testing::service("FATCA"), RoleSource::Local)
        .await
        .unwrap();
    let first = testing::created(
        source
            .record_transaction(testing::upload("ci1_1_1", "a.xml"))
            .await
            .unwrap(),
    );
    let mut step = testing::step(&first, TransactionState::Delivered, StatusCode::Delivered);
    step.files
        .push(testing::inline("status_a.xml_1.xml", "<status/>"));
    source.advance(&[step]).await.unwrap();
    source
        .record_transaction(testing::upload("ci1_1_2", "b.xml"))
        .await
        .unwrap();
    source
        .append_audit(&[AuditEvent::info(testing::RECEIVED_AT, "admin.register")])
        .await
        .unwrap();
    source
        .key_fingerprint("gateway_password", "k1")
        .await
        .unwrap();

    let schema = TestSchema::create().await;
    let target = PostgresStore::connect_with(schema.options()).await.unwrap();
    let report = crate::copy_embedded(&source, &target).await.unwrap();
    assert!(
        report
            .iter()
            .all(|table| table.inserted == table.source_rows)
    );
    let again = crate::copy_embedded(&source, &target).await.unwrap();
    assert!(again.iter().all(|table| table.inserted == 0), "{again:?}");

    assert_eq!(
        target.list_users().await.unwrap(),
        source.list_users().await.unwrap()
    );
    assert_eq!(
        target.transactions(None, 10).await.unwrap(),
        source.transactions(None, 10).await.unwrap()
    );
    assert_eq!(
        target.status_history(first.id).await.unwrap(),
        source.status_history(first.id).await.unwrap()
    );
    let mailbox = Mailbox::of_user(&user);
    assert_eq!(
        target.out_files(&mailbox).await.unwrap(),
        source.out_files(&mailbox).await.unwrap()
    );
    assert_eq!(
        target.roles(&user).await.unwrap(),
        source.roles(&user).await.unwrap()
    );
    assert_eq!(
        target.audit_events(AuditQuery::default()).await.unwrap(),
        source.audit_events(AuditQuery::default()).await.unwrap()
    );
    assert_eq!(
        target.pending_work(10).await.unwrap(),
        source.pending_work(10).await.unwrap()
    );
    assert_eq!(
        target
            .key_fingerprint("gateway_password", "k2")
            .await
            .unwrap(),
        "k1"
    );

    let next = testing::created(
        target
            .record_transaction(testing::upload("ci1_1_3", "c.xml"))
            .await
            .unwrap(),
    );
    assert!(
        next.id > first.id + 1,
        "the ids continue after the copied ones"
    );
}
