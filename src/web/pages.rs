//! The server-rendered pages: sign-in and sign-out, search, a message (its body
//! sanitised in a sandboxed frame), its `.eml` and its attachments. Templates are
//! askama's, checked when the crate compiles (`src/web/templates/`); the one style
//! sheet is built in; no page loads anything from elsewhere or runs any script.
//!
//! A page needs a signed-in session ([`Viewer`]); without one it redirects to the
//! sign-in page. Every form that changes state carries the session's CSRF token.
//! Every read is recorded in the access log (as `web:NAME`) before it is shown.

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::error::{Code, WebError};
use super::session::{self, Session};
use super::{reads, sanitize, AppState};
use crate::index::Hit;
use crate::model::MessageId;
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
                    Code::Busy => "Busy",
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
    /// The legal holds page is offered (admins and auditors).
    pub holds: bool,
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
            holds: self.who.may_audit(),
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
    ConnectInfo(super::tls::ClientAddr(from)): ConnectInfo<super::tls::ClientAddr>,
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
    /// The query string exporting every result.
    export: Option<String>,
    /// Admins may place a hold on the results.
    admin: bool,
    facets: Option<FacetView>,
}

/// One facet value: what it narrows to, and how many match.
pub struct FacetLink {
    pub label: String,
    pub count: u64,
    /// The search narrowed to it (query string).
    pub href: String,
}

/// One bar of the chart of matches over time.
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub height: u32,
    pub label: String,
    pub count: u64,
    pub href: String,
}

/// The facets beside the results, and the chart above them.
pub struct FacetView {
    pub accounts: Vec<FacetLink>,
    pub folders: Vec<FacetLink>,
    pub years: Vec<FacetLink>,
    pub domains: Vec<FacetLink>,
    pub attachments: Option<FacetLink>,
    pub bars: Vec<Bar>,
    pub bar_width: u32,
}

/// The chart's drawing area, in SVG units.
pub const CHART_WIDTH: u32 = 640;
pub const CHART_HEIGHT: u32 = 80;
/// Years before this are left off the chart (a message without any date sorts to 1970).
const CHART_FROM_YEAR: i32 = 1980;

fn narrowed(q: &str, sort: &str, term: &str) -> String {
    page_link(&format!("{q} {term}"), sort, 0)
}

/// Bars for `years` (gaps filled with empty years), scaled to the chart.
fn chart(q: &str, sort: &str, years: &[(i32, u64)]) -> (Vec<Bar>, u32) {
    let shown: Vec<(i32, u64)> = years.iter().copied().filter(|(y, _)| *y >= CHART_FROM_YEAR).collect();
    let (Some(first), Some(last)) = (shown.first(), shown.last()) else {
        return (Vec::new(), 0);
    };
    let span = (last.0 - first.0 + 1) as u32;
    let width = (CHART_WIDTH / span).max(2);
    let most = shown.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
    let bars = (first.0..=last.0)
        .enumerate()
        .map(|(i, year)| {
            let count = shown.iter().find(|(y, _)| *y == year).map_or(0, |(_, n)| *n);
            let height = ((count as f64 / most as f64) * CHART_HEIGHT as f64).round() as u32;
            Bar {
                x: i as u32 * width,
                y: CHART_HEIGHT - height,
                height,
                label: year.to_string(),
                count,
                href: narrowed(q, sort, &format!("date:{year}")),
            }
        })
        .collect();
    (bars, width.saturating_sub(1).max(1))
}

