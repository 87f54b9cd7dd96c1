//! What the web server reads: the archive and its search index, opened read-only
//! and opened again when the archive's sequence hint moves (a pull or import ran
//! meanwhile), so readers see new mail without a restart; the readers file, read
//! at each request (a removed user or revoked token stops at once); and the access
//! log every read is recorded in first; and, briefly, the archive for writing when an
//! admin places or releases a hold. Everything here blocks: the handlers call
//! it on tokio's blocking threads.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::access::{self, Access, Action};
use crate::archive::sealing::ArchiveSecret;
use crate::archive::{layout, Archive};
use crate::index::MessageIndex;
use crate::model::MessageId;
use crate::readers::store::ReaderStore;
use crate::readers::Principal;

use super::error::WebError;

/// The archive and index as of one sequence number.
pub struct Snapshot {
    pub archive: Archive,
    pub index: MessageIndex,
    seq: Option<u64>,
    folders: std::sync::OnceLock<Vec<super::overview::FolderLine>>,
}

impl Snapshot {
    /// Every folder counted, once for this snapshot (the overview's table).
    pub fn folders(&self) -> Result<&[super::overview::FolderLine], WebError> {
        if let Some(f) = self.folders.get() {
            return Ok(f);
        }
        let counted = super::overview::count_folders(self)?;
        Ok(self.folders.get_or_init(|| counted))
    }
}

pub struct Library {
    dir: PathBuf,
    secret: Option<ArchiveSecret>,
    readers: ReaderStore,
    current: Mutex<Option<Arc<Snapshot>>>,
    /// The archive as this process already holds it for writing (`serve --web`).
    writer: Option<Arc<Archive>>,
}

impl Library {
    /// The archive at `dir`, checked now (it and its index open); `secret` unlocks
    /// it when it is encrypted (unlocked once by the caller).
    pub fn open(dir: &Path, secret: Option<ArchiveSecret>) -> Result<Library, WebError> {
        let lib = Library::later(dir, secret);
        lib.snapshot()?;
        Ok(lib)
    }

    /// The archive at `dir`, opened at the first request (`serve --web`: the
    /// service may not have built the index yet when the server starts).
    pub fn later(dir: &Path, secret: Option<ArchiveSecret>) -> Library {
        let key = match &secret {
            Some(ArchiveSecret::Unlocked(u)) => Some(u.keys().secrets_key()),
            _ => None,
        };
        Library {
            dir: dir.to_path_buf(),
            secret,
            readers: ReaderStore::for_archive(dir, key),
            current: Mutex::new(None),
            writer: None,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn readers(&self) -> &ReaderStore {
        &self.readers
    }

    /// The archive and index, opened again when the archive moved on since.
    pub fn snapshot(&self) -> Result<Arc<Snapshot>, WebError> {
        let seq = layout::read_seq_hint(&self.dir);
        let mut cur = self.current.lock().expect("library lock");
        if let Some(s) = cur.as_ref().filter(|s| s.seq == seq) {
            return Ok(s.clone());
        }
        let archive = Archive::open_read_only_secret(&self.dir, self.secret.clone())?;
        let mut index = MessageIndex::open_read_only(&self.dir, archive.index_key())?;
        crate::retention::prepare_index(&archive, &mut index, crate::retention::TagScope::All)?;
        let s = Arc::new(Snapshot {
            archive,
            index,
            seq,
            folders: std::sync::OnceLock::new(),
        });
        *cur = Some(s.clone());
        Ok(s)
    }

    /// Forgets the snapshot, so the next read opens the archive again (after a
    /// change of its holds, which the index's `is:held` must see).
    pub fn invalidate(&self) {
        *self.current.lock().expect("library lock") = None;
    }

    /// Changes go through `archive`, which this process already holds open for
    /// writing (the service of `serve --web`).
    pub fn write_through(&mut self, archive: Arc<Archive>) {
        self.writer = Some(archive);
    }

    /// The archive for writing, for one change (a hold placed or released): the
    /// process's own when it has one; else opened for the change and let go at once,
    /// so `mailvault` commands and pulls can write between requests (busy while
    /// another process writes).
    pub fn writable(&self) -> Result<Arc<Archive>, WebError> {
        if let Some(w) = &self.writer {
            return Ok(w.clone());
        }
        Ok(Arc::new(Archive::open_with(
            &self.dir,
            false,
            crate::archive::ArchiveConfig {
                secret: self.secret.clone(),
                ..crate::archive::ArchiveConfig::default()
            },
        )?))
    }

    /// Records a read by `who` before it is done; a read that cannot be recorded is
    /// refused.
    pub fn record(
        &self,
        snap: &Snapshot,
        who: &Principal,
        action: Action,
        query: Option<&str>,
        ids: &[MessageId],
        count: u64,
    ) -> Result<(), WebError> {
        let user = who.logged_as();
        access::record(
            &self.dir,
            snap.archive.access_log_key(),
            &Access {
                user: &user,
                action,
                query,
                ids,
                count,
            },
        )?;
        Ok(())
    }
}
