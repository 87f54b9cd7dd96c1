//! The single archive writer that network sources commit through. The archive is
//! owned by one thread; folder tasks (many, async) send it tasks — batches with their
//! placement changes and cursor advances, and reads of folder state — which it runs
//! in order. Each commit is one durable write, so a cursor never runs ahead of
//! stored messages.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::archive::{Archive, ArchiveError, ImapPlacement, IngestReport, Pop3Placements, SourceChanges};
use crate::model::{MessageId, RawMessage, SourceKey};
use crate::records::{CursorRecord, TooLargeRecord};

/// What the archive knows about one source folder.
#[derive(Clone, Debug, Default)]
pub struct FolderState {
    pub cursor: Option<CursorRecord>,
    pub imap: Vec<ImapPlacement>,
    /// Messages recorded as over the maximum message size.
    pub too_large: Vec<(SourceKey, TooLargeRecord)>,
}

/// Work for the writer thread.
type Task = Box<dyn FnOnce(&Archive) + Send>;

/// A cheap, cloneable handle to the writer thread.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Task>,
    /// The archive's id maker, for sources that key placements by content.
    ids: crate::model::IdHasher,
}

/// A task in flight: await it for its result.
pub struct Pending<T>(oneshot::Receiver<Result<T, ArchiveError>>);

/// A commit in flight: await it to learn whether (and what) it stored.
pub type PendingCommit = Pending<IngestReport>;

impl<T> Pending<T> {
    pub async fn wait(self) -> Result<T, ArchiveError> {
        self.0.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> ArchiveError {
    ArchiveError::Io {
        path: std::path::PathBuf::from("<archive writer>"),
        source: std::io::Error::other("the archive writer thread stopped"),
    }
}

impl Writer {
    /// Starts the writer thread. It ends when every [`Writer`] is dropped; other
    /// threads may read the archive meanwhile.
    pub fn spawn(archive: Arc<Archive>) -> (Writer, JoinHandle<()>) {
        // A few tasks per folder task in flight at most; the channel bounds memory.
        let (tx, mut rx) = mpsc::channel::<Task>(8);
        let ids = archive.ids().clone();
        let handle = std::thread::Builder::new()
            .name("archive-writer".into())
            .spawn(move || {
                while let Some(task) = rx.blocking_recv() {
                    task(&archive);
                }
            })
            .expect("spawning the archive writer thread");
        (Writer { tx, ids }, handle)
    }

    /// How the archive makes message ids: sources build messages with it.
    pub fn ids(&self) -> &crate::model::IdHasher {
        &self.ids
    }

    /// Queues `f` to run on the writer thread.
    async fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Archive) -> Result<T, ArchiveError> + Send + 'static,
    ) -> Result<Pending<T>, ArchiveError> {
        let (reply, rx) = oneshot::channel();
        let task: Task = Box::new(move |a| {
            let _ = reply.send(f(a));
        });
        self.tx.send(task).await.map_err(|_| stopped())?;
        Ok(Pending(rx))
    }

    pub async fn folder_state(&self, account: &str, mailbox: &str) -> Result<FolderState, ArchiveError> {
        let (account, mailbox) = (account.to_string(), mailbox.to_string());
        self.submit(move |a| {
            Ok(FolderState {
                cursor: a.cursor(&account, &mailbox)?,
                imap: a.imap_placements(&account, &mailbox)?,
                too_large: a.too_large(&account, &mailbox)?,
            })
        })
        .await?
        .wait()
        .await
    }

    /// The POP3 placements of a mailbox, by UIDL.
    pub async fn pop3_placements(&self, account: &str, mailbox: &str) -> Result<Pop3Placements, ArchiveError> {
        let (account, mailbox) = (account.to_string(), mailbox.to_string());
        self.submit(move |a| a.pop3_placements(&account, &mailbox))
            .await?
            .wait()
            .await
    }

    /// The messages of a mailbox recorded as over the maximum message size.
    pub async fn too_large(
        &self,
        account: &str,
        mailbox: &str,
    ) -> Result<Vec<(SourceKey, TooLargeRecord)>, ArchiveError> {
        let (account, mailbox) = (account.to_string(), mailbox.to_string());
        self.submit(move |a| a.too_large(&account, &mailbox))
            .await?
            .wait()
            .await
    }

    /// Every folder cursor of `account`.
    pub async fn cursors(&self, account: &str) -> Result<Vec<(String, CursorRecord)>, ArchiveError> {
        let account = account.to_string();
        self.submit(move |a| a.cursors(&account)).await?.wait().await
    }

    /// The archived messages behind Gmail X-GM-MSGIDs of `account`.
    pub async fn gmail_messages(
        &self,
        account: &str,
        gm_ids: Vec<u64>,
    ) -> Result<Vec<Option<MessageId>>, ArchiveError> {
        let account = account.to_string();
        self.submit(move |a| a.gmail_messages(&account, &gm_ids))
            .await?
            .wait()
            .await
    }

    /// Compacts the archive on the writer thread (commits wait meanwhile).
    pub async fn compact(&self) -> Result<crate::archive::CompactReport, ArchiveError> {
        self.submit(|a| a.compact(|_, _| {})).await?.wait().await
    }

    /// Queues a commit; the returned handle resolves once it is durable.
    pub async fn commit(&self, batch: Vec<RawMessage>, changes: SourceChanges) -> Result<PendingCommit, ArchiveError> {
        self.submit(move |a| a.ingest_with(&batch, &changes, chrono::Utc::now().timestamp()))
            .await
    }
}
