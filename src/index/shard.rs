//! Shards of the search index: the layout on disk, which shard holds a
//! message, one shard's tantivy index, and the statistics relevance is scored
//! with across shards.
//!
//! One shard (the default) is the index directory itself. `reindex --shards N`
//! splits the index into N shards, `index/shard-K` (K from 0), and records N in
//! `index/shards`. A message's shard is its id's second 8 bytes modulo N (the id
//! is a hash, so shards fill evenly; not the first 8 bytes, which are the sort's
//! tie-break). Each shard commits the ingest sequence number it covers, so one
//! can be rebuilt alone and catch up while the others stay.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tantivy::fieldnorm::FieldNormReader;
use tantivy::query::Bm25StatisticsProvider;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocSet, Index, IndexReader, ReloadPolicy, Searcher, SegmentReader, TantivyDocument, Term, TERMINATED};

use super::{read_only, schema, sealed, IndexError, Result};
use crate::crypt::Key;
use crate::model::MessageId;

/// The file, in the index directory, that records the number of shards (absent:
/// one).
pub const COUNT_FILE: &str = "shards";
/// The most shards an index may be split into.
pub const MAX_SHARDS: usize = 256;
/// Indexing memory budget of one index (split across its shards, each getting
/// at least [`MIN_SHARD_BYTES`]).
const WRITER_BYTES: usize = 128 << 20;
const MIN_SHARD_BYTES: usize = 32 << 20;
/// tantivy's least memory per indexing thread is 15 MB; each gets this much.
const THREAD_BYTES: usize = 16 << 20;

/// Which of `count` shards holds message `id`.
pub fn shard_of(id: &MessageId, count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    let mut second = [0u8; 8];
    second.copy_from_slice(&id.0[8..16]);
    (u64::from_be_bytes(second) % count as u64) as usize
}

/// The number of shards the index in `dir` is split into.
pub fn count(dir: &Path) -> Result<usize> {
    let path = dir.join(COUNT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(1),
        Err(source) => return Err(IndexError::Io { path, source }),
    };
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_SHARDS).contains(&n) => Ok(n),
        _ => Err(IndexError::Layout {
            path,
            reason: format!(
                "expected a number of shards from 1 to {MAX_SHARDS}, found {:?}",
                text.trim()
            ),
        }),
    }
}

/// Records `n` shards for the index in `dir` (a fresh, empty directory).
pub fn set_count(dir: &Path, n: usize) -> Result<()> {
    if !(1..=MAX_SHARDS).contains(&n) {
        return Err(IndexError::Layout {
            path: dir.to_path_buf(),
            reason: format!("the number of shards must be from 1 to {MAX_SHARDS}, not {n}"),
        });
    }
    if n == 1 {
        return Ok(());
    }
    crate::private::write_atomic(dir, COUNT_FILE, format!("{n}\n").as_bytes()).map_err(|source| IndexError::Io {
        path: dir.join(COUNT_FILE),
        source,
    })
}

/// The directory of shard `k` of `n` in the index directory `dir`.
pub fn dir_of(dir: &Path, k: usize, n: usize) -> PathBuf {
    if n == 1 {
        dir.to_path_buf()
    } else {
        dir.join(format!("shard-{k}"))
    }
}

