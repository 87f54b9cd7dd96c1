//! What a replay into one target mailbox should do, decided from the messages to
//! replay and the replay ledger — a pure function, tested by a table and a property.
//!
//! The ledger holds, per (target, target mailbox, message, copy), what was done: an
//! *intent* written before APPEND, then *appended* (with the APPENDUID when the target
//! has UIDPLUS) or *present* (found on the target when a pending intent was resolved).
//! `copy` numbers byte-identical messages within one source folder (0, 1, …), so two
//! identical messages are both replayed and neither is taken for the other.
//!
//! ```text
//! 1. No ledger entry: append (write the intent first).
//! 2. Appended or present under the mailbox's current UIDVALIDITY: nothing to do.
//! 3. Appended or present under another UIDVALIDITY (the target mailbox was deleted
//!    and recreated since), or an intent without an outcome (a crash between the
//!    intent and recording the APPEND): resolve by looking on the target — for an
//!    intent under the current UIDVALIDITY, the messages from its UIDNEXT on (sizes
//!    first, then the bodies of those of a wanted size); otherwise a search by
//!    Message-ID and size. Candidates' BLAKE3 is compared with the message's. What
//!    is found counts as present; the rest is appended.
//! 4. Resolution counts copies: with n copies of a message to place and k found on
//!    the target (bytes equal), the first min(n, k) copies are present and the others
//!    appended — never more appended than are missing.
//! ```

use std::collections::HashMap;

use crate::model::MessageId;

/// One message to place in the target mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub message: MessageId,
    /// Which of the byte-identical copies in the source folder this is (0, 1, …).
    pub copy: u32,
}

/// What the ledger records for one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ledger {
    /// APPEND is (or was) about to be sent; the outcome is not recorded. The
    /// mailbox's UIDVALIDITY and UIDNEXT just before: if the message got there, it
    /// has a UID from `uidnext` on, so resolving need only look at those.
    Intent { uidvalidity: u32, uidnext: u32 },
    /// APPEND succeeded in the mailbox with this UIDVALIDITY (UID when UIDPLUS said).
    Appended { uidvalidity: u32, uid: Option<u32> },
    /// Found on the target while resolving (bytes compared).
    Present { uidvalidity: u32, uid: Option<u32> },
}

/// The plan for one target mailbox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Items to APPEND, in order.
    pub append: Vec<Item>,
    /// Messages to look for on the target first, with the copies in question (step 3).
    pub resolve: Vec<(MessageId, Vec<u32>)>,
    /// Items the ledger shows on the target already.
    pub present: usize,
}

/// Plans one mailbox. `uidvalidity` is the target mailbox's current one (`None` when
/// it does not exist yet, so nothing recorded can be in it).
pub fn plan(items: &[Item], ledger: &HashMap<(MessageId, u32), Ledger>, uidvalidity: Option<u32>) -> Plan {
    let mut p = Plan::default();
    let mut resolve: HashMap<MessageId, Vec<u32>> = HashMap::new();
    let mut order: Vec<MessageId> = Vec::new();
    for it in items {
        match ledger.get(&(it.message, it.copy)) {
            // 1.
            None => p.append.push(it.clone()),
            // 2.
            Some(Ledger::Appended { uidvalidity: v, .. } | Ledger::Present { uidvalidity: v, .. })
                if Some(*v) == uidvalidity =>
            {
                p.present += 1
            }
            // 3.
            Some(_) if uidvalidity.is_none() => p.append.push(it.clone()),
            Some(_) => {
                let copies = resolve.entry(it.message).or_insert_with(|| {
                    order.push(it.message);
                    Vec::new()
                });
                copies.push(it.copy);
            }
        }
    }
    p.resolve = order
        .into_iter()
        .map(|m| {
            let mut c = resolve.remove(&m).unwrap_or_default();
            c.sort_unstable();
            (m, c)
        })
        .collect();
    p
}

