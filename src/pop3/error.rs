//! Errors of the POP3 source. Each names the server (never the password) and what was
//! being done; [`Pop3Error::is_retryable`] tells whether reconnecting may help.

use crate::archive::ArchiveError;
use crate::net::{ConnectError, SecretError, TlsError};

use super::proto::ProtoError;

#[derive(Debug, thiserror::Error)]
pub enum Pop3Error {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{server}: no answer within {seconds} s while {what}")]
    Timeout { server: String, what: String, seconds: u64 },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(
        "{server}: STLS is required but the server does not offer it; not sending the password \
         in plaintext (use pop3s://, or --insecure-plaintext on a trusted network)"
    )]
    NoStls { server: String },
    #[error("{server}: APOP was asked for (--apop) but the server's greeting offers no APOP timestamp")]
    NoApop { server: String },
    #[error("{server}: {what} refused: {detail}")]
    Refused {
        server: String,
        what: String,
        detail: String,
    },
    #[error("{server}: login failed for {user}: {detail}")]
    Auth {
        server: String,
        user: String,
        detail: String,
    },
    #[error("{server}: {what}: {source}")]
    Protocol {
        server: String,
        what: String,
        source: ProtoError,
    },
    #[error("{server}: connection lost while {what}: {detail}")]
    Lost {
        server: String,
        what: String,
        detail: String,
    },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    OAuth(#[from] crate::oauth::OAuthError),
}

impl Pop3Error {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Pop3Error::Connect(_)
                | Pop3Error::Timeout { .. }
                | Pop3Error::Lost { .. }
                | Pop3Error::OAuth(crate::oauth::OAuthError::Http { .. })
        )
    }

    /// The account's sign-in is gone or refused for good: `mailvault login` mends it.
    pub fn needs_login(&self) -> bool {
        matches!(self, Pop3Error::OAuth(e) if e.needs_login())
    }

    /// The server could not be reached at all (refused, no route, unknown host):
    /// before a first session this fails at once rather than being retried.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Pop3Error::Connect(ConnectError::Failed { .. }))
    }
}
