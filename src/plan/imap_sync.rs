//! What to do with one IMAP folder, given the archive's cursor for it and what
//! EXAMINE returned — a pure function, written as a numbered plan in the manner of
//! RFC 4549 §6.1 and tested by a table.
//!
//! ```text
//! 1. No cursor (never synced): fetch every message (`UID FETCH 1:*`); flags and
//!    INTERNALDATE come with the bodies.
//! 2. UIDVALIDITY differs from the cursor's: the old UIDs mean nothing any more.
//!    Fetch every message again under the new UIDVALIDITY (dedup stores no body
//!    twice), then mark placements of the old UIDVALIDITY that were not seen again
//!    as deleted at source. Nothing archived is removed.
//! 3. Same UIDVALIDITY:
//!    a. New messages: if UIDNEXT is known and not above the highest archived UID
//!       + 1, there are none; otherwise `UID FETCH (highest+1):*` (the server may
//!       answer with the last message when nothing is new: the executor ignores UIDs
//!       not above `highest`).
//!    b. Flag changes of archived messages: with CONDSTORE and a HIGHESTMODSEQ above
//!       the cursor's, `UID FETCH 1:highest (FLAGS) (CHANGEDSINCE m)`; with CONDSTORE
//!       and an equal HIGHESTMODSEQ, nothing changed; without CONDSTORE, fetch FLAGS of
//!       1:highest and compare.
//!    c. Expunges: with QRESYNC, `VANISHED (EARLIER)` since the cursor's modseq; else,
//!       if the folder's message count shows none (EXISTS = archived live messages +
//!       new ones, and there are no new ones), nothing; else `UID SEARCH ALL` up to
//!       `highest` and diff against the archived UIDs. UIDs the search finds below
//!       `highest` that were never archived (a server that handed out a UID lower
//!       than one already seen) are reported and fetched.
//!    d. A HIGHESTMODSEQ below the cursor's (the server lost its modseq state, or
//!       lies): neither CHANGEDSINCE nor VANISHED can be trusted: all flags and the
//!       full search diff, as without CONDSTORE.
//! 4. The cursor advances only with the batch that made it true (the executor
//!    commits the new highest UID and modseq with the messages they cover).
//! ```

/// What the archive remembers about a folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub uidvalidity: u32,
    pub highest_uid: u32,
    /// 0 when the server had no CONDSTORE at the last sync.
    pub highest_modseq: u64,
    /// Placements of this folder not marked deleted at source.
    pub live_messages: u32,
}

/// What EXAMINE (or SELECT) reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Examined {
    pub uidvalidity: u32,
    pub uidnext: Option<u32>,
    pub exists: u32,
    pub highest_modseq: Option<u64>,
}

/// Server capabilities that change the plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    pub condstore: bool,
    pub qresync: bool,
}

/// One step of a folder sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `UID FETCH from:* (UID RFC822.SIZE)`, then `UID FETCH set (UID FLAGS INTERNALDATE
    /// BODY.PEEK[])` in batches.
    FetchFrom { from_uid: u32 },
    /// After a full fetch under a new UIDVALIDITY: placements under the old one that
    /// were not seen again are deleted at source.
    RetireUidValidity { old: u32 },
    /// `UID FETCH 1:up_to (FLAGS) (CHANGEDSINCE modseq)`.
    FlagsChangedSince { up_to_uid: u32, modseq: u64 },
    /// `UID FETCH 1:up_to (FLAGS)` and compare with the archive.
    AllFlags { up_to_uid: u32 },
    /// QRESYNC: UIDs expunged since `modseq` (`VANISHED (EARLIER)`).
    VanishedSince { modseq: u64 },
    /// `UID SEARCH UID 1:up_to` and diff with the archived UIDs.
    SearchDiff { up_to_uid: u32 },
}

