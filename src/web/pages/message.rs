//! A message: its page, its HTML body for the sandboxed frame, its `.eml`, its
//! attachments, its conversation.

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::search::Row;
use super::{html, html_headers, page_id, Nav, PageError, Viewer};
use crate::model::MessageId;
use crate::web::error::{Code, WebError};
use crate::web::{reads, sanitize, AppState};

/// An attachment as the message page lists it.
pub struct AttachmentLine {
    pub number: usize,
    pub name: String,
    pub content_type: String,
    pub size: usize,
    pub previewable: bool,
}

/// Pictures shown inline (not SVG, which can carry script).
fn previewable(content_type: &str) -> bool {
    matches!(
        content_type.to_ascii_lowercase().as_str(),
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    nav: Option<Nav>,
    id: String,
    tags: Vec<String>,
    /// The reader may tag (the tag form is shown).
    may_tag: bool,
    subject: String,
    headers: Vec<(String, String)>,
    placements: Vec<String>,
    size: usize,
    attachments: Vec<AttachmentLine>,
    html: bool,
    remote_blocked: usize,
    text: String,
}

fn message_page(
    nav: Option<Nav>,
    id: &MessageId,
    placements: Vec<crate::web::api::Placement>,
    raw: &[u8],
    (tags, may_tag): (Vec<String>, bool),
) -> MessagePage {
    let r = crate::mime::readable::readable(raw);
    let body = crate::mime::readable::html_body(raw).map(|h| sanitize::sanitise(&h));
    let subject = r
        .headers
        .iter()
        .find(|(k, _)| *k == "Subject")
        .map(|(_, v)| v.clone())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "(no subject)".into());
    MessagePage {
        nav,
        id: id.to_hex(),
        tags,
        may_tag,
        subject,
        headers: r.headers.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        placements: placements
            .into_iter()
            .map(|p| format!("{}/{}", p.account, p.folder))
            .collect(),
        size: raw.len(),
        attachments: r
            .attachments
            .into_iter()
            .enumerate()
            .map(|(number, a)| AttachmentLine {
                number,
                previewable: previewable(&a.content_type),
                name: a.name,
                content_type: a.content_type,
                size: a.size,
            })
            .collect(),
        html: body.is_some(),
        remote_blocked: body.map_or(0, |b| b.remote_blocked),
        text: r.text,
    }
}

/// A message as one reader may read it.
struct Read {
    id: MessageId,
    /// Where it is filed, in the reader's accounts.
    placements: Vec<crate::web::api::Placement>,
    raw: Vec<u8>,
}

/// Message `id` (from the path) as `v` may read it, the read recorded in the
/// access log.
async fn read(state: &AppState, v: &Viewer, id: &str) -> Result<Read, PageError> {
    let id = page_id(id)?;
    let (lib, who) = (state.library.clone(), v.who.clone());
    let (placements, raw) = crate::web::blocking(move || reads::message(&lib, &who, &id)).await?;
    Ok(Read { id, placements, raw })
}

/// `GET /messages/{id}`
pub async fn message(State(state): State<AppState>, v: Viewer, Path(id): Path<String>) -> Result<Response, PageError> {
    let m = read(&state, &v, &id).await?;
    let (lib, mid) = (state.library.clone(), m.id);
    let tags = crate::web::blocking(move || crate::web::tags::of(&lib, &mid)).await?;
    html(message_page(
        v.nav(),
        &m.id,
        m.placements,
        &m.raw,
        (tags, v.who.may_tag()),
    ))
}

#[derive(Deserialize)]
pub struct TagForm {
    #[serde(default)]
    csrf: String,
    /// Tags to add, separated by spaces or commas.
    #[serde(default)]
    add: String,
    /// Tags to remove, the same way.
    #[serde(default)]
    remove: String,
}

