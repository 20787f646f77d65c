//! A logged-in user's virtual tree (SPEC §3): one folder per service the user holds a role
//! for, plus `out`. Roles are read on every look at the root, so folders appear and vanish
//! as roles change.
//!
//! - `STOR /<service>/<name>` makes a transaction named `<name>`; the file is never listed.
//! - `MKD /<service>/<txid>`, `MKD /<service>/<txid>/in`, `STOR /<service>/<txid>/in/<file>`
//!   makes a transaction named `<txid>`. These folders exist only in this session, until the
//!   upload into them.
//! - `/out` holds the user's status and response files: read, list and delete only.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use mftgw_blobs::{BlobStore, BlobWriter};
use mftgw_domain::catalogue::ServiceCatalogue;
use mftgw_domain::record_format::RecordCheck;
use mftgw_domain::transaction::check_transaction_id;
use mftgw_domain::{AccountId, Cvr, Mailbox, ServiceName, TransferMode, Username};
use mftgw_ftps::{
    BoxFuture, DirEntry, EntryKind, FsError, FsResult, Session, TransferType, Upload, VirtualPath,
};
use mftgw_store::{OutFileEntry, Store, StoreError};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite};

use super::quota::{Allowance, UploadsInFlight};
use super::sessions::{Grant, Registration};
use mftgw_core::transactions::{Committed, ReadError, Transactions, UploadTarget};

pub const OUT: &str = "out";
const IN: &str = "in";

/// What one user may put into the gateway.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    /// The largest upload.
    pub max_upload_bytes: u64,
    /// The most bytes of one user's uploads that may wait for delivery (a backend that is
    /// down must not let one user fill the gateway's disk).
    pub max_pending_bytes: u64,
    /// Transaction folders (`MKD /<service>/<txid>`) one session may hold open.
    pub max_transaction_folders: usize,
}

/// Where the service folders and `out` are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The FTPS Gateway's: the session starts at `/`, which holds the service folders and
    /// `out`.
    Root,
    /// The legacy Secure FTP's for a company's certificate: the session starts in
    /// `/<account>` (e.g. `/RID_60134540`), which holds the service folders; the company's
    /// `out` is one level up, beside it.
    LoginFolder,
    /// The legacy Secure FTP's for a personal certificate: the session starts in
    /// `/<account>` (`/PID_…`), which holds the service folders and the person's `out`.
    PersonalFolder,
}

/// The gateway user a session belongs to.
#[derive(Debug, Clone)]
pub struct TreeOwner {
    pub username: Username,
    /// The `/out` the session sees, and where its uploads are reported.
    pub mailbox: Mailbox,
    pub layout: Layout,
    /// `None` for a person.
    pub cvr: Option<Cvr>,
    pub account: AccountId,
}

/// Transaction folders made with `MKD` in this session, by (service, txid): whether `in`
/// has been made inside.
type TransactionFolders = Arc<Mutex<BTreeMap<(String, String), bool>>>;

pub struct UserTree<S, B> {
    owner: TreeOwner,
    transactions: Arc<Transactions<S, B>>,
    catalogue: Arc<ServiceCatalogue>,
    logged_in_at: OffsetDateTime,
    folders: TransactionFolders,
    /// The session's place among the live sessions, and its authorisation.
    registration: Registration,
    limits: UploadLimits,
    uploads: Arc<UploadsInFlight>,
}

/// Where a path points in the tree.
enum Place<'a> {
    /// The folder of the service folders: `/`, or the login folder.
    Root,
    /// `/` in the legacy layouts: the login folder (and beside it a company's `out`).
    Top,
    Out,
    OutFile(&'a str),
    Service(&'a str),
    /// `/<service>/<name>`: an upload target, or a transaction folder.
    InService(&'a str, &'a str),
    /// `/<service>/<txid>/in`.
    InFolder(&'a str, &'a str),
    /// `/<service>/<txid>/in/<file>`.
    InInFolder(&'a str, &'a str),
    Elsewhere,
}

/// Where `components`, relative to the folder of the service folders, point.
fn place_in(components: &[String]) -> Place<'_> {
    match components {
        [] => Place::Root,
        [out] if out == OUT => Place::Out,
        [out, name] if out == OUT => Place::OutFile(name),
        [service] => Place::Service(service),
        [out, ..] if out == OUT => Place::Elsewhere,
        [service, name] => Place::InService(service, name),
        [service, txid, inbox] if inbox == IN => Place::InFolder(service, txid),
        [service, txid, inbox, _] if inbox == IN => Place::InInFolder(service, txid),
        _ => Place::Elsewhere,
    }
}