/// The steps for one folder, in order. Empty = nothing to do.
pub fn plan(cursor: Option<&Cursor>, ex: &Examined, caps: Caps) -> Vec<Step> {
    // 1. Never synced.
    let Some(c) = cursor else {
        return if ex.exists == 0 {
            Vec::new()
        } else {
            vec![Step::FetchFrom { from_uid: 1 }]
        };
    };
    // 2. UIDVALIDITY changed.
    if c.uidvalidity != ex.uidvalidity {
        let mut steps = Vec::new();
        if ex.exists > 0 {
            steps.push(Step::FetchFrom { from_uid: 1 });
        }
        steps.push(Step::RetireUidValidity { old: c.uidvalidity });
        return steps;
    }
    let mut steps = Vec::new();
    // 3a. New messages.
    let maybe_new = match ex.uidnext {
        Some(next) => next > c.highest_uid.saturating_add(1),
        None => true,
    };
    if maybe_new && ex.exists > 0 {
        steps.push(Step::FetchFrom {
            from_uid: c.highest_uid.saturating_add(1),
        });
    }
    if c.highest_uid == 0 {
        return steps; // nothing archived here yet: no flags or expunges to check
    }
    // 3b. Flag changes.
    let server_modseq = ex.highest_modseq.filter(|_| caps.condstore);
    // 3d. A modseq that went down is no basis for "changed since".
    let regressed = server_modseq.is_some_and(|m| m < c.highest_modseq);
    match server_modseq {
        Some(m) if c.highest_modseq > 0 && m > c.highest_modseq => steps.push(Step::FlagsChangedSince {
            up_to_uid: c.highest_uid,
            modseq: c.highest_modseq,
        }),
        Some(m) if c.highest_modseq > 0 && m == c.highest_modseq => {}
        _ => steps.push(Step::AllFlags {
            up_to_uid: c.highest_uid,
        }),
    }
    // 3c. Expunges.
    let modseq_known = server_modseq.is_some() && c.highest_modseq > 0;
    if regressed {
        steps.push(Step::SearchDiff {
            up_to_uid: c.highest_uid,
        });
    } else if caps.qresync && modseq_known {
        if server_modseq > Some(c.highest_modseq) {
            steps.push(Step::VanishedSince {
                modseq: c.highest_modseq,
            });
        }
    } else if maybe_new || ex.exists != c.live_messages {
        steps.push(Step::SearchDiff {
            up_to_uid: c.highest_uid,
        });
    }
    steps
}