fn facet_view(q: &str, sort: &str, f: &crate::index::facets::Facets) -> FacetView {
    let link = |label: String, count: u64, term: String| FacetLink {
        label,
        count,
        href: narrowed(q, sort, &term),
    };
    let (bars, bar_width) = chart(q, sort, &f.years);
    FacetView {
        accounts: f
            .accounts
            .iter()
            .map(|(a, n)| link(a.clone(), *n, term("account", a)))
            .collect(),
        folders: f
            .folders
            .iter()
            .map(|(a, fo, n)| {
                link(
                    format!("{a}/{fo}"),
                    *n,
                    format!("{} {}", term("account", a), term("folder", fo)),
                )
            })
            .collect(),
        years: f
            .years
            .iter()
            .rev()
            .map(|(y, n)| link(y.to_string(), *n, format!("date:{y}")))
            .collect(),
        domains: f
            .domains
            .iter()
            .map(|(d, n)| link(d.clone(), *n, term("from", d)))
            .collect(),
        attachments: (f.with_attachments > 0)
            .then(|| link("has attachments".into(), f.with_attachments, "has:attachment".into())),
        bars,
        bar_width,
    }
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
        export: None,
        admin: v.who.may_manage(),
        facets: None,
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
    let sort_by = f.sort.into();
    let found = super::blocking(move || {
        let ask = reads::Ask {
            q: &q,
            expr: &expr,
            sort: sort_by,
            limit: PAGE_SIZE,
            offset,
            facets: true,
        };
        reads::search(&lib, &who, &ask)
    })
    .await?;
    page.facets = found.facets.as_ref().map(|x| facet_view(&f.q, sort, x));
    page.total = found.total;
    page.first = offset + 1;
    page.last = offset + found.hits.len();
    page.rows = found.hits.into_iter().map(Row::of).collect();
    page.export = Some(serde_urlencoded::to_string([("q", f.q.as_str()), ("format", "mbox")]).unwrap_or_default());
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
    let (placements, raw) = super::blocking(move || reads::message(&lib, &who, &id)).await?;
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
    let (_, raw) = super::blocking(move || reads::message(&lib, &who, &id)).await?;
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
    let (_, raw) = super::blocking(move || reads::message(&lib, &who, &id)).await?;
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
    let (_, raw) = super::blocking(move || reads::message(&lib, &who, &id)).await?;
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
    let t = super::blocking(move || reads::thread(&lib, &who, &id)).await?;
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

/// `GET /export?q=…&format=mbox`, or `?id=…&id=…` (a selection from a results
/// page): one mboxrd file, streamed.
pub async fn export(
    State(state): State<AppState>,
    v: Viewer,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, PageError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or_default())
        .map_err(|e| WebError::api(Code::BadRequest, format!("the export's parameters: {e}")))?;
    let mut p = super::export::ExportParams::default();
    let mut ids = Vec::new();
    for (k, val) in pairs {
        match k.as_str() {
            "q" => p.q = Some(val),
            "id" | "ids" => ids.push(val),
            "format" if val == "mbox" => {}
            "format" => {
                return Err(WebError::api(Code::BadRequest, format!("format {val:?}: the web exports mbox")).into())
            }
            _ => {}
        }
    }
    if !ids.is_empty() {
        p.ids = Some(ids.join(","));
    }
    let what = p.selection(&v.who)?;
    let (lib, who) = (state.library.clone(), v.who.clone());
    let e = super::blocking(move || reads::export(&lib, &who, &what)).await?;
    Ok(super::export::mbox_response(e.snap, e.items))
}

#[derive(Template)]
#[template(path = "holds.html")]
struct HoldsPage<'a> {
    nav: Option<Nav>,
    holds: Vec<super::holds::Hold>,
    admin: bool,
    csrf: &'a str,
    query: &'a str,
}

#[derive(Debug, Default, Deserialize)]
pub struct HoldsParams {
    /// A query to place a hold on (from a results page).
    #[serde(default)]
    q: String,
}

/// `GET /holds`: every legal hold (admins and auditors); admins also place and
/// release them here.
pub async fn holds(
    State(state): State<AppState>,
    v: Viewer,
    Query(p): Query<HoldsParams>,
) -> Result<Response, PageError> {
    if !v.who.may_audit() {
        return Err(WebError::api(Code::Forbidden, "only admins and auditors see legal holds").into());
    }
    let lib = state.library.clone();
    let holds = super::blocking(move || super::holds::list(&lib)).await?;
    html(HoldsPage {
        nav: v.nav(),
        holds,
        admin: v.who.may_manage(),
        csrf: &v.session.csrf,
        query: &p.q,
    })
}