fn not_found() -> FsError {
    FsError::NotFound("No such file or directory".into())
}

fn unavailable(error: StoreError) -> FsError {
    tracing::error!(%error, "store unavailable");
    FsError::Unavailable("Temporarily unable to reach the gateway's storage".into())
}

fn upload_refused() -> FsError {
    FsError::NotAllowed("Upload only into a service folder you hold a role for".into())
}

impl<S: Store, B: BlobStore> UserTree<S, B> {
    fn place<'a>(&self, path: &'a VirtualPath) -> Place<'a> {
        let components = path.components();
        match self.owner.layout {
            Layout::Root => place_in(components),
            Layout::LoginFolder => match components {
                [] => Place::Top,
                [out, ..] if out == OUT => place_in(components),
                [home, rest @ ..] if home == self.owner.account.as_str() => match rest {
                    [first, ..] if first == OUT => Place::Elsewhere,
                    _ => place_in(rest),
                },
                _ => Place::Elsewhere,
            },
            Layout::PersonalFolder => match components {
                [] => Place::Top,
                [home, rest @ ..] if home == self.owner.account.as_str() => place_in(rest),
                _ => Place::Elsewhere,
            },
        }
    }

    pub fn new(
        owner: TreeOwner,
        transactions: Arc<Transactions<S, B>>,
        catalogue: Arc<ServiceCatalogue>,
        registration: Registration,
        limits: UploadLimits,
        uploads: Arc<UploadsInFlight>,
    ) -> Self {
        UserTree {
            owner,
            transactions,
            catalogue,
            logged_in_at: OffsetDateTime::now_utc(),
            folders: Arc::default(),
            registration,
            limits,
            uploads,
        }
    }

    /// The services this user may see now: granted roles that name a catalogued service
    /// taking files.
    async fn services(&self) -> FsResult<Vec<ServiceName>> {
        let roles = self
            .transactions
            .roles(&self.owner.username)
            .await
            .map_err(unavailable)?;
        Ok(roles
            .into_iter()
            .filter(|service| self.catalogue.takes_files(service.as_str()))
            .collect())
    }

    /// The service of the folder `name`, if this user may use it now.
    async fn held_service(&self, name: &str) -> FsResult<Option<ServiceName>> {
        Ok(self.services().await?.into_iter().find(|held| held == name))
    }

    async fn holds_role(&self, service: &str) -> FsResult<bool> {
        Ok(self.held_service(service).await?.is_some())
    }

    /// Whether `/<service>/<txid>` (and, with `inbox`, its `in`) was made in this session.
    fn folder_exists(&self, service: &str, txid: &str, inbox: bool) -> bool {
        let folders = self.folders.lock().expect("folder lock poisoned");
        folders
            .get(&(service.to_owned(), txid.to_owned()))
            .is_some_and(|has_in| !inbox || *has_in)
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

    async fn start_upload(
        &self,
        service: &str,
        name: &str,
        transfer_type: TransferType,
        folder: Option<(String, String)>,
    ) -> FsResult<Box<dyn Upload>> {
        let Some(service) = self.held_service(service).await? else {
            return Err(upload_refused());
        };
        let name = check_transaction_id(service.as_str(), name)
            .map_err(|error| FsError::BadName(error.to_string()))?;
        // Side by side: both wait on other threads, and the quota is rarely reached.
        let (pending, writer) = tokio::join!(
            self.transactions.pending_upload_bytes(&self.owner.username),
            self.transactions.create_blob()
        );
        let pending = pending.map_err(unavailable)?;
        let limits = self.limits;
        let allowance = self.uploads.start(
            self.owner.username.as_str(),
            pending,
            limits.max_upload_bytes,
            limits.max_pending_bytes,
        );
        allowance
            .admit(1)
            .map_err(|error| FsError::LimitExceeded(error.to_string()))?;
        let writer = writer.map_err(|error| {
            tracing::error!(%error, "cannot start a blob");
            FsError::Unavailable("Temporarily unable to store files".into())
        })?;
        Ok(Box::new(GatewayUpload {
            writer,
            check: self.transactions.record_check(&service),
            target: UploadTarget {
                username: self.owner.username.clone(),
                mailbox: self.owner.mailbox.clone(),
                cvr: self.owner.cvr.clone(),
                account: self.owner.account.clone(),
                service,
                name,
                transfer_type: match transfer_type {
                    TransferType::Ascii => TransferMode::Ascii,
                    TransferType::Binary => TransferMode::Binary,
                },
            },
            transactions: Arc::clone(&self.transactions),
            folder: folder.map(|key| (Arc::clone(&self.folders), key)),
            allowance,
            grant: Arc::clone(&self.registration.grant),
        }))
    }
}

