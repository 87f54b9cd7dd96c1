//! Every difference between two accounts, from what each holds — a pure function,
//! tested by a table.
//!
//! ```text
//! 1. Each message of account A is expected in the folder A's folder maps to on B
//!    (the replay's folder mapping), as many times as A has it there.
//! 2. Per folder and message (BLAKE3 of the bytes): pairs with equal flags and
//!    INTERNALDATE match first; leftover pairs differ in flags and/or date; what A
//!    has more of is missing on B, what B has more of is extra.
//! 3. A message missing from one folder and extra in another is one difference:
//!    in the wrong folder.
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::Hash32;

/// One message as a server holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// For A: the B folder it maps to; for B: its folder.
    pub folder: String,
    pub message: Hash32,
    /// IMAP spelling, sorted, without `\Recent`.
    pub flags: Vec<String>,
    pub internal_date: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// On A, not on B.
    Missing,
    /// On B, not on A.
    Extra,
    /// On B, but in another folder than A's maps to.
    Folder,
    Flags,
    Date,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Difference {
    pub kind: Kind,
    /// The folder on B where it is expected (or, for extra, where it is).
    pub folder: String,
    pub message: String,
    /// What A has (flags, date, or nothing), as text.
    pub a: String,
    /// What B has, or where it is.
    pub b: String,
}

fn date_text(d: Option<i64>) -> String {
    d.map_or_else(|| "-".into(), |d| d.to_string())
}

/// Flags and date of each copy, per (folder, message).
type Copies = BTreeMap<(String, Hash32), Vec<(Vec<String>, Option<i64>)>>;

/// Steps 1–3.
pub fn diff(a: &[Held], b: &[Held]) -> Vec<Difference> {
    let group = |v: &[Held]| {
        let mut m = Copies::new();
        for h in v {
            m.entry((h.folder.clone(), h.message))
                .or_default()
                .push((h.flags.clone(), h.internal_date));
        }
        m
    };
    let (ga, mut gb) = (group(a), group(b));
    let mut out = Vec::new();
    let mut missing: Vec<(String, Hash32, usize)> = Vec::new();
    for ((folder, message), mut wants) in ga {
        let mut haves = gb.remove(&(folder.clone(), message)).unwrap_or_default();
        // Exact pairs first.
        wants.retain(|w| match haves.iter().position(|h| h == w) {
            Some(i) => {
                haves.remove(i);
                false
            }
            None => true,
        });
        let paired = wants.len().min(haves.len());
        for (w, h) in wants.iter().zip(&haves).take(paired) {
            if w.0 != h.0 {
                out.push(Difference {
                    kind: Kind::Flags,
                    folder: folder.clone(),
                    message: message.to_hex(),
                    a: w.0.join(" "),
                    b: h.0.join(" "),
                });
            }
            if w.1 != h.1 {
                out.push(Difference {
                    kind: Kind::Date,
                    folder: folder.clone(),
                    message: message.to_hex(),
                    a: date_text(w.1),
                    b: date_text(h.1),
                });
            }
        }
        if wants.len() > paired {
            missing.push((folder.clone(), message, wants.len() - paired));
        }
        if haves.len() > paired {
            gb.insert((folder, message), haves.split_off(paired));
        }
    }
    // 3. What is left on B is extra, unless A misses it elsewhere.
    let mut extra: BTreeMap<Hash32, Vec<(String, usize)>> = BTreeMap::new();
    for ((folder, message), haves) in gb {
        if !haves.is_empty() {
            extra.entry(message).or_default().push((folder, haves.len()));
        }
    }
    for (folder, message, mut n) in missing {
        if let Some(places) = extra.get_mut(&message) {
            for (other, m) in places.iter_mut() {
                while n > 0 && *m > 0 {
                    out.push(Difference {
                        kind: Kind::Folder,
                        folder: folder.clone(),
                        message: message.to_hex(),
                        a: folder.clone(),
                        b: other.clone(),
                    });
                    n -= 1;
                    *m -= 1;
                }
            }
        }
        for _ in 0..n {
            out.push(Difference {
                kind: Kind::Missing,
                folder: folder.clone(),
                message: message.to_hex(),
                a: "present".into(),
                b: "absent".into(),
            });
        }
    }
    for (message, places) in extra {
        for (folder, m) in places {
            for _ in 0..m {
                out.push(Difference {
                    kind: Kind::Extra,
                    folder: folder.clone(),
                    message: message.to_hex(),
                    a: "absent".into(),
                    b: "present".into(),
                });
            }
        }
    }
    out.sort_by(|x, y| (&x.folder, x.kind, &x.message).cmp(&(&y.folder, y.kind, &y.message)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(folder: &str, n: u8, flags: &[&str], date: i64) -> Held {
        Held {
            folder: folder.into(),
            message: Hash32::of(&[n]),
            flags: flags.iter().map(|s| s.to_string()).collect(),
            internal_date: Some(date),
        }
    }

    fn kinds(d: &[Difference]) -> Vec<(Kind, String, String)> {
        d.iter()
            .map(|x| (x.kind, x.folder.clone(), x.message[..8].to_string()))
            .collect()
    }

    #[test]
    fn diff_table() {
        let h = |n: u8| Hash32::of(&[n]).to_hex()[..8].to_string();
        let a = vec![
            held("INBOX", 1, &["\\Seen"], 10),
            held("INBOX", 2, &[], 20),
            held("INBOX", 2, &[], 20),
            held("INBOX", 3, &["\\Seen"], 30),
            held("Work", 4, &[], 40),
            held("Work", 5, &[], 50),
        ];
        let b = vec![
            held("INBOX", 1, &["\\Seen"], 10), // equal
            held("INBOX", 2, &[], 20),         // one of two copies
            held("INBOX", 3, &[], 31),         // flags and date differ
            held("Other", 4, &[], 40),         // wrong folder
            held("Work", 6, &[], 60),          // extra
        ];
        let d = diff(&a, &b);
        assert_eq!(
            kinds(&d),
            vec![
                (Kind::Missing, "INBOX".into(), h(2)),
                (Kind::Flags, "INBOX".into(), h(3)),
                (Kind::Date, "INBOX".into(), h(3)),
                (Kind::Missing, "Work".into(), h(5)),
                (Kind::Extra, "Work".into(), h(6)),
                (Kind::Folder, "Work".into(), h(4)),
            ],
            "sorted by folder, then kind"
        );
        let flags = d.iter().find(|x| x.kind == Kind::Flags).unwrap();
        assert_eq!((flags.a.as_str(), flags.b.as_str()), ("\\Seen", ""));
        let moved = d.iter().find(|x| x.kind == Kind::Folder).unwrap();
        assert_eq!((moved.a.as_str(), moved.b.as_str()), ("Work", "Other"));
        assert!(diff(&a, &a).is_empty());
        assert!(diff(&[], &[]).is_empty());
    }
}
