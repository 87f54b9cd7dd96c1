//! The server-rendered pages: sign-in and sign-out, search, a message (its body
//! sanitised in a sandboxed frame), its `.eml` and its attachments. Templates are
//! askama's, checked when the crate compiles (`src/web/templates/`); the one style
//! sheet is built in; no page loads anything from elsewhere or runs any script.
//!
//! A page needs a signed-in session ([`Viewer`]); without one it redirects to the
//! sign-in page. Every form that changes state carries the session's CSRF token.
//! Every read is recorded in the access log (as `web:NAME`) before it is shown.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::error::{Code, WebError};
use super::sanitize;
use super::session::{self, Session};
use super::AppState;
use crate::access::Action;
use crate::index::{Hit, Sort};
use crate::model::{Hash32, MessageId};
use crate::readers::Principal;

/// Results on one search page.
pub const PAGE_SIZE: usize = 50;
/// The last page a search shows.
pub const MAX_PAGE: usize = super::api::MAX_OFFSET / PAGE_SIZE;

/// The style sheet, built in.
pub const APP_CSS: &str = include_str!("static/app.css");

/// A page's failure: to the sign-in page, or a page saying what went wrong.
pub enum PageError {
    SignIn { next: String },
    Web(WebError),
}

impl From<WebError> for PageError {
    fn from(e: WebError) -> Self {
        PageError::Web(e)
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        PageError::Web(e.into())
    }
}

#[derive(Template)]
#[template(path = "problem.html")]
struct ProblemPage<'a> {
    nav: Option<Nav>,
    title: &'a str,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn { next } => {
                let q = serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default();
                Redirect::to(&format!("/login?{q}")).into_response()
            }
            PageError::Web(e) => {
                let code = e.code();
                let title = match code {
                    Code::NotFound => "Not found",
                    Code::Forbidden => "Not allowed",
                    Code::BadRequest => "That did not work",
                    Code::Unauthenticated => "Sign in again",
                    Code::AccessLog | Code::Internal => "Something went wrong",
                };
                let message = e.public_message();
                let page = ProblemPage {
                    nav: None,
                    title,
                    message: &message,
                };
                let body = page.render().unwrap_or_else(|_| message.clone());
                (code.status(), html_headers(), body).into_response()
            }
        }
    }
}

/// Headers of every page: HTML, never cached (pages show mail).
fn html_headers() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

fn html(page: impl Template) -> Result<Response, PageError> {
    Ok((html_headers(), page.render()?).into_response())
}

/// What the header of a signed-in page shows.
pub struct Nav {
    pub user: String,
    pub role: &'static str,
    pub csrf: String,
}

/// The signed-in reader of a page request.
pub struct Viewer {
    pub who: Principal,
    pub session: Session,
    cookie: String,
}

impl Viewer {
    fn nav(&self) -> Option<Nav> {
        Some(Nav {
            user: self.who.name.clone(),
            role: self.who.role.as_str(),
            csrf: self.session.csrf.clone(),
        })
    }

    /// Whether a form's CSRF token is this session's.
    fn check_csrf(&self, token: &str) -> Result<(), PageError> {
        if session::same_token(token, &self.session.csrf) {
            Ok(())
        } else {
            Err(WebError::api(
                Code::Forbidden,
                "the form's CSRF token is missing or stale; reload the page",
            )
            .into())
        }
    }
}

fn request_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| session::cookie_value(h, name))
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let sign_in = || PageError::SignIn { next: next.clone() };
        let cookie = request_cookie(&parts.headers, session::COOKIE)
            .ok_or_else(sign_in)?
            .to_string();
        let session = state.sessions.get(&cookie).ok_or_else(sign_in)?;
        let lib = state.library.clone();
        let (user, stamp) = (session.user.clone(), session.stamp);
        let who = super::blocking(move || {
            let readers = lib.readers().load()?;
            Ok((readers.password_stamp(&user) == Some(stamp))
                .then(|| readers.user(&user))
                .flatten())
        })
        .await?;
        match who {
            Some(who) => Ok(Viewer { who, session, cookie }),
            None => {
                state.sessions.end(&cookie);
                Err(sign_in())
            }
        }
    }
}

