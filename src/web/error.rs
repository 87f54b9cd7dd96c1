//! Errors of the web layer, and how the JSON API answers them: a status and
//! `{"error": {"code": "…", "message": "…"}}` with a stable code (scripts branch on
//! the code, people read the message). Nothing secret goes into a message: an
//! internal failure is logged in full and answered with its kind only.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use thiserror::Error;

/// The stable codes of the API's errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// No credentials, or ones that are not (or no longer) valid.
    Unauthenticated,
    /// Signed in, but the role does not allow it.
    Forbidden,
    /// No such thing — or one this reader may not see (the two are not told apart).
    NotFound,
    /// The request is malformed (a query that does not parse, a bad id).
    BadRequest,
    /// Another mailvault process holds the archive for writing (a pull, an
    /// import, the service); the change was not made. Try again.
    Busy,
    /// The access log could not record the read, so it was not done.
    AccessLog,
    /// Anything else; the server's log has the details.
    Internal,
}

impl Code {
    pub fn status(self) -> StatusCode {
        match self {
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::Forbidden => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::BadRequest => StatusCode::BAD_REQUEST,
            Code::Busy => StatusCode::CONFLICT,
            Code::AccessLog => StatusCode::SERVICE_UNAVAILABLE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthenticated => "unauthenticated",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not_found",
            Code::BadRequest => "bad_request",
            Code::Busy => "busy",
            Code::AccessLog => "access_log",
            Code::Internal => "internal",
        }
    }

    /// Every code, for the OpenAPI document.
    pub const ALL: [Code; 7] = [
        Code::Unauthenticated,
        Code::Forbidden,
        Code::NotFound,
        Code::BadRequest,
        Code::Busy,
        Code::AccessLog,
        Code::Internal,
    ];
}

#[derive(Debug, Error)]
pub enum WebError {
    #[error("{message}")]
    Api { code: Code, message: String },
    #[error("listening on {addr}: {why}")]
    Listen { addr: String, why: String },
    #[error("the archive: {0}")]
    Archive(#[from] crate::archive::ArchiveError),
    #[error("the search index: {0}")]
    Index(#[from] crate::index::IndexError),
    #[error("readers: {0}")]
    Readers(#[from] crate::readers::ReaderError),
    #[error("legal holds: {0}")]
    Holds(#[from] crate::retention::RetentionError),
    #[error("the access log: {0}")]
    Access(#[from] crate::access::AccessError),
    #[error("a worker thread: {0}")]
    Join(String),
    #[error("the jobs' status files: {0}")]
    Status(String),
    #[error("writing an export: {0}")]
    Export(String),
    #[error("rendering a page: {0}")]
    Render(#[from] askama::Error),
}

impl WebError {
    pub fn api(code: Code, message: impl Into<String>) -> WebError {
        WebError::Api {
            code,
            message: message.into(),
        }
    }

    pub fn not_found() -> WebError {
        WebError::api(Code::NotFound, "no such message")
    }

    /// The code answered for this error.
    pub fn code(&self) -> Code {
        match self {
            WebError::Api { code, .. } => *code,
            WebError::Access(_) => Code::AccessLog,
            WebError::Archive(crate::archive::ArchiveError::Locked { .. }) => Code::Busy,
            _ => Code::Internal,
        }
    }
}

/// The body of an error answer.
#[derive(serde::Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(serde::Serialize)]
struct Detail<'a> {
    code: Code,
    message: &'a str,
}

impl WebError {
    /// What the reader is told (an internal failure is logged here in full and
    /// told only by its kind).
    pub fn public_message(&self) -> String {
        match self {
            WebError::Api { message, .. } => message.clone(),
            WebError::Archive(crate::archive::ArchiveError::Locked { .. }) => {
                "another mailvault process (a pull, an import, the service) is writing to the archive; \
                 try again when it is done"
                    .to_string()
            }
            WebError::Access(_) => {
                tracing::error!(error = %self, "a read refused: the access log cannot record it");
                "the access log cannot record this read, so it was not done".to_string()
            }
            other => {
                tracing::error!(error = %other, "request failed");
                "the server could not answer; its log says why".to_string()
            }
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let code = self.code();
        let message = self.public_message();
        let mut r = axum::Json(Body {
            error: Detail {
                code,
                message: &message,
            },
        })
        .into_response();
        *r.status_mut() = code.status();
        if code == Code::Unauthenticated {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"mailvault\""),
            );
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_one_spelling_and_status() {
        for c in Code::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        assert_eq!(Code::NotFound.status(), StatusCode::NOT_FOUND);
        assert_eq!(Code::Unauthenticated.status(), StatusCode::UNAUTHORIZED);
    }
}
