//! Wake-up hints between the nodes on one database: `NOTIFY` when a node committed work,
//! `LISTEN` to hear the others'. A hint is sent after the commit that made the work, on a
//! task of its own (never inside the commit: a `NOTIFY` in a transaction serialises every
//! commit on the notification queue), and many coalesce into one. Hints can be lost (the
//! listening connection broke and is being made again); workers poll anyway.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, watch};
use tokio::task::AbortHandle;

/// The one channel; the payload is the schema, so that stores on other schemas of the same
/// database (other installations, tests) do not wake each other.
const CHANNEL: &str = "mftgw_work";

/// How long to wait before listening again after the connection broke.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

/// The announcing and the listening task of one store, ended with it.
#[derive(Debug)]
pub(super) struct Hints {
    announce: Arc<Notify>,
    announced: watch::Receiver<u64>,
    tasks: [AbortHandle; 2],
}

impl Hints {
    pub(super) fn start(pool: &PgPool) -> Hints {
        let announce = Arc::new(Notify::new());
        let (announcer, announced) = watch::channel(0);
        let tasks = [
            tokio::spawn(send(pool.clone(), Arc::clone(&announce))).abort_handle(),
            tokio::spawn(listen(pool.clone(), announcer)).abort_handle(),
        ];
        Hints {
            announce,
            announced,
            tasks,
        }
    }

    /// Asks for a hint to be sent; returns at once.
    pub(super) fn announce(&self) {
        self.announce.notify_one();
    }

    /// Counts up at every hint heard, this store's own included.
    pub(super) fn announcements(&self) -> watch::Receiver<u64> {
        self.announced.clone()
    }
}

impl Drop for Hints {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn send(pool: PgPool, wanted: Arc<Notify>) {
    loop {
        wanted.notified().await;
        let sent = sqlx::query("SELECT pg_notify($1, current_schema())")
            .bind(CHANNEL)
            .execute(&pool)
            .await;
        if let Err(error) = sent {
            tracing::debug!(%error, "a wake-up hint for the other nodes was not sent");
        }
    }
}

async fn listen(pool: PgPool, heard: watch::Sender<u64>) {
    loop {
        if let Err(error) = listen_until_broken(&pool, &heard).await {
            tracing::debug!(%error, "listening for the other nodes' hints; again shortly");
        }
        tokio::time::sleep(RELISTEN_AFTER).await;
    }
}

async fn listen_until_broken(pool: &PgPool, heard: &watch::Sender<u64>) -> sqlx::Result<()> {
    let (schema,): (String,) = sqlx::query_as("SELECT current_schema()")
        .fetch_one(pool)
        .await?;
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    loop {
        let notification = listener.recv().await?;
        if notification.payload() == schema {
            heard.send_modify(|count| *count = count.wrapping_add(1));
        }
    }
}