/// Where to go after signing in: a path on this server only.
fn safe_next(next: &str) -> &str {
    let ok = next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') && !next.starts_with("/login");
    if ok {
        next
    } else {
        "/search"
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    nav: Option<Nav>,
    csrf: &'a str,
    next: &'a str,
    problem: Option<&'a str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct NextParam {
    #[serde(default)]
    next: String,
}

fn login_page(state: &AppState, next: &str, problem: Option<&str>, status: StatusCode) -> Result<Response, PageError> {
    let csrf = session::random_token();
    let page = LoginPage {
        nav: None,
        csrf: &csrf,
        next: safe_next(next),
        problem,
    };
    let mut r = html(page)?;
    *r.status_mut() = status;
    let set = session::set_cookie(session::LOGIN_COOKIE, Some(&csrf), state.secure);
    if let Ok(v) = HeaderValue::from_str(&set) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// `GET /login`
pub async fn login_form(State(state): State<AppState>, Query(p): Query<NextParam>) -> Result<Response, PageError> {
    login_page(&state, &p.next, None, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// `POST /login`: throttled per name and per address; the form's token must be the
/// one its page set in the sign-in cookie.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, PageError> {
    let form_cookie = request_cookie(&headers, session::LOGIN_COOKIE).unwrap_or("");
    if f.csrf.is_empty() || !session::same_token(form_cookie, &f.csrf) {
        let problem = "The sign-in form had expired; try again.";
        return login_page(&state, &f.next, Some(problem), StatusCode::FORBIDDEN);
    }
    if let Err(wait) = state.throttle.check(&f.name, from.ip()) {
        tracing::warn!(user = %f.name, from = %from.ip(), "sign-in throttled");
        let problem = format!("Too many tries; wait {} seconds.", wait.as_secs().max(1));
        let mut r = login_page(&state, &f.next, Some(&problem), StatusCode::TOO_MANY_REQUESTS)?;
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
        return Ok(r);
    }
    let lib = state.library.clone();
    let (name, password) = (f.name.clone(), f.password);
    let signed = super::blocking(move || {
        let readers = lib.readers().load()?;
        Ok(match readers.sign_in(&name, &password)? {
            Some(p) => readers.password_stamp(&name).map(|s| (p, s)),
            None => None,
        })
    })
    .await?;
    let Some((who, stamp)) = signed else {
        tracing::warn!(user = %f.name, from = %from.ip(), "sign-in refused");
        return login_page(
            &state,
            &f.next,
            Some("Wrong name or password."),
            StatusCode::UNAUTHORIZED,
        );
    };
    tracing::info!(user = %who.name, from = %from.ip(), "signed in");
    let started = state.sessions.start(&who.name, stamp);
    let mut r = Redirect::to(safe_next(&f.next)).into_response();
    for set in [
        session::set_cookie(session::COOKIE, Some(&started.cookie), state.secure),
        session::set_cookie(session::LOGIN_COOKIE, None, state.secure),
    ] {
        if let Ok(v) = HeaderValue::from_str(&set) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(r)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`
pub async fn logout(State(state): State<AppState>, v: Viewer, Form(f): Form<CsrfForm>) -> Result<Response, PageError> {
    v.check_csrf(&f.csrf)?;
    state.sessions.end(&v.cookie);
    let mut r = Redirect::to("/login").into_response();
    if let Ok(h) = HeaderValue::from_str(&session::set_cookie(session::COOKIE, None, state.secure)) {
        r.headers_mut().append(header::SET_COOKIE, h);
    }
    Ok(r)
}

/// `GET /`
pub async fn home() -> Redirect {
    Redirect::to("/search")
}

/// `GET /static/app.css`
pub async fn app_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        APP_CSS,
    )
        .into_response()
}

/// One result line.
pub struct Row {
    pub id: String,
    pub date: String,
    pub from: String,
    pub subject: String,
    pub folders: String,
    pub attachments: usize,
}

impl Row {
    fn of(h: Hit) -> Row {
        let date = chrono::DateTime::from_timestamp(h.date, 0)
            .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let subject = if h.subject.trim().is_empty() {
            "(no subject)".to_string()
        } else {
            h.subject
        };
        let folders = h
            .placements
            .iter()
            .map(|p| format!("{}/{}", p.account, p.folder))
            .collect::<Vec<_>>()
            .join(", ");
        Row {
            id: h.id,
            date,
            from: h.from.join(", "),
            subject,
            folders,
            attachments: h.attachments.len(),
        }
    }
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage<'a> {
    nav: Option<Nav>,
    q: &'a str,
    sort: &'a str,
    sorts: &'a [(&'a str, &'a str)],
    problem: Option<String>,
    total: usize,
    first: usize,
    last: usize,
    rows: Vec<Row>,
    prev: Option<String>,
    next: Option<String>,
}

const SORTS: &[(&str, &str)] = &[
    ("newest", "Newest first"),
    ("oldest", "Oldest first"),
    ("relevance", "Best match"),
];

#[derive(Debug, Default, Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    q: String,
    #[serde(default)]
    sort: super::api::SortParam,
    #[serde(default)]
    page: usize,
}

fn sort_name(s: super::api::SortParam) -> &'static str {
    match s {
        super::api::SortParam::Newest => "newest",
        super::api::SortParam::Oldest => "oldest",
        super::api::SortParam::Relevance => "relevance",
    }
}

fn page_link(q: &str, sort: &str, page: usize) -> String {
    serde_urlencoded::to_string([("q", q), ("sort", sort), ("page", &page.to_string())]).unwrap_or_default()
}

/// One page of a search, as the reader may see it; recorded in the access log.
struct Found {
    total: usize,
    rows: Vec<Row>,
}

fn run_search(
    lib: &super::library::Library,
    who: &Principal,
    q: &str,
    expr: crate::query::Expr,
    sort: Sort,
    offset: usize,
) -> Result<Found, WebError> {
    let snap = lib.snapshot()?;
    let total = snap.index.count_expr(&expr)?;
    let hits = snap.index.search_expr(&expr, sort, PAGE_SIZE, offset)?;
    let hits: Vec<Hit> = hits.into_iter().filter_map(|h| super::api::visible(who, h)).collect();
    let ids: Vec<MessageId> = hits.iter().filter_map(|h| Hash32::from_hex(&h.id)).collect();
    lib.record(&snap, who, Action::Search, Some(q), &ids, ids.len() as u64)?;
    Ok(Found {
        total,
        rows: hits.into_iter().map(Row::of).collect(),
    })
}

/// `GET /search?q=…&sort=…&page=…`
pub async fn search(
    State(state): State<AppState>,
    v: Viewer,
    Query(f): Query<SearchForm>,
) -> Result<Response, PageError> {
    let sort = sort_name(f.sort);
    let page_no = f.page.min(MAX_PAGE);
    let mut page = SearchPage {
        nav: v.nav(),
        q: &f.q,
        sort,
        sorts: SORTS,
        problem: None,
        total: 0,
        first: 0,
        last: 0,
        rows: Vec::new(),
        prev: None,
        next: None,
    };
    if f.q.trim().is_empty() {
        return html(page);
    }
    let expr = match crate::query::parse(&f.q) {
        Ok(e) => crate::readers::restrict(&v.who, e),
        Err(e) => {
            page.problem = Some(e.to_string());
            return html(page);
        }
    };
    let (lib, who, q) = (state.library.clone(), v.who.clone(), f.q.clone());
    let offset = page_no * PAGE_SIZE;
    let found = super::blocking(move || run_search(&lib, &who, &q, expr, f.sort.into(), offset)).await?;
    page.total = found.total;
    page.first = offset + 1;
    page.last = offset + found.rows.len();
    page.rows = found.rows;
    page.prev = (page_no > 0).then(|| page_link(&f.q, sort, page_no - 1));
    page.next = (page.last < page.total && page_no < MAX_PAGE).then(|| page_link(&f.q, sort, page_no + 1));
    html(page)
}

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
    subject: String,
    headers: Vec<(String, String)>,
    placements: Vec<String>,
    size: usize,
    attachments: Vec<AttachmentLine>,
    html: bool,
    remote_blocked: usize,
    text: String,
}

/// Reads message `id` for `who` (not found when outside their accounts), recording
/// the read first.
fn read_message(
    lib: &super::library::Library,
    who: &Principal,
    id: &MessageId,
) -> Result<(Vec<super::api::Placement>, Vec<u8>), WebError> {
    let snap = lib.snapshot()?;
    let placements = super::api::readable_message(&snap, who, id)?;
    lib.record(&snap, who, Action::Show, None, &[*id], 1)?;
    Ok((placements, snap.archive.get_raw(id)?))
}

fn page_id(s: &str) -> Result<MessageId, PageError> {
    Ok(super::api::message_id(s)?)
}

fn message_page(nav: Option<Nav>, id: &MessageId, placements: Vec<super::api::Placement>, raw: &[u8]) -> MessagePage {
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

/// `GET /messages/{id}`
pub async fn message(State(state): State<AppState>, v: Viewer, Path(id): Path<String>) -> Result<Response, PageError> {
    let id = page_id(&id)?;
    let (lib, who) = (state.library.clone(), v.who.clone());
    let (placements, raw) = super::blocking(move || read_message(&lib, &who, &id)).await?;
    html(message_page(v.nav(), &id, placements, &raw))
}

/// `GET /messages/{id}/body`: the HTML body, sanitised, as a document of its own
/// for the message page's sandboxed frame, under [`sanitize::FRAME_CSP`].
pub async fn message_body(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = page_id(&id)?;
    let (lib, who) = (state.library.clone(), v.who.clone());
    let (_, raw) = super::blocking(move || read_message(&lib, &who, &id)).await?;
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
    let id = page_id(&id)?;
    let (lib, who) = (state.library.clone(), v.who.clone());
    let (_, raw) = super::blocking(move || read_message(&lib, &who, &id)).await?;
    Ok(download(raw, "message/rfc822", &format!("{}.eml", id.to_hex()), false))
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
    let id = page_id(&id)?;
    let (lib, who) = (state.library.clone(), v.who.clone());
    let (_, raw) = super::blocking(move || read_message(&lib, &who, &id)).await?;
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

/// Any other path.
pub async fn no_page() -> PageError {
    PageError::Web(WebError::api(Code::NotFound, "no such page"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_sign_in_only_paths_on_this_server_are_followed() {
        assert_eq!(safe_next("/messages/ab?x=1"), "/messages/ab?x=1");
        for bad in [
            "",
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "/login?next=/x",
            "javascript:x",
        ] {
            assert_eq!(safe_next(bad), "/search", "{bad}");
        }
    }

    #[test]
    fn only_plain_pictures_are_previewed() {
        assert!(previewable("image/PNG") && previewable("image/jpeg"));
        assert!(!previewable("image/svg+xml") && !previewable("text/html"));
    }
}
