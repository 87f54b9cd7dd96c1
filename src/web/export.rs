//! Exports from the web: the messages of a query or a selection streamed as one
//! mboxrd file (the form `mailvault export --format mbox` writes), oldest first.
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
}

/// `?q=…` or `?ids=ID,ID…`, and `format=mbox`.
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

fn send_mbox(snap: &Snapshot, items: &[(MessageId, i64)], tx: &tokio::sync::mpsc::Sender<Result<Bytes, WebError>>) {
    let mut buf = Vec::with_capacity(CHUNK + (64 << 10));
    for (id, date) in items {
        let raw = match snap.archive.get_raw(id) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(id = %id.to_hex(), error = %e, "export stopped: a message could not be read");
                let _ = tx.blocking_send(Err(e.into()));
                return;
            }
        };
        crate::source::mbox::write_message(&mut buf, &raw, Some(*date)).expect("writing to memory");
        if buf.len() >= CHUNK && tx.blocking_send(Ok(Bytes::from(std::mem::take(&mut buf)))).is_err() {
            return; // the client went away
        }
    }
    if !buf.is_empty() {
        let _ = tx.blocking_send(Ok(Bytes::from(buf)));
    }
}

/// The messages `items` of `snap`, streamed as one mboxrd file.
pub fn mbox_response(snap: Arc<Snapshot>, items: Vec<(MessageId, i64)>) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel(IN_FLIGHT);
    tokio::task::spawn_blocking(move || send_mbox(&snap, &items, &tx));
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/mbox"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"mailvault-export.mbox\""),
    );
    r
}
