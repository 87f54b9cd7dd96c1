//! Local sources: mbox files, maildirs and `.eml` files, found under the paths a user
//! names and delivered one [`RawMessage`] at a time to a sink (ripgrep's `Sink`
//! shape), never a whole mailbox in memory.

pub mod maildir;
pub mod mbox;
mod walk;

use std::path::PathBuf;

use thiserror::Error;

use crate::model::RawMessage;
pub use mbox::MboxFormat;
pub use walk::read_paths;

/// How local files are turned into placements.
#[derive(Clone, Debug)]
pub struct LocalOptions {
    /// Account name recorded on every placement.
    pub account: String,
    /// Put every message in this folder instead of the one derived from the path.
    pub folder: Option<String>,
    pub mbox_format: MboxFormat,
    /// Follow symbolic links met inside the directories named (loops are detected and
    /// reported). Off by default: a link is reported as skipped. Paths named by the
    /// user are always followed.
    pub follow_symlinks: bool,
    /// Import a file named by the user even when it has no header section (it
    /// does not look like mail); without it such a file is refused.
    pub force: bool,
    /// The archive's id maker (keyed in an encrypted archive); importing into an
    /// archive sets it from the archive.
    pub ids: crate::model::IdHasher,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            account: "local".into(),
            folder: None,
            mbox_format: MboxFormat::Mboxrd,
            follow_symlinks: false,
            force: false,
            ids: crate::model::IdHasher::plain(),
        }
    }
}

/// What a source reports besides messages.
#[derive(Debug)]
pub enum Event {
    Message(RawMessage),
    /// A file that was not imported, and why (not mail, empty, unreadable).
    Skipped {
        path: PathBuf,
        reason: String,
    },
    /// A file the user named that was not imported: an error of the command.
    Refused {
        path: PathBuf,
        reason: String,
    },
    /// Imported, but worth telling (e.g. an mbox without a final newline).
    Warning {
        path: PathBuf,
        message: String,
    },
}

/// The sink asked to stop (e.g. the archive failed); not an error of the source.
#[derive(Debug)]
pub struct Stop;

#[derive(Debug, Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no such file or directory")]
    Missing { path: PathBuf },
    #[error("stopped by the archive")]
    Stopped,
}

impl From<Stop> for SourceError {
    fn from(_: Stop) -> Self {
        SourceError::Stopped
    }
}
