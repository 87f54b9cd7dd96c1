//! Network plumbing shared by the IMAP and POP3 sources: server addresses, TLS set-up
//! (rustls, verified by default), credentials that never come from argv, and the
//! stream type both protocols run over.

pub mod endpoint;
pub mod secret;
pub mod stream;
pub mod tls;

pub use endpoint::{Endpoint, EndpointError, Scheme};
pub use secret::{Secret, SecretError, SecretSource};
pub use stream::MaybeTls;
pub use tls::{TlsError, TlsOptions};

use std::time::Duration;

/// Opens a TCP connection to `ep` within `limit` (a timeout is reported as
/// `io::ErrorKind::TimedOut`), with Nagle off: protocols here write short commands
/// and wait for the answer.
pub async fn tcp_connect(ep: &Endpoint, limit: Duration) -> std::io::Result<tokio::net::TcpStream> {
    let tcp = tokio::time::timeout(limit, tokio::net::TcpStream::connect((ep.host.as_str(), ep.port)))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}