fn out_file_entry(entry: OutFileEntry) -> DirEntry {
    DirEntry {
        name: entry.name,
        kind: EntryKind::File,
        size: entry.size,
        modified: entry.created_at,
        writable: true,
    }
}

impl<S: Store, B: BlobStore> Session for UserTree<S, B> {
    fn username(&self) -> &str {
        self.owner.username.as_str()
    }

    fn home(&self) -> VirtualPath {
        match self.owner.layout {
            Layout::Root => VirtualPath::root(),
            // An account is one path segment of letters, digits, `_` and `-`: it resolves.
            Layout::LoginFolder | Layout::PersonalFolder => VirtualPath::root()
                .resolve(self.owner.account.as_str())
                .unwrap_or_default(),
        }
    }

    async fn metadata(&self, path: &VirtualPath) -> FsResult<DirEntry> {
        match self.place(path) {
            Place::Top => Ok(self.folder("/", false)),
            Place::Root if self.owner.layout != Layout::Root => {
                Ok(self.folder(self.owner.account.as_str(), false))
            }
            Place::Root => Ok(self.folder("/", false)),
            Place::Out => Ok(self.folder(OUT, false)),
            Place::OutFile(name) => match self
                .transactions
                .mailbox_entry(&self.owner.mailbox, name)
                .await
                .map_err(unavailable)?
            {
                Some(entry) => Ok(out_file_entry(entry)),
                None => Err(not_found()),
            },
            Place::Service(service) if self.holds_role(service).await? => {
                Ok(self.folder(service, true))
            }
            Place::InService(service, txid) if self.folder_exists(service, txid, false) => {
                Ok(self.folder(txid, true))
            }
            Place::InFolder(service, txid) if self.folder_exists(service, txid, true) => {
                Ok(self.folder(IN, true))
            }
            _ => Err(not_found()),
        }
    }

    async fn list(&self, path: &VirtualPath) -> FsResult<Vec<DirEntry>> {
        match self.place(path) {
            Place::Top => {
                let mut entries = vec![self.folder(self.owner.account.as_str(), false)];
                if self.owner.layout == Layout::LoginFolder {
                    entries.push(self.folder(OUT, false));
                }
                Ok(entries)
            }
            Place::Root => {
                let mut entries: Vec<DirEntry> = self
                    .services()
                    .await?
                    .iter()
                    .map(|service| self.folder(service.as_str(), true))
                    .collect();
                if self.owner.layout != Layout::LoginFolder {
                    entries.push(self.folder(OUT, false));
                }
                Ok(entries)
            }
            Place::Out => Ok(self
                .transactions
                .mailbox(&self.owner.mailbox)
                .await
                .map_err(unavailable)?
                .into_iter()
                .map(out_file_entry)
                .collect()),
            // Uploads are processed (removed) at once; only this session's transaction
            // folders can be seen here.
            Place::Service(service) if self.holds_role(service).await? => {
                let folders = self.folders.lock().expect("folder lock poisoned");
                Ok(folders
                    .keys()
                    .filter(|(folder_service, _)| folder_service == service)
                    .map(|(_, txid)| self.folder(txid, true))
                    .collect())
            }
            Place::InService(service, txid) if self.folder_exists(service, txid, false) => {
                Ok(if self.folder_exists(service, txid, true) {
                    vec![self.folder(IN, true)]
                } else {
                    Vec::new()
                })
            }
            Place::InFolder(service, txid) if self.folder_exists(service, txid, true) => {
                Ok(Vec::new())
            }
            _ => Err(not_found()),
        }
    }

