//! The loopback redirect of a browser sign-in (RFC 8252 §7.3): a listener on
//! 127.0.0.1 and a free port, which answers the browser's one request with a
//! short page and hands back the authorization code. Bounded in time and in the
//! requests it reads (a browser may ask for `/favicon.ico` first).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::flow;
use super::OAuthError;
use crate::net::Secret;

/// The most requests read before giving up on the redirect.
const MAX_REQUESTS: usize = 16;
/// The most bytes of one request's head.
const MAX_HEAD: usize = 16 * 1024;

/// A listener waiting for the redirect.
pub struct Loopback {
    listener: TcpListener,
    pub redirect_uri: String,
}

impl Loopback {
    /// Listens on 127.0.0.1 and a port the system picks.
    pub async fn bind() -> Result<Loopback, OAuthError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| OAuthError::Redirect {
                detail: format!("cannot listen on 127.0.0.1: {e}"),
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| OAuthError::Redirect { detail: e.to_string() })?
            .port();
        Ok(Loopback {
            listener,
            redirect_uri: format!("http://127.0.0.1:{port}/callback"),
        })
    }

    /// Waits (at most `timeout`) for the browser to come back with the code for `state`.
    pub async fn wait_for_code(&self, state: &str, timeout: Duration) -> Result<Secret, OAuthError> {
        let waited = tokio::time::timeout(timeout, self.serve(state)).await;
        waited.map_err(|_| OAuthError::Redirect {
            detail: format!("no sign-in came back within {} s", timeout.as_secs()),
        })?
    }

    async fn serve(&self, state: &str) -> Result<Secret, OAuthError> {
        for _ in 0..MAX_REQUESTS {
            let (mut conn, _) = self
                .listener
                .accept()
                .await
                .map_err(|e| OAuthError::Redirect { detail: e.to_string() })?;
            let Ok(Ok(line)) = tokio::time::timeout(Duration::from_secs(10), read_request_line(&mut conn)).await else {
                continue;
            };
            if !line.starts_with("GET /callback") {
                let _ = respond(&mut conn, "404 Not Found", "Not here.").await;
                continue;
            }
            let result = flow::code_from_redirect(&line, state);
            let page = match &result {
                Ok(_) => "Signed in. mailvault has the sign-in; you can close this window.".to_string(),
                Err(e) => format!("The sign-in did not succeed: {e}"),
            };
            let _ = respond(&mut conn, "200 OK", &page).await;
            return result;
        }
        Err(OAuthError::Redirect {
            detail: format!("{MAX_REQUESTS} requests came and none was the sign-in's"),
        })
    }
}

/// The first line of an HTTP request, reading the head up to its end (bounded).
async fn read_request_line(conn: &mut tokio::net::TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    Ok(String::from_utf8_lossy(&head[..end]).trim_end().to_string())
}

async fn respond(conn: &mut tokio::net::TcpStream, status: &str, text: &str) -> std::io::Result<()> {
    let escaped = text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let body = format!("<!doctype html><meta charset=utf-8><title>mailvault</title><p>{escaped}</p>\n");
    let resp = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\ncache-control: no-store\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(resp.as_bytes()).await?;
    conn.shutdown().await
}
