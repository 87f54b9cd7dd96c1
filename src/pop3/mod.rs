//! The POP3 source: a small in-house tokio client (STLS, CAPA, PIPELINING), and a
//! pull that archives by UIDL, leaves mail on the server unless told otherwise, and
//! deletes only what is durably archived.

pub mod client;
mod error;
pub mod proto;
pub mod pull;

pub use client::Pop3Session;
pub use error::Pop3Error;
pub use pull::{dry_run, pull, DryRun, Identity, PlannedMessage, Pop3PullOptions};