/// Step 4: of `copies` in question, with `found` equal messages on the target that no
/// other ledger entry accounts for, which are present and which must be appended.
pub fn settle(copies: &[u32], found: usize) -> (Vec<u32>, Vec<u32>) {
    let k = found.min(copies.len());
    (copies[..k].to_vec(), copies[k..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u8) -> MessageId {
        MessageId::of(&[n])
    }
    fn item(n: u8, copy: u32) -> Item {
        Item { message: id(n), copy }
    }

    #[test]
    fn plan_table() {
        let ledger: HashMap<(MessageId, u32), Ledger> = [
            (
                (id(1), 0),
                Ledger::Appended {
                    uidvalidity: 7,
                    uid: Some(1),
                },
            ),
            (
                (id(2), 0),
                Ledger::Present {
                    uidvalidity: 7,
                    uid: None,
                },
            ),
            (
                (id(3), 0),
                Ledger::Intent {
                    uidvalidity: 7,
                    uidnext: 3,
                },
            ),
            (
                (id(4), 0),
                Ledger::Appended {
                    uidvalidity: 6,
                    uid: Some(9),
                },
            ),
            (
                (id(5), 0),
                Ledger::Appended {
                    uidvalidity: 7,
                    uid: None,
                },
            ),
            (
                (id(5), 1),
                Ledger::Intent {
                    uidvalidity: 7,
                    uidnext: 3,
                },
            ),
        ]
        .into_iter()
        .collect();
        let items = vec![
            item(1, 0),
            item(2, 0),
            item(3, 0),
            item(4, 0),
            item(5, 0),
            item(5, 1),
            item(6, 0),
            item(6, 1),
        ];
        let p = plan(&items, &ledger, Some(7));
        assert_eq!(p.present, 3);
        assert_eq!(p.append, vec![item(6, 0), item(6, 1)]);
        assert_eq!(p.resolve, vec![(id(3), vec![0]), (id(4), vec![0]), (id(5), vec![1])]);
        // The mailbox does not exist (yet, or any more): everything is appended.
        let p = plan(&items, &ledger, None);
        assert_eq!((p.present, p.resolve.len(), p.append.len()), (0, 0, items.len()));
        // Nothing recorded: append all, in order.
        let p = plan(&items, &HashMap::new(), Some(7));
        assert_eq!(p.append, items);
    }

    #[test]
    fn settle_table() {
        assert_eq!(settle(&[0, 1], 0), (vec![], vec![0, 1]));
        assert_eq!(settle(&[0, 1], 1), (vec![0], vec![1]));
        assert_eq!(settle(&[0, 1], 5), (vec![0, 1], vec![]));
        assert_eq!(settle(&[], 3), (vec![], vec![]));
    }

    proptest! {
        /// Every item lands in exactly one of append / resolve / present, and an item
        /// recorded under the current UIDVALIDITY is never appended again.
        #[test]
        fn every_item_once(
            entries in proptest::collection::vec((0u8..6, 0u32..3, 0u8..4, 5u32..8), 0..20),
            wanted in proptest::collection::btree_set((0u8..6, 0u32..3), 0..15),
            current in proptest::option::of(5u32..8),
        ) {
            let ledger: HashMap<(MessageId, u32), Ledger> = entries
                .iter()
                .map(|&(m, c, kind, v)| {
                    let state = match kind {
                        0 => Ledger::Intent { uidvalidity: v, uidnext: 1 },
                        1 => Ledger::Appended { uidvalidity: v, uid: Some(1) },
                        2 => Ledger::Appended { uidvalidity: v, uid: None },
                        _ => Ledger::Present { uidvalidity: v, uid: None },
                    };
                    ((id(m), c), state)
                })
                .collect();
            let items: Vec<Item> = wanted.iter().map(|&(m, c)| item(m, c)).collect();
            let p = plan(&items, &ledger, current);
            let resolved: usize = p.resolve.iter().map(|r| r.1.len()).sum();
            prop_assert_eq!(p.append.len() + resolved + p.present, items.len());
            for a in &p.append {
                let done_here = matches!(
                    ledger.get(&(a.message, a.copy)),
                    Some(Ledger::Appended { uidvalidity: v, .. } | Ledger::Present { uidvalidity: v, .. })
                        if Some(*v) == current
                );
                prop_assert!(!done_here);
            }
        }
    }
}
