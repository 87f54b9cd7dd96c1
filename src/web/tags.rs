//! Tags from the web: the tags in use (counted over what the reader may see), a
//! message's tags, and adding or removing tags on what a query matches or on
//! messages by id. Admins and users tag (a user only within the accounts granted:
//! the query is narrowed to them, an id outside them is not found); auditors
//! read only. A change opens the archive for writing just for itself, as a hold
//! does ([`Library::writable`]).

use serde::{Deserialize, Serialize};

use super::error::{Code, WebError};
use super::library::Library;
use crate::model::{Hash32, MessageId};
use crate::query::Expr;
use crate::readers::Principal;
use crate::tags::{self, Tag};

/// A tag in use.
#[derive(Debug, Clone, Serialize)]
pub struct TagCount {
    pub tag: String,
    /// Messages carrying it that the reader may see.
    pub messages: u64,
}

/// Tags to add and remove, on what `query` matches or on `ids`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TagChange {
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// What a change did.
#[derive(Debug, Clone, Serialize)]
pub struct Tagged {
    /// Messages selected (the reader's only).
    pub matched: u64,
    /// Of those, how many had their tags changed.
    pub changed: u64,
}

fn bad(message: impl Into<String>) -> WebError {
    WebError::api(Code::BadRequest, message)
}

/// Every tag in use with how many of the reader's messages carry it (tags
/// carried only by messages the reader may not see are not named).
pub fn list(lib: &Library, who: &Principal) -> Result<Vec<TagCount>, WebError> {
    let snap = lib.snapshot()?;
    let mut out = Vec::new();
    for (tag, all) in snap.archive.tag_counts()? {
        let messages = if who.accounts.is_none() {
            all
        } else {
            let e = crate::readers::restrict(who, Expr::Tagged(tag.as_str().to_string()));
            snap.index.count_expr(&e)? as u64
        };
        if messages > 0 {
            out.push(TagCount {
                tag: tag.as_str().to_string(),
                messages,
            });
        }
    }
    Ok(out)
}

/// Message `id`'s tags (the caller has checked the reader may see it).
pub fn of(lib: &Library, id: &MessageId) -> Result<Vec<String>, WebError> {
    let snap = lib.snapshot()?;
    Ok(snap
        .archive
        .tags_of(id)?
        .into_iter()
        .map(|t| t.as_str().to_string())
        .collect())
}

/// The changes `c` asks for, checked.
fn changes(c: &TagChange) -> Result<Vec<tags::Change>, WebError> {
    let parse = |t: &String| Tag::parse(t.trim()).map_err(|e| bad(e.to_string()));
    let mut out = Vec::new();
    for t in &c.add {
        out.push(tags::Change::Add(parse(t)?));
    }
    for t in &c.remove {
        out.push(tags::Change::Remove(parse(t)?));
    }
    if out.is_empty() {
        return Err(bad("nothing to change: give tags to add or remove"));
    }
    Ok(out)
}

/// Applies `c` as `who`.
pub fn change(lib: &Library, who: &Principal, c: &TagChange) -> Result<Tagged, WebError> {
    if !who.may_tag() {
        return Err(WebError::api(
            Code::Forbidden,
            "an auditor reads only: tagging needs an admin or a user",
        ));
    }
    let changes = changes(c)?;
    let snap = lib.snapshot()?;
    let ids: Vec<MessageId> = match (&c.query, c.ids.is_empty()) {
        (Some(q), true) => {
            let expr = crate::query::parse(q).map_err(|e| bad(e.to_string()))?;
            let expr = crate::readers::restrict(who, expr);
            snap.index.matching_expr(&expr)?.into_iter().map(|(id, _)| id).collect()
        }
        (None, false) => {
            let mut ids = Vec::with_capacity(c.ids.len());
            for hex in &c.ids {
                let id = Hash32::from_hex(hex).ok_or_else(|| bad(format!("{hex:?} is not a message id")))?;
                super::reads::placements(&snap, who, &id)?;
                ids.push(id);
            }
            ids
        }
        _ => return Err(bad("give either a query or ids")),
    };
    drop(snap);
    let archive = lib.writable()?;
    let changed = archive.change_tags(&ids, &changes).map_err(|e| match e {
        e @ crate::archive::ArchiveError::Tags { .. } => bad(e.to_string()),
        other => other.into(),
    })?;
    drop(archive);
    lib.invalidate();
    tracing::info!(messages = ids.len(), changed, by = %who.logged_as(), "tags changed");
    Ok(Tagged {
        matched: ids.len() as u64,
        changed,
    })
}