    async fn read(
        &self,
        path: &VirtualPath,
        offset: u64,
    ) -> FsResult<Box<dyn AsyncRead + Send + Unpin>> {
        let Place::OutFile(name) = self.place(path) else {
            return Err(not_found());
        };
        match self
            .transactions
            .read_mailbox_file(&self.owner.mailbox, name, offset)
            .await
        {
            Ok(Some(reader)) => Ok(reader),
            Ok(None) => Err(not_found()),
            Err(ReadError::Store(error)) => Err(unavailable(error)),
            Err(ReadError::Body { .. }) => Err(FsError::Unavailable(
                "Temporarily unable to read the file".into(),
            )),
        }
    }

    async fn store(
        &self,
        path: &VirtualPath,
        transfer_type: TransferType,
    ) -> FsResult<Box<dyn Upload>> {
        match self.place(path) {
            Place::InService(service, name) => {
                // An upload named like a transaction folder of this session takes its place.
                let folder = (service.to_owned(), name.to_owned());
                self.start_upload(service, name, transfer_type, Some(folder))
                    .await
            }
            Place::InInFolder(service, txid) if self.folder_exists(service, txid, true) => {
                let folder = (service.to_owned(), txid.to_owned());
                self.start_upload(service, txid, transfer_type, Some(folder))
                    .await
            }
            Place::Out | Place::OutFile(_) => Err(FsError::NotAllowed(
                "/out is read-only: download and delete files there".into(),
            )),
            _ => Err(upload_refused()),
        }
    }

