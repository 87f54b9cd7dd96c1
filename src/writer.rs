//! The single archive writer that network sources commit through. The archive is
//! owned by one thread; folder tasks (many, async) send it batches with their
//! placement changes and cursor advances, and read folder state through it. Each
//! commit is one durable write, so a cursor never runs ahead of stored messages.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::archive::{Archive, ArchiveError, ImapPlacement, IngestReport, Pop3Placements, SourceChanges};
use crate::model::{MessageId, RawMessage};
use crate::records::CursorRecord;

/// What the archive knows about one source folder.
#[derive(Clone, Debug, Default)]
pub struct FolderState {
    pub cursor: Option<CursorRecord>,
    pub imap: Vec<ImapPlacement>,
}

enum Request {
    FolderState {
        account: String,
        mailbox: String,
        reply: oneshot::Sender<Result<FolderState, ArchiveError>>,
    },
    Pop3Placements {
        account: String,
        mailbox: String,
        reply: oneshot::Sender<Result<Pop3Placements, ArchiveError>>,
    },
    Cursors {
        account: String,
        reply: oneshot::Sender<Result<Vec<(String, CursorRecord)>, ArchiveError>>,
    },
    GmailMessages {
        account: String,
        gm_ids: Vec<u64>,
        reply: oneshot::Sender<Result<Vec<Option<MessageId>>, ArchiveError>>,
    },
    Commit {
        batch: Vec<RawMessage>,
        changes: SourceChanges,
        reply: oneshot::Sender<Result<IngestReport, ArchiveError>>,
    },
}

/// A cheap, cloneable handle to the writer thread.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Request>,
}

/// A commit in flight: await it to learn whether (and what) it stored.
pub struct PendingCommit(oneshot::Receiver<Result<IngestReport, ArchiveError>>);

impl PendingCommit {
    pub async fn wait(self) -> Result<IngestReport, ArchiveError> {
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
    /// threads may read the archive meanwhile (the index follows it).
    pub fn spawn(archive: Arc<Archive>) -> (Writer, JoinHandle<()>) {
        // Two batches per folder task in flight at most; the channel bounds memory.
        let (tx, mut rx) = mpsc::channel::<Request>(8);
        let handle = std::thread::Builder::new()
            .name("archive-writer".into())
            .spawn(move || {
                while let Some(req) = rx.blocking_recv() {
                    match req {
                        Request::FolderState {
                            account,
                            mailbox,
                            reply,
                        } => {
                            let r = archive.cursor(&account, &mailbox).and_then(|cursor| {
                                Ok(FolderState {
                                    cursor,
                                    imap: archive.imap_placements(&account, &mailbox)?,
                                })
                            });
                            let _ = reply.send(r);
                        }
                        Request::Pop3Placements {
                            account,
                            mailbox,
                            reply,
                        } => {
                            let _ = reply.send(archive.pop3_placements(&account, &mailbox));
                        }
                        Request::Cursors { account, reply } => {
                            let _ = reply.send(archive.cursors(&account));
                        }
                        Request::GmailMessages { account, gm_ids, reply } => {
                            let _ = reply.send(archive.gmail_messages(&account, &gm_ids));
                        }
                        Request::Commit { batch, changes, reply } => {
                            let now = chrono::Utc::now().timestamp();
                            let _ = reply.send(archive.ingest_with(&batch, &changes, now));
                        }
                    }
                }
            })
            .expect("spawning the archive writer thread");
        (Writer { tx }, handle)
    }

    pub async fn folder_state(&self, account: &str, mailbox: &str) -> Result<FolderState, ArchiveError> {
        let (reply, rx) = oneshot::channel();
        let req = Request::FolderState {
            account: account.into(),
            mailbox: mailbox.into(),
            reply,
        };
        self.tx.send(req).await.map_err(|_| stopped())?;
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// The POP3 placements of a mailbox, by UIDL.
    pub async fn pop3_placements(&self, account: &str, mailbox: &str) -> Result<Pop3Placements, ArchiveError> {
        let (reply, rx) = oneshot::channel();
        let req = Request::Pop3Placements {
            account: account.into(),
            mailbox: mailbox.into(),
            reply,
        };
        self.tx.send(req).await.map_err(|_| stopped())?;
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Every folder cursor of `account`.
    pub async fn cursors(&self, account: &str) -> Result<Vec<(String, CursorRecord)>, ArchiveError> {
        let (reply, rx) = oneshot::channel();
        let req = Request::Cursors {
            account: account.into(),
            reply,
        };
        self.tx.send(req).await.map_err(|_| stopped())?;
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// The archived messages behind Gmail X-GM-MSGIDs of `account`.
    pub async fn gmail_messages(
        &self,
        account: &str,
        gm_ids: Vec<u64>,
    ) -> Result<Vec<Option<MessageId>>, ArchiveError> {
        let (reply, rx) = oneshot::channel();
        let req = Request::GmailMessages {
            account: account.into(),
            gm_ids,
            reply,
        };
        self.tx.send(req).await.map_err(|_| stopped())?;
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Queues a commit; the returned handle resolves once it is durable.
    pub async fn commit(&self, batch: Vec<RawMessage>, changes: SourceChanges) -> Result<PendingCommit, ArchiveError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Commit { batch, changes, reply })
            .await
            .map_err(|_| stopped())?;
        Ok(PendingCommit(rx))
    }
}
