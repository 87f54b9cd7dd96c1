//! The web server: `mailvault web`. So far the JSON API under `/api/v1` ([`api`],
//! described by [`openapi`]); the pages come next. Handlers are small functions
//! with their state and reader given by extractors (axum); everything that touches
//! the archive runs on tokio's blocking threads ([`blocking`]) over a
//! [`library::Library`]. Errors answer with a status and a stable code
//! ([`error`]).
//!
//! It listens on loopback only for now: TLS for other addresses is not built yet,
//! and a server that reads mail must not listen in the clear beyond the machine.

pub mod api;
pub mod error;
pub mod library;
pub mod openapi;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;

pub use error::{Code, WebError};
use library::Library;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub library: Arc<Library>,
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
        .route("/openapi.json", get(api::openapi))
        .fallback(api::no_route);
    Router::new().nest("/api/v1", api).with_state(state)
}

/// Whether the server may listen on `addr`: loopback only, until TLS is built.
pub fn check_listen(addr: &SocketAddr) -> Result<(), WebError> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(WebError::Listen {
            addr: addr.to_string(),
            why: "only loopback addresses for now (TLS for others is not built yet); \
                  put a TLS-terminating proxy in front and listen on 127.0.0.1"
                .into(),
        })
    }
}

/// Serves `router` on `listener` until `shutdown` completes; requests in flight
/// are finished first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_served() {
        for ok in ["127.0.0.1:8080", "[::1]:0", "127.1.2.3:1"] {
            assert!(check_listen(&ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for bad in ["0.0.0.0:8080", "[::]:80", "192.168.1.2:8080"] {
            let e = check_listen(&bad.parse().unwrap()).unwrap_err().to_string();
            assert!(e.contains("loopback"), "{bad}: {e}");
        }
    }
}
