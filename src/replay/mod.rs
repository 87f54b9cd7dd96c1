//! Replay into another IMAP server (issue 6): folders mapped and created
//! ([`target`]), messages appended pipelined ([`append`], wire format in [`wire`]),
//! pending intents resolved by looking on the target ([`resolve`]), all driven per
//! target mailbox by [`run`] with the archive's replay ledger; two accounts compared
//! by [`compare`].

pub mod append;
pub mod compare;
pub mod resolve;
pub mod run;
pub mod target;
pub mod wire;