    async fn delete(&self, path: &VirtualPath) -> FsResult<()> {
        let Place::OutFile(name) = self.place(path) else {
            return Err(FsError::NotAllowed(
                "Only files in /out can be deleted".into(),
            ));
        };
        if self
            .transactions
            .delete_mailbox_file(&self.owner.mailbox, name)
            .await
            .map_err(unavailable)?
        {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    async fn make_dir(&self, path: &VirtualPath) -> FsResult<()> {
        let exists = || FsError::NotAllowed("Folder already exists".into());
        match self.place(path) {
            Place::InService(service, txid) if self.holds_role(service).await? => {
                check_transaction_id(service, txid)
                    .map_err(|error| FsError::BadName(error.to_string()))?;
                let mut folders = self.folders.lock().expect("folder lock poisoned");
                let max = self.limits.max_transaction_folders;
                if folders.len() >= max {
                    return Err(FsError::LimitExceeded(format!(
                        "At most {max} transaction folders per session: upload into them or remove some"
                    )));
                }
                match folders.entry((service.to_owned(), txid.to_owned())) {
                    std::collections::btree_map::Entry::Occupied(_) => Err(exists()),
                    std::collections::btree_map::Entry::Vacant(vacant) => {
                        vacant.insert(false);
                        Ok(())
                    }
                }
            }
            Place::InFolder(service, txid) if self.folder_exists(service, txid, false) => {
                let mut folders = self.folders.lock().expect("folder lock poisoned");
                let has_in = folders
                    .get_mut(&(service.to_owned(), txid.to_owned()))
                    .ok_or_else(not_found)?;
                if std::mem::replace(has_in, true) {
                    return Err(exists());
                }
                Ok(())
            }
            _ => Err(FsError::NotAllowed(
                "Folders can be made only as /<service>/<transaction id>/in".into(),
            )),
        }
    }

    fn revoked(&self) -> impl std::future::Future<Output = ()> + Send {
        self.registration.grant.revoked()
    }

    async fn remove_dir(&self, path: &VirtualPath) -> FsResult<()> {
        let mut folders = self.folders.lock().expect("folder lock poisoned");
        match self.place(path) {
            Place::InFolder(service, txid) => {
                match folders.get_mut(&(service.to_owned(), txid.to_owned())) {
                    Some(has_in) if *has_in => {
                        *has_in = false;
                        Ok(())
                    }
                    _ => Err(not_found()),
                }
            }
            Place::InService(service, txid) => {
                let key = (service.to_owned(), txid.to_owned());
                match folders.get(&key) {
                    Some(false) => {
                        folders.remove(&key);
                        Ok(())
                    }
                    Some(true) => Err(FsError::NotAllowed("Folder is not empty".into())),
                    None => Err(not_found()),
                }
            }
            _ => Err(FsError::NotAllowed("Cannot remove folders".into())),
        }
    }
}

/// An upload streaming into the blob store; committing it makes the transaction.
struct GatewayUpload<S, B: BlobStore> {
    writer: B::Writer,
    /// The service's record format check (eKapital Classic), fed what the blob accepted.
    check: Option<RecordCheck>,
    target: UploadTarget,
    transactions: Arc<Transactions<S, B>>,
    /// The transaction folder this upload is for, which vanishes with the upload.
    folder: Option<(TransactionFolders, (String, String))>,
    allowance: Allowance,
    /// The session's authorisation: an upload of a session ended meanwhile is not committed.
    grant: Arc<Grant>,
}

impl<S: Store, B: BlobStore> Upload for GatewayUpload<S, B> {
    fn commit(self: Box<Self>) -> BoxFuture<'static, FsResult<String>> {
        Box::pin(async move {
            let GatewayUpload {
                writer,
                check,
                target,
                transactions,
                folder,
                grant,
                // Counted as under way until the commit counts it as waiting.
                allowance: _under_way,
            } = *self;
            if grant.is_revoked() {
                return Err(FsError::NotAllowed(
                    "The session was ended by the gateway; nothing was stored".into(),
                ));
            }
            let blob = writer.finish().await.map_err(|error| {
                tracing::error!(%error, "finishing an upload's blob failed");
                FsError::Unavailable("the file could not be stored; send it again".into())
            })?;
            let refusal =
                check.and_then(|check| check.finish(target.transfer_type == TransferMode::Ascii));
            let committed = transactions
                .commit_upload(&target, blob, refusal)
                .await
                .map_err(|error| {
                    tracing::error!(%error, "recording a transaction failed");
                    FsError::Unavailable(
                        "the transaction could not be recorded; send it again".into(),
                    )
                })?;
            if let Some((folders, key)) = folder {
                folders.lock().expect("folder lock poisoned").remove(&key);
            }
            Ok(match committed {
                Committed::Transaction {
                    skat_transaction_id,
                } => format!("Transfer complete: transaction {skat_transaction_id}"),
                Committed::NameReused {
                    status_file: Some(status_file),
                } => format!(
                    "Transfer complete, but the name was used before and is not accepted: see /out/{status_file}"
                ),
                Committed::NameReused { status_file: None } => "Transfer complete, but the name was used before and is not accepted; the earlier transaction's status_0 in /out stays as it was".to_string(),
            })
        })
    }

    fn abort(self: Box<Self>) -> BoxFuture<'static, ()> {
        // Dropping the writer discards what it received.
        Box::pin(async move { drop(self) })
    }
}

impl<S: Store, B: BlobStore> AsyncWrite for GatewayUpload<S, B> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if let Err(error) = this.allowance.admit(buf.len() as u64) {
            return Poll::Ready(Err(error));
        }
        let poll = Pin::new(&mut this.writer).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = &poll {
            this.allowance.written(*written as u64);
            if let Some(check) = &mut this.check {
                check.update(&buf[..*written]);
            }
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}
