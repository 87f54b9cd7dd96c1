//! Threads kept up to date as mail is indexed.
//!
//! Each document records its thread's key, its ancestry ids and (without
//! reference headers) its base subject (module [`super::doc`]). When messages
//! arrive, [`plan`] re-threads them together with every thread they touch:
//!
//! 1. the threads of the messages whose Message-ID an arriving message names,
//!    that name an arriving message's id, or that share an ancestor with one;
//! 2. for arriving messages without reference headers, the threads of the
//!    messages with the same base subject (the subject rule);
//! 3. every member of those threads, then again step 2 for the members without
//!    reference headers, up to [`ROUNDS`] times and [`MAX_MEMBERS`] messages;
//! 4. [`crate::thread::thread`] over that set, in date-then-id order (the order
//!    a rebuild from nothing gives, so both agree);
//! 5. the arriving messages get their keys, and members whose key changed (two
//!    threads joined, or an older root arrived) are written again.
//!
//! Documents added since the last commit are not visible to the searcher yet;
//! [`Pending`] holds what threading needs of them until the commit.

use std::collections::{HashMap, HashSet};

use tantivy::collector::DocSetCollector;
use tantivy::query::TermSetQuery;
use tantivy::schema::Value;
use tantivy::{Searcher, TantivyDocument, Term};

use super::doc::Threaded;
use super::schema::Fields;
use crate::model::{Hash32, MessageId};
use crate::thread::{self, Headers};

/// Rounds of the subject rule's widening (step 3).
const ROUNDS: usize = 3;
/// Messages re-threaded at once, at most: past it a thread stops widening
/// (logged), so one enormous thread cannot make every arrival slow.
const MAX_MEMBERS: usize = 50_000;

/// What threading knows of documents added but not committed yet.
#[derive(Default)]
pub struct Pending {
    members: HashMap<MessageId, Threaded>,
    /// Deleted, though the searcher still has them.
    removed: HashSet<MessageId>,
}

impl Pending {
    pub fn insert(&mut self, id: MessageId, t: Threaded) {
        self.removed.remove(&id);
        self.members.insert(id, t);
    }

    pub fn remove(&mut self, id: &MessageId) {
        self.members.remove(id);
        self.removed.insert(*id);
    }

    /// Whether the searcher's copy of `id` is out of date.
    fn hides(&self, id: &MessageId) -> bool {
        self.members.contains_key(id) || self.removed.contains(id)
    }

    /// Forgets everything: the searcher sees it all after a commit.
    pub fn clear(&mut self) {
        self.members.clear();
        self.removed.clear();
    }
}

/// What to write after threading a chunk: every arriving message, and every
/// indexed one whose thread changed, with its place.
pub struct Plan {
    pub write: Vec<(MessageId, Threaded)>,
    /// How many of `write` were indexed before and only moved thread.
    pub moved: usize,
}

/// The lookups of one widening round.
#[derive(Default)]
struct Wanted {
    /// Message-IDs, lower-cased as the exact fields index them.
    ids: HashSet<String>,
    base_subjects: HashSet<String>,
}

impl Wanted {
    fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.base_subjects.is_empty()
    }

    fn add_links(&mut self, h: &Headers) {
        self.ids.extend(h.message_id.iter().map(|i| i.to_lowercase()));
        self.ids.extend(h.ancestry().into_iter().map(str::to_lowercase));
    }

    fn add_subject(&mut self, h: &Headers, asked: &mut HashSet<String>) {
        if h.ancestry().is_empty() {
            let s = thread::base_subject(&h.subject);
            if asked.insert(s.clone()) {
                self.base_subjects.insert(s);
            }
        }
    }

    /// Whether a message matches: it is one of the ids, names one, or has one
    /// of the base subjects.
    fn matches(&self, h: &Headers) -> bool {
        let ancestry = h.ancestry();
        h.message_id.iter().any(|i| self.ids.contains(&i.to_lowercase()))
            || ancestry.iter().any(|a| self.ids.contains(&a.to_lowercase()))
            || (ancestry.is_empty() && self.base_subjects.contains(&thread::base_subject(&h.subject)))
    }

    fn terms(&self, f: &Fields) -> Vec<Term> {
        let ids = self
            .ids
            .iter()
            .flat_map(|i| [Term::from_field_text(f.msgid, i), Term::from_field_text(f.refs, i)]);
        let subjects = self
            .base_subjects
            .iter()
            .map(|s| Term::from_field_text(f.base_subject, s));
        ids.chain(subjects).collect()
    }
}

