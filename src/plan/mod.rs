//! Pure planning (no I/O): what a sync or a replay should do, decided from stored
//! state and what a server reported. The IMAP source executes `imap_sync`, the POP3
//! source `pop3_sync`; replay maps folders with `folder_map` and decides per target
//! mailbox with `replay`; `retention` weighs holds and retention policies (what
//! has expired, and why the rest is kept).

pub mod compare;
pub mod folder_map;
pub mod imap_sync;
pub mod mutf7;
pub mod namespace;
pub mod pop3_sync;
pub mod replay;
pub mod retention;
