//! The web server: `mailvault web`. Server-rendered pages for people ([`pages`],
//! signed in by [`session`]s, throttled by [`throttle`], mail bodies made safe by
//! [`sanitize`]) and the JSON API under `/api/v1` for scripts ([`api`], described
//! by [`openapi`]). Handlers are small functions
//! with their state and reader given by extractors (axum); everything that touches
//! the archive runs on tokio's blocking threads ([`blocking`]) over a
//! [`library::Library`]. Errors answer with a status and a stable code
//! ([`error`]).
//!
//! It listens on loopback in the clear; on any other address only over TLS
//! ([`tls`]), unless told `--insecure-http` (behind a TLS-terminating proxy): a
//! server that reads mail must not be readable on the wire.

pub mod api;
pub mod error;
pub mod export;
pub mod holds;
pub mod library;
pub mod openapi;
pub mod overview;
pub mod pages;
pub mod reads;
pub mod sanitize;
pub mod session;
pub mod tags;
pub mod throttle;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::routing::{get, post};
use axum::Router;

pub use error::{Code, WebError};
use library::Library;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub library: Arc<Library>,
    pub sessions: Arc<session::Sessions>,
    pub throttle: Arc<throttle::SignInThrottle>,
    /// Served over TLS: cookies are marked `Secure`.
    pub secure: bool,
}

impl AppState {
    pub fn new(library: Library, secure: bool) -> AppState {
        AppState {
            library: Arc::new(library),
            sessions: Arc::default(),
            throttle: Arc::default(),
            secure,
        }
    }
}

/// The policy of every page: its own style sheet, pictures and frames from this
/// server only, no script at all, forms only to this server, never framed.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src 'self'; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Headers every answer carries unless its handler set its own, and how long the
/// server took (`Server-Timing: app;dur=MS`, shown by browsers' developer tools and
/// read by the web benchmark; for a streamed export, until its first byte).
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let started = std::time::Instant::now();
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        h.insert(header::HeaderName::from_static("server-timing"), v);
    }
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    r
}

/// Runs `f` (which reads the archive) on a blocking thread.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, WebError> + Send + 'static,
) -> Result<T, WebError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WebError::Join(e.to_string()))?
}

/// Every route.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/search", get(api::search))
        .route("/messages/{id}", get(api::message))
        .route("/messages/{id}/raw", get(api::raw))
        .route("/messages/{id}/thread", get(api::thread))
        .route("/export", get(api::export))
        .route("/holds", get(api::holds).post(api::place_hold))
        .route("/holds/{name}", axum::routing::delete(api::release_hold))
        .route("/stats", get(api::stats))
        .route("/tags", get(api::tags).post(api::change_tags))
        .route("/openapi.json", get(api::openapi))
        .fallback(api::no_route);
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/search", get(pages::search))
        .route("/messages/{id}", get(pages::message))
        .route("/messages/{id}/body", get(pages::message_body))
        .route("/messages/{id}/eml", get(pages::message_eml))
        .route("/messages/{id}/attachments/{n}", get(pages::attachment))
        .route("/messages/{id}/thread", get(pages::thread))
        .route("/messages/{id}/tags", post(pages::change_tags))
        .route("/export", get(pages::export))
        .route("/holds", get(pages::holds).post(pages::place_hold))
        .route("/holds/release", post(pages::release_hold))
        .route("/overview", get(pages::overview))
        .route("/static/app.css", get(pages::app_css))
        .nest("/api/v1", api)
        .fallback(pages::no_page)
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// How the server speaks to its clients.
pub enum Transport {
    /// HTTP in the clear (loopback, or `--insecure-http`).
    Plain,
    /// HTTPS with this configuration.
    Tls(Arc<rustls::ServerConfig>),
}

/// Whether the server may listen on `addr`: loopback always; another address only
/// over TLS, or in the clear when `insecure_http` says a proxy in front does TLS.
pub fn check_listen(addr: &SocketAddr, tls: bool, insecure_http: bool) -> Result<(), WebError> {
    if addr.ip().is_loopback() || tls || insecure_http {
        Ok(())
    } else {
        Err(WebError::Listen {
            addr: addr.to_string(),
            why: "a non-loopback address needs TLS (--tls-cert FILE --tls-key FILE), or --insecure-http \
                  when a TLS-terminating proxy in front of it is the only way in"
                .into(),
        })
    }
}

/// Serves `state` on `listener` until `shutdown` completes; requests in flight
/// are finished first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    transport: Transport,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<tls::ClientAddr>();
    match transport {
        Transport::Plain => axum::serve(listener, app).with_graceful_shutdown(shutdown).await,
        Transport::Tls(config) => {
            let listener = tls::TlsListener::new(listener, config)?;
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_served_in_the_clear_unless_asked() {
        for ok in ["127.0.0.1:8080", "[::1]:0", "127.1.2.3:1"] {
            assert!(check_listen(&ok.parse().unwrap(), false, false).is_ok(), "{ok}");
        }
        for other in ["0.0.0.0:8080", "[::]:80", "192.168.1.2:8080"] {
            let addr = other.parse().unwrap();
            let e = check_listen(&addr, false, false).unwrap_err().to_string();
            assert!(
                e.contains("--tls-cert") && e.contains("--insecure-http"),
                "{other}: {e}"
            );
            assert!(check_listen(&addr, true, false).is_ok(), "{other} over TLS");
            assert!(check_listen(&addr, false, true).is_ok(), "{other} when asked");
        }
    }
}