/// One indexed message as threading sees it.
fn stored(f: &Fields, d: &TantivyDocument) -> Option<(MessageId, Threaded)> {
    let text = |field| d.get_first(field).and_then(|v| v.as_str()).map(str::to_string);
    let id = Hash32::from_hex(&text(f.id)?)?;
    let headers = Headers {
        message_id: text(f.msgid),
        in_reply_to: Vec::new(),
        references: d
            .get_all(f.ancestry)
            .filter_map(|v| v.as_str())
            .map(str::to_string)
            .collect(),
        subject: text(f.subject).unwrap_or_default(),
        date: d.get_first(f.date).and_then(|v| v.as_i64()).unwrap_or(0),
        fallback: id.to_hex(),
    };
    Some((
        id,
        Threaded {
            headers,
            key: text(f.thread)?,
        },
    ))
}

/// The indexed (committed or pending) messages matching `terms` in any shard,
/// each with its thread; pending wins over the searchers' older copy.
fn find(
    searchers: &[Searcher],
    f: &Fields,
    pending: &Pending,
    terms: Vec<Term>,
    pending_match: impl Fn(&Threaded) -> bool,
) -> tantivy::Result<Vec<(MessageId, Threaded)>> {
    let mut found = Vec::new();
    if !terms.is_empty() {
        let query = TermSetQuery::new(terms);
        for searcher in searchers {
            for a in searcher.search(&query, &DocSetCollector)? {
                let d: TantivyDocument = searcher.doc(a)?;
                if let Some((id, t)) = stored(f, &d) {
                    if !pending.hides(&id) {
                        found.push((id, t));
                    }
                }
            }
        }
    }
    found.extend(
        pending
            .members
            .iter()
            .filter(|(_, t)| pending_match(t))
            .map(|(id, t)| (*id, t.clone())),
    );
    Ok(found)
}

/// Threads `arriving` with the indexed threads they touch, in every shard (see
/// the module doc).
pub fn plan(
    searchers: &[Searcher],
    f: &Fields,
    pending: &Pending,
    arriving: Vec<(MessageId, Headers)>,
) -> tantivy::Result<Plan> {
    // Arriving messages, and the current thread of every indexed one pulled in.
    let mut set: HashMap<MessageId, (Headers, Option<String>)> = HashMap::new();
    let mut wanted = Wanted::default();
    let mut asked_subjects = HashSet::new();
    for (id, h) in arriving {
        wanted.add_links(&h);
        wanted.add_subject(&h, &mut asked_subjects);
        set.insert(id, (h, None));
    }
    // 1–3. Widen to the touched threads.
    let mut threads_seen: HashSet<String> = HashSet::new();
    for _ in 0..ROUNDS {
        if wanted.is_empty() || set.len() >= MAX_MEMBERS {
            break;
        }
        let linked = find(searchers, f, pending, wanted.terms(f), |t| wanted.matches(&t.headers))?;
        let keys: HashSet<String> = linked
            .into_iter()
            .map(|(_, t)| t.key)
            .filter(|k| threads_seen.insert(k.clone()))
            .collect();
        let key_terms = keys.iter().map(|k| Term::from_field_text(f.thread, k)).collect();
        let members = find(searchers, f, pending, key_terms, |t| keys.contains(&t.key))?;
        wanted = Wanted::default();
        for (id, t) in members {
            if let std::collections::hash_map::Entry::Vacant(e) = set.entry(id) {
                wanted.add_subject(&t.headers, &mut asked_subjects);
                e.insert((t.headers, Some(t.key)));
            }
        }
    }
    if set.len() >= MAX_MEMBERS {
        tracing::warn!(
            messages = set.len(),
            "threads too large to re-thread whole; threading within the first {MAX_MEMBERS} messages"
        );
    }
    Ok(assign(set))
}

/// 4–5. Threads the set in date-then-id order; what must be written.
fn assign(set: HashMap<MessageId, (Headers, Option<String>)>) -> Plan {
    let mut order: Vec<(MessageId, (Headers, Option<String>))> = set.into_iter().collect();
    order.sort_by(|(a, (ha, _)), (b, (hb, _))| (ha.date, a).cmp(&(hb.date, b)));
    let headers: Vec<Headers> = order.iter().map(|(_, (h, _))| h.clone()).collect();
    let threads = thread::thread(&headers);
    let mut names: HashMap<&str, String> = HashMap::new();
    let mut write = Vec::new();
    let mut moved = 0;
    for ((id, (h, was)), name) in order.into_iter().zip(&threads.of) {
        let key = names.entry(name).or_insert_with(|| thread::key(name)).clone();
        if was.as_ref() == Some(&key) {
            continue;
        }
        moved += usize::from(was.is_some());
        write.push((id, Threaded { headers: h, key }));
    }
    Plan { write, moved }
}
