//! The search index: tantivy, one document per message, derived from the archive.
//!
//! The archive's ingest log is the source of truth. Each index commit carries the
//! highest ingest sequence number it covers (commit payload `{"next_seq": N}`), so after a
//! crash, or when another command stored messages, [`MessageIndex::catch_up`]
//! indexes exactly the entries after it. A changed placement (new folder, flags)
//! re-indexes that message. `reindex` rebuilds from the archive alone. An index whose
//! schema is not this version's is rebuilt, never half-used. In an encrypted
//! archive every index file is sealed ([`sealed`]). The index may be split into
//! shards by message ([`shard`]); every search asks each and merges, ranked as
//! one index ranks.

pub mod conversations;
mod doc;
pub mod facets;
mod read_only;
pub mod schema;
pub mod sealed;
mod search;
pub mod shard;
mod sum;
mod threads;
mod tokenizer;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use tantivy::collector::DocSetCollector;
use tantivy::{DocAddress, Searcher, TantivyDocument, Term};
use thiserror::Error;

pub use search::{Hit, Sort};

use crate::archive::{Archive, ArchiveError};
use crate::crypt::Key;
use crate::model::{Hash32, MessageId};
use crate::query::{self, Expr, QueryError};
use crate::records::IngestKind;
use schema::Fields;
use shard::{AllShards, Payload, Shard};

/// Index directory inside an archive.
pub const INDEX_DIR: &str = "index";
/// Ingest-log entries read and parsed at a time.
const CHUNK: usize = 2000;
/// Documents added between commits: tantivy indexes one chunk while the next is
/// parsed, and each commit (a segment flush) is paid once per this many.
const COMMIT_EVERY: u64 = 10_000;
/// Documents built at once (in parallel): bounds the memory of their text.
const BUILD_BATCH: usize = 32;

#[derive(Debug, Error)]
pub enum IndexError {
    #[error("search index {path}: {source}")]
    Tantivy {
        path: PathBuf,
        #[source]
        source: tantivy::TantivyError,
    },
    #[error("search index {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("search index {path}: {reason}")]
    Layout { path: PathBuf, reason: String },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Query(#[from] QueryError),
}

pub type Result<T, E = IndexError> = std::result::Result<T, E>;

/// What a catch-up did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CatchUp {
    /// Messages (re)indexed.
    pub indexed: u64,
    /// The ingest sequence number the index now covers (exclusive end).
    pub covers: u64,
}

pub struct MessageIndex {
    /// The index directory (module [`shard`]: one shard is this directory).
    dir: PathBuf,
    shards: Vec<Shard>,
    fields: Fields,
    /// The archive's legal holds, for `is:held` and `hold:NAME`.
    holds: Vec<(String, Expr)>,
    /// The tagged messages, for `tag:NAME` (see [`MessageIndex::set_tags`]).
    tags: HashMap<String, Vec<MessageId>>,
    /// The limits of attachment text extraction; `None`: none extracted.
    extraction: Option<crate::extract::Budget>,
}

/// The messages a chunk of the ingest log (re)indexes, in log order, and those
/// it removes: the last entry of a message decides.
fn arrivals(entries: &[&(u64, crate::records::IngestEntry)]) -> (Vec<MessageId>, Vec<MessageId>) {
    let mut last_kind = HashMap::new();
    for (_, e) in entries {
        last_kind.insert(e.message, e.kind);
    }
    let mut seen = HashSet::new();
    let arrived = entries
        .iter()
        .map(|(_, e)| e.message)
        .filter(|id| seen.insert(*id))
        .filter(|id| last_kind.get(id) != Some(&IngestKind::Removed))
        .collect();
    let removed = last_kind
        .into_iter()
        .filter(|(_, kind)| *kind == IngestKind::Removed)
        .map(|(id, _)| id)
        .collect();
    (arrived, removed)
}

/// The writers of a catch-up: one per shard that is behind, `None` for a shard
/// that already covers the whole ingest log.
type Writers = Vec<Option<tantivy::IndexWriter<TantivyDocument>>>;