/// `POST /messages/{id}/tags`: add and remove this message's tags (admins and
/// users), then back to the message.
pub async fn change_tags(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Form(f): Form<TagForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&f.csrf)?;
    let id = page_id(&id)?;
    let split = |s: &str| -> Vec<String> {
        s.split([' ', ','])
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    };
    let change = crate::web::tags::TagChange {
        query: None,
        ids: vec![id.to_hex()],
        add: split(&f.add),
        remove: split(&f.remove),
    };
    let (lib, who) = (state.library.clone(), v.who.clone());
    crate::web::blocking(move || crate::web::tags::change(&lib, &who, &change)).await?;
    Ok(Redirect::to(&format!("/messages/{}", id.to_hex())).into_response())
}

/// `GET /messages/{id}/body`: the HTML body, sanitised, as a document of its own
/// for the message page's sandboxed frame, under [`sanitize::FRAME_CSP`].
pub async fn message_body(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let raw = read(&state, &v, &id).await?.raw;
    let body = crate::mime::readable::html_body(&raw).unwrap_or_default();
    let doc = sanitize::frame_document(&sanitize::sanitise(&body));
    let mut r = (html_headers(), doc).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(sanitize::FRAME_CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
    Ok(r)
}

fn download(bytes: Vec<u8>, content_type: &'static str, filename: &str, inline: bool) -> Response {
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    let name: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    if let Ok(v) = HeaderValue::from_str(&format!("{kind}; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// `GET /messages/{id}/eml`: the message as archived, byte for byte.
pub async fn message_eml(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let m = read(&state, &v, &id).await?;
    Ok(download(
        m.raw,
        "message/rfc822",
        &format!("{}.eml", m.id.to_hex()),
        false,
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct InlineParam {
    #[serde(default)]
    inline: Option<u8>,
}

/// `GET /messages/{id}/attachments/{n}[?inline=1]`: an attachment's decoded bytes;
/// inline only for the pictures the page previews, else as a download.
pub async fn attachment(
    State(state): State<AppState>,
    v: Viewer,
    Path((id, n)): Path<(String, usize)>,
    Query(p): Query<InlineParam>,
) -> Result<Response, PageError> {
    let raw = read(&state, &v, &id).await?.raw;
    let (a, bytes) = crate::mime::readable::attachment(&raw, n)
        .ok_or_else(|| WebError::api(Code::NotFound, "no such attachment"))?;
    let picture = match a.content_type.to_ascii_lowercase().as_str() {
        "image/png" => Some("image/png"),
        "image/jpeg" => Some("image/jpeg"),
        "image/gif" => Some("image/gif"),
        "image/webp" => Some("image/webp"),
        _ => None,
    };
    Ok(match (picture, p.inline.is_some()) {
        (Some(t), true) => download(bytes, t, &a.name, true),
        _ => download(bytes, "application/octet-stream", &a.name, false),
    })
}

/// One message of a conversation, as the thread page lists it.
pub struct ThreadLine {
    pub row: Row,
    /// The message the page was opened from.
    pub current: bool,
}

#[derive(Template)]
#[template(path = "thread.html")]
struct ThreadPage {
    nav: Option<Nav>,
    id: String,
    subject: String,
    lines: Vec<ThreadLine>,
    capped: bool,
}

/// `GET /messages/{id}/thread`: the conversation, oldest first.
pub async fn thread(State(state): State<AppState>, v: Viewer, Path(id): Path<String>) -> Result<Response, PageError> {
    let id = page_id(&id)?;
    let (lib, who) = (state.library.clone(), v.who.clone());
    let t = crate::web::blocking(move || reads::thread(&lib, &who, &id)).await?;
    let hex = id.to_hex();
    let capped = t.hits.len() >= reads::MAX_THREAD;
    let lines: Vec<ThreadLine> = t
        .hits
        .into_iter()
        .map(|h| ThreadLine {
            current: h.id == hex,
            row: Row::of(h),
        })
        .collect();
    let subject = lines
        .iter()
        .find(|l| l.current)
        .or(lines.first())
        .map(|l| l.row.subject.clone())
        .unwrap_or_default();
    html(ThreadPage {
        nav: v.nav(),
        id: hex,
        subject,
        lines,
        capped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_pictures_are_previewed() {
        assert!(previewable("image/PNG") && previewable("image/jpeg"));
        assert!(!previewable("image/svg+xml") && !previewable("text/html"));
    }
}
