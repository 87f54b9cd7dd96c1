//! Pure planning (no I/O): what a sync should do, decided from stored state and what a
//! server reported. The IMAP source (issue 4) executes these plans.

pub mod imap_sync;
pub mod mutf7;