/// `directory`, sealed with `key` when there is one.
fn seal_with(directory: Box<dyn tantivy::Directory>, key: Option<Arc<Key>>) -> Box<dyn tantivy::Directory> {
    match key {
        Some(k) => Box::new(sealed::SealedDirectory::new(directory, k)),
        None => directory,
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Payload {
    /// Every ingest-log entry with a sequence number below this is indexed.
    pub next_seq: u64,
    /// Whether the text inside attachments is indexed (`reindex
    /// --no-attachment-text` turns it off until the next reindex).
    #[serde(default = "yes")]
    pub attachment_text: bool,
}

fn yes() -> bool {
    true
}

/// One shard: a tantivy index and its reader.
pub(super) struct Shard {
    pub dir: PathBuf,
    index: Index,
    pub reader: IndexReader,
}

impl Shard {
    /// Opens (or creates) the shard in `dir`; one whose schema is not this
    /// version's is deleted and created again (empty: it catches up).
    pub fn open(dir: PathBuf, key: Option<Arc<Key>>) -> Result<Shard> {
        let tv = |source| IndexError::Tantivy {
            path: dir.clone(),
            source,
        };
        let io = |source| IndexError::Io {
            path: dir.clone(),
            source,
        };
        crate::private::create_dir_all(&dir).map_err(io)?;
        let (schema, _) = schema::build();
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
                std::fs::remove_dir_all(&dir).map_err(io)?;
                crate::private::create_dir_all(&dir).map_err(io)?;
                create(schema)?
            }
        } else {
            create(schema)?
        };
        Self::with_reader(dir, index)
    }

    /// Opens the shard in `dir` for searching only: nothing is created or
    /// written. It must exist with this version's schema.
    pub fn open_read_only(dir: PathBuf, key: Option<Arc<Key>>) -> Result<Shard> {
        let tv = |source| IndexError::Tantivy {
            path: dir.clone(),
            source,
        };
        let directory = read_only::ReadOnlyDirectory::open(&dir).map_err(tv)?;
        let index = Index::open(seal_with(Box::new(directory), key)).map_err(tv)?;
        if index.schema() != schema::build().0 {
            return Err(tv(tantivy::TantivyError::SchemaError(
                "the index was made by another version; run `mailvault reindex`".into(),
            )));
        }
        Self::with_reader(dir, index)
    }

    fn with_reader(dir: PathBuf, index: Index) -> Result<Shard> {
        schema::register_tokenizers(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|source| IndexError::Tantivy {
                path: dir.clone(),
                source,
            })?;
        Ok(Shard { dir, index, reader })
    }

    pub fn tv(&self, source: tantivy::TantivyError) -> IndexError {
        IndexError::Tantivy {
            path: self.dir.clone(),
            source,
        }
    }

    /// An index writer (one of `of` shards' share of the memory budget), after
    /// removing the files a killed writer left behind: they are not part of the
    /// last commit, and one of them (a `.del` file, named after its segment and
    /// the next commit's opstamp) would otherwise collide with the file the next
    /// commit writes ("FileAlreadyExists").
    pub fn writer(&self, of: usize) -> Result<tantivy::IndexWriter<TantivyDocument>> {
        let writer = if of <= 1 {
            self.index.writer::<TantivyDocument>(WRITER_BYTES)
        } else {
            let bytes = (WRITER_BYTES / of).max(MIN_SHARD_BYTES);
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            let threads = (bytes / THREAD_BYTES).clamp(1, cpus);
            self.index.writer_with_num_threads::<TantivyDocument>(threads, bytes)
        }
        .map_err(|e| self.tv(e))?;
        writer.garbage_collect_files().wait().map_err(|e| self.tv(e))?;
        Ok(writer)
    }

    /// What the last commit recorded, if anything.
    pub fn payload(&self) -> Result<Option<Payload>> {
        let metas = self.index.load_metas().map_err(|e| self.tv(e))?;
        Ok(metas.payload.and_then(|p| serde_json::from_str::<Payload>(&p).ok()))
    }

    /// The ingest sequence number the last commit covers (exclusive end).
    pub fn covers(&self) -> Result<u64> {
        Ok(self.payload()?.map_or(0, |p| p.next_seq))
    }

    /// Commits what `writer` holds as `payload`, and lets the reader see it.
    pub fn commit(&self, writer: &mut tantivy::IndexWriter<TantivyDocument>, payload: &Payload) -> Result<()> {
        let mut prepared = writer.prepare_commit().map_err(|e| self.tv(e))?;
        prepared.set_payload(&serde_json::to_string(payload).expect("payload serialises"));
        prepared.commit().map_err(|e| self.tv(e))?;
        self.reader.reload().map_err(|e| self.tv(e))
    }

    /// Merges the segments into one when there are many, or when some hold
    /// deleted documents (fewer segments and no deleted documents make every
    /// later search cheaper; scores do not depend on it, see [`AllShards`]).
    pub fn merge_all(&self) -> Result<()> {
        const MANY_SEGMENTS: usize = 6;
        let searcher = self.reader.searcher();
        let deleted = searcher.segment_readers().iter().any(|s| s.num_deleted_docs() > 0);
        let ids = self.index.searchable_segment_ids().map_err(|e| self.tv(e))?;
        if ids.len() > MANY_SEGMENTS || (deleted && !ids.is_empty()) {
            let mut writer = self.writer(1)?;
            writer.merge(&ids).wait().map_err(|e| self.tv(e))?;
            writer.wait_merging_threads().map_err(|e| self.tv(e))?;
            self.reader.reload().map_err(|e| self.tv(e))?;
        }
        Ok(())
    }
}

