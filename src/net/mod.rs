//! Network plumbing shared by the IMAP and POP3 sources: server addresses, TLS set-up
//! (rustls, verified by default), credentials that never come from argv, and the
//! stream type both protocols run over.

pub mod endpoint;
pub mod secret;
pub mod stream;
pub mod tls;

pub use endpoint::{Endpoint, EndpointError, Scheme};
pub use secret::{Secret, SecretError, SecretSource};
pub use stream::{MaybeTls, Tcp};
pub use tls::{TlsError, TlsOptions};

use std::time::Duration;

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
