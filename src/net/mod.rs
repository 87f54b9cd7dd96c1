//! Network plumbing shared by the IMAP and POP3 sources: server addresses, TLS set-up
//! (rustls, verified by default), credentials that never come from argv, and the
//! stream type both protocols run over, and the guard on what an IMAP server may
//! make us hold.

pub mod cert;
pub mod deflate;
pub mod endpoint;
pub mod guard;
pub mod secret;
pub mod stream;
pub mod tls;

pub use endpoint::{Endpoint, EndpointError, Scheme};
pub use guard::Dropped;
pub use secret::{Secret, SecretError, SecretSource};
pub use stream::{Guarded, MaybeTls, Tcp};
pub use tls::{TlsError, TlsOptions};

use std::time::Duration;

/// At most this many bytes of what a server sent go into an error message: a
/// parser's complaint can carry its whole receive buffer (hundreds of MB of mail).
pub const QUOTE_LIMIT: usize = 300;

/// What a server sent, made fit for an error message, a log line or a status file:
/// one line, control characters escaped, cut after [`QUOTE_LIMIT`] bytes with a count
/// of what was left out.
pub fn server_quote(said: &str) -> String {
    let mut out = String::new();
    let mut taken = 0;
    for c in said.chars() {
        if taken + c.len_utf8() > QUOTE_LIMIT {
            out.push_str(&format!("… ({} more bytes)", said.len() - taken));
            return out;
        }
        taken += c.len_utf8();
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Why a TCP connection could not be opened (both sources wrap it; reconnecting may
/// help either way).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{server}: cannot connect: {source}")]
    Failed { server: String, source: std::io::Error },
    #[error("{server}: no answer within {seconds} s while connecting")]
    Timeout { server: String, seconds: u64 },
}

/// Opens a TCP connection to `ep` within `limit`, with Nagle off: protocols here
/// write short commands and wait for the answer. With `slots`, first waits for a
/// free slot of the server (not counted in `limit`); the connection holds it.
pub async fn tcp_connect(
    ep: &Endpoint,
    limit: Duration,
    slots: Option<&std::sync::Arc<tokio::sync::Semaphore>>,
) -> Result<Tcp, ConnectError> {
    let server = || ep.to_string();
    let slot = match slots {
        Some(s) => Some(s.clone().acquire_owned().await.expect("server slots are never closed")),
        None => None,
    };
    let tcp = tokio::time::timeout(limit, tokio::net::TcpStream::connect((ep.host.as_str(), ep.port)))
        .await
        .map_err(|_| ConnectError::Timeout {
            server: server(),
            seconds: limit.as_secs(),
        })?
        .map_err(|source| ConnectError::Failed {
            server: server(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    Ok(Tcp { stream: tcp, slot })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_quotes_are_one_short_line() {
        assert_eq!(server_quote("NO [ALERT] over quota"), "NO [ALERT] over quota");
        assert_eq!(server_quote("a\r\nb\0"), "a\\r\\nb\\u{0}");
        let huge = "é".repeat(1_000_000);
        let q = server_quote(&huge);
        assert!(q.len() < QUOTE_LIMIT + 40, "{}", q.len());
        assert!(
            q.ends_with(&format!("… ({} more bytes)", huge.len() - QUOTE_LIMIT)),
            "{q}"
        );
    }
}
