//! The server-rendered pages, one module per concern: signing in and out
//! ([`sign_in`]), search with facets and a chart ([`search`]), a message — its body
//! sanitised in a sandboxed frame, its `.eml`, attachments and conversation —
//! ([`message`]), exports, legal holds and the overview ([`manage`]). Here: what
//! they share — the signed-in [`Viewer`], page errors, HTML answers. Templates are
//! askama's, checked when the crate compiles (`src/web/templates/`); the one style
//! sheet is built in; no page loads anything from elsewhere or runs any script.
//!
//! A page needs a signed-in session ([`Viewer`]); without one it redirects to the
//! sign-in page. Every form that changes state carries the session's CSRF token.
//! Every read is recorded in the access log (as `web:NAME`) before it is shown.

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};

use super::error::{Code, WebError};
use super::session::{self, Session};
use super::AppState;
use crate::model::MessageId;
use crate::readers::Principal;

mod manage;
mod message;
mod search;
mod sign_in;

pub use manage::{export, holds, overview, place_hold, release_hold};
pub use message::{attachment, change_tags, message, message_body, message_eml, thread};
pub use search::search;
pub use sign_in::{login, login_form, logout};

/// The style sheet, built in.
pub const APP_CSS: &str = include_str!("../static/app.css");

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

/// A message id from a page's path.
fn page_id(s: &str) -> Result<MessageId, PageError> {
    Ok(super::api::message_id(s)?)
}

/// Any other path.
pub async fn no_page() -> PageError {
    PageError::Web(WebError::api(Code::NotFound, "no such page"))
}
