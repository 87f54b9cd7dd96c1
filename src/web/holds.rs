//! Legal holds from the web (role `admin` only): list them, place one on what a
//! query matches, release one. A change opens the archive for writing just for
//! itself ([`Library::writable`]) and is recorded in the archive's signed change
//! log like `mailvault hold add`, with the web user or token as who placed it.

use serde::{Deserialize, Serialize};

use super::error::{Code, WebError};
use super::library::Library;
use crate::archive::ArchiveError;
use crate::evidence::RuleKind;
use crate::readers::Principal;
use crate::retention::RetentionError;

/// One hold, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct Hold {
    pub name: String,
    pub query: String,
    pub reason: String,
    /// Who placed it: the OS user, `web:NAME` or `token:NAME`.
    pub by: String,
    /// RFC 3339, UTC.
    pub at: String,
}

/// A hold to place.
#[derive(Debug, Clone, Deserialize)]
pub struct NewHold {
    pub name: String,
    pub query: String,
    #[serde(default)]
    pub reason: String,
}

/// Only admins manage holds.
pub fn check_admin(who: &Principal) -> Result<(), WebError> {
    if who.may_manage() {
        Ok(())
    } else {
        Err(WebError::api(
            Code::Forbidden,
            "only an admin places or releases legal holds",
        ))
    }
}

fn web_error(e: RetentionError) -> WebError {
    match e {
        RetentionError::Archive(a) => archive_error(a),
        e @ (RetentionError::Query { .. } | RetentionError::RefersToHolds { .. }) => {
            WebError::api(Code::BadRequest, e.to_string())
        }
        other => other.into(),
    }
}

fn archive_error(e: ArchiveError) -> WebError {
    match e {
        e @ ArchiveError::NoSuchRule { .. } => WebError::api(Code::NotFound, e.to_string()),
        e @ ArchiveError::InvalidName { .. } => WebError::api(Code::BadRequest, e.to_string()),
        other => other.into(),
    }
}

/// Every hold of the archive.
pub fn list(lib: &Library) -> Result<Vec<Hold>, WebError> {
    let snap = lib.snapshot()?;
    Ok(snap
        .archive
        .rules(RuleKind::Hold)?
        .into_iter()
        .map(|(name, r)| Hold {
            name,
            query: r.query,
            reason: r.reason,
            by: r.by,
            at: chrono::DateTime::from_timestamp(r.at, 0)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default(),
        })
        .collect())
}

/// Places `h` as `who`.
pub fn place(lib: &Library, who: &Principal, h: &NewHold) -> Result<(), WebError> {
    check_admin(who)?;
    if h.query.trim().is_empty() {
        return Err(WebError::api(Code::BadRequest, "a hold needs a query"));
    }
    let archive = lib.writable()?;
    crate::retention::add_hold(&archive, &h.name, &h.query, &h.reason, &who.logged_as()).map_err(web_error)?;
    drop(archive);
    lib.invalidate();
    tracing::info!(hold = %h.name, by = %who.logged_as(), "legal hold placed");
    Ok(())
}

/// Releases hold `name` as `who`.
pub fn release(lib: &Library, who: &Principal, name: &str) -> Result<(), WebError> {
    check_admin(who)?;
    let archive = lib.writable()?;
    archive.remove_rule(RuleKind::Hold, name).map_err(archive_error)?;
    drop(archive);
    lib.invalidate();
    tracing::info!(hold = %name, by = %who.logged_as(), "legal hold released");
    Ok(())
}
