//! Signing in and out: the sign-in form (its CSRF token bound to a cookie its
//! page set), throttled checks of name and password, sessions started and ended.

use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::{html, request_cookie, Nav, PageError, Viewer};
use crate::web::session;
use crate::web::AppState;

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
    ConnectInfo(crate::web::tls::ClientAddr(from)): ConnectInfo<crate::web::tls::ClientAddr>,
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
    let signed = crate::web::blocking(move || {
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
}