/// The statistics relevance is scored with, over every shard together and
/// counted from the live documents only, so that a match scores the same
/// whatever the layout of the same messages: one index or several shards, and
/// whichever segments merged when. (tantivy's own counts include deleted
/// documents until a merge drops them, and a merge of segments with deletions
/// estimates its token count from the quantised field norms: two layouts of one
/// set of messages would score it differently.)
pub(super) struct AllShards<'a>(pub &'a [Searcher]);

impl AllShards<'_> {
    fn segments(&self) -> impl Iterator<Item = &SegmentReader> {
        self.0.iter().flat_map(|s| s.segment_readers())
    }
}

/// The tokens of `field` in the live documents of `segment`, by their field
/// norms (as quantised: the same for a document in any segment).
fn live_tokens(segment: &SegmentReader, field: Field) -> tantivy::Result<u64> {
    let Some(norms) = segment.fieldnorms_readers().get_field(field)? else {
        return Ok(0);
    };
    let mut per_norm = [0u64; 256];
    for doc in segment.doc_ids_alive() {
        per_norm[norms.fieldnorm_id(doc) as usize] += 1;
    }
    Ok(per_norm
        .iter()
        .enumerate()
        .map(|(id, n)| n * u64::from(FieldNormReader::id_to_fieldnorm(id as u8)))
        .sum())
}

/// The live documents of `segment` that hold `term`.
fn live_doc_freq(segment: &SegmentReader, term: &Term) -> tantivy::Result<u64> {
    let inverted = segment.inverted_index(term.field())?;
    let Some(alive) = segment.alive_bitset() else {
        return Ok(u64::from(inverted.doc_freq(term)?));
    };
    let Some(mut postings) = inverted.read_postings(term, IndexRecordOption::Basic)? else {
        return Ok(0);
    };
    let mut n = 0u64;
    let mut doc = postings.doc();
    while doc != TERMINATED {
        n += u64::from(alive.is_alive(doc));
        doc = postings.advance();
    }
    Ok(n)
}

impl Bm25StatisticsProvider for AllShards<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        self.segments().map(|s| live_tokens(s, field)).sum()
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.segments().map(|s| u64::from(s.num_docs())).sum())
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        self.segments().map(|s| live_doc_freq(s, term)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Hash32;

    #[test]
    fn one_shard_holds_every_message() {
        for b in 0..=255u8 {
            assert_eq!(shard_of(&Hash32([b; 32]), 1), 0);
        }
    }

    #[test]
    fn shards_are_chosen_by_the_ids_second_eight_bytes() {
        let mut id = Hash32([0xff; 32]);
        id.0[8..16].copy_from_slice(&7u64.to_be_bytes());
        assert_eq!(shard_of(&id, 4), 3);
        assert_eq!(shard_of(&id, 7), 0);
        id.0[..8].copy_from_slice(&[0; 8]);
        assert_eq!(shard_of(&id, 4), 3, "the first 8 bytes (the tie-break) do not choose");
    }

    #[test]
    fn hashed_ids_fill_the_shards_evenly() {
        let mut per = [0usize; 4];
        for i in 0..4000u32 {
            let id = Hash32(*blake3::hash(&i.to_le_bytes()).as_bytes());
            per[shard_of(&id, 4)] += 1;
        }
        assert!(per.iter().all(|&n| (850..=1150).contains(&n)), "{per:?}");
    }

    #[test]
    fn the_count_file_is_read_back_and_bad_counts_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(count(tmp.path()).unwrap(), 1, "no file: one shard");
        set_count(tmp.path(), 4).unwrap();
        assert_eq!(count(tmp.path()).unwrap(), 4);
        assert!(set_count(tmp.path(), 0).is_err());
        assert!(set_count(tmp.path(), MAX_SHARDS + 1).is_err());
        for bad in ["0", "x", "99999", ""] {
            std::fs::write(tmp.path().join(COUNT_FILE), bad).unwrap();
            let e = count(tmp.path()).unwrap_err().to_string();
            assert!(e.contains("shards") && e.contains(COUNT_FILE), "{e}");
        }
    }

    #[test]
    fn one_shard_is_the_index_directory_itself() {
        let d = Path::new("/a/index");
        assert_eq!(dir_of(d, 0, 1), d);
        assert_eq!(dir_of(d, 2, 4), d.join("shard-2"));
    }
}
