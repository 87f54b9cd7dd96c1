//! The JSON API under `/api/v1`: search, a message's metadata, its bytes, its
//! conversation, exports, legal holds. Every
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
use super::{reads, AppState};
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
    /// Also count the facets of every match.
    #[serde(default)]
    pub facets: bool,
}

/// One page of results.
#[derive(Debug, Serialize)]
pub struct SearchPage {
    /// How many messages match in all.
    pub total: usize,
    pub offset: usize,
    pub hits: Vec<Hit>,
    /// With `facets=true`: messages per account, folder, year, sender domain, and
    /// with attachments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facets: Option<crate::index::facets::Facets>,
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
    let found = super::blocking(move || {
        let ask = reads::Ask {
            q: &p.q,
            expr: &expr,
            sort: p.sort.into(),
            limit,
            offset,
            facets: p.facets,
        };
        reads::search(&lib, &who, &ask)
    })
    .await?;
    Ok(Json(SearchPage {
        total: found.total,
        offset,
        hits: found.hits,
        facets: found.facets,
    }))
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

pub async fn message(
    State(state): State<AppState>,
    Reader(who): Reader,
    Path(id): Path<String>,
) -> Result<Json<MessageMeta>, WebError> {
    let id = message_id(&id)?;
    let lib = state.library.clone();
    let meta = super::blocking(move || {
        let (placements, raw) = reads::message(&lib, &who, &id)?;
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
    let (_, bytes) = super::blocking(move || reads::message(&lib, &who, &id)).await?;
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("message/rfc822"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}.eml\"", id.to_hex())) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// `GET /api/v1/messages/{id}/thread`: the conversation the message is part of.
#[derive(Debug, Serialize)]
pub struct ThreadPage {
    /// The Message-ID of its first message, as this one names it.
    pub root: Option<String>,
    /// Its messages the reader may see, oldest first.
    pub messages: Vec<Hit>,
}

pub async fn thread(
    State(state): State<AppState>,
    Reader(who): Reader,
    Path(id): Path<String>,
) -> Result<Json<ThreadPage>, WebError> {
    let id = message_id(&id)?;
    let lib = state.library.clone();
    let t = super::blocking(move || reads::thread(&lib, &who, &id)).await?;
    Ok(Json(ThreadPage {
        root: t.root,
        messages: t.hits,
    }))
}

/// `GET /api/v1/export?q=…|ids=…&format=mbox|zip`: one mboxrd file or one zip of
/// `.eml` files, streamed.
pub async fn export(
    State(state): State<AppState>,
    Reader(who): Reader,
    Query(p): Query<super::export::ExportParams>,
) -> Result<Response, WebError> {
    let what = p.selection(&who)?;
    let lib = state.library.clone();
    let e = super::blocking(move || reads::export(&lib, &who, &what)).await?;
    Ok(super::export::response(p.format, e.snap, e.items))
}

/// `GET /api/v1/holds` (admins and auditors): every legal hold.
pub async fn holds(
    State(state): State<AppState>,
    Reader(who): Reader,
) -> Result<Json<Vec<super::holds::Hold>>, WebError> {
    if !who.may_audit() {
        return Err(WebError::api(
            Code::Forbidden,
            "only admins and auditors list legal holds",
        ));
    }
    let lib = state.library.clone();
    Ok(Json(super::blocking(move || super::holds::list(&lib)).await?))
}

/// `POST /api/v1/holds` (admins): `{"name", "query", "reason"}`; 201 when placed.
pub async fn place_hold(
    State(state): State<AppState>,
    Reader(who): Reader,
    Json(h): Json<super::holds::NewHold>,
) -> Result<Response, WebError> {
    let lib = state.library.clone();
    super::blocking(move || super::holds::place(&lib, &who, &h)).await?;
    Ok(axum::http::StatusCode::CREATED.into_response())
}

/// `DELETE /api/v1/holds/{name}` (admins); 204 when released.
pub async fn release_hold(
    State(state): State<AppState>,
    Reader(who): Reader,
    Path(name): Path<String>,
) -> Result<Response, WebError> {
    let lib = state.library.clone();
    super::blocking(move || super::holds::release(&lib, &who, &name)).await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/tags`: the tags in use, counted over the reader's messages.
pub async fn tags(
    State(state): State<AppState>,
    Reader(who): Reader,
) -> Result<Json<Vec<super::tags::TagCount>>, WebError> {
    let lib = state.library.clone();
    Ok(Json(super::blocking(move || super::tags::list(&lib, &who)).await?))
}

/// `POST /api/v1/tags`: add and remove tags on what a query matches, or on
/// messages by id (admins and users).
pub async fn change_tags(
    State(state): State<AppState>,
    Reader(who): Reader,
    Json(c): Json<super::tags::TagChange>,
) -> Result<Json<super::tags::Tagged>, WebError> {
    let lib = state.library.clone();
    Ok(Json(
        super::blocking(move || super::tags::change(&lib, &who, &c)).await?,
    ))
}

/// `GET /api/v1/stats`: the overview — folders, totals (admins and auditors), jobs.
pub async fn stats(
    State(state): State<AppState>,
    Reader(who): Reader,
) -> Result<Json<super::overview::Overview>, WebError> {
    let lib = state.library.clone();
    Ok(Json(
        super::blocking(move || super::overview::overview(&lib, &who)).await?,
    ))
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
