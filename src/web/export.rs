//! Exports from the web: the messages of a query or a selection streamed as one
//! mboxrd file (the form `mailvault export --format mbox` writes) or one zip of
//! `.eml` files (deflated, streamed without seeking: sizes follow each entry in
//! its data descriptor), oldest first.
//! The bytes are read on a blocking thread and sent a chunk at a time through a
//! small channel, so an export of many messages holds a few megabytes in memory,
//! not the export. A failure part-way ends the download early (the client sees a
//! truncated transfer, not a short file that looks whole) and is logged.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::{Code, WebError};
use super::library::Snapshot;
use super::reads::Selection;
use crate::model::MessageId;

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 1 << 20;
/// Chunks in flight between the reading thread and the connection.
const IN_FLIGHT: usize = 4;

/// The formats the web exports.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WebExportFormat {
    #[default]
    Mbox,
    Zip,
}

/// `?q=…` or `?ids=ID,ID…`, and `format=mbox|zip`.
#[derive(Debug, Default, Deserialize)]
pub struct ExportParams {
    #[serde(default)]
    pub q: Option<String>,
    #[serde(default)]
    pub ids: Option<String>,
    #[serde(default)]
    pub format: WebExportFormat,
}

impl ExportParams {
    /// What to export, for `who`: a query is narrowed to their accounts.
    pub fn selection(&self, who: &crate::readers::Principal) -> Result<Selection, WebError> {
        match (&self.q, &self.ids) {
            (Some(q), None) if !q.trim().is_empty() => {
                let expr = crate::query::parse(q).map_err(|e| WebError::api(Code::BadRequest, e.to_string()))?;
                Ok(Selection::Query {
                    q: q.clone(),
                    expr: crate::readers::restrict(who, expr),
                })
            }
            (None, Some(ids)) => {
                let ids = ids
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(super::api::message_id)
                    .collect::<Result<Vec<MessageId>, WebError>>()?;
                if ids.is_empty() {
                    return Err(WebError::api(Code::BadRequest, "ids= names no message"));
                }
                Ok(Selection::Ids(ids))
            }
            _ => Err(WebError::api(
                Code::BadRequest,
                "an export needs either q= (a query) or ids= (message ids, comma-separated)",
            )),
        }
    }
}

type Chunks = tokio::sync::mpsc::Sender<Result<Bytes, WebError>>;

/// Bytes written, sent to the connection a chunk at a time. A write fails once
/// the client has gone away, which ends the export.
struct ChunkSink {
    buf: Vec<u8>,
    tx: Chunks,
}

impl ChunkSink {
    fn new(tx: Chunks) -> ChunkSink {
        ChunkSink {
            buf: Vec::with_capacity(CHUNK + (64 << 10)),
            tx,
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl std::io::Write for ChunkSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Message `id`'s bytes; a failure is logged and sent in place of the rest.
fn read(snap: &Snapshot, id: &MessageId, tx: &Chunks) -> Option<Vec<u8>> {
    match snap.archive.get_raw(id) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(id = %id.to_hex(), error = %e, "export stopped: a message could not be read");
            let _ = tx.blocking_send(Err(e.into()));
            None
        }
    }
}

fn send_mbox(snap: &Snapshot, items: &[(MessageId, i64)], tx: Chunks) {
    let mut sink = ChunkSink::new(tx.clone());
    for (id, date) in items {
        let Some(raw) = read(snap, id, &tx) else { return };
        if crate::source::mbox::write_message(&mut sink, &raw, Some(*date)).is_err() {
            return; // the client went away
        }
    }
    let _ = sink.send();
}

/// The name of a message's entry in a zip: its date and id, so entries sort by date.
pub fn zip_entry_name(id: &MessageId, date: i64) -> String {
    let when = chrono::DateTime::from_timestamp(date, 0)
        .map(|d| d.format("%Y-%m-%d_%H%M%S").to_string())
        .unwrap_or_else(|| "undated".into());
    format!("{when}_{}.eml", &id.to_hex()[..16])
}

fn send_zip(snap: &Snapshot, items: &[(MessageId, i64)], tx: Chunks) {
    use std::io::Write;
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(false);
    let mut zip = zip::ZipWriter::new_stream(ChunkSink::new(tx.clone()));
    let failed = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "zip export stopped");
        let _ = tx.blocking_send(Err(WebError::Export(e.to_string())));
    };
    for (id, date) in items {
        let Some(raw) = read(snap, id, &tx) else { return };
        let big = raw.len() as u64 >= u32::MAX as u64;
        if let Err(e) = zip.start_file(zip_entry_name(id, *date), options.large_file(big)) {
            return failed(&e);
        }
        if zip.write_all(&raw).is_err() {
            return; // the client went away
        }
    }
    match zip.finish() {
        Ok(mut sink) => {
            let _ = sink.get_mut().send();
        }
        Err(e) => failed(&e),
    }
}

/// The messages `items` of `snap`, streamed in `format`.
pub fn response(format: WebExportFormat, snap: Arc<Snapshot>, items: Vec<(MessageId, i64)>) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel(IN_FLIGHT);
    let (content_type, file) = match format {
        WebExportFormat::Mbox => {
            tokio::task::spawn_blocking(move || send_mbox(&snap, &items, tx));
            ("application/mbox", "attachment; filename=\"mailvault-export.mbox\"")
        }
        WebExportFormat::Zip => {
            tokio::task::spawn_blocking(move || send_zip(&snap, &items, tx));
            ("application/zip", "attachment; filename=\"mailvault-export.zip\"")
        }
    };
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(file));
    r
}
