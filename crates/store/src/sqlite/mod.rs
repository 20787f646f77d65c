//! The embedded store: one SQLite file in WAL mode (or an in-memory database for tests).
//! The store traits are implemented in `shared/`, in SQL both backends run; this module holds
//! what is SQLite's own: the connections and their pragmas, `BEGIN IMMEDIATE`, the listing
//! of `/out` as one JSON row, the checkpoint, and the migrations.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

use crate::plan::Serialized;
use crate::{StoreError, StoreResult};

mod migrations;
// The same files as the other backend's, compiled against this one's `Db`.
#[allow(clippy::duplicate_mod)]
#[path = "../shared/mod.rs"]
mod shared;
#[cfg(test)]
mod tests;

type Db = sqlx::Sqlite;
type Pool = SqlitePool;
type DbRow = sqlx::sqlite::SqliteRow;
type Backend = SqliteStore;

/// A write transaction, with SQLite's write lock taken up front: a deferred transaction that
/// reads and then writes fails with SQLITE_BUSY, without waiting, when another writer got
/// there first.
async fn begin_write(pool: &Pool) -> StoreResult<sqlx::Transaction<'static, Db>> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

/// Nothing to do: every write goes through the one writer connection, so writes commit in
/// the order they began, which is every order `Serialized` names.
async fn serialize(_: &mut SqliteConnection, _: Serialized<'_>) -> StoreResult<()> {
    Ok(())
}

/// A mailbox's files as a JSON array of `[id, name, size, created_at]`, read from the
/// covering index `out_files_listing` as one row: row by row (sqlx hands each over from the
/// connection's thread), with a sort and a table lookup per file, a `/out` of 10,000 files
/// took about 35 ms to read, most of a `LIST`. In index order, but an aggregate's order is
/// not promised, and `ORDER BY` inside it would sort again.
const OUT_LISTING: &str = "SELECT json_group_array(json_array(id, name, size, created_at))
     FROM out_files WHERE mailbox_id = $1";

/// The one writer claims work: no row lock to take.
const CLAIM_LOCKING: &str = "";

/// The one writer locks every row it reads.
const ROW_LOCKING: &str = "";

/// The database's time in [`crate::timestamp`]'s text (`%f` has milliseconds only; the
/// seconds are printed to six digits). SQLite reads the machine's clock once per statement.
const DATABASE_NOW: &str = "SELECT strftime('%Y-%m-%dT%H:%M:', 'now')
        || printf('%09.6f', CAST(strftime('%f', 'now') AS REAL)) || 'Z'";

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What a write-ahead log is truncated to after a checkpoint that reached its end; without
/// it, the file keeps the largest size it ever had.
const WAL_SIZE_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// How long a truncating checkpoint waits for readers to finish. It holds writers off while
/// it waits, so it gives up soon and tries again at the next checkpoint.
const CHECKPOINT_WAIT: Duration = Duration::from_millis(100);

/// Long enough never to end while the one connection of an in-memory store is busy.
const IN_MEMORY_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Writes go through one connection, so writers queue in the pool (woken in order) instead
/// of meeting `SQLITE_BUSY` and sleeping in SQLite's busy handler; reads run beside them
/// (WAL) on their own connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) reader: SqlitePool,
    writer: SqlitePool,
    /// For the checkpoint's own short-lived connection; `None` in memory (no WAL).
    checkpointer: Option<SqliteConnectOptions>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and brings its schema up to date.
    /// The directory must exist.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("journal_size_limit", WAL_SIZE_LIMIT_BYTES.to_string());
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let writer = pool_options()
            .max_connections(1)
            // A writer waits its turn as long as it would wait for another process's lock.
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        let reader = pool_options()
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        let mut store = Self::migrated(reader, writer).await?;
        store.checkpointer = Some(options.busy_timeout(CHECKPOINT_WAIT));
        Ok(store)
    }

    /// A fresh private database that lives as long as the store.
    pub async fn open_in_memory() -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // An in-memory database vanishes with its last connection: keep exactly one, forever.
        // Every caller shares it and waits for it as long as it takes: an in-memory store
        // serves tests, some under tokio's paused clock, where a wait with a timeout ends
        // whenever the runtime idles.
        let pool = pool_options()
            .max_connections(1)
            .acquire_timeout(IN_MEMORY_ACQUIRE_TIMEOUT)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::migrated(pool.clone(), pool).await
    }

    async fn migrated(reader: SqlitePool, writer: SqlitePool) -> StoreResult<Self> {
        migrations::apply(&writer).await?;
        Ok(Self {
            reader,
            writer,
            checkpointer: None,
        })
    }
}

fn pool_options() -> SqlitePoolOptions {
    SqlitePoolOptions::new().after_connect(|connection, _| Box::pin(stable_query_plans(connection)))
}

/// Turns on SQLite's query planner stability guarantee, so that plans never depend on bound
/// values. Without it, a cached statement whose plan looked at a parameter (any `LIMIT $n`)
/// is compiled again every time that parameter is bound: a tenth of the gateway's CPU under
/// small uploads went to re-preparing the delivery worker's query. sqlx has no option for it.
async fn stable_query_plans(connection: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = connection.lock_handle().await?;
    // SAFETY: the handle is an open connection, locked for the duration of the call, and
    // SQLITE_DBCONFIG_ENABLE_QPSG takes an int (1: on) and an optional int* for the result.
    let code = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            handle.as_raw_handle().as_ptr(),
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as std::ffi::c_int,
            std::ptr::null_mut::<std::ffi::c_int>(),
        )
    };
    if code == libsqlite3_sys::SQLITE_OK {
        Ok(())
    } else {
        Err(sqlx::Error::Configuration(
            format!("SQLite refused the query planner stability guarantee (code {code})").into(),
        ))
    }
}

/// One process holds the database: its workers hear of new work from its own core.
fn announce_work(_: &SqliteStore) {}

fn work_announcements(_: &SqliteStore) -> Option<tokio::sync::watch::Receiver<u64>> {
    None
}

/// Bounds the write-ahead log, on a connection of its own with a short busy timeout: a
/// truncating checkpoint holds writers off while it waits for readers.
async fn checkpoint(store: &SqliteStore) -> StoreResult<()> {
    let Some(options) = &store.checkpointer else {
        return Ok(());
    };
    let mut connection = sqlx::ConnectOptions::connect(options).await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut connection)
        .await?;
    sqlx::Connection::close(connection).await?;
    Ok(())
}
