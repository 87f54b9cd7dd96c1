//! The replay ledger: per (target account, target mailbox, message, copy), what a
//! replay did — written before and after each APPEND so that reruns and crashes
//! never duplicate (the rules are in [`crate::plan::replay`]).

use std::collections::HashMap;

use super::{check_name, Archive, Result};
use crate::metastore::{Change, MetaBatch};
use crate::model::MessageId;
use crate::plan::replay::Ledger;
use crate::records::LedgerRecord;

/// One ledger write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub message: MessageId,
    pub copy: u32,
    pub state: Ledger,
}

impl Archive {
    /// Everything the ledger holds for one target mailbox (empty for a version-1
    /// archive opened read-only, which has no ledger).
    pub fn ledger(&self, target: &str, mailbox: &str) -> Result<HashMap<(MessageId, u32), LedgerRecord>> {
        Ok(self.meta.ledger(target, mailbox)?)
    }

    /// Writes `entries` for one target mailbox in one durable batch.
    pub fn ledger_write(&self, target: &str, mailbox: &str, entries: &[LedgerEntry], now: i64) -> Result<()> {
        check_name("replay target", target)?;
        check_name("mailbox", mailbox)?;
        if entries.is_empty() {
            return Ok(());
        }
        let mut batch = MetaBatch::default();
        for e in entries {
            batch.push(Change::Ledger {
                target: target.to_string(),
                mailbox: mailbox.to_string(),
                message: e.message,
                copy: e.copy,
                record: LedgerRecord {
                    state: e.state,
                    at: now,
                },
            });
        }
        self.commit(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTENT: Ledger = Ledger::Intent {
        uidvalidity: 9,
        uidnext: 3,
    };

    #[test]
    fn ledger_entries_read_back_per_target_mailbox() {
        let tmp = tempfile::tempdir().unwrap();
        let a = Archive::open_or_create(&tmp.path().join("a")).unwrap();
        let m = MessageId::of(b"m");
        let e = |copy, state| LedgerEntry {
            message: m,
            copy,
            state,
        };
        let appended = Ledger::Appended {
            uidvalidity: 9,
            uid: Some(3),
        };
        a.ledger_write("u@h:993", "INBOX", &[e(0, INTENT), e(1, INTENT)], 5)
            .unwrap();
        a.ledger_write("u@h:993", "INBOX", &[e(1, appended)], 6).unwrap();
        a.ledger_write("u@h:993", "INBOX.Sub", &[e(0, INTENT)], 7).unwrap();
        let inbox = a.ledger("u@h:993", "INBOX").unwrap();
        assert_eq!(inbox.len(), 2, "INBOX.Sub is not part of INBOX");
        assert_eq!(inbox[&(m, 0)].state, INTENT);
        assert_eq!(inbox[&(m, 1)], LedgerRecord { state: appended, at: 6 });
        assert!(a.ledger("u@h:143", "INBOX").unwrap().is_empty());
        assert!(a.ledger_write("u\0h", "INBOX", &[e(0, INTENT)], 1).is_err());
    }
}
