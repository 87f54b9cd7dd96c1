//! The JSON API under `/api/v1`: search, a message's metadata, its bytes. Every
//! request names its reader with `Authorization: Bearer mvt_…` ([`Reader`]); every
//! read is recorded in the access log (as `token:NAME`) before it is answered; a
//! message outside the reader's accounts is answered exactly as one that does not
//! exist.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::{Code, WebError};
use super::AppState;
use crate::access::Action;
use crate::index::{Hit, Sort};
use crate::model::{Hash32, MessageId};
use crate::readers::Principal;

/// The most hits one search page returns.
pub const MAX_LIMIT: usize = 1000;
/// The furthest a page may start.
pub const MAX_OFFSET: usize = 100_000;

/// The reader a request's bearer token stands for.
pub struct Reader(pub Principal);

impl FromRequestParts<AppState> for Reader {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unauthenticated = || {
            WebError::api(
                Code::Unauthenticated,
                "a bearer token is needed (`mailvault token create`)",
            )
        };
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(unauthenticated)?
            .trim()
            .to_string();
        let lib = state.library.clone();
        let found = super::blocking(move || Ok(lib.readers().load()?.bearer(&token))).await?;
        found.map(Reader).ok_or_else(|| {
            WebError::api(
                Code::Unauthenticated,
                "the bearer token is not valid (revoked, or never made)",
            )
        })
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SortParam {
    #[default]
    Newest,
    Oldest,
    Relevance,
}

impl From<SortParam> for Sort {
    fn from(s: SortParam) -> Sort {
        match s {
            SortParam::Newest => Sort::DateDesc,
            SortParam::Oldest => Sort::DateAsc,
            SortParam::Relevance => Sort::Relevance,
        }
    }
}

fn default_limit() -> usize {
    50
}

#[derive(Debug, Deserialize)]
pub struct SearchParams {
    /// The query, in the language of `mailvault search`.
    pub q: String,
    #[serde(default = "default_limit")]
    pub limit: usize,
    #[serde(default)]
    pub offset: usize,
    #[serde(default)]
    pub sort: SortParam,
}

/// One page of results.
#[derive(Debug, Serialize)]
pub struct SearchPage {
    /// How many messages match in all.
    pub total: usize,
    pub offset: usize,
    pub hits: Vec<Hit>,
}

/// `hit` as `p` may see it: only the accounts and folders granted.
pub fn visible(p: &Principal, mut hit: Hit) -> Option<Hit> {
    if p.accounts.is_none() {
        return Some(hit);
    }
    hit.placements.retain(|f| p.may_see(&f.account));
    if hit.placements.is_empty() {
        return None;
    }
    hit.accounts.retain(|a| p.may_see(a));
    let mut folders: Vec<String> = hit.placements.iter().map(|f| f.folder.clone()).collect();
    folders.sort();
    folders.dedup();
    hit.folders = folders;
    Some(hit)
}

/// `GET /api/v1/search?q=…&limit=…&offset=…&sort=newest|oldest|relevance`
pub async fn search(
    State(state): State<AppState>,
    Reader(who): Reader,
    Query(p): Query<SearchParams>,
) -> Result<Json<SearchPage>, WebError> {
    let expr = crate::query::parse(&p.q).map_err(|e| WebError::api(Code::BadRequest, e.to_string()))?;
    let expr = crate::readers::restrict(&who, expr);
    let (limit, offset) = (p.limit.clamp(1, MAX_LIMIT), p.offset.min(MAX_OFFSET));
    let lib = state.library.clone();
    let page = super::blocking(move || {
        let snap = lib.snapshot()?;
        let total = snap.index.count_expr(&expr)?;
        let hits = snap.index.search_expr(&expr, p.sort.into(), limit, offset)?;
        let hits: Vec<Hit> = hits.into_iter().filter_map(|h| visible(&who, h)).collect();
        let ids: Vec<MessageId> = hits.iter().filter_map(|h| Hash32::from_hex(&h.id)).collect();
        lib.record(&snap, &who, Action::Search, Some(&p.q), &ids, ids.len() as u64)?;
        Ok(SearchPage { total, offset, hits })
    })
    .await?;
    Ok(Json(page))
}

/// A message's id from the path: 64 hex digits (no prefixes: a prefix would let a
/// reader probe for ids outside their accounts).
pub fn message_id(s: &str) -> Result<MessageId, WebError> {
    if s.len() != 64 {
        return Err(WebError::api(Code::BadRequest, "a message id is 64 hex digits"));
    }
    Hash32::from_hex(s).ok_or_else(|| WebError::api(Code::BadRequest, "a message id is 64 hex digits"))
}

/// Where a message is filed, as one reader may see it.
#[derive(Debug, Serialize)]
pub struct Placement {
    pub account: String,
    pub folder: String,
    pub flags: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub size: usize,
}

/// `GET /api/v1/messages/{id}`
#[derive(Debug, Serialize)]
pub struct MessageMeta {
    pub id: String,
    pub size: usize,
    pub placements: Vec<Placement>,
    /// From, To, Cc, Date, Subject, decoded, each when present.
    pub headers: Vec<(String, String)>,
    pub attachments: Vec<Attachment>,
}

/// The message and its placements the reader may see; not found otherwise.
pub fn readable_message(
    snap: &super::library::Snapshot,
    who: &Principal,
    id: &MessageId,
) -> Result<Vec<Placement>, WebError> {
    let placements: Vec<Placement> = snap
        .archive
        .placements_of(id)?
        .into_iter()
        .filter(|p| who.may_see(&p.key.account))
        .map(|p| Placement {
            account: p.key.account.clone(),
            folder: p.key.mailbox.clone(),
            flags: p.record.flags.names(),
        })
        .collect();
    if placements.is_empty() {
        return Err(WebError::not_found());
    }
    Ok(placements)
}

pub async fn message(
    State(state): State<AppState>,
    Reader(who): Reader,
    Path(id): Path<String>,
) -> Result<Json<MessageMeta>, WebError> {
    let id = message_id(&id)?;
    let lib = state.library.clone();
    let meta = super::blocking(move || {
        let snap = lib.snapshot()?;
        let placements = readable_message(&snap, &who, &id)?;
        lib.record(&snap, &who, Action::Show, None, &[id], 1)?;
        let raw = snap.archive.get_raw(&id)?;
        let r = crate::mime::readable::readable(&raw);
        Ok(MessageMeta {
            id: id.to_hex(),
            size: raw.len(),
            placements,
            headers: r.headers.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            attachments: r
                .attachments
                .into_iter()
                .map(|a| Attachment {
                    name: a.name,
                    content_type: a.content_type,
                    size: a.size,
                })
                .collect(),
        })
    })
    .await?;
    Ok(Json(meta))
}

/// `GET /api/v1/messages/{id}/raw`: the message as archived, byte for byte.
pub async fn raw(
    State(state): State<AppState>,
    Reader(who): Reader,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = message_id(&id)?;
    let lib = state.library.clone();
    let bytes = super::blocking(move || {
        let snap = lib.snapshot()?;
        readable_message(&snap, &who, &id)?;
        lib.record(&snap, &who, Action::Show, None, &[id], 1)?;
        Ok(snap.archive.get_raw(&id)?)
    })
    .await?;
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("message/rfc822"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}.eml\"", id.to_hex())) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// Any other path under `/api/v1`.
pub async fn no_route() -> WebError {
    WebError::api(Code::NotFound, "no such route (see /api/v1/openapi.json)")
}

/// `GET /api/v1/openapi.json`: the API's description (no sign-in needed).
pub async fn openapi() -> Response {
    let mut r = super::openapi::document().to_string().into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
