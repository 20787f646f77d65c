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
    assert_eq!(applied, [1, 2]);
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
