//! The errors a [`crate::Store`] reports.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} {key:?} not found")]
    NotFound { what: &'static str, key: String },
    /// The request contradicts what is stored, such as a certificate registered to someone else.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// A stored value this program cannot read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("schema migration {version:03}_{name} failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        source: sqlx::Error,
    },
    #[error(
        "the database schema is at version {found}, but this program knows only up to version {supported}; run a newer mftgw"
    )]
    SchemaTooNew { found: i64, supported: i64 },
}

impl From<sqlx::Error> for StoreError {
    /// A uniqueness constraint that refuses a write is a conflict with what is stored: with
    /// several writers it is the constraint, not a read before the write, that decides (two
    /// registrations of one certificate, say), and the loser must hear it as such.
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(database) if database.is_unique_violation() => {
                Self::Conflict(database.message().to_owned())
            }
            _ => Self::Database(error),
        }
    }
}

impl StoreError {
    /// [`StoreError::SchemaTooNew`] if the schema's version `found` is past the last
    /// migration this program knows, `supported`.
    pub(crate) fn refuse_newer_schema(
        found: Option<i64>,
        supported: Option<i64>,
    ) -> Result<(), Self> {
        let supported = supported.unwrap_or(0);
        match found.filter(|&found| found > supported) {
            Some(found) => Err(Self::SchemaTooNew { found, supported }),
            None => Ok(()),
        }
    }

    pub(crate) fn user_not_found(username: &mftgw_domain::Username) -> Self {
        Self::NotFound {
            what: "user",
            key: username.to_string(),
        }
    }
}
