//! A logged-in user's virtual tree (SPEC §3): one folder per service the user holds a role
//! for, plus `out`. Roles are read on every look at the root, so folders appear and vanish
//! as roles change.

use std::sync::Arc;

use mftgw_domain::catalogue::ServiceCatalogue;
use mftgw_ftps::{
    DirEntry, EntryKind, FsError, FsResult, Session, TransferType, Upload, VirtualPath,
};
use mftgw_store::Store;
use time::OffsetDateTime;
use tokio::io::AsyncRead;

pub const OUT: &str = "out";

pub struct UserTree<S> {
    username: String,
    store: Arc<S>,
    catalogue: Arc<ServiceCatalogue>,
    logged_in_at: OffsetDateTime,
}

/// Where a path points in the tree.
enum Place<'a> {
    Root,
    Out,
    Service(&'a str),
    /// Anything below a service folder or `out`.
    Inside,
}

fn place(path: &VirtualPath) -> Place<'_> {
    match path.components() {
        [] => Place::Root,
        [only] if only == OUT => Place::Out,
        [only] => Place::Service(only),
        _ => Place::Inside,
    }
}

fn not_found() -> FsError {
    FsError::NotFound("No such file or directory".into())
}

impl<S: Store> UserTree<S> {
    pub fn new(username: String, store: Arc<S>, catalogue: Arc<ServiceCatalogue>) -> Self {
        UserTree {
            username,
            store,
            catalogue,
            logged_in_at: OffsetDateTime::now_utc(),
        }
    }

    /// The services this user may see now: granted roles that name a catalogued service.
    async fn services(&self) -> FsResult<Vec<String>> {
        let roles = self.store.roles(&self.username).await.map_err(|error| {
            tracing::error!(%error, "reading roles failed");
            FsError::Unavailable("Temporarily unable to read your services".into())
        })?;
        Ok(roles
            .into_iter()
            .filter(|service| self.catalogue.contains(service))
            .collect())
    }

    fn folder(&self, name: &str, writable: bool) -> DirEntry {
        DirEntry {
            name: name.to_string(),
            kind: EntryKind::Directory,
            size: 0,
            modified: self.logged_in_at,
            writable,
        }
    }
}

impl<S: Store> Session for UserTree<S> {
    fn username(&self) -> &str {
        &self.username
    }

    async fn metadata(&self, path: &VirtualPath) -> FsResult<DirEntry> {
        match place(path) {
            Place::Root => Ok(self.folder("/", false)),
            Place::Out => Ok(self.folder(OUT, false)),
            Place::Service(name) if self.services().await?.iter().any(|s| s == name) => {
                Ok(self.folder(name, true))
            }
            Place::Service(_) | Place::Inside => Err(not_found()),
        }
    }

    async fn list(&self, path: &VirtualPath) -> FsResult<Vec<DirEntry>> {
        match place(path) {
            Place::Root => {
                let mut entries: Vec<DirEntry> = self
                    .services()
                    .await?
                    .iter()
                    .map(|service| self.folder(service, true))
                    .collect();
                entries.push(self.folder(OUT, false));
                Ok(entries)
            }
            // Uploads are processed (removed) at once, and /out holds no files yet.
            Place::Out => Ok(Vec::new()),
            Place::Service(_) => self.metadata(path).await.map(|_| Vec::new()),
            Place::Inside => Err(not_found()),
        }
    }

    async fn read(
        &self,
        _path: &VirtualPath,
        _offset: u64,
    ) -> FsResult<Box<dyn AsyncRead + Send + Unpin>> {
        Err(not_found())
    }

    async fn store(
        &self,
        path: &VirtualPath,
        _transfer_type: TransferType,
    ) -> FsResult<Box<dyn Upload>> {
        match place(&path.parent()) {
            Place::Service(name) if self.services().await?.iter().any(|s| s == name) => Err(
                FsError::Unavailable("Uploads are not accepted by this gateway yet".into()),
            ),
            _ => Err(FsError::NotAllowed(
                "Upload only into a service folder you hold a role for".into(),
            )),
        }
    }

    async fn delete(&self, _path: &VirtualPath) -> FsResult<()> {
        Err(not_found())
    }

    async fn make_dir(&self, _path: &VirtualPath) -> FsResult<()> {
        Err(FsError::NotAllowed("Cannot create folders here".into()))
    }

    async fn remove_dir(&self, _path: &VirtualPath) -> FsResult<()> {
        Err(FsError::NotAllowed("Cannot remove folders".into()))
    }
}
