//! Threads as search results: the matches grouped by thread (`search
//! --threads`), and one thread's messages in order (`show --thread`).

use std::collections::HashMap;

use tantivy::collector::DocSetCollector;
use tantivy::query::{Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, Searcher, TantivyDocument, Term};

use super::schema::Fields;
use super::search::{hit, Hit};

/// Participants a summary names, at most (the count says how many more).
pub const PARTICIPANTS: usize = 8;

/// One thread among the results of a query.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ThreadSummary {
    /// Its id: `thread:ID` finds all of it, `show --thread ID` shows it.
    pub thread: String,
    /// Messages of the thread the query matched.
    pub matched: usize,
    /// Messages in the thread.
    pub messages: usize,
    /// Its first and last message's dates: RFC 3339 (UTC).
    #[serde(serialize_with = "super::search::rfc3339")]
    #[schemars(with = "String")]
    pub first: i64,
    #[serde(serialize_with = "super::search::rfc3339")]
    #[schemars(with = "String")]
    pub last: i64,
    /// Its senders, in the order they first wrote (at most [`PARTICIPANTS`]).
    pub participants: Vec<String>,
    /// Senders beyond those named.
    pub more_participants: usize,
    /// Its first message's subject.
    pub subject: String,
    /// Its messages, oldest first (for the access log; not printed).
    #[serde(skip)]
    pub ids: Vec<String>,
}

/// The threads of the documents `query` matches in any shard, most recently
/// active match first (ties by id): (thread, matches, latest matching date).
pub(super) fn matching_threads(
    searchers: &[Searcher],
    query: &dyn Query,
) -> tantivy::Result<Vec<(String, usize, i64)>> {
    let mut threads: HashMap<String, (usize, i64)> = HashMap::new();
    for searcher in searchers {
        count_threads(searcher, query, &mut threads)?;
    }
    let mut out: Vec<(String, usize, i64)> = threads.into_iter().map(|(k, (n, d))| (k, n, d)).collect();
    out.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

/// Adds the matches of `query` in one shard to `threads`: thread → (matches,
/// latest matching date).
fn count_threads(
    searcher: &Searcher,
    query: &dyn Query,
    threads: &mut HashMap<String, (usize, i64)>,
) -> tantivy::Result<()> {
    let addrs = searcher.search(query, &DocSetCollector)?;
    let mut by_segment: HashMap<u32, Vec<u32>> = HashMap::new();
    for DocAddress { segment_ord, doc_id } in addrs {
        by_segment.entry(segment_ord).or_default().push(doc_id);
    }
    for (segment, docs) in by_segment {
        let fast = searcher.segment_reader(segment).fast_fields();
        let Some(keys) = fast.str("thread")? else { continue };
        let dates = fast.i64("date")?;
        // Counted by the column's ordinal, each ordinal looked up once.
        let mut by_ord: HashMap<u64, (usize, i64)> = HashMap::new();
        for doc in docs {
            let Some(ord) = keys.term_ords(doc).next() else {
                continue;
            };
            let t = by_ord.entry(ord).or_insert((0, i64::MIN));
            t.0 += 1;
            t.1 = t.1.max(dates.first(doc).unwrap_or(0));
        }
        // The dictionary read once, in order (a lookup per ordinal would
        // decompress a block each time).
        let mut ords: Vec<(u64, (usize, i64))> = by_ord.into_iter().collect();
        ords.sort_unstable_by_key(|(ord, _)| *ord);
        let mut counts = ords.iter().map(|(_, c)| *c);
        keys.dictionary()
            .sorted_ords_to_term_cb(ords.iter().map(|(ord, _)| *ord), |term| {
                let (n, last) = counts.next().unwrap_or((0, i64::MIN));
                let t = threads
                    .entry(String::from_utf8_lossy(term).into_owned())
                    .or_insert((0, i64::MIN));
                t.0 += n;
                t.1 = t.1.max(last);
                Ok(())
            })?;
    }
    Ok(())
}

/// Every message of thread `key` in any shard, oldest first (ties by id).
pub(super) fn members(searchers: &[Searcher], f: &Fields, key: &str) -> tantivy::Result<Vec<Hit>> {
    let q = TermQuery::new(Term::from_field_text(f.thread, key), IndexRecordOption::Basic);
    let mut hits = Vec::new();
    for searcher in searchers {
        for a in searcher.search(&q, &DocSetCollector)? {
            let d: TantivyDocument = searcher.doc(a)?;
            hits.push(hit(f, &d));
        }
    }
    hits.sort_by(|a, b| (a.date, &a.id).cmp(&(b.date, &b.id)));
    Ok(hits)
}

/// The summary of a thread from its messages (oldest first).
pub(super) fn summary(key: &str, matched: usize, messages: &[Hit]) -> ThreadSummary {
    let mut participants: Vec<String> = Vec::new();
    for h in messages {
        if let Some(from) = h.from.first() {
            if !participants.contains(from) {
                participants.push(from.clone());
            }
        }
    }
    let more = participants.len().saturating_sub(PARTICIPANTS);
    participants.truncate(PARTICIPANTS);
    ThreadSummary {
        thread: key.to_string(),
        matched,
        messages: messages.len(),
        first: messages.first().map_or(0, |h| h.date),
        last: messages.last().map_or(0, |h| h.date),
        participants,
        more_participants: more,
        subject: messages.first().map(|h| h.subject.clone()).unwrap_or_default(),
        ids: messages.iter().map(|h| h.id.clone()).collect(),
    }
}
