//! Errors of the IMAP source. Each names the server (never the password) and, where
//! it applies, the mailbox; [`ImapError::is_retryable`] tells the puller whether
//! reconnecting may help.

use crate::archive::ArchiveError;
use crate::net::{server_quote, ConnectError, SecretError, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{server}: no answer within {seconds} s while {what}")]
    Timeout { server: String, what: String, seconds: u64 },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("{server}: unexpected greeting {line:?}")]
    Greeting { server: String, line: String },
    #[error(
        "{server}: the server greeted with PREAUTH (already logged in, before any TLS); refusing, \
         since TLS is required and the session cannot be secured"
    )]
    Preauth { server: String },
    #[error(
        "{server}: STARTTLS is required but the server does not offer it; not sending the password \
         in plaintext (use imaps://, or --insecure-plaintext on a trusted network)"
    )]
    NoStartTls { server: String },
    #[error("{server}: STARTTLS refused: {line:?}")]
    StartTlsRefused { server: String, line: String },
    #[error("{server}: login failed for {user}: {detail}")]
    Auth {
        server: String,
        user: String,
        detail: String,
    },
    #[error("{server}: {mailbox}: {detail}")]
    Mailbox {
        server: String,
        mailbox: String,
        detail: String,
    },
    #[error("{server}: {what}: {detail}")]
    Protocol {
        server: String,
        what: String,
        detail: String,
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
    /// Not a failure: the session's OAuth2 token is due, so the folder stopped at
    /// a commit for a new session to resume it.
    #[error("{server}: the session's access token is due for a refresh; resuming on a new session")]
    SessionRetiring { server: String },
}

impl ImapError {
    /// Whether a new connection might succeed where this one failed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ImapError::Connect(_)
                | ImapError::Timeout { .. }
                | ImapError::Lost { .. }
                | ImapError::OAuth(crate::oauth::OAuthError::Http { .. })
        )
    }

    /// The account's sign-in is gone or refused for good: `mailvault login` mends it.
    pub fn needs_login(&self) -> bool {
        matches!(self, ImapError::OAuth(e) if e.needs_login())
    }

    /// The server could not be reached at all (refused, no route, unknown host):
    /// before a first session this fails at once rather than being retried.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ImapError::Connect(ConnectError::Failed { .. }))
    }

    /// Maps an async-imap error met while doing `what`. What the server said is
    /// quoted short ([`server_quote`]): the library's parse errors carry its whole
    /// receive buffer.
    pub(crate) fn from_client(server: &str, what: &str, e: async_imap::error::Error) -> ImapError {
        use async_imap::error::Error as E;
        match e {
            E::Io(io) => ImapError::Lost {
                server: server.into(),
                what: what.into(),
                detail: server_quote(&io.to_string()),
            },
            E::ConnectionLost => ImapError::Lost {
                server: server.into(),
                what: what.into(),
                detail: "the server closed the connection".into(),
            },
            // A response the parser rejects mid-stream usually means a cut
            // connection; reconnecting is the cure either way.
            E::Parse(p) => ImapError::Lost {
                server: server.into(),
                what: what.into(),
                detail: format!("unparseable response ({})", server_quote(&p.to_string())),
            },
            other => ImapError::Protocol {
                server: server.into(),
                what: what.into(),
                detail: server_quote(&other.to_string()),
            },
        }
    }
}
