//! The search index: tantivy, one document per message, derived from the archive.
//!
//! The archive's ingest log is the source of truth. Each index commit carries the
//! highest ingest sequence number it covers (commit payload `{"seq": N}`), so after a
//! crash, or when another command stored messages, [`MessageIndex::catch_up`]
//! indexes exactly the entries after it. A changed placement (new folder, flags)
//! re-indexes that message. `reindex` rebuilds from the archive alone. An index whose
//! schema is not this version's is rebuilt, never half-used. In an encrypted
//! archive every index file is sealed ([`sealed`]).

pub mod conversations;
mod doc;
pub mod facets;
mod read_only;
pub mod schema;
pub mod sealed;
mod search;
mod threads;
mod tokenizer;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use tantivy::collector::DocSetCollector;
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, Term};
use thiserror::Error;

pub use search::{Hit, Sort};

use crate::archive::{Archive, ArchiveError};
use crate::crypt::Key;
use crate::model::{Hash32, MessageId};
use crate::query::{self, Expr, QueryError};
use crate::records::IngestKind;
use schema::Fields;

/// Index directory inside an archive.
pub const INDEX_DIR: &str = "index";
/// Ingest-log entries read and parsed at a time.
const CHUNK: usize = 2000;
/// Documents added between commits: tantivy indexes one chunk while the next is
/// parsed, and each commit (a segment flush) is paid once per this many.
const COMMIT_EVERY: u64 = 10_000;
/// Documents built at once (in parallel): bounds the memory of their text.
const BUILD_BATCH: usize = 32;
/// Indexing memory budget (split across tantivy's indexing threads).
const WRITER_BYTES: usize = 128 << 20;

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
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
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
fn arrivals(entries: &[(u64, crate::records::IngestEntry)]) -> (Vec<MessageId>, Vec<MessageId>) {
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

/// `directory`, sealed with `key` when there is one.
fn seal_with(directory: Box<dyn tantivy::Directory>, key: Option<Arc<Key>>) -> Box<dyn tantivy::Directory> {
    match key {
        Some(k) => Box::new(sealed::SealedDirectory::new(directory, k)),
        None => directory,
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    /// Every ingest-log entry with a sequence number below this is indexed.
    next_seq: u64,
    /// Whether the text inside attachments is indexed (`reindex
    /// --no-attachment-text` turns it off until the next reindex).
    #[serde(default = "yes")]
    attachment_text: bool,
}

fn yes() -> bool {
    true
}

impl MessageIndex {
    /// Opens (or creates) the index of the archive at `archive_dir`; `key` is the
    /// index key of an encrypted archive ([`Archive::index_key`]).
    pub fn open(archive_dir: &Path, key: Option<Arc<Key>>) -> Result<MessageIndex> {
        let dir = archive_dir.join(INDEX_DIR);
        let tv = |source| IndexError::Tantivy {
            path: dir.clone(),
            source,
        };
        crate::private::create_dir_all(&dir).map_err(|source| IndexError::Io {
            path: dir.clone(),
            source,
        })?;
        let (schema, fields) = schema::build();
        let directory = || -> Result<Box<dyn tantivy::Directory>> {
            let plain = tantivy::directory::MmapDirectory::open(&dir)
                .map_err(tantivy::TantivyError::from)
                .map_err(tv)?;
            Ok(seal_with(Box::new(plain), key.clone()))
        };
        let create = |schema| Index::create(directory()?, schema, tantivy::IndexSettings::default()).map_err(tv);
        let index = if dir.join("meta.json").exists() {
            let existing = Index::open(directory()?).map_err(tv)?;
            if existing.schema() == schema {
                existing
            } else {
                tracing::warn!(path = %dir.display(), "index schema differs from this version's; rebuilding the index");
                drop(existing);
                std::fs::remove_dir_all(&dir).map_err(|source| IndexError::Io {
                    path: dir.clone(),
                    source,
                })?;
                crate::private::create_dir_all(&dir).map_err(|source| IndexError::Io {
                    path: dir.clone(),
                    source,
                })?;
                create(schema)?
            }
        } else {
            create(schema)?
        };
        Self::with_reader(dir, index, fields)
    }

    /// Opens the index of the archive at `archive_dir` for searching only: nothing
    /// is created or written, so it works on an archive the user cannot write. The
    /// index must exist with this version's schema.
    pub fn open_read_only(archive_dir: &Path, key: Option<Arc<Key>>) -> Result<MessageIndex> {
        let dir = archive_dir.join(INDEX_DIR);
        let tv = |source| IndexError::Tantivy {
            path: dir.clone(),
            source,
        };
        let directory = read_only::ReadOnlyDirectory::open(&dir).map_err(tv)?;
        let index = Index::open(seal_with(Box::new(directory), key)).map_err(tv)?;
        let (schema, fields) = schema::build();
        if index.schema() != schema {
            return Err(tv(tantivy::TantivyError::SchemaError(
                "the index was made by another version; run `mailvault reindex`".into(),
            )));
        }
        Self::with_reader(dir, index, fields)
    }

    /// The index with our analyzers and a reader, ready to search; attachment text
    /// extracted unless the last commit says it is left out.
    fn with_reader(dir: PathBuf, index: Index, fields: Fields) -> Result<MessageIndex> {
        schema::register_tokenizers(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|source| IndexError::Tantivy {
                path: dir.clone(),
                source,
            })?;
        let mut idx = MessageIndex {
            dir,
            index,
            reader,
            fields,
            holds: Vec::new(),
            tags: HashMap::new(),
            extraction: Some(crate::extract::Budget::default()),
        };
        if idx.payload()?.is_some_and(|p| !p.attachment_text) {
            idx.extraction = None;
        }
        Ok(idx)
    }

    /// Sets the limits of attachment text extraction for what is indexed from now
    /// on (`None`: no attachment text; for measuring what extraction costs).
    pub fn set_extraction(&mut self, budget: Option<crate::extract::Budget>) {
        self.extraction = budget;
    }

    /// Messages by what extraction made of their attachments (see
    /// [`facets::extraction_counts`]).
    pub fn extraction_counts(&self) -> Result<Vec<(String, String, u64)>> {
        facets::extraction_counts(&self.reader.searcher()).map_err(|e| self.tv(e))
    }

    /// Deletes the index and builds it again from the archive, with the text
    /// inside attachments or without.
    pub fn rebuild(
        archive: &Archive,
        attachment_text: bool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(MessageIndex, CatchUp)> {
        let dir = archive.dir().join(INDEX_DIR);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|source| IndexError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        let mut idx = MessageIndex::open(archive.dir(), archive.index_key())?;
        if !attachment_text {
            idx.set_extraction(None);
        }
        let c = idx.catch_up(archive, progress)?;
        idx.merge_all()?;
        Ok((idx, c))
    }

    /// Merges every segment into one when a rebuild left many (fewer segments make
    /// every later search cheaper; a handful cost less to search than to merge).
    pub fn merge_all(&mut self) -> Result<()> {
        const MANY_SEGMENTS: usize = 6;
        let ids = self.index.searchable_segment_ids().map_err(|e| self.tv(e))?;
        if ids.len() > MANY_SEGMENTS {
            let mut writer = self.writer()?;
            writer.merge(&ids).wait().map_err(|e| self.tv(e))?;
            writer.wait_merging_threads().map_err(|e| self.tv(e))?;
            self.reader.reload().map_err(|e| self.tv(e))?;
        }
        Ok(())
    }

    /// An index writer, after removing the files a killed writer left behind: they
    /// are not part of the last commit, and one of them (a `.del` file, named after
    /// its segment and the next commit's opstamp) would otherwise collide with the
    /// file the next commit writes ("FileAlreadyExists").
    fn writer(&self) -> Result<tantivy::IndexWriter<TantivyDocument>> {
        let writer = self
            .index
            .writer::<TantivyDocument>(WRITER_BYTES)
            .map_err(|e| self.tv(e))?;
        writer.garbage_collect_files().wait().map_err(|e| self.tv(e))?;
        Ok(writer)
    }

    fn tv(&self, source: tantivy::TantivyError) -> IndexError {
        IndexError::Tantivy {
            path: self.dir.clone(),
            source,
        }
    }

    /// The ingest sequence number the last commit covers (exclusive end).
    pub fn covers(&self) -> Result<u64> {
        Ok(self.payload()?.map_or(0, |p| p.next_seq))
    }

    /// What the last commit recorded, if anything.
    fn payload(&self) -> Result<Option<Payload>> {
        let metas = self.index.load_metas().map_err(|e| self.tv(e))?;
        Ok(metas.payload.and_then(|p| serde_json::from_str::<Payload>(&p).ok()))
    }

    /// Indexes every ingest-log entry the index does not cover yet, threading
    /// what arrives with what is indexed (module [`threads`]).
    pub fn catch_up(&mut self, archive: &Archive, progress: &mut dyn FnMut(u64)) -> Result<CatchUp> {
        let mut next = self.covers()?;
        let end = archive.counters().next_seq;
        let mut report = CatchUp {
            indexed: 0,
            covers: next,
        };
        if next >= end {
            return Ok(report);
        }
        let mut writer = self.writer()?;
        let mut pending = threads::Pending::default();
        let mut uncommitted = 0u64;
        while next < end {
            let entries = archive.ingest_log(next, CHUNK)?;
            let Some(&(last, _)) = entries.last() else { break };
            let (arrived, removed) = arrivals(&entries);
            for id in &removed {
                writer.delete_term(Term::from_field_text(self.fields.id, &id.to_hex()));
                pending.remove(id);
            }
            let t0 = std::time::Instant::now();
            let plan = self.thread_chunk(archive, &pending, &arrived)?;
            let t_thread = t0.elapsed();
            self.write_docs(archive, &mut writer, &mut pending, plan.write)?;
            let t_docs = t0.elapsed() - t_thread;
            next = last + 1;
            uncommitted += arrived.len() as u64;
            if uncommitted >= COMMIT_EVERY || next >= end {
                self.commit(&mut writer, next)?;
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
        writer.wait_merging_threads().map_err(|e| self.tv(e))?;
        self.reader.reload().map_err(|e| self.tv(e))?;
        Ok(report)
    }

    /// Threads the messages of a chunk with the indexed threads they touch:
    /// their headers are read in parallel, then [`threads::plan`].
    fn thread_chunk(&self, archive: &Archive, pending: &threads::Pending, ids: &[MessageId]) -> Result<threads::Plan> {
        let arriving = ids
            .par_iter()
            .map(|id| {
                let header = archive.get_header(id)?;
                let placements = archive.placements_of(id)?;
                Ok((*id, doc::thread_headers(id, &header, &placements)))
            })
            .collect::<Result<Vec<_>>>()?;
        threads::plan(&self.reader.searcher(), &self.fields, pending, arriving).map_err(|e| self.tv(e))
    }

    /// (Re)writes the documents of `write`, built a few at a time in parallel: a
    /// document may hold up to the extraction budget's text, and a chunk's worth
    /// at once could be gigabytes.
    fn write_docs(
        &self,
        archive: &Archive,
        writer: &mut tantivy::IndexWriter<TantivyDocument>,
        pending: &mut threads::Pending,
        write: Vec<(MessageId, doc::Threaded)>,
    ) -> Result<()> {
        let f = self.fields;
        let extraction = self.extraction.as_ref();
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
                writer.delete_term(Term::from_field_text(f.id, &id.to_hex()));
                writer.add_document(d?).map_err(|e| self.tv(e))?;
                pending.insert(*id, threaded.clone());
            }
        }
        Ok(())
    }

    /// Commits what the writer holds as covering the ingest log below `next`,
    /// and lets the searcher see it.
    fn commit(&mut self, writer: &mut tantivy::IndexWriter<TantivyDocument>, next: u64) -> Result<()> {
        let mut prepared = writer.prepare_commit().map_err(|e| self.tv(e))?;
        let payload = Payload {
            next_seq: next,
            attachment_text: self.extraction.is_some(),
        };
        prepared.set_payload(&serde_json::to_string(&payload).expect("payload serialises"));
        prepared.commit().map_err(|e| self.tv(e))?;
        self.reader.reload().map_err(|e| self.tv(e))
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

    /// The names of the holds (of [`MessageIndex::set_holds`]) whose queries match
    /// message `id`: each asked of the index together with the id, so only that
    /// message's document is looked at.
    pub fn holds_of(&self, id: &MessageId) -> Result<Vec<String>> {
        let searcher = self.reader.searcher();
        let mut out = Vec::new();
        for (name, expr) in &self.holds {
            let query = search::with_id(&self.fields, &*self.resolve(expr)?, id);
            let n = searcher
                .search(query.as_ref(), &tantivy::collector::Count)
                .map_err(|e| self.tv(e))?;
            if n > 0 {
                out.push(name.clone());
            }
        }
        Ok(out)
    }

    /// Message `id` as a search would list it (`None` when the index lacks it).
    pub fn hit(&self, id: &MessageId) -> Result<Option<Hit>> {
        let searcher = self.reader.searcher();
        let query = search::with_id(&self.fields, &Expr::All, id);
        let addrs = search::run(&searcher, query.as_ref(), Sort::DateAsc, 1, 0).map_err(|e| self.tv(e))?;
        match addrs.first() {
            Some(&(_, a)) => {
                let d: TantivyDocument = searcher.doc(a).map_err(|e| self.tv(e))?;
                Ok(Some(search::hit(&self.fields, &d)))
            }
            None => Ok(None),
        }
    }

    pub fn search_expr(&self, expr: &Expr, sort: Sort, limit: usize, offset: usize) -> Result<Vec<Hit>> {
        let searcher = self.reader.searcher();
        let query = search::to_query(&self.fields, &*self.resolve(expr)?);
        let addrs = search::run(&searcher, query.as_ref(), sort, limit, offset).map_err(|e| self.tv(e))?;
        addrs
            .into_iter()
            .map(|(_, a)| {
                let d: TantivyDocument = searcher.doc(a).map_err(|e| self.tv(e))?;
                Ok(search::hit(&self.fields, &d))
            })
            .collect()
    }

    /// The facets of the messages `expr` matches; folders only of the accounts
    /// `want_folders` allows (a reader's own).
    pub fn facets(&self, expr: &Expr, want_folders: &dyn Fn(&str) -> bool) -> Result<facets::Facets> {
        let searcher = self.reader.searcher();
        let query = search::to_query(&self.fields, &*self.resolve(expr)?);
        facets::count(&searcher, query.as_ref(), want_folders).map_err(|e| self.tv(e))
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
        let searcher = self.reader.searcher();
        let query = search::to_query(&self.fields, &*self.resolve(expr)?);
        let all = conversations::matching_threads(&searcher, query.as_ref()).map_err(|e| self.tv(e))?;
        let total = all.len();
        let mut shown = Vec::new();
        for (key, matched, _) in all.into_iter().skip(offset).take(limit) {
            let messages = conversations::members(&searcher, &self.fields, &key).map_err(|e| self.tv(e))?;
            shown.push(conversations::summary(&key, matched, &messages));
        }
        Ok((shown, total))
    }

    /// Every message of the thread `key`, oldest first.
    pub fn thread_messages(&self, key: &str) -> Result<Vec<Hit>> {
        conversations::members(&self.reader.searcher(), &self.fields, &key.to_lowercase()).map_err(|e| self.tv(e))
    }

    /// How many messages match.
    pub fn count_expr(&self, expr: &Expr) -> Result<usize> {
        let searcher = self.reader.searcher();
        let query = search::to_query(&self.fields, &*self.resolve(expr)?);
        searcher
            .search(query.as_ref(), &tantivy::collector::Count)
            .map_err(|e| self.tv(e))
    }

    /// The ids of every matching message (for `export --query`, `show --query`).
    pub fn matching_ids(&self, q: &str) -> Result<Vec<MessageId>> {
        let expr = query::parse(q)?;
        Ok(self.matching_expr(&expr)?.into_iter().map(|(id, _)| id).collect())
    }

    /// The id and date (the `Date:` header, else the internal date; 0 when
    /// neither) of every message matching `expr`, by id.
    pub fn matching_expr(&self, expr: &Expr) -> Result<Vec<(MessageId, i64)>> {
        let searcher = self.reader.searcher();
        let query = search::to_query(&self.fields, &*self.resolve(expr)?);
        let addrs = searcher
            .search(query.as_ref(), &DocSetCollector)
            .map_err(|e| self.tv(e))?;
        let mut ids = Vec::with_capacity(addrs.len());
        for a in addrs {
            let d: TantivyDocument = searcher.doc(a).map_err(|e| self.tv(e))?;
            let hit = search::hit(&self.fields, &d);
            if let Some(id) = Hash32::from_hex(&hit.id) {
                ids.push((id, hit.date));
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Number of documents in the index.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The schema, as tantivy serialises it (`schemas/index-v6.json`).
    pub fn schema_json() -> serde_json::Value {
        serde_json::to_value(schema::build().0).expect("schema serialises")
    }
}
