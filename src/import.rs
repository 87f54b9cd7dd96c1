//! Import orchestration: a reader thread walks the sources and cuts the stream into
//! batches bounded by count and bytes; this thread stores each batch atomically.
//! At most three batches exist at once, so memory stays bounded on any input.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::archive::{Archive, ArchiveError, IngestReport};
use crate::model::{MessageId, RawMessage};
use crate::source::{self, Event, LocalOptions, SourceError, Stop};
use crate::tags::{self, Tag};

/// Limits of one atomic batch.
#[derive(Clone, Copy, Debug)]
pub struct BatchLimits {
    pub max_messages: usize,
    pub max_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_messages: 2000,
            max_bytes: 32 << 20,
        }
    }
}

/// The outcome of an import.
#[derive(Debug, Default, serde::Serialize, schemars::JsonSchema)]
pub struct ImportSummary {
    #[serde(flatten)]
    pub report: IngestReport,
    /// Files not imported, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// Files named by the user that were not imported (not mail, without force).
    pub refused: Vec<(PathBuf, String)>,
    pub warnings: Vec<(PathBuf, String)>,
    pub batches: u64,
    /// Seconds.
    #[serde(serialize_with = "as_secs")]
    #[schemars(with = "f64")]
    pub elapsed: Duration,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[derive(Debug, Error)]
pub enum ImportError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

#[derive(Default)]
struct Batch {
    messages: Vec<RawMessage>,
    bytes: usize,
    notes: Vec<Event>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Tags from the keywords the messages' files carried (maildir keyword letters):
/// each keyword that is a valid tag ([`crate::tags`]) is added to the message's
/// tags; others (`$Junk`) stay placement keywords only.
fn keywords_as_tags(archive: &Archive, messages: &[RawMessage]) -> Result<(), ArchiveError> {
    let mut by_tags: BTreeMap<Vec<Tag>, Vec<MessageId>> = BTreeMap::new();
    for m in messages {
        let mut tags: Vec<Tag> = m
            .placements
            .iter()
            .flat_map(|p| &p.flags.keywords)
            .filter_map(|k| Tag::parse(k).ok())
            .collect();
        tags.sort();
        tags.dedup();
        if !tags.is_empty() {
            by_tags.entry(tags).or_default().push(m.id);
        }
    }
    for (tags, ids) in by_tags {
        let changes: Vec<tags::Change> = tags.into_iter().map(tags::Change::Add).collect();
        archive.change_tags(&ids, &changes)?;
    }
    Ok(())
}

/// Imports every message under `paths`. `progress` sees the running totals after
/// every batch.
pub fn import_paths(
    archive: &mut Archive,
    paths: &[PathBuf],
    opts: &LocalOptions,
    limits: BatchLimits,
    progress: &mut dyn FnMut(&IngestReport),
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let mut summary = ImportSummary::default();
    let (tx, rx) = sync_channel::<Batch>(1);
    // Ids are the archive's to make, whatever the caller's options say.
    let opts = &LocalOptions {
        ids: archive.ids().clone(),
        ..opts.clone()
    };
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut batch = Batch::default();
            let mut sink = |ev: Event| -> Result<(), Stop> {
                match ev {
                    Event::Message(m) => {
                        batch.bytes += m.raw.len();
                        batch.messages.push(m);
                        if batch.messages.len() >= limits.max_messages || batch.bytes >= limits.max_bytes {
                            tx.send(std::mem::take(&mut batch)).map_err(|_| Stop)?;
                        }
                    }
                    other => batch.notes.push(other),
                }
                Ok(())
            };
            let r = source::read_paths(paths, opts, &mut sink);
            // Whatever was read before an error is still stored.
            let _ = tx.send(batch);
            r
        });
        let mut failure: Option<ImportError> = None;
        for batch in rx.iter() {
            for note in batch.notes {
                match note {
                    Event::Skipped { path, reason } => {
                        tracing::info!(path = %path.display(), %reason, "skipped");
                        summary.skipped.push((path, reason));
                    }
                    Event::Refused { path, reason } => {
                        tracing::info!(path = %path.display(), %reason, "refused");
                        summary.refused.push((path, reason));
                    }
                    Event::Warning { path, message } => {
                        tracing::warn!(path = %path.display(), %message);
                        summary.warnings.push((path, message));
                    }
                    Event::Message(_) => {}
                }
            }
            if batch.messages.is_empty() {
                continue;
            }
            match archive
                .ingest(&batch.messages, now())
                .and_then(|r| keywords_as_tags(archive, &batch.messages).map(|()| r))
            {
                Ok(r) => {
                    summary.report.add(&r);
                    summary.batches += 1;
                    progress(&summary.report);
                }
                Err(e) => {
                    failure = Some(e.into());
                    break;
                }
            }
        }
        drop(rx);
        let read = reader.join().expect("reader thread does not panic");
        match (failure, read) {
            (Some(e), _) => Err(e),
            (None, Err(e)) => Err(e.into()),
            (None, Ok(())) => Ok(()),
        }
    })?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}
