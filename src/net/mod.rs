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
