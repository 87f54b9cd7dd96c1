//! What one POP3 run should do, decided from the server's UIDL list and what the
//! archive already holds — a pure function, tested by a table and a property.
//!
//! ```text
//! 1. A UIDL that is malformed (RFC 1939: 1-70 characters, 0x21-0x7E) or that two
//!    messages share cannot identify a message: such messages are retrieved (content
//!    hashing keeps the archive free of duplicates) and never deleted.
//! 2. A valid, unique UIDL the archive does not hold: retrieve.
//! 3. A valid, unique UIDL the archive holds: nothing to fetch.
//! 4. Deletion, only ever of messages whose UIDL the archive held *before* this run
//!    (the executor deletes what it retrieved only after the batch holding it is
//!    durably committed, by asking `may_delete` again):
//!    - Keep (the default): never;
//!    - AfterArchive: every archived message;
//!    - OlderThan(days): archived messages whose age reference (their date) is at
//!      least that many days before now.
//! ```

use std::collections::{HashMap, HashSet};

/// One message as UIDL (and LIST) reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub msg: u32,
    pub uidl: String,
    pub size: u64,
}

/// When messages may be deleted from the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletePolicy {
    #[default]
    Keep,
    AfterArchive,
    OlderThan {
        days: u32,
    },
}

/// What the run does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Message numbers to RETR, in order.
    pub retrieve: Vec<u32>,
    /// Message numbers to DELE (all already archived before this run).
    pub delete: Vec<u32>,
    /// Messages whose UIDL cannot be trusted, with the reason.
    pub untrusted: Vec<(u32, &'static str)>,
    /// Messages already archived (not fetched).
    pub already_archived: usize,
}

/// Whether an archived message with age reference `dated` (seconds) may be deleted.
pub fn may_delete(policy: DeletePolicy, dated: i64, now: i64) -> bool {
    match policy {
        DeletePolicy::Keep => false,
        DeletePolicy::AfterArchive => true,
        DeletePolicy::OlderThan { days } => now.saturating_sub(dated) >= i64::from(days) * 86_400,
    }
}

/// What is wrong with a UIDL by RFC 1939 §7 (1 to 70 characters in 0x21..=0x7E),
/// if anything.
pub fn uidl_problem(uidl: &str) -> Option<&'static str> {
    if uidl.is_empty() {
        Some("empty")
    } else if uidl.len() > 70 {
        Some("longer than 70 characters")
    } else if !uidl.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
        Some("characters outside 0x21-0x7E")
    } else {
        None
    }
}

/// Plans a run. `archived` maps the account's archived UIDLs to their age reference.
pub fn plan(listed: &[Listed], archived: &HashMap<String, i64>, policy: DeletePolicy, now: i64) -> Plan {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for l in listed {
        *count.entry(l.uidl.as_str()).or_default() += 1;
    }
    let mut p = Plan::default();
    let mut seen_msg: HashSet<u32> = HashSet::new();
    for l in listed {
        if !seen_msg.insert(l.msg) {
            continue; // a message number listed twice: once is enough
        }
        // 1.
        let why = if uidl_problem(&l.uidl).is_some() {
            Some("malformed UIDL")
        } else if count[l.uidl.as_str()] > 1 {
            Some("UIDL shared with another message")
        } else {
            None
        };
        if let Some(why) = why {
            p.untrusted.push((l.msg, why));
            p.retrieve.push(l.msg);
            continue;
        }
        match archived.get(&l.uidl) {
            // 2.
            None => p.retrieve.push(l.msg),
            // 3. and 4.
            Some(&dated) => {
                p.already_archived += 1;
                if may_delete(policy, dated, now) {
                    p.delete.push(l.msg);
                }
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    fn l(msg: u32, uidl: &str) -> Listed {
        Listed {
            msg,
            uidl: uidl.into(),
            size: 100,
        }
    }

    #[test]
    fn plan_table() {
        let archived: HashMap<String, i64> = [("a".to_string(), NOW - 40 * DAY), ("b".to_string(), NOW - DAY)]
            .into_iter()
            .collect();
        let server = vec![l(1, "a"), l(2, "b"), l(3, "c"), l(4, "d d"), l(5, "e"), l(6, "e")];
        let keep = plan(&server, &archived, DeletePolicy::Keep, NOW);
        assert_eq!(keep.retrieve, vec![3, 4, 5, 6]);
        assert_eq!(keep.delete, Vec::<u32>::new());
        assert_eq!(keep.already_archived, 2);
        assert_eq!(
            keep.untrusted,
            vec![
                (4, "malformed UIDL"),
                (5, "UIDL shared with another message"),
                (6, "UIDL shared with another message")
            ]
        );
        assert_eq!(
            plan(&server, &archived, DeletePolicy::AfterArchive, NOW).delete,
            vec![1, 2]
        );
        assert_eq!(
            plan(&server, &archived, DeletePolicy::OlderThan { days: 30 }, NOW).delete,
            vec![1]
        );
        assert_eq!(
            plan(&server, &archived, DeletePolicy::OlderThan { days: 0 }, NOW).delete,
            vec![1, 2]
        );
        assert_eq!(plan(&[], &archived, DeletePolicy::AfterArchive, NOW), Plan::default());
        // A message number listed twice is planned once.
        assert_eq!(
            plan(&[l(1, "x"), l(1, "x")], &HashMap::new(), DeletePolicy::Keep, NOW).retrieve,
            vec![1]
        );
    }

    proptest! {
        /// Never delete a message that is not archived or whose UIDL is untrusted;
        /// every message is either retrieved or already archived.
        #[test]
        fn never_deletes_what_is_not_archived(
            uidls in proptest::collection::vec("[a-c ]{0,2}", 0..30),
            archived_set in proptest::collection::hash_set("[a-c]{1,2}", 0..6),
            days in 0u32..60,
            policy_kind in 0u8..3,
        ) {
            let listed: Vec<Listed> = uidls.iter().enumerate().map(|(i, u)| l(i as u32 + 1, u)).collect();
            let archived: HashMap<String, i64> = archived_set.into_iter().map(|u| (u, NOW - 10 * DAY)).collect();
            let policy = match policy_kind { 0 => DeletePolicy::Keep, 1 => DeletePolicy::AfterArchive, _ => DeletePolicy::OlderThan { days } };
            let p = plan(&listed, &archived, policy, NOW);
            let untrusted: HashSet<u32> = p.untrusted.iter().map(|u| u.0).collect();
            for m in &p.delete {
                let item = &listed[*m as usize - 1];
                prop_assert!(archived.contains_key(&item.uidl));
                prop_assert!(!untrusted.contains(m));
                prop_assert!(!p.retrieve.contains(m));
            }
            prop_assert_eq!(p.retrieve.len() + p.already_archived, listed.len());
        }
    }
}
