//! Hash chains: the tamper evidence of the change log and the access log, as pure
//! functions (no I/O, no keys).
//!
//! Each record's hash is the BLAKE3 of the previous record's hash, its sequence
//! number and its body, so changing, removing, reordering or inserting a record
//! breaks every hash after it — unless whoever changed it recomputed the rest of
//! the chain. Checkpoints stop that: a checkpoint states the hash the chain had
//! after `count` records and is signed with the archive's key, which an attacker
//! with access to the files does not have. Verifying a chain ([`verify`]) walks it
//! from the start, names every record that does not follow, and checks each
//! checkpoint against the recomputed hashes; the signature check itself is the
//! caller's (it holds the key).

use crate::model::Hash32;

/// The hash before the first record.
pub const GENESIS: Hash32 = Hash32([0; 32]);

/// Separates our chain hashes from any other use of BLAKE3 over the same bytes.
const DOMAIN: &str = "mailvault chain v1";

/// The hash of record `seq` with `body`, following `prev`.
pub fn link(prev: &Hash32, seq: u64, body: &[u8]) -> Hash32 {
    let mut h = blake3::Hasher::new_derive_key(DOMAIN);
    h.update(&prev.0);
    h.update(&seq.to_be_bytes());
    h.update(&(body.len() as u64).to_be_bytes());
    h.update(body);
    Hash32(*h.finalize().as_bytes())
}

/// A record as stored: its sequence number, its body and the hash stored with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    pub body: Vec<u8>,
    pub hash: Hash32,
}

/// Appends `body` after `prev` (`None`: the first record).
pub fn append(prev: Option<&Stored>, body: Vec<u8>) -> Stored {
    let (seq, prev_hash) = match prev {
        Some(p) => (p.seq + 1, p.hash),
        None => (0, GENESIS),
    };
    Stored {
        seq,
        hash: link(&prev_hash, seq, &body),
        body,
    }
}

/// A signed statement of the chain's state: after `count` records its hash was
/// `head`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub count: u64,
    pub head: Hash32,
}

/// Something found wrong, by record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainProblem {
    /// The record's hash is not that of its body after the record before it: it
    /// was altered, or records were swapped or inserted here.
    Broken { seq: u64 },
    /// Sequence numbers jump from `after` to `next`: records were removed.
    Missing { after: Option<u64>, next: u64 },
    /// A record with a sequence number at or below one already seen.
    OutOfOrder { seq: u64 },
    /// The chain after `count` records does not have the hash the checkpoint
    /// states: history before it was rewritten (or the checkpoint is another
    /// archive's).
    CheckpointMismatch { count: u64 },
    /// The checkpoint's signature does not verify with the archive's key.
    BadSignature { count: u64 },
    /// The checkpoint covers more records than the chain has: records were
    /// removed from the end (or the metadata was restored from an older copy).
    CheckpointBeyondChain { count: u64, records: u64 },
}

impl std::fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainProblem::Broken { seq } => write!(
                f,
                "record {seq} does not follow the record before it (altered, or records swapped or inserted)"
            ),
            ChainProblem::Missing { after: Some(a), next } => {
                write!(f, "records {} to {} are missing", a + 1, next - 1)
            }
            ChainProblem::Missing { after: None, next } => write!(f, "records 0 to {} are missing", next - 1),
            ChainProblem::OutOfOrder { seq } => write!(f, "record {seq} is out of order"),
            ChainProblem::CheckpointMismatch { count } => write!(
                f,
                "the chain after {count} records is not what the checkpoint signed (history rewritten, or another archive's checkpoint)"
            ),
            ChainProblem::BadSignature { count } => {
                write!(f, "the checkpoint at {count} records has a signature that does not verify")
            }
            ChainProblem::CheckpointBeyondChain { count, records } => write!(
                f,
                "a checkpoint covers {count} records but the chain has {records} (records removed, or an older copy restored)"
            ),
        }
    }
}

/// What [`verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainReport {
    pub records: u64,
    /// The hash after the last record, as recomputed.
    pub head: Option<Hash32>,
    pub checkpoints_checked: u64,
    pub problems: Vec<ChainProblem>,
}

