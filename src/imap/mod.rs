//! The IMAP source: connect securely, list folders, and sync each folder
//! incrementally (UIDVALIDITY/UID cursor, CONDSTORE/QRESYNC for flags and expunges)
//! into the archive. Protocol parsing is async-imap's (over tokio); what to do per
//! folder is decided by the pure planner in [`crate::plan::imap_sync`].

pub mod caps;
pub mod connect;
mod error;
pub mod folders;
pub mod namespace;
pub mod pull;
pub mod sync;

pub use connect::ServerCaps;
pub use error::ImapError;
pub use folders::Folder;
pub use pull::{pull, PullOptions};
