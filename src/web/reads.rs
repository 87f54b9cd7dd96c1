//! The reads the pages and the API share — a search, a message, a conversation, an
//! export — each narrowed to what its reader may see and recorded in the access log
//! before anything is returned. Blocking: called on tokio's blocking threads.

use crate::access::Action;
use crate::index::{Hit, Sort};
use crate::model::{Hash32, MessageId};
use crate::query::{ExactField, Expr};
use crate::readers::Principal;

use super::api::Placement;
use super::error::{Code, WebError};
use super::library::{Library, Snapshot};

/// The most messages one conversation lists.
pub const MAX_THREAD: usize = 500;
/// The most messages one export holds (more: narrow the query, or `mailvault export`).
pub const MAX_EXPORT: usize = 100_000;

/// One page of a search.
pub struct Found {
    /// How many messages match in all.
    pub total: usize,
    pub hits: Vec<Hit>,
    /// When asked for: the facets of every match (folders of the reader's
    /// accounts only).
    pub facets: Option<crate::index::facets::Facets>,
}

/// `hit` as `p` may see it: only the accounts and folders granted.
pub fn visible(p: &Principal, mut hit: Hit) -> Option<Hit> {
    if p.accounts.is_none() {
        return Some(hit);
    }
    hit.placements.retain(|f| p.may_see(&f.account));
    if hit.placements.is_empty() {
        return None;
    }
    hit.accounts.retain(|a| p.may_see(a));
    let mut folders: Vec<String> = hit.placements.iter().map(|f| f.folder.clone()).collect();
    folders.sort();
    folders.dedup();
    hit.folders = folders;
    Some(hit)
}

fn ids_of(hits: &[Hit]) -> Vec<MessageId> {
    hits.iter().filter_map(|h| Hash32::from_hex(&h.id)).collect()
}

/// A page of the messages `expr` (the reader's query `q`, already narrowed to their
/// accounts) matches.
/// What one search asks for.
pub struct Ask<'a> {
    /// The query as the reader wrote it (for the access log).
    pub q: &'a str,
    /// The query narrowed to the reader's accounts.
    pub expr: &'a Expr,
    pub sort: Sort,
    pub limit: usize,
    pub offset: usize,
    pub facets: bool,
}

/// A page of the messages a query matches, and its facets when asked.
pub fn search(lib: &Library, who: &Principal, ask: &Ask<'_>) -> Result<Found, WebError> {
    let snap = lib.snapshot()?;
    let total = snap.index.count_expr(ask.expr)?;
    let hits = snap.index.search_expr(ask.expr, ask.sort, ask.limit, ask.offset)?;
    let hits: Vec<Hit> = hits.into_iter().filter_map(|h| visible(who, h)).collect();
    let facets = if ask.facets && total > 0 {
        let mut f = snap.index.facets(ask.expr, &|a| who.may_see(a))?;
        f.accounts.retain(|(a, _)| who.may_see(a));
        Some(f)
    } else {
        None
    };
    let ids = ids_of(&hits);
    lib.record(&snap, who, Action::Search, Some(ask.q), &ids, ids.len() as u64)?;
    Ok(Found { total, hits, facets })
}

/// Where message `id` is filed among the accounts `who` may see; not found when
/// none (exactly as for a message that does not exist).
pub fn placements(snap: &Snapshot, who: &Principal, id: &MessageId) -> Result<Vec<Placement>, WebError> {
    let placements: Vec<Placement> = snap
        .archive
        .placements_of(id)?
        .into_iter()
        .filter(|p| who.may_see(&p.key.account))
        .map(|p| Placement {
            account: p.key.account.clone(),
            folder: p.key.mailbox.clone(),
            flags: p.record.flags.names(),
        })
        .collect();
    if placements.is_empty() {
        return Err(WebError::not_found());
    }
    Ok(placements)
}

/// Message `id` — where it is filed and its bytes — for `who`.
pub fn message(lib: &Library, who: &Principal, id: &MessageId) -> Result<(Vec<Placement>, Vec<u8>), WebError> {
    let snap = lib.snapshot()?;
    let placements = placements(&snap, who, id)?;
    lib.record(&snap, who, Action::Show, None, &[*id], 1)?;
    Ok((placements, snap.archive.get_raw(id)?))
}

/// The conversation message `id` belongs to.
pub struct Thread {
    /// The Message-ID of its first message, as `id` names it.
    pub root: Option<String>,
    /// Its messages the reader may see, oldest first (at most [`MAX_THREAD`]).
    pub hits: Vec<Hit>,
}

/// The conversation of message `id`, as `who` may see it: its thread as the
/// index keeps it (module `crate::thread`).
pub fn thread(lib: &Library, who: &Principal, id: &MessageId) -> Result<Thread, WebError> {
    let snap = lib.snapshot()?;
    placements(&snap, who, id)?;
    let raw = snap.archive.get_raw(id)?;
    let ids = crate::mime::readable::thread_ids(&raw);
    let mut hits = match snap.index.hit(id)?.map(|h| h.thread).filter(|t| !t.is_empty()) {
        Some(key) => {
            let e = crate::readers::restrict(
                who,
                Expr::Exact {
                    field: ExactField::Thread,
                    value: key,
                },
            );
            snap.index.search_expr(&e, Sort::DateAsc, MAX_THREAD, 0)?
        }
        None => Vec::new(),
    };
    if !hits.iter().any(|h| h.id == id.to_hex()) {
        if let Some(h) = snap.index.hit(id)? {
            hits.push(h);
            hits.sort_by_key(|h| h.date);
        }
    }
    let hits: Vec<Hit> = hits.into_iter().filter_map(|h| visible(who, h)).collect();
    let listed = ids_of(&hits);
    let q = format!("thread of {}", id.to_hex());
    lib.record(&snap, who, Action::Search, Some(&q), &listed, listed.len() as u64)?;
    Ok(Thread {
        root: ids.root().map(str::to_string),
        hits,
    })
}

/// What an export holds.
pub enum Selection {
    /// Every message the query matches (narrowed to the reader's accounts).
    Query { q: String, expr: Expr },
    /// These messages; any the reader may not see makes the whole export not found.
    Ids(Vec<MessageId>),
}

/// An export about to be written.
pub struct Exported {
    /// The snapshot the messages are read from.
    pub snap: std::sync::Arc<Snapshot>,
    /// The messages and their dates, oldest first.
    pub items: Vec<(MessageId, i64)>,
}

/// The messages of an export, recorded in the access log as one export.
pub fn export(lib: &Library, who: &Principal, what: &Selection) -> Result<Exported, WebError> {
    let snap = lib.snapshot()?;
    let (q, mut items) = match what {
        Selection::Query { q, expr } => (Some(q.as_str()), snap.index.matching_expr(expr)?),
        Selection::Ids(ids) => {
            let mut items = Vec::with_capacity(ids.len());
            for id in ids {
                placements(&snap, who, id)?;
                let date = snap.index.hit(id)?.map_or(0, |h| h.date);
                items.push((*id, date));
            }
            (None, items)
        }
    };
    if items.len() > MAX_EXPORT {
        return Err(WebError::api(
            Code::BadRequest,
            format!(
                "{} messages match; an export from the web holds at most {MAX_EXPORT} (narrow the query, or use `mailvault export`)",
                items.len()
            ),
        ));
    }
    items.sort_by_key(|&(id, date)| (date, id));
    items.dedup();
    let ids: Vec<MessageId> = items.iter().map(|&(id, _)| id).collect();
    lib.record(&snap, who, Action::Export, q, &ids, ids.len() as u64)?;
    Ok(Exported { snap, items })
}
