//! Retention and legal holds as pure functions over data: which messages have
//! expired, and why every other one is kept.
//!
//! The rules (issue 18; the README says the same):
//! 1. A message under any legal hold is kept, whatever the policies say.
//! 2. A message no policy matches is kept forever (the default).
//! 3. Otherwise it is kept while any matching policy still covers it: until the
//!    latest of the matching policies' ends. A shorter policy for a subset (90 days
//!    on Spam) therefore shortens nothing that a broader, longer one covers (10
//!    years on everything); to keep Spam shorter, write the broader policy so that
//!    it leaves Spam out (`--query 'NOT folder:Spam'`).
//! 4. A policy's period runs from when the message was first archived
//!    (`received`), or from its `Date:` header (`date`; first archived when the
//!    header is missing or unreadable), in calendar months and years (29 February
//!    plus one year is 28 February).
//!
//! Which policies and holds match a message is the search index's answer to their
//! queries; this module only weighs the answer.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Months, TimeDelta, Utc};

/// How long a policy keeps what it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Keep {
    Days(u32),
    Months(u32),
    Years(u32),
    Forever,
}

/// The longest period a policy may state (beyond it, say `forever`).
pub const MAX_YEARS: u32 = 1000;

/// A `--keep` value that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("retention period {given:?}: {why} (write e.g. 90d, 6m, 10y or forever)")]
pub struct BadKeep {
    pub given: String,
    pub why: &'static str,
}

impl FromStr for Keep {
    type Err = BadKeep;

    fn from_str(s: &str) -> Result<Keep, BadKeep> {
        let bad = |why| BadKeep {
            given: s.to_string(),
            why,
        };
        let t = s.trim().to_ascii_lowercase();
        if t == "forever" {
            return Ok(Keep::Forever);
        }
        let Some(unit) = t.chars().last() else {
            return Err(bad("it is empty"));
        };
        let digits = &t[..t.len() - unit.len_utf8()];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("a number and a unit (d, m or y) are needed"));
        }
        let n: u32 = digits.parse().map_err(|_| bad("the number is too large"))?;
        if n == 0 {
            return Err(bad("a period of zero would expire everything it matches at once"));
        }
        let keep = match unit {
            'd' => Keep::Days(n),
            'm' => Keep::Months(n),
            'y' => Keep::Years(n),
            _ => return Err(bad("the unit must be d (days), m (months) or y (years)")),
        };
        if keep.in_days_at_least() > u64::from(MAX_YEARS) * 365 {
            return Err(bad("over 1000 years; write forever"));
        }
        Ok(keep)
    }
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keep::Days(n) => write!(f, "{n}d"),
            Keep::Months(n) => write!(f, "{n}m"),
            Keep::Years(n) => write!(f, "{n}y"),
            Keep::Forever => f.write_str("forever"),
        }
    }
}

impl Keep {
    fn in_days_at_least(&self) -> u64 {
        match *self {
            Keep::Days(n) => u64::from(n),
            Keep::Months(n) => u64::from(n) * 28,
            Keep::Years(n) => u64::from(n) * 365,
            Keep::Forever => u64::MAX,
        }
    }

    /// The moment (Unix seconds) a period starting at `from` ends; `None` for
    /// `forever` and for ends beyond what the calendar can say.
    pub fn end(&self, from: i64) -> Option<i64> {
        let start = DateTime::<Utc>::from_timestamp(from, 0)?;
        let end = match *self {
            Keep::Days(n) => start.checked_add_signed(TimeDelta::try_days(i64::from(n))?)?,
            Keep::Months(n) => start.checked_add_months(Months::new(n))?,
            Keep::Years(n) => start.checked_add_months(Months::new(n.checked_mul(12)?))?,
            Keep::Forever => return None,
        };
        Some(end.timestamp())
    }
}

/// Where a policy's period starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeepFrom {
    /// When the message was first archived.
    #[default]
    Received,
    /// The message's `Date:` header (first archived when it has none).
    Date,
}

/// A retention policy, as far as weighing goes (its query is matched elsewhere).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub keep: Keep,
    pub from: KeepFrom,
}

/// What retention needs to know of one message.
#[derive(Clone, Debug)]
pub struct Facts<'a> {
    /// First archived (Unix seconds).
    pub received: i64,
    /// Its `Date:` header, when readable.
    pub date: Option<i64>,
    /// The policies whose queries match it.
    pub policies: Vec<&'a Policy>,
    /// The names of the holds whose queries match it.
    pub holds: Vec<&'a str>,
}

