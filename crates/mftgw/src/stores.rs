//! Which store the gateway runs on (`[store] kind` and `database`), opened in this one place. Everything
//! that runs on a store is generic over it (`S: Store`): the choice is one `match` here, and
//! the code behind it is compiled for each implementation, with no trait objects and no
//! enum forwarding each of the store's methods.

use std::sync::Arc;

use mftgw_store::{PostgresStore, SqliteStore, Store};

use crate::config::{Config, SelectedStore};

/// What runs on a store, whichever one the configuration selects.
pub(crate) trait OnStore {
    type Output;

    async fn run<S: Store>(self, store: Arc<S>) -> anyhow::Result<Self::Output>;
}

/// Opens the configured store and runs `job` on it.
pub(crate) async fn on_store<J: OnStore>(config: &Config, job: J) -> anyhow::Result<J::Output> {
    match config.store.selected()? {
        SelectedStore::Embedded => {
            let store = SqliteStore::open(&config.database_path()).await?;
            job.run(Arc::new(store)).await
        }
        SelectedStore::Postgres(url) => {
            let store = PostgresStore::connect(&url).await?;
            job.run(Arc::new(store)).await
        }
    }
}