/// The UIDs of `known` (sorted ascending, no repeats) that fall in any of `ranges`.
///
/// UID sets come from the server (`VANISHED (EARLIER) 1:4294967295`): they are
/// intersected with what the archive knows, never expanded. Cost: a binary search per
/// range plus one step per match, whatever the ranges span.
pub fn known_in_ranges<'a>(
    known: &[u32],
    ranges: impl IntoIterator<Item = &'a std::ops::RangeInclusive<u32>>,
) -> Vec<u32> {
    let mut out = Vec::new();
    for r in ranges {
        // A server may write `9:4`: RFC 9051 allows either order.
        let (lo, hi) = (*r.start().min(r.end()), *r.start().max(r.end()));
        let from = known.partition_point(|&u| u < lo);
        out.extend(known[from..].iter().take_while(|&&u| u <= hi));
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Step::*;

    #[test]
    fn known_uids_in_server_ranges_are_found_without_expanding_them() {
        let known = [3, 5, 9, 4_000_000_000];
        #[rustfmt::skip]
        let cases: Vec<(Vec<std::ops::RangeInclusive<u32>>, Vec<u32>)> = vec![
            (vec![1..=u32::MAX], vec![3, 5, 9, 4_000_000_000]),
            (vec![4..=8], vec![5]),
            (vec![std::ops::RangeInclusive::new(8, 4)], vec![5]),
            (vec![1..=2, 10..=3_999_999_999], vec![]),
            (vec![5..=5, 1..=u32::MAX, 9..=9], vec![3, 5, 9, 4_000_000_000]),
            (vec![], vec![]),
        ];
        for (ranges, want) in cases {
            assert_eq!(known_in_ranges(&known, &ranges), want, "{ranges:?}");
        }
        assert_eq!(known_in_ranges(&[], &[1..=u32::MAX]), Vec::<u32>::new());
    }

    const NONE: Caps = Caps {
        condstore: false,
        qresync: false,
    };
    const CS: Caps = Caps {
        condstore: true,
        qresync: false,
    };
    const QR: Caps = Caps {
        condstore: true,
        qresync: true,
    };

    fn cur(uidvalidity: u32, highest_uid: u32, highest_modseq: u64, live: u32) -> Cursor {
        Cursor {
            uidvalidity,
            highest_uid,
            highest_modseq,
            live_messages: live,
        }
    }
    fn ex(uidvalidity: u32, uidnext: Option<u32>, exists: u32, modseq: Option<u64>) -> Examined {
        Examined {
            uidvalidity,
            uidnext,
            exists,
            highest_modseq: modseq,
        }
    }

    /// (name, stored cursor, what EXAMINE said, capabilities, expected steps)
    type Case = (&'static str, Option<Cursor>, Examined, Caps, Vec<Step>);

    #[test]
    fn plan_table() {
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("1: first sync", None, ex(7, Some(11), 10, Some(50)), QR, vec![FetchFrom { from_uid: 1 }]),
            ("1: first sync, empty folder", None, ex(7, Some(1), 0, None), NONE, vec![]),
            ("2: uidvalidity changed", Some(cur(7, 10, 50, 10)), ex(8, Some(11), 10, Some(60)), QR,
                vec![FetchFrom { from_uid: 1 }, RetireUidValidity { old: 7 }]),
            ("2: uidvalidity changed, folder now empty", Some(cur(7, 10, 50, 10)), ex(8, Some(1), 0, None), NONE,
                vec![RetireUidValidity { old: 7 }]),
            ("3: nothing changed (QRESYNC)", Some(cur(7, 10, 50, 10)), ex(7, Some(11), 10, Some(50)), QR, vec![]),
            ("3: nothing changed (CONDSTORE)", Some(cur(7, 10, 50, 10)), ex(7, Some(11), 10, Some(50)), CS, vec![]),
            ("3: nothing changed (plain IMAP) still checks flags", Some(cur(7, 10, 0, 10)), ex(7, Some(11), 10, None), NONE,
                vec![AllFlags { up_to_uid: 10 }]),
            ("3a+b+c: new mail and changes (QRESYNC)", Some(cur(7, 10, 50, 10)), ex(7, Some(21), 17, Some(80)), QR,
                vec![FetchFrom { from_uid: 11 }, FlagsChangedSince { up_to_uid: 10, modseq: 50 }, VanishedSince { modseq: 50 }]),
            ("3a+b+c: new mail (CONDSTORE, no QRESYNC)", Some(cur(7, 10, 50, 10)), ex(7, Some(21), 17, Some(80)), CS,
                vec![FetchFrom { from_uid: 11 }, FlagsChangedSince { up_to_uid: 10, modseq: 50 }, SearchDiff { up_to_uid: 10 }]),
            ("3c: expunge only (plain)", Some(cur(7, 10, 0, 10)), ex(7, Some(11), 8, None), NONE,
                vec![AllFlags { up_to_uid: 10 }, SearchDiff { up_to_uid: 10 }]),
            ("3a: UIDNEXT unknown: ask", Some(cur(7, 10, 0, 10)), ex(7, None, 10, None), NONE,
                vec![FetchFrom { from_uid: 11 }, AllFlags { up_to_uid: 10 }, SearchDiff { up_to_uid: 10 }]),
            ("3b: server gained CONDSTORE since last sync", Some(cur(7, 10, 0, 10)), ex(7, Some(11), 10, Some(90)), CS,
                vec![AllFlags { up_to_uid: 10 }]),
            ("3: cursor with nothing archived yet", Some(cur(7, 0, 0, 0)), ex(7, Some(3), 2, Some(5)), QR,
                vec![FetchFrom { from_uid: 1 }]),
            ("3d: HIGHESTMODSEQ went down (QRESYNC): full flags and search diff", Some(cur(7, 10, 50, 10)), ex(7, Some(11), 10, Some(40)), QR,
                vec![AllFlags { up_to_uid: 10 }, SearchDiff { up_to_uid: 10 }]),
            ("3d: HIGHESTMODSEQ went down (CONDSTORE)", Some(cur(7, 10, 50, 10)), ex(7, Some(11), 10, Some(3)), CS,
                vec![AllFlags { up_to_uid: 10 }, SearchDiff { up_to_uid: 10 }]),
            ("3c: a message appeared below the cursor (count grew, UIDNEXT did not)", Some(cur(7, 10, 0, 10)), ex(7, Some(11), 11, None), NONE,
                vec![AllFlags { up_to_uid: 10 }, SearchDiff { up_to_uid: 10 }]),
        ];
        for (name, c, e, caps, want) in cases {
            assert_eq!(plan(c.as_ref(), &e, caps), want, "{name}");
        }
    }

    proptest::proptest! {
        /// Whatever the inputs: no panic, FetchFrom never starts at or below a UID
        /// already archived under the same UIDVALIDITY, and a UIDVALIDITY change
        /// always retires the old one.
        #[test]
        fn invariants(uv in 1u32..4, huid in proptest::num::u32::ANY, hms in 0u64..100, live in 0u32..50,
                      euv in 1u32..4, next in proptest::option::of(proptest::num::u32::ANY), exists in 0u32..50,
                      ems in proptest::option::of(0u64..100), condstore: bool, qresync: bool) {
            let c = cur(uv, huid, hms, live);
            let steps = plan(Some(&c), &ex(euv, next, exists, ems), Caps { condstore, qresync });
            if uv == euv {
                for s in &steps {
                    if let FetchFrom { from_uid } = s {
                        proptest::prop_assert!(*from_uid > huid || huid == u32::MAX);
                    }
                }
            } else {
                let retire = RetireUidValidity { old: uv };
                proptest::prop_assert!(steps.contains(&retire), "{:?}", steps);
            }
        }
    }
}
