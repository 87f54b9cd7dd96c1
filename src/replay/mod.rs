//! Replay into another IMAP server (issue 6). So far: the target's side of folder
//! mapping — its folders as [`crate::plan::folder_map`] wants them, and creating the
//! missing ones. The ledger, APPEND and the commands come next.

pub mod target;