/// Why a message stays, or since when and by which policy it has expired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// Under a legal hold (the first by name, when several).
    Held { hold: &'a str },
    /// No policy matches it: kept forever.
    NoPolicy,
    /// Kept by `policy` (the matching policy that keeps it longest) until `until`
    /// (`None`: forever).
    Kept { policy: &'a str, until: Option<i64> },
    /// Every matching policy's period is over; `policy` was the last to end, at
    /// `since`.
    Expired { policy: &'a str, since: i64 },
}

impl Verdict<'_> {
    pub fn is_expired(&self) -> bool {
        matches!(self, Verdict::Expired { .. })
    }
}

/// Ends sort with `forever` (None) after every moment.
fn later(a: Option<i64>, b: Option<i64>) -> bool {
    match (a, b) {
        (None, Some(_)) => true,
        (Some(x), Some(y)) => x > y,
        _ => false,
    }
}

/// Weighs one message's holds and policies at `now` (rules in the module doc).
pub fn verdict<'a>(facts: &Facts<'a>, now: i64) -> Verdict<'a> {
    if let Some(&hold) = facts.holds.iter().min() {
        return Verdict::Held { hold };
    }
    let mut longest: Option<(&'a Policy, Option<i64>)> = None;
    for p in &facts.policies {
        let start = match p.from {
            KeepFrom::Received => facts.received,
            KeepFrom::Date => facts.date.unwrap_or(facts.received),
        };
        let end = p.keep.end(start);
        let wins = match longest {
            None => true,
            // Equal ends: the first name wins, so the verdict does not depend on order.
            Some((q, e)) => later(end, e) || (end == e && p.name < q.name),
        };
        if wins {
            longest = Some((p, end));
        }
    }
    match longest {
        None => Verdict::NoPolicy,
        Some((p, Some(end))) if end <= now => Verdict::Expired {
            policy: &p.name,
            since: end,
        },
        Some((p, until)) => Verdict::Kept { policy: &p.name, until },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: i64 = 86_400;

    fn ts(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    fn policy(name: &str, keep: &str, from: KeepFrom) -> Policy {
        Policy {
            name: name.into(),
            keep: keep.parse().unwrap(),
            from,
        }
    }

    #[test]
    fn periods_read_and_print_back() {
        for (text, keep) in [
            ("90d", Keep::Days(90)),
            ("6m", Keep::Months(6)),
            ("10y", Keep::Years(10)),
            (" 10Y ", Keep::Years(10)),
            ("forever", Keep::Forever),
            ("1000y", Keep::Years(1000)),
        ] {
            assert_eq!(text.parse::<Keep>(), Ok(keep), "{text}");
            assert_eq!(keep.to_string().parse::<Keep>(), Ok(keep));
        }
    }

    #[test]
    fn bad_periods_say_what_is_wrong() {
        for (text, why) in [
            ("", "empty"),
            ("10", "unit"),
            ("y", "a number and a unit"),
            ("-5d", "a number and a unit"),
            ("1.5y", "a number and a unit"),
            ("0d", "zero"),
            ("10w", "unit must be"),
            ("1001y", "1000 years"),
            ("99999999999d", "too large"),
            ("ten years", "unit"),
        ] {
            let e = text.parse::<Keep>().unwrap_err();
            assert!(e.to_string().contains(why), "{text:?}: {e}");
            assert!(e.to_string().contains("90d, 6m, 10y or forever"), "{e}");
        }
    }

    #[test]
    fn periods_end_on_the_calendar() {
        let from = ts("2020-02-29T12:00:00Z");
        assert_eq!(Keep::Days(1).end(from), Some(ts("2020-03-01T12:00:00Z")));
        assert_eq!(Keep::Months(1).end(from), Some(ts("2020-03-29T12:00:00Z")));
        assert_eq!(
            Keep::Years(1).end(from),
            Some(ts("2021-02-28T12:00:00Z")),
            "no 29 February"
        );
        assert_eq!(Keep::Years(4).end(from), Some(ts("2024-02-29T12:00:00Z")));
        assert_eq!(Keep::Forever.end(from), None);
        assert_eq!(Keep::Years(1000).end(i64::MAX / 2), None, "past the calendar: forever");
    }

    /// The table: one message, received 2015-01-10, dated 2014-12-31, at
    /// `now` = 2026-06-01.
    #[test]
    fn holds_then_policies_then_keep_forever() {
        let now = ts("2026-06-01T00:00:00Z");
        let received = ts("2015-01-10T00:00:00Z");
        let date = Some(ts("2014-12-31T00:00:00Z"));
        let spam = policy("spam", "90d", KeepFrom::Received);
        let ten = policy("all", "10y", KeepFrom::Received);
        let ten_by_date = policy("all-date", "10y", KeepFrom::Date);
        let twelve = policy("long", "12y", KeepFrom::Received);
        let ever = policy("ever", "forever", KeepFrom::Received);
        let facts = |policies, holds| Facts {
            received,
            date,
            policies,
            holds,
        };
        let cases = [
            (facts(vec![], vec![]), Verdict::NoPolicy),
            (
                facts(vec![&spam], vec![]),
                Verdict::Expired {
                    policy: "spam",
                    since: received + 90 * DAY,
                },
            ),
            (
                facts(vec![&spam, &ten], vec![]),
                Verdict::Expired {
                    policy: "all",
                    since: ts("2025-01-10T00:00:00Z"),
                },
            ),
            (
                facts(vec![&ten_by_date], vec![]),
                Verdict::Expired {
                    policy: "all-date",
                    since: ts("2024-12-31T00:00:00Z"),
                },
            ),
            (
                facts(vec![&spam, &twelve], vec![]),
                Verdict::Kept {
                    policy: "long",
                    until: Some(ts("2027-01-10T00:00:00Z")),
                },
            ),
            (
                facts(vec![&ten, &ever], vec![]),
                Verdict::Kept {
                    policy: "ever",
                    until: None,
                },
            ),
            (
                facts(vec![&spam], vec!["case-7", "audit"]),
                Verdict::Held { hold: "audit" },
            ),
            (facts(vec![], vec!["case-7"]), Verdict::Held { hold: "case-7" }),
        ];
        for (i, (f, want)) in cases.iter().enumerate() {
            assert_eq!(&verdict(f, now), want, "case {i}");
        }
        // With no Date: header, `date` counts from first archived.
        let undated = Facts {
            date: None,
            ..facts(vec![&ten_by_date], vec![])
        };
        assert_eq!(
            verdict(&undated, now),
            Verdict::Expired {
                policy: "all-date",
                since: ts("2025-01-10T00:00:00Z"),
            }
        );
        // Expiry is at the end, not before.
        let at_end = ts("2025-01-10T00:00:00Z");
        assert!(!verdict(&facts(vec![&ten], vec![]), at_end - 1).is_expired());
        assert!(verdict(&facts(vec![&ten], vec![]), at_end).is_expired());
    }

    fn keep() -> impl Strategy<Value = Keep> {
        prop_oneof![
            (1u32..4000).prop_map(Keep::Days),
            (1u32..240).prop_map(Keep::Months),
            (1u32..30).prop_map(Keep::Years),
            Just(Keep::Forever),
        ]
    }

    fn policies() -> impl Strategy<Value = Vec<Policy>> {
        proptest::collection::vec(
            (keep(), any::<bool>(), "[a-c]{1,2}").prop_map(|(keep, by_date, name)| Policy {
                name,
                keep,
                from: if by_date { KeepFrom::Date } else { KeepFrom::Received },
            }),
            0..5,
        )
    }

    const Y2000: i64 = 946_684_800;
    const CENTURY: i64 = 100 * 365 * DAY;

    proptest! {
        #[test]
        fn a_held_message_never_expires(ps in policies(), received in Y2000..Y2000 + CENTURY,
                                        now in Y2000..Y2000 + 2 * CENTURY) {
            let f = Facts { received, date: None, policies: ps.iter().collect(), holds: vec!["h"] };
            prop_assert_eq!(verdict(&f, now), Verdict::Held { hold: "h" });
        }

        #[test]
        fn another_policy_never_makes_a_kept_message_expire(
            ps in policies(), extra in policies(), received in Y2000..Y2000 + CENTURY,
            date in proptest::option::of(Y2000..Y2000 + CENTURY), now in Y2000..Y2000 + 2 * CENTURY) {
            prop_assume!(!ps.is_empty());
            let before = verdict(&Facts { received, date, policies: ps.iter().collect(), holds: vec![] }, now);
            let more: Vec<&Policy> = ps.iter().chain(&extra).collect();
            let after = verdict(&Facts { received, date, policies: more, holds: vec![] }, now);
            prop_assert!(!after.is_expired() || before.is_expired(), "{before:?} -> {after:?}");
        }

        #[test]
        fn the_verdict_does_not_depend_on_policy_order(
            ps in policies(), received in Y2000..Y2000 + CENTURY, now in Y2000..Y2000 + 2 * CENTURY) {
            let fwd = Facts { received, date: None, policies: ps.iter().collect(), holds: vec![] };
            let rev = Facts { policies: ps.iter().rev().collect(), ..fwd.clone() };
            prop_assert_eq!(verdict(&fwd, now), verdict(&rev, now));
        }

        #[test]
        fn a_period_never_ends_before_it_starts(k in keep(), from in Y2000..Y2000 + CENTURY) {
            if let Some(end) = k.end(from) {
                prop_assert!(end > from);
            }
        }
    }
}