impl ChainReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Walks `records` (in the order the store gives them) and checks every checkpoint
/// against the recomputed hashes; `signed` says whether a checkpoint's signature
/// verifies. After a broken record the walk goes on from its stored hash, so each
/// damaged record is named once.
pub fn verify(
    records: impl IntoIterator<Item = Stored>,
    checkpoints: &[Checkpoint],
    signed: impl Fn(&Checkpoint) -> bool,
) -> ChainReport {
    let mut report = ChainReport::default();
    let mut at: Vec<&Checkpoint> = checkpoints.iter().collect();
    at.sort_by_key(|c| std::cmp::Reverse(c.count));
    let mut prev: Option<(u64, Hash32)> = None;
    let mut recomputed = GENESIS;
    check_checkpoints_at(&mut at, 0, &GENESIS, &mut report);
    for r in records {
        let expected = prev.map_or(0, |(s, _)| s + 1);
        if r.seq < expected {
            report.problems.push(ChainProblem::OutOfOrder { seq: r.seq });
            continue;
        }
        if r.seq > expected {
            report.problems.push(ChainProblem::Missing {
                after: prev.map(|(s, _)| s),
                next: r.seq,
            });
        }
        // Each record against the stored hash before it (so one damaged record is
        // named once), and the whole chain recomputed from the start (what the
        // checkpoints signed).
        let prev_hash = prev.map_or(GENESIS, |(_, h)| h);
        recomputed = link(&recomputed, r.seq, &r.body);
        if link(&prev_hash, r.seq, &r.body) != r.hash {
            report.problems.push(ChainProblem::Broken { seq: r.seq });
        }
        report.records += 1;
        check_checkpoints_at(&mut at, report.records, &recomputed, &mut report);
        prev = Some((r.seq, r.hash));
    }
    report.head = prev.map(|_| recomputed);
    for c in at {
        report.problems.push(ChainProblem::CheckpointBeyondChain {
            count: c.count,
            records: report.records,
        });
    }
    for c in checkpoints {
        report.checkpoints_checked += 1;
        if !signed(c) {
            report.problems.push(ChainProblem::BadSignature { count: c.count });
        }
    }
    report
}