impl MessageIndex {
    /// Opens (or creates) the index of the archive at `archive_dir`; `key` is the
    /// index key of an encrypted archive ([`Archive::index_key`]).
    pub fn open(archive_dir: &Path, key: Option<Arc<Key>>) -> Result<MessageIndex> {
        let dir = archive_dir.join(INDEX_DIR);
        crate::private::create_dir_all(&dir).map_err(|source| IndexError::Io {
            path: dir.clone(),
            source,
        })?;
        let n = shard::count(&dir)?;
        let shards = (0..n)
            .map(|k| Shard::open(shard::dir_of(&dir, k, n), key.clone()))
            .collect::<Result<Vec<_>>>()?;
        Self::with_shards(dir, shards)
    }

    /// Opens the index of the archive at `archive_dir` for searching only: nothing
    /// is created or written, so it works on an archive the user cannot write. The
    /// index must exist with this version's schema.
    pub fn open_read_only(archive_dir: &Path, key: Option<Arc<Key>>) -> Result<MessageIndex> {
        let dir = archive_dir.join(INDEX_DIR);
        let n = shard::count(&dir)?;
        let shards = (0..n)
            .map(|k| Shard::open_read_only(shard::dir_of(&dir, k, n), key.clone()))
            .collect::<Result<Vec<_>>>()?;
        Self::with_shards(dir, shards)
    }

    /// The index over its shards, ready to search; attachment text extracted
    /// unless the last commit says it is left out.
    fn with_shards(dir: PathBuf, shards: Vec<Shard>) -> Result<MessageIndex> {
        let (_, fields) = schema::build();
        let mut idx = MessageIndex {
            dir,
            shards,
            fields,
            holds: Vec::new(),
            tags: HashMap::new(),
            extraction: Some(crate::extract::Budget::default()),
        };
        for s in &idx.shards {
            if s.payload()?.is_some_and(|p| !p.attachment_text) {
                idx.extraction = None;
            }
        }
        Ok(idx)
    }

    /// Sets the limits of attachment text extraction for what is indexed from now
    /// on (`None`: no attachment text; for measuring what extraction costs).
    pub fn set_extraction(&mut self, budget: Option<crate::extract::Budget>) {
        self.extraction = budget;
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// A searcher of every shard, in shard order.
    fn searchers(&self) -> Vec<Searcher> {
        self.shards.iter().map(|s| s.reader.searcher()).collect()
    }

    /// An error of the index as a whole (of its one shard, or its directory).
    fn tv(&self, source: tantivy::TantivyError) -> IndexError {
        IndexError::Tantivy {
            path: self.dir.clone(),
            source,
        }
    }

    /// Messages by what extraction made of their attachments (see
    /// [`facets::extraction_counts`]), over every shard.
    pub fn extraction_counts(&self) -> Result<Vec<(String, String, u64)>> {
        facets::extraction_counts(&self.searchers()).map_err(|e| self.tv(e))
    }

    /// Deletes the index and builds it again from the archive, with the text
    /// inside attachments or without, in `shards` shards (`None`: as many as it
    /// had).
    pub fn rebuild(
        archive: &Archive,
        attachment_text: bool,
        shards: Option<usize>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(MessageIndex, CatchUp)> {
        let dir = archive.dir().join(INDEX_DIR);
        let n = match shards {
            Some(n) => n,
            None if dir.exists() => shard::count(&dir)?,
            None => 1,
        };
        let io = |source| IndexError::Io {
            path: dir.clone(),
            source,
        };
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io)?;
        }
        crate::private::create_dir_all(&dir).map_err(io)?;
        shard::set_count(&dir, n)?;
        let mut idx = MessageIndex::open(archive.dir(), archive.index_key())?;
        if !attachment_text {
            idx.set_extraction(None);
        }
        let c = idx.catch_up(archive, progress)?;
        idx.merge_all()?;
        Ok((idx, c))
    }