#[derive(Deserialize)]
pub struct HoldForm {
    #[serde(default)]
    csrf: String,
    name: String,
    query: String,
    #[serde(default)]
    reason: String,
}

/// `POST /holds`: place a hold (admins).
pub async fn place_hold(
    State(state): State<AppState>,
    v: Viewer,
    Form(f): Form<HoldForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&f.csrf)?;
    let h = super::holds::NewHold {
        name: f.name,
        query: f.query,
        reason: f.reason,
    };
    let (lib, who) = (state.library.clone(), v.who.clone());
    super::blocking(move || super::holds::place(&lib, &who, &h)).await?;
    Ok(Redirect::to("/holds").into_response())
}

#[derive(Deserialize)]
pub struct ReleaseForm {
    #[serde(default)]
    csrf: String,
    name: String,
}

/// `POST /holds/release`: release a hold (admins).
pub async fn release_hold(
    State(state): State<AppState>,
    v: Viewer,
    Form(f): Form<ReleaseForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&f.csrf)?;
    let (lib, who) = (state.library.clone(), v.who.clone());
    super::blocking(move || super::holds::release(&lib, &who, &f.name)).await?;
    Ok(Redirect::to("/holds").into_response())
}

/// Archive-wide figures, for people.
pub struct TotalsView {
    pub messages: u64,
    pub placements: u64,
    pub raw: String,
    pub dedup: String,
    pub stored: String,
    pub percent: String,
    pub disk: String,
}

/// A folder line, for people.
pub struct FolderView {
    pub account: String,
    pub folder: String,
    pub query: String,
    pub messages: u64,
    pub size: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    nav: Option<Nav>,
    totals: Option<TotalsView>,
    folders: Vec<FolderView>,
    jobs: Vec<super::overview::JobLine>,
}

/// A query term for a value: quoted when it holds anything but plain characters.
fn term(field: &str, value: &str) -> String {
    if value.chars().all(|c| c.is_alphanumeric() || "._-@/".contains(c)) && !value.is_empty() {
        format!("{field}:{value}")
    } else {
        format!("{field}:\"{}\"", value.replace('"', ""))
    }
}

/// `GET /overview`
pub async fn overview(State(state): State<AppState>, v: Viewer) -> Result<Response, PageError> {
    let (lib, who) = (state.library.clone(), v.who.clone());
    let o = super::blocking(move || super::overview::overview(&lib, &who)).await?;
    let hb = crate::output::human_bytes;
    html(OverviewPage {
        nav: v.nav(),
        totals: o.totals.map(|t| TotalsView {
            messages: t.messages,
            placements: t.placements,
            raw: hb(t.raw_bytes),
            dedup: hb(t.dedup_saved_bytes),
            stored: hb(t.stored_bytes),
            percent: format!("{:.1} %", t.ratio * 100.0),
            disk: hb(t.disk_bytes),
        }),
        folders: o
            .folders
            .into_iter()
            .map(|f| FolderView {
                query: format!("{} {}", term("account", &f.account), term("folder", &f.folder)),
                size: hb(f.bytes),
                account: f.account,
                folder: f.folder,
                messages: f.messages,
            })
            .collect(),
        jobs: o.jobs,
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
    fn overview_links_quote_values_that_need_it() {
        assert_eq!(term("folder", "INBOX"), "folder:INBOX");
        assert_eq!(term("folder", "Sent Items"), "folder:\"Sent Items\"");
        assert_eq!(term("account", "a@b.org"), "account:a@b.org");
        assert_eq!(term("folder", ""), "folder:\"\"");
    }

    #[test]
    fn only_plain_pictures_are_previewed() {
        assert!(previewable("image/PNG") && previewable("image/jpeg"));
        assert!(!previewable("image/svg+xml") && !previewable("text/html"));
    }
}
