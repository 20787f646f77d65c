//! The store of several gateway nodes: one PostgreSQL database that every node's pool
//! writes to. The store traits are implemented in `shared/`, in SQL both backends run; this
//! module holds what is PostgreSQL's own: the pool and its timeouts, the advisory locks that
//! keep the orders SQLite's one writer keeps by itself ([`Serialized`]), row locks skipped
//! by concurrent claims, the listing of `/out` as one JSON row, the wake-up hints between
//! nodes (`hints`), and the migrations.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};

use crate::plan::Serialized;
use crate::{StoreError, StoreResult};

mod hints;
mod migrations;
// The same files as the other backend's, compiled against this one's `Db`.
#[allow(clippy::duplicate_mod)]
#[path = "../shared/mod.rs"]
mod shared;
#[cfg(test)]
mod tests;

type Db = sqlx::Postgres;
type Pool = PgPool;
type DbRow = sqlx::postgres::PgRow;
type Backend = PostgresStore;

/// How long one statement may run before the database cancels it.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a statement waits for a row or advisory lock before it fails.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a caller waits for a connection of the pool.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections per node.
const MAX_CONNECTIONS: u32 = 16;

/// Reads and writes share one pool: PostgreSQL has many writers, and no write lock to queue
/// for. `reader` and `writer` are the same pool, named as the shared code names them.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    reader: PgPool,
    pub(crate) writer: PgPool,
    /// Started on first use, so that a process that never delivers (the admin CLI) holds
    /// no listening connection.
    hints: Arc<OnceLock<hints::Hints>>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/database`) and brings
    /// its schema up to date.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options: PgConnectOptions = url.parse().map_err(StoreError::Connect)?;
        Self::connect_with(options).await
    }

    /// As [`PostgresStore::connect`], with options built by the caller (a test's own
    /// `search_path`, say). The statement and lock timeouts are set here.
    pub async fn connect_with(options: PgConnectOptions) -> StoreResult<Self> {
        let options = options.options([
            ("statement_timeout", milliseconds(STATEMENT_TIMEOUT)),
            ("lock_timeout", milliseconds(LOCK_TIMEOUT)),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(StoreError::Connect)?;
        migrations::apply(&pool).await?;
        Ok(Self {
            reader: pool.clone(),
            writer: pool,
            hints: Arc::default(),
        })
    }

    fn hints(&self) -> &hints::Hints {
        self.hints.get_or_init(|| hints::Hints::start(&self.writer))
    }
}

/// Tells the other nodes' workers, by `NOTIFY` after the commit, that there is work.
fn announce_work(store: &PostgresStore) {
    store.hints().announce();
}

fn work_announcements(store: &PostgresStore) -> Option<tokio::sync::watch::Receiver<u64>> {
    Some(store.hints().announcements())
}

fn milliseconds(duration: Duration) -> String {
    duration.as_millis().to_string()
}

async fn begin_write(pool: &Pool) -> StoreResult<sqlx::Transaction<'static, Db>> {
    Ok(pool.begin().await?)
}

/// Waits for the writers of the same `order` that came first to commit: a transaction-level
/// advisory lock, released by the commit or rollback. The two-key form keeps each order's
/// keys apart from the others'.
async fn serialize(connection: &mut PgConnection, order: Serialized<'_>) -> StoreResult<()> {
    let (class, key): (i32, i32) = match order {
        Serialized::Registrations => (1, 0),
        Serialized::SecurityChanges => (2, 0),
        Serialized::Audit => (3, 0),
        Serialized::Claims => (4, 0),
        Serialized::Uploads { user_id, service } => (5, fold(user_id, service)),
        Serialized::Mailbox(mailbox_id) => (6, fold(mailbox_id, "")),
    };
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(class)
        .bind(key)
        .execute(connection)
        .await?;
    Ok(())
}

/// A 32-bit key for an advisory lock: FNV-1a of `id` and `text`. Two keys that collide only
/// serialise more writers than they must.
fn fold(id: i64, text: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in id.to_le_bytes().iter().chain(text.as_bytes()) {
        hash = (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193);
    }
    i32::from_le_bytes(hash.to_le_bytes())
}

/// A mailbox's files as a JSON array of `[id, name, size, created_at]`, in one row.
const OUT_LISTING: &str =
    "SELECT COALESCE(json_agg(json_build_array(id, name, size, created_at)), '[]')::text
     FROM out_files WHERE mailbox_id = $1";

/// A claim locks the rows it takes, and passes over rows another transaction holds (work
/// being finished or renewed) instead of waiting for them. Claims themselves are one at a
/// time ([`Serialized::Claims`]).
const CLAIM_LOCKING: &str = " FOR UPDATE OF work SKIP LOCKED";

/// Work rows whose claim a statement checks or renews are locked, in transaction id order
/// (so that two such statements never wait for each other crosswise), until its commit.
const ROW_LOCKING: &str = " ORDER BY transaction_id FOR UPDATE";

/// The database's time in [`crate::timestamp`]'s text: the one clock every node's leases
/// are judged by.
const DATABASE_NOW: &str =
    "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";

/// Nothing to do: PostgreSQL bounds its write-ahead log itself.
async fn checkpoint(_: &PostgresStore) -> StoreResult<()> {
    Ok(())
}