    /// Deletes shard `k` and builds it again from the archive (the others stay
    /// as they are; what they cover, it covers after).
    pub fn rebuild_shard(
        archive: &Archive,
        k: usize,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(MessageIndex, CatchUp)> {
        let dir = archive.dir().join(INDEX_DIR);
        let n = shard::count(&dir)?;
        if k >= n {
            return Err(IndexError::Layout {
                path: dir,
                reason: format!("there is no shard {k}: the index has {n} (0 to {})", n - 1),
            });
        }
        let one = shard::dir_of(&dir, k, n);
        if n == 1 {
            let attachment_text = MessageIndex::open(archive.dir(), archive.index_key())?
                .extraction
                .is_some();
            return Self::rebuild(archive, attachment_text, Some(1), progress);
        }
        if one.exists() {
            std::fs::remove_dir_all(&one).map_err(|source| IndexError::Io { path: one, source })?;
        }
        let mut idx = MessageIndex::open(archive.dir(), archive.index_key())?;
        let c = idx.catch_up(archive, progress)?;
        idx.shards[k].merge_all()?;
        Ok((idx, c))
    }

    /// Merges each shard's segments (see [`Shard::merge_all`]).
    pub fn merge_all(&mut self) -> Result<()> {
        self.shards.iter().try_for_each(Shard::merge_all)
    }

    /// The ingest sequence number every shard covers (exclusive end).
    pub fn covers(&self) -> Result<u64> {
        let mut least = u64::MAX;
        for s in &self.shards {
            least = least.min(s.covers()?);
        }
        Ok(least)
    }

    /// Indexes every ingest-log entry the index does not cover yet, threading
    /// what arrives with what is indexed (module [`threads`]); each shard takes
    /// the entries of its messages it does not cover.
    pub fn catch_up(&mut self, archive: &Archive, progress: &mut dyn FnMut(u64)) -> Result<CatchUp> {
        let covers = self.shards.iter().map(Shard::covers).collect::<Result<Vec<u64>>>()?;
        let mut next = covers.iter().copied().min().unwrap_or(0);
        let end = archive.counters().next_seq;
        let mut report = CatchUp {
            indexed: 0,
            covers: next,
        };
        if next >= end {
            return Ok(report);
        }
        let n = self.shards.len();
        let mut writers = self.writers(&covers, end)?;
        if writers.iter().all(Option::is_none) {
            return Ok(report);
        }
        let mut pending = threads::Pending::default();
        let mut uncommitted = 0u64;
        while next < end {
            let entries = archive.ingest_log(next, CHUNK)?;
            let Some(&(last, _)) = entries.last() else { break };
            let due: Vec<_> = entries
                .iter()
                .filter(|(seq, e)| *seq >= covers[shard::shard_of(&e.message, n)])
                .collect();
            let (arrived, removed) = arrivals(&due);
            for id in &removed {
                if let Some(w) = &writers[shard::shard_of(id, n)] {
                    w.delete_term(Term::from_field_text(self.fields.id, &id.to_hex()));
                }
                pending.remove(id);
            }
            let t0 = std::time::Instant::now();
            let plan = self.thread_chunk(archive, &pending, &arrived)?;
            let t_thread = t0.elapsed();
            self.write_docs(archive, &mut writers, &mut pending, plan.write)?;
            let t_docs = t0.elapsed() - t_thread;
            next = last + 1;
            uncommitted += arrived.len() as u64;
            if uncommitted >= COMMIT_EVERY || next >= end {
                self.commit(&mut writers, &covers, next)?;
                pending.clear();
                uncommitted = 0;
                report.covers = next;
            }
            tracing::debug!(
                docs = arrived.len(),
                moved_thread = plan.moved,
                thread_ms = t_thread.as_millis() as u64,
                docs_ms = t_docs.as_millis() as u64,
                commit_ms = (t0.elapsed() - t_thread - t_docs).as_millis() as u64,
                "index chunk"
            );
            report.indexed += arrived.len() as u64;
            progress(report.indexed);
        }
        for (s, w) in self.shards.iter().zip(writers) {
            if let Some(w) = w {
                w.wait_merging_threads().map_err(|e| s.tv(e))?;
                s.reader.reload().map_err(|e| s.tv(e))?;
            }
        }
        // Less than `next` when a shard was left to another process.
        report.covers = self.covers()?;
        Ok(report)
    }

    /// A writer for each shard behind `end` whose lock is free: a shard another
    /// process is writing (a worker sharing the directory) is left to it — this
    /// catch-up still threads that shard's arrivals with the rest, and writes
    /// only its own shards.
    fn writers(&self, covers: &[u64], end: u64) -> Result<Writers> {
        let n = self.shards.len();
        let mut writers: Writers = Vec::with_capacity(n);
        for (s, &c) in self.shards.iter().zip(covers) {
            if c >= end {
                writers.push(None);
                continue;
            }
            writers.push(match s.writer(n) {
                Ok(w) => Some(w),
                Err(IndexError::Tantivy {
                    source: tantivy::TantivyError::LockFailure(..),
                    ..
                }) if n > 1 => {
                    tracing::debug!(shard = %s.dir.display(), "shard being written by another process; left to it");
                    None
                }
                Err(e) => return Err(e),
            });
        }
        Ok(writers)
    }

    /// Threads the messages of a chunk with the indexed threads they touch, in
    /// every shard: their headers are read in parallel, then [`threads::plan`].
    fn thread_chunk(&self, archive: &Archive, pending: &threads::Pending, ids: &[MessageId]) -> Result<threads::Plan> {
        let arriving = ids
            .par_iter()
            .map(|id| {
                let header = archive.get_header(id)?;
                let placements = archive.placements_of(id)?;
                Ok((*id, doc::thread_headers(id, &header, &placements)))
            })
            .collect::<Result<Vec<_>>>()?;
        threads::plan(&self.searchers(), &self.fields, pending, arriving).map_err(|e| self.tv(e))
    }

    /// (Re)writes the documents of `write` into their shards (those behind; a
    /// shard that covers the whole log has every thread change already), built
    /// a few at a time in parallel: a document may hold up to the extraction
    /// budget's text, and a chunk's worth at once could be gigabytes.
    fn write_docs(
        &self,
        archive: &Archive,
        writers: &mut Writers,
        pending: &mut threads::Pending,
        write: Vec<(MessageId, doc::Threaded)>,
    ) -> Result<()> {
        let f = self.fields;
        let n = self.shards.len();
        let extraction = self.extraction.as_ref();
        let write: Vec<_> = write
            .into_iter()
            .filter(|(id, _)| writers[shard::shard_of(id, n)].is_some())
            .collect();
        for batch in write.chunks(BUILD_BATCH) {
            let docs: Vec<Result<TantivyDocument>> = batch
                .par_iter()
                .map(|(id, threaded)| {
                    let raw = archive.get_raw(id)?;
                    let placements = archive.placements_of(id)?;
                    Ok(doc::build(&f, id, &raw, &placements, threaded, extraction))
                })
                .collect();
            for ((id, threaded), d) in batch.iter().zip(docs) {
                let k = shard::shard_of(id, n);
                let Some(writer) = &mut writers[k] else { continue };
                writer.delete_term(Term::from_field_text(f.id, &id.to_hex()));
                writer.add_document(d?).map_err(|e| self.shards[k].tv(e))?;
                pending.insert(*id, threaded.clone());
            }
        }
        Ok(())
    }

    /// Commits what each writer holds as covering the ingest log below `next`
    /// (a shard that covered more before keeps its mark), and lets the
    /// searchers see it.
    fn commit(&self, writers: &mut Writers, covers: &[u64], next: u64) -> Result<()> {
        for ((s, w), &c) in self.shards.iter().zip(writers.iter_mut()).zip(covers) {
            if let Some(w) = w {
                let payload = Payload {
                    next_seq: next.max(c),
                    attachment_text: self.extraction.is_some(),
                };
                s.commit(w, &payload)?;
            }
        }
        Ok(())
    }

    /// Parses and runs a query.
    pub fn search(&self, q: &str, sort: Sort, limit: usize, offset: usize) -> Result<Vec<Hit>> {
        let expr = query::parse(q)?;
        self.search_expr(&expr, sort, limit, offset)
    }

    /// The legal holds `is:held` and `hold:NAME` refer to (name and parsed query):
    /// the archive's, set by whoever opened the index.
    pub fn set_holds(&mut self, holds: Vec<(String, Expr)>) {
        self.holds = holds;
    }

    /// `expr` with its hold terms replaced by the holds' queries, and its tags by
    /// the messages carrying them.
    fn resolve<'e>(&self, expr: &'e Expr) -> Result<std::borrow::Cow<'e, Expr>> {
        let mut e = std::borrow::Cow::Borrowed(expr);
        if e.mentions_holds() {
            e = std::borrow::Cow::Owned(query::expand_holds(e.into_owned(), &self.holds)?);
        }
        if !e.tag_names().is_empty() {
            e = std::borrow::Cow::Owned(query::expand_tags(e.into_owned(), &self.tags)?);
        }
        Ok(e)
    }

    /// The messages of each tag `tag:` may name (the archive's; set by whoever
    /// opened the index, with [`MessageIndex::set_holds`]'s holds in mind: a
    /// hold's query may name tags too).
    pub fn set_tags(&mut self, tags: HashMap<String, Vec<MessageId>>) {
        self.tags = tags;
    }

    /// The shard that holds message `id`, with a searcher of it.
    fn shard_of(&self, id: &MessageId) -> (&Shard, Searcher) {
        let s = &self.shards[shard::shard_of(id, self.shards.len())];
        (s, s.reader.searcher())
    }

    /// The names of the holds (of [`MessageIndex::set_holds`]) whose queries match
    /// message `id`: each asked of the index together with the id, so only that
    /// message's document is looked at.
    pub fn holds_of(&self, id: &MessageId) -> Result<Vec<String>> {
        let (shard, searcher) = self.shard_of(id);
        let mut out = Vec::new();
        for (name, expr) in &self.holds {
            let query = search::with_id(&self.fields, &*self.resolve(expr)?, id);
            let n = searcher
                .search(query.as_ref(), &tantivy::collector::Count)
                .map_err(|e| shard.tv(e))?;
            if n > 0 {
                out.push(name.clone());
            }
        }
        Ok(out)
    }

    /// Message `id` as a search would list it (`None` when the index lacks it).
    pub fn hit(&self, id: &MessageId) -> Result<Option<Hit>> {
        let (shard, searcher) = self.shard_of(id);
        let query = search::with_id(&self.fields, &Expr::All, id);
        let addrs = search::run(&searcher, &searcher, query.as_ref(), Sort::DateAsc, 1, 0).map_err(|e| shard.tv(e))?;
        match addrs.first() {
            Some(&(_, a)) => {
                let d: TantivyDocument = searcher.doc(a).map_err(|e| shard.tv(e))?;
                Ok(Some(search::hit(&self.fields, &d)))
            }
            None => Ok(None),
        }
    }

    /// The matches of `expr` in `sort` order, `limit` from `offset` on. Over
    /// shards: each shard's first `offset + limit`, ranked as one index would
    /// rank them (relevance with every shard's statistics, [`AllShards`]; ties
    /// by id), merged.
    pub fn search_expr(&self, expr: &Expr, sort: Sort, limit: usize, offset: usize) -> Result<Vec<Hit>> {
        let query = search::to_query(&self.fields, &*self.resolve(expr)?);
        let searchers = self.searchers();
        // No more than there are: a huge offset or limit must not size the
        // collectors' buffers.
        let docs = searchers.iter().map(Searcher::num_docs).sum::<u64>() as usize;
        if offset >= docs || limit == 0 {
            return Ok(Vec::new());
        }
        let limit = limit.min(docs - offset);
        let mut ranked: Vec<(search::Rank, usize, DocAddress)> = Vec::new();
        if let [one] = searchers.as_slice() {
            let addrs = search::run(one, &AllShards(&searchers), query.as_ref(), sort, limit, offset)
                .map_err(|e| self.tv(e))?;
            ranked.extend(addrs.into_iter().map(|(r, a)| (r, 0, a)));
        } else {
            let all = AllShards(&searchers);
            for (k, s) in searchers.iter().enumerate() {
                let addrs =
                    search::run(s, &all, query.as_ref(), sort, offset + limit, 0).map_err(|e| self.shards[k].tv(e))?;
                ranked.extend(addrs.into_iter().map(|(r, a)| (r, k, a)));
            }
            ranked.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
            ranked = ranked.into_iter().skip(offset).take(limit).collect();
        }
        ranked
            .into_iter()
            .map(|(_, k, a)| {
                let d: TantivyDocument = searchers[k].doc(a).map_err(|e| self.shards[k].tv(e))?;
                Ok(search::hit(&self.fields, &d))
            })
            .collect()
    }

    /// The facets of the messages `expr` matches; folders only of the accounts
    /// `want_folders` allows (a reader's own).
    pub fn facets(&self, expr: &Expr, want_folders: &dyn Fn(&str) -> bool) -> Result<facets::Facets> {
        let query = search::to_query(&self.fields, &*self.resolve(expr)?);
        facets::count(&self.searchers(), query.as_ref(), want_folders).map_err(|e| self.tv(e))
    }

    /// The threads of the messages `expr` matches, most recently active match
    /// first: up to `limit` from `offset` on, summarised over all their
    /// messages; and how many threads match in all.
    pub fn threads(
        &self,
        expr: &Expr,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<conversations::ThreadSummary>, usize)> {
        let searchers = self.searchers();
        let query = search::to_query(&self.fields, &*self.resolve(expr)?);
        let all = conversations::matching_threads(&searchers, query.as_ref()).map_err(|e| self.tv(e))?;
        let total = all.len();
        let mut shown = Vec::new();
        for (key, matched, _) in all.into_iter().skip(offset).take(limit) {
            let messages = conversations::members(&searchers, &self.fields, &key).map_err(|e| self.tv(e))?;
            shown.push(conversations::summary(&key, matched, &messages));
        }
        Ok((shown, total))
    }

    /// Every message of the thread `key`, oldest first.
    pub fn thread_messages(&self, key: &str) -> Result<Vec<Hit>> {
        conversations::members(&self.searchers(), &self.fields, &key.to_lowercase()).map_err(|e| self.tv(e))
    }

    /// How many messages match.
    pub fn count_expr(&self, expr: &Expr) -> Result<usize> {
        let query = search::to_query(&self.fields, &*self.resolve(expr)?);
        let mut n = 0;
        for (s, searcher) in self.shards.iter().zip(self.searchers()) {
            n += searcher
                .search(query.as_ref(), &tantivy::collector::Count)
                .map_err(|e| s.tv(e))?;
        }
        Ok(n)
    }

    /// The ids of every matching message (for `export --query`, `show --query`).
    pub fn matching_ids(&self, q: &str) -> Result<Vec<MessageId>> {
        let expr = query::parse(q)?;
        Ok(self.matching_expr(&expr)?.into_iter().map(|(id, _)| id).collect())
    }

    /// The id and date (the `Date:` header, else the internal date; 0 when
    /// neither) of every message matching `expr`, by id.
    pub fn matching_expr(&self, expr: &Expr) -> Result<Vec<(MessageId, i64)>> {
        let query = search::to_query(&self.fields, &*self.resolve(expr)?);
        let mut ids = Vec::new();
        for (s, searcher) in self.shards.iter().zip(self.searchers()) {
            let addrs = searcher.search(query.as_ref(), &DocSetCollector).map_err(|e| s.tv(e))?;
            ids.reserve(addrs.len());
            for a in addrs {
                let d: TantivyDocument = searcher.doc(a).map_err(|e| s.tv(e))?;
                let hit = search::hit(&self.fields, &d);
                if let Some(id) = Hash32::from_hex(&hit.id) {
                    ids.push((id, hit.date));
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Number of documents in the index.
    pub fn num_docs(&self) -> u64 {
        self.searchers().iter().map(Searcher::num_docs).sum()
    }

    /// The schema, as tantivy serialises it (`schemas/index-v6.json`).
    pub fn schema_json() -> serde_json::Value {
        serde_json::to_value(schema::build().0).expect("schema serialises")
    }
}