/// Checks (and takes off `pending`, sorted by count descending) the checkpoints
/// at `count` records. Counts go up one record at a time from 0, so every
/// checkpoint within the chain is met here.
fn check_checkpoints_at(pending: &mut Vec<&Checkpoint>, count: u64, head: &Hash32, report: &mut ChainReport) {
    while let Some(c) = pending.last().filter(|c| c.count == count) {
        if c.head != *head {
            report.problems.push(ChainProblem::CheckpointMismatch { count });
        }
        pending.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chain(n: usize) -> Vec<Stored> {
        let mut out: Vec<Stored> = Vec::new();
        for i in 0..n {
            let r = append(out.last(), format!("batch {i}: ids …").into_bytes());
            out.push(r);
        }
        out
    }

    fn checkpoint(c: &[Stored]) -> Checkpoint {
        Checkpoint {
            count: c.len() as u64,
            head: c.last().map_or(GENESIS, |r| r.hash),
        }
    }

    fn ok(_: &Checkpoint) -> bool {
        true
    }

    /// Recomputes every hash from `from` on, as an attacker with file access would.
    fn rehash(c: &mut [Stored], from: usize) {
        for i in from..c.len() {
            let prev = if i == 0 { GENESIS } else { c[i - 1].hash };
            c[i].hash = link(&prev, c[i].seq, &c[i].body);
        }
    }

    #[test]
    fn an_untouched_chain_verifies_and_its_checkpoints_match() {
        let c = chain(10);
        let cps = [checkpoint(&c[..4]), checkpoint(&c)];
        let r = verify(c.clone(), &cps, ok);
        assert!(r.is_clean(), "{:?}", r.problems);
        assert_eq!(r.records, 10);
        assert_eq!(r.head, Some(c[9].hash));
        assert_eq!(r.checkpoints_checked, 2);
        assert!(verify(Vec::new(), &[], ok).is_clean());
    }

    #[test]
    fn each_kind_of_tampering_is_named_by_record() {
        let c = chain(8);
        let cps = [checkpoint(&c[..6])];
        let broken = |c: Vec<Stored>| verify(c, &cps, ok).problems;

        let mut altered = c.clone();
        altered[3].body[0] ^= 1;
        assert_eq!(
            broken(altered),
            [
                ChainProblem::Broken { seq: 3 },
                ChainProblem::CheckpointMismatch { count: 6 }
            ]
        );

        let mut removed = c.clone();
        removed.remove(4);
        let p = broken(removed);
        assert_eq!(
            p[0],
            ChainProblem::Missing {
                after: Some(3),
                next: 5
            }
        );
        assert!(p.contains(&ChainProblem::Broken { seq: 5 }), "{p:?}");

        let mut swapped = c.clone();
        swapped.swap(2, 3);
        let p = broken(swapped);
        assert!(p.contains(&ChainProblem::OutOfOrder { seq: 2 }), "{p:?}");

        // Bodies swapped, sequence numbers kept.
        let mut bodies = c.clone();
        let b2 = bodies[2].body.clone();
        bodies[2].body = bodies[3].body.clone();
        bodies[3].body = b2;
        let p = broken(bodies);
        assert!(p.contains(&ChainProblem::Broken { seq: 2 }), "{p:?}");

        // A record slipped in and everything after renumbered and re-hashed: the
        // chain holds together, the checkpoint does not.
        let mut inserted = c.clone();
        inserted.insert(2, append(Some(&c[1]), b"forged".to_vec()));
        for (i, r) in inserted.iter_mut().enumerate() {
            r.seq = i as u64;
        }
        rehash(&mut inserted, 2);
        assert_eq!(broken(inserted), [ChainProblem::CheckpointMismatch { count: 6 }]);

        // Altered and re-hashed, without the key.
        let mut rewritten = c.clone();
        rewritten[1].body = b"nothing to see".to_vec();
        rehash(&mut rewritten, 1);
        assert_eq!(broken(rewritten), [ChainProblem::CheckpointMismatch { count: 6 }]);

        // Cut at the end (an older copy of the metadata restored).
        let p = broken(c[..5].to_vec());
        assert_eq!(p, [ChainProblem::CheckpointBeyondChain { count: 6, records: 5 }]);
    }

    #[test]
    fn a_checkpoint_of_another_chain_or_with_a_bad_signature_fails() {
        let c = chain(5);
        let mut other: Vec<Stored> = Vec::new();
        for i in 0..5 {
            let r = append(other.last(), format!("elsewhere {i}").into_bytes());
            other.push(r);
        }
        let p = verify(c.clone(), &[checkpoint(&other)], ok).problems;
        assert_eq!(p, [ChainProblem::CheckpointMismatch { count: 5 }]);
        let p = verify(c.clone(), &[checkpoint(&c)], |_| false).problems;
        assert_eq!(p, [ChainProblem::BadSignature { count: 5 }]);
    }

    #[test]
    fn problems_read_as_sentences() {
        let text = ChainProblem::Missing {
            after: Some(3),
            next: 6,
        }
        .to_string();
        assert_eq!(text, "records 4 to 5 are missing");
        assert!(ChainProblem::Broken { seq: 7 }.to_string().starts_with("record 7 "));
    }

    proptest! {
        #[test]
        fn any_changed_byte_is_found(n in 1usize..20, pick in any::<prop::sample::Index>(),
                                     byte in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut c = chain(n);
            let i = pick.index(n);
            let j = byte.index(c[i].body.len());
            c[i].body[j] ^= 1 << bit;
            let r = verify(c, &[], ok);
            prop_assert_eq!(r.problems, vec![ChainProblem::Broken { seq: i as u64 }]);
        }

        #[test]
        fn a_rewritten_history_fails_every_later_checkpoint(n in 2usize..20, at in any::<prop::sample::Index>()) {
            let c = chain(n);
            let cp = checkpoint(&c);
            let mut forged = c.clone();
            let i = at.index(n);
            forged[i].body.push(b'!');
            rehash(&mut forged, i);
            let r = verify(forged, &[cp], ok);
            prop_assert_eq!(r.problems, vec![ChainProblem::CheckpointMismatch { count: n as u64 }]);
        }
    }
}
