//! Pure planning (no I/O): what a sync should do, decided from stored state and what a
//! server reported. The IMAP source executes `imap_sync`; the POP3 source (issue 5)
//! will execute `pop3_sync`.

pub mod imap_sync;
pub mod mutf7;
pub mod pop3_sync;
