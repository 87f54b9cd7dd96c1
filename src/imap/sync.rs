//! Executes the plan of [`crate::plan::imap_sync`] for one folder over one session:
//! EXAMINE, then fetch new messages in batches (each committed with its cursor
//! advance), record flag changes and expunges, and finally commit the new
//! HIGHESTMODSEQ. Nothing here decides *what* to do; the pure planner does.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;

use async_imap::imap_proto::{self, Response};
use async_imap::types::{Fetch, Flag};
use futures::StreamExt;
use tracing::{debug, info_span, Instrument};

use super::connect::{timed, ImapSession, ServerCaps};
use super::folders::Folder;
use super::ImapError;
use crate::archive::{KnownPlacement, PlacementChange, PlacementUpdate, SourceChanges, TooLargeSource};
use crate::model::{Flags, MessageId, PlacementSpec, RawMessage, SourceKey};
use crate::net::Dropped;
use crate::plan::imap_sync::{self, Caps, Cursor, Examined, Step};
use crate::records::{CursorRecord, TooLargeRecord};
use crate::remote::{BatchLimits, FolderSummary, PullProgress, SizeSeen, TooLarge};
use crate::writer::{PendingCommit, Writer};

/// Everything one folder sync needs besides the session.
pub struct FolderJob<'a> {
    pub server: &'a str,
    pub account: &'a str,
    pub folder: &'a Folder,
    pub caps: ServerCaps,
    pub limits: BatchLimits,
    pub control: &'a crate::control::Control,
    pub io_timeout: std::time::Duration,
    /// The largest message archived; see [`crate::remote::TooLarge`].
    pub max_message_size: u64,
    /// Literals the session's guard dropped for being over `max_message_size`.
    pub dropped: &'a Dropped,
    pub writer: &'a Writer,
    pub progress: &'a dyn PullProgress,
    /// When the session should make way for a new one (see
    /// [`super::connect::Connected::retire_at`]): checked between batches.
    pub retire_at: Option<tokio::time::Instant>,
}

impl FolderJob<'_> {
    /// Says that message `uid` is over the maximum size, adds it to `summary`, and
    /// returns the record to commit.
    fn too_large(
        &self,
        summary: &mut FolderSummary,
        uidvalidity: u32,
        uid: u32,
        bytes: u64,
        seen: SizeSeen,
    ) -> TooLargeSource {
        tracing::warn!(
            folder = %self.folder.name,
            uid,
            bytes,
            max = self.max_message_size,
            ?seen,
            "message larger than the maximum message size: not archived"
        );
        summary.too_large.push(TooLarge {
            folder: self.folder.name.clone(),
            uidvalidity: Some(uidvalidity),
            uid: Some(uid),
            uidl: None,
            bytes,
            seen,
        });
        TooLargeSource {
            account: self.account.to_string(),
            mailbox: self.folder.name.clone(),
            source: SourceKey::Imap { uidvalidity, uid },
            record: TooLargeRecord {
                bytes,
                received: seen == SizeSeen::Received,
                at: chrono::Utc::now().timestamp(),
            },
        }
    }
}

/// Syncs one folder; `summary` is updated as batches commit, so a failure part-way
/// still reports what was stored.
pub async fn sync_folder(
    s: &mut ImapSession,
    job: &FolderJob<'_>,
    summary: &mut FolderSummary,
) -> Result<(), ImapError> {
    let span = info_span!("folder", account = job.account, folder = %job.folder.name);
    sync_folder_inner(s, job, summary).instrument(span).await
}

async fn sync_folder_inner(
    s: &mut ImapSession,
    job: &FolderJob<'_>,
    summary: &mut FolderSummary,
) -> Result<(), ImapError> {
    let started = Instant::now();
    let f = job.folder;
    // 1. EXAMINE, and what the archive knows of the folder.
    let ex = examine(s, job).await?;
    let uidvalidity = ex.uidvalidity;
    summary.uidvalidity = uidvalidity;
    summary.exists = ex.exists;
    drop_unsolicited(s);
    let state = job.writer.folder_state(job.account, &f.name).await?;
    let mut known = Known::of(&state, uidvalidity, job);
    // 2. The plan.
    let stored = state.cursor.as_ref().filter(|c| c.uidvalidity == uidvalidity);
    let cursor = state.cursor.as_ref().map(|c| Cursor {
        uidvalidity: c.uidvalidity,
        highest_uid: c.highest_uid,
        highest_modseq: c.highest_modseq,
        live_messages: if c.uidvalidity == uidvalidity {
            known.live.len() as u32
        } else {
            0
        },
    });
    let caps = Caps {
        condstore: job.caps.condstore,
        qresync: job.caps.qresync,
    };
    let steps = imap_sync::plan(cursor.as_ref(), &ex, caps);
    debug!(?cursor, ?ex, ?steps, "plan");
    let mut cur = CursorRecord {
        uidvalidity,
        highest_uid: stored.map_or(0, |c| c.highest_uid),
        highest_modseq: stored.map_or(0, |c| c.highest_modseq),
        updated_at: 0,
        remote_name: f.remote.clone(),
        special_use: f.special_use.clone(),
    };
    let top = stored.map_or(0, |c| c.highest_uid);
    // 3. The steps. Stopping: what is committed stays; the rest of the folder waits
    // for the next run (the cursor has not moved past it).
    let below = match run_steps(s, job, steps, top, &mut known, &mut cur, summary).await? {
        Some(below) if !job.control.stop.requested() => below,
        _ => {
            summary.mark_stopped();
            summary.seconds += started.elapsed().as_secs_f64();
            return Ok(());
        }
    };
    if !below.is_empty() {
        fetch_below_cursor(s, job, &below, uidvalidity, &mut known.updates, summary).await?;
    }
    // 4. The final commit: changes found and the modseq they bring us up to.
    if caps.condstore {
        cur.highest_modseq = ex.highest_modseq.unwrap_or(0);
    }
    final_commit(job, state.cursor.as_ref(), cur, known.updates, summary).await?;
    summary.seconds += started.elapsed().as_secs_f64();
    Ok(())
}

/// EXAMINE (read-only: never changes \Seen) and what it says of the folder.
async fn examine(s: &mut ImapSession, job: &FolderJob<'_>) -> Result<Examined, ImapError> {
    let (f, server) = (job.folder, job.server);
    let mailbox_err = |detail: String| ImapError::Mailbox {
        server: server.into(),
        mailbox: f.name.clone(),
        detail,
    };
    let mbox = timed(job.io_timeout, server, "EXAMINE", async {
        s.examine(&f.remote).await.map_err(|e| match e {
            async_imap::error::Error::No(d) | async_imap::error::Error::Bad(d) => {
                mailbox_err(format!("EXAMINE refused: {}", crate::net::server_quote(&d)))
            }
            other => ImapError::from_client(server, &format!("EXAMINE {}", f.name), other),
        })
    })
    .await?;
    let uidvalidity = mbox
        .uid_validity
        .ok_or_else(|| mailbox_err("EXAMINE gave no UIDVALIDITY".into()))?;
    if uidvalidity == 0 {
        tracing::warn!(
            folder = %f.name,
            "the server gives UIDVALIDITY 0 (RFC 3501 requires a non-zero number); its UIDs are taken as given"
        );
    }
    Ok(Examined {
        uidvalidity,
        uidnext: mbox.uid_next,
        exists: mbox.exists,
        highest_modseq: mbox.highest_modseq,
    })
}

/// What the archive knows of a folder under the server's UIDVALIDITY, and the
/// placement changes found so far.
struct Known {
    /// Archived UIDs of the current UIDVALIDITY that are still live, with their flags.
    live: HashMap<u32, Flags>,
    /// Every UID of this UIDVALIDITY ever archived here, live or not, and those left
    /// out for being too large: a UID at or below the cursor not among them is one
    /// the server hid below it.
    archived: HashSet<u32>,
    updates: Vec<PlacementUpdate>,
}

impl Known {
    fn of(state: &crate::writer::FolderState, uidvalidity: u32, job: &FolderJob<'_>) -> Known {
        let archived: HashSet<u32> = state
            .imap
            .iter()
            .filter(|p| p.uidvalidity == uidvalidity)
            .map(|p| p.uid)
            .chain(state.too_large.iter().filter_map(|(s, _)| match s {
                SourceKey::Imap { uidvalidity: v, uid } if *v == uidvalidity => Some(*uid),
                _ => None,
            }))
            .collect();
        let mut live = HashMap::new();
        let mut updates = Vec::new();
        for p in state.imap.iter().filter(|p| p.deleted_at.is_none()) {
            if p.uidvalidity == uidvalidity {
                live.insert(p.uid, p.flags.clone());
            } else {
                // Step 2 of the plan, done whenever it is found undone (also after a
                // crash between the re-fetch and the retirement): UIDs of another
                // UIDVALIDITY are gone.
                updates.push(update(job, p.uidvalidity, p.uid, PlacementChange::DeletedAtSource));
            }
        }
        Known {
            live,
            archived,
            updates,
        }
    }
}

/// Step 3: runs the plan's steps; returns the UIDs found at or below `top` that the
/// archive never had, or `None` when a stop came first.
async fn run_steps(
    s: &mut ImapSession,
    job: &FolderJob<'_>,
    steps: Vec<Step>,
    top: u32,
    known: &mut Known,
    cur: &mut CursorRecord,
    summary: &mut FolderSummary,
) -> Result<Option<BTreeSet<u32>>, ImapError> {
    let (f, server, uidvalidity) = (job.folder, job.server, cur.uidvalidity);
    let mut below: BTreeSet<u32> = BTreeSet::new();
    for step in steps {
        if job.control.stop.requested() {
            return Ok(None);
        }
        let Known {
            live,
            archived,
            updates,
        } = &mut *known;
        match step {
            Step::FetchFrom { from_uid } => {
                fetch_new(s, job, from_uid.max(top.saturating_add(1)), cur, updates, summary).await?;
            }
            Step::RetireUidValidity { .. } => {} // done by `Known::of`
            Step::FlagsChangedSince { up_to_uid, modseq } => {
                let q = format!("(UID FLAGS) (CHANGEDSINCE {modseq})");
                let seen = flag_changes(s, job, up_to_uid, &q, uidvalidity, live, updates).await?;
                below.extend(seen.into_iter().filter(|u| !archived.contains(u)));
            }
            Step::AllFlags { up_to_uid } => {
                let seen = flag_changes(s, job, up_to_uid, "(UID FLAGS)", uidvalidity, live, updates).await?;
                below.extend(seen.into_iter().filter(|u| !archived.contains(u)));
            }
            Step::VanishedSince { modseq } => {
                let mut ids: Vec<u32> = live.keys().copied().collect();
                ids.sort_unstable();
                for uid in vanished_since(s, job, top, modseq, &ids).await? {
                    updates.push(update(job, uidvalidity, uid, PlacementChange::DeletedAtSource));
                }
            }
            Step::SearchDiff { up_to_uid } => {
                let what = format!("UID SEARCH in {}", f.name);
                let present: HashSet<u32> = timed(job.io_timeout, server, &what, async {
                    s.uid_search(format!("UID 1:{up_to_uid}"))
                        .await
                        .map_err(|e| ImapError::from_client(server, &what, e))
                })
                .await?;
                for &uid in live.keys() {
                    if uid <= up_to_uid && !present.contains(&uid) {
                        updates.push(update(job, uidvalidity, uid, PlacementChange::DeletedAtSource));
                    }
                }
                below.extend(
                    present
                        .into_iter()
                        .filter(|u| *u > 0 && *u <= up_to_uid && !archived.contains(u)),
                );
            }
        }
    }
    Ok(Some(below))
}

/// Step 4: commits the placement changes found and the cursor, unless nothing
/// changed.
async fn final_commit(
    job: &FolderJob<'_>,
    old_cursor: Option<&CursorRecord>,
    mut cur: CursorRecord,
    updates: Vec<PlacementUpdate>,
    summary: &mut FolderSummary,
) -> Result<(), ImapError> {
    let same_cursor = old_cursor.is_some_and(|o| {
        CursorRecord {
            updated_at: 0,
            ..o.clone()
        } == cur
    });
    if updates.is_empty() && same_cursor {
        return Ok(());
    }
    cur.updated_at = chrono::Utc::now().timestamp();
    let changes = SourceChanges {
        updates,
        cursors: vec![(job.account.to_string(), job.folder.name.clone(), cur)],
        ..Default::default()
    };
    let r = job.writer.commit(Vec::new(), changes).await?.wait().await?;
    summary.flag_changes += r.flag_changes;
    summary.deleted_at_source += r.deleted_at_source;
    Ok(())
}

fn update(job: &FolderJob<'_>, uidvalidity: u32, uid: u32, change: PlacementChange) -> PlacementUpdate {
    PlacementUpdate {
        account: job.account.to_string(),
        mailbox: job.folder.name.clone(),
        source: SourceKey::Imap { uidvalidity, uid },
        change,
    }
}

/// A UID and its RFC822.SIZE.
type UidSize = (u32, u64);

/// Step 3a / 1: fetch every message with UID ≥ `from`, in batches, each committed
/// with the cursor advanced to the batch's highest UID.
async fn fetch_new(
    s: &mut ImapSession,
    job: &FolderJob<'_>,
    from: u32,
    cur: &mut CursorRecord,
    updates: &mut Vec<PlacementUpdate>,
    summary: &mut FolderSummary,
) -> Result<(), ImapError> {
    let server = job.server;
    let f = job.folder;
    // Sizes first: the list of UIDs to fetch (`from:*` may return the last message
    // even when it is below `from`: filtered) and the bytes, for batches and ETA.
    // With Gmail's extension, also X-GM-MSGID: a message already archived from another
    // label's folder is recorded without downloading it again.
    let what = format!("listing new messages in {}", f.name);
    let size_query = if job.caps.gmail {
        "(UID RFC822.SIZE X-GM-MSGID)"
    } else {
        "(UID RFC822.SIZE)"
    };
    let mut todo: Vec<(u32, u64)> = Vec::new();
    let mut gm_of: HashMap<u32, u64> = HashMap::new();
    timed(job.io_timeout, server, &what, async {
        let mut st = s
            .uid_fetch(format!("{from}:*"), size_query)
            .await
            .map_err(|e| ImapError::from_client(server, &what, e))?;
        while let Some(item) = st.next().await {
            let item = item.map_err(|e| ImapError::from_client(server, &what, e))?;
            if let Some(uid) = item.uid {
                if uid >= from {
                    todo.push((uid, item.size.unwrap_or(0) as u64));
                    if let Some(gm) = item.gmail_msg_id() {
                        gm_of.insert(uid, *gm);
                    }
                }
            }
        }
        Ok(())
    })
    .await?;
    todo.sort_unstable();
    todo.dedup_by_key(|t| t.0);
    if todo.is_empty() {
        return Ok(());
    }
    let known = known_gmail_messages(job, &todo, &gm_of).await?;
    job.progress.to_fetch(
        &f.name,
        todo.iter().filter(|t| !known.contains_key(&t.0)).count() as u64,
        todo.iter().filter(|t| !known.contains_key(&t.0)).map(|t| t.1).sum(),
    );

    let query = "(UID FLAGS INTERNALDATE BODY.PEEK[])";
    let max = job.max_message_size;
    let mut pending: Option<PendingCommit> = None;
    let mut start = 0;
    while start < todo.len() {
        if job.control.stop.requested() {
            break;
        }
        if start > 0 && job.retire_at.is_some_and(|t| tokio::time::Instant::now() >= t) {
            // What is fetched is committed; a new session resumes from here.
            if let Some(p) = pending.take() {
                account_commit(summary, p.wait().await?);
            }
            return Err(ImapError::SessionRetiring { server: server.into() });
        }
        let mut end = start;
        let mut bytes = 0u64;
        while end < todo.len()
            && end - start < job.limits.max_messages
            && (end == start || bytes.saturating_add(todo[end].1) <= job.limits.max_bytes)
        {
            if !known.contains_key(&todo[end].0) && todo[end].1 <= max {
                bytes = bytes.saturating_add(todo[end].1);
            }
            end += 1;
        }
        let chunk = &todo[start..end];
        job.control.pace(chunk.len() as u64, bytes).await;
        // Known elsewhere (no download), over the maximum by the size announced (never
        // fetched; the cursor moves past them), and the rest.
        let (already, unknown): (Vec<UidSize>, Vec<UidSize>) = chunk.iter().partition(|t| known.contains_key(&t.0));
        let (over, to_fetch): (Vec<UidSize>, Vec<UidSize>) = unknown.into_iter().partition(|t| t.1 > max);
        let mut too_large: Vec<TooLargeSource> = over
            .iter()
            .map(|&(uid, size)| job.too_large(summary, cur.uidvalidity, uid, size, SizeSeen::Announced))
            .collect();
        let mut batch = Vec::new();
        if !to_fetch.is_empty() {
            let got = fetch_bodies(s, job, &to_fetch, query, cur.uidvalidity).await?;
            for (uid, n) in got.too_large {
                too_large.push(job.too_large(summary, cur.uidvalidity, uid, n, SizeSeen::Received));
            }
            // Bodies past the batch's memory bound: fetched again one at a time and
            // committed before the batch that moves the cursor past them.
            fetch_and_commit(s, job, &got.deferred, 1, cur.uidvalidity, &mut Vec::new(), summary).await?;
            batch = got.messages;
        }
        let known_here = if already.is_empty() {
            Vec::new()
        } else {
            known_placements(s, job, &already, &known, cur.uidvalidity).await?
        };
        let gmail_ids: Vec<(String, u64, MessageId)> = batch
            .iter()
            .filter_map(|m| match m.placements.first()?.source {
                SourceKey::Imap { uid, .. } => Some((job.account.to_string(), *gm_of.get(&uid)?, m.id)),
                _ => None,
            })
            .collect();
        let fetched_bytes: u64 = batch.iter().map(|m| m.raw.len() as u64).sum();
        let fetched = batch.len() as u64;
        job.progress.fetched(&f.name, fetched, fetched_bytes);
        // Committing batch k while fetching k+1: wait for k-1 first.
        if let Some(p) = pending.take() {
            account_commit(summary, p.wait().await?);
        }
        cur.highest_uid = cur.highest_uid.max(chunk[chunk.len() - 1].0);
        cur.updated_at = chrono::Utc::now().timestamp();
        let changes = SourceChanges {
            updates: std::mem::take(updates),
            cursors: vec![(job.account.to_string(), f.name.clone(), cur.clone())],
            known: known_here,
            gmail_ids,
            too_large,
            ..Default::default()
        };
        summary.fetched += fetched;
        summary.fetched_bytes += fetched_bytes;
        pending = Some(job.writer.commit(batch, changes).await?);
        start = end;
    }
    if let Some(p) = pending.take() {
        account_commit(summary, p.wait().await?);
    }
    Ok(())
}

/// UIDs the server lists at or below the highest one already archived that the
/// archive never had: said (the server broke the rule that UIDs only grow), then
/// fetched and committed in batches with the changes found so far, so nothing the
/// server holds is missed.
async fn fetch_below_cursor(
    s: &mut ImapSession,
    job: &FolderJob<'_>,
    below: &std::collections::BTreeSet<u32>,
    uidvalidity: u32,
    updates: &mut Vec<PlacementUpdate>,
    summary: &mut FolderSummary,
) -> Result<(), ImapError> {
    tracing::warn!(
        folder = %job.folder.name,
        count = below.len(),
        uids = %uid_set(below.iter().copied()),
        "the server lists messages at UIDs below ones already archived, without a UIDVALIDITY change; archiving them"
    );
    summary.below_cursor += below.len() as u64;
    let todo: Vec<UidSize> = below.iter().map(|&u| (u, 0)).collect();
    fetch_and_commit(s, job, &todo, job.limits.max_messages, uidvalidity, updates, summary).await
}

/// Fetches `uids`, `per_fetch` at a time, committing each batch (with `updates` in
/// the first) without moving the cursor.
async fn fetch_and_commit(
    s: &mut ImapSession,
    job: &FolderJob<'_>,
    uids: &[UidSize],
    per_fetch: usize,
    uidvalidity: u32,
    updates: &mut Vec<PlacementUpdate>,
    summary: &mut FolderSummary,
) -> Result<(), ImapError> {
    let query = "(UID FLAGS INTERNALDATE BODY.PEEK[])";
    for chunk in uids.chunks(per_fetch.max(1)) {
        if job.control.stop.requested() {
            break;
        }
        let got = fetch_bodies(s, job, chunk, query, uidvalidity).await?;
        let too_large: Vec<TooLargeSource> = got
            .too_large
            .iter()
            .map(|&(uid, n)| job.too_large(summary, uidvalidity, uid, n, SizeSeen::Received))
            .collect();
        // Held over the bound (only when more than one was asked): one at a time.
        Box::pin(fetch_and_commit(
            s,
            job,
            &got.deferred,
            1,
            uidvalidity,
            &mut Vec::new(),
            summary,
        ))
        .await?;
        let batch = got.messages;
        let fetched_bytes: u64 = batch.iter().map(|m| m.raw.len() as u64).sum();
        summary.fetched += batch.len() as u64;
        summary.fetched_bytes += fetched_bytes;
        job.progress
            .fetched(&job.folder.name, batch.len() as u64, fetched_bytes);
        let changes = SourceChanges {
            updates: std::mem::take(updates),
            too_large,
            ..Default::default()
        };
        account_commit(summary, job.writer.commit(batch, changes).await?.wait().await?);
    }
    Ok(())
}

/// Which of the new UIDs carry an X-GM-MSGID the archive already holds.
async fn known_gmail_messages(
    job: &FolderJob<'_>,
    todo: &[(u32, u64)],
    gm_of: &HashMap<u32, u64>,
) -> Result<HashMap<u32, MessageId>, ImapError> {
    if gm_of.is_empty() {
        return Ok(HashMap::new());
    }
    let uids: Vec<u32> = todo.iter().map(|t| t.0).filter(|u| gm_of.contains_key(u)).collect();
    let gms: Vec<u64> = uids.iter().map(|u| gm_of[u]).collect();
    let found = job.writer.gmail_messages(job.account, gms).await?;
    Ok(uids
        .into_iter()
        .zip(found)
        .filter_map(|(uid, id)| Some((uid, id?)))
        .collect())
}

/// Flags and INTERNALDATE of messages whose bytes the archive already holds: their
/// placements, without a download.
async fn known_placements(
    s: &mut ImapSession,
    job: &FolderJob<'_>,
    chunk: &[(u32, u64)],
    known: &HashMap<u32, MessageId>,
    uidvalidity: u32,
) -> Result<Vec<KnownPlacement>, ImapError> {
    let server = job.server;
    let what = format!(
        "fetching flags of {} known messages of {}",
        chunk.len(),
        job.folder.name
    );
    let set = uid_set(chunk.iter().map(|t| t.0));
    timed(job.io_timeout, server, &what, async {
        let mut st = s
            .uid_fetch(&set, "(UID FLAGS INTERNALDATE)")
            .await
            .map_err(|e| ImapError::from_client(server, &what, e))?;
        let mut out = Vec::new();
        while let Some(item) = st.next().await {
            let item = item.map_err(|e| ImapError::from_client(server, &what, e))?;
            let Some(uid) = item.uid else { continue };
            let Some(&message) = known.get(&uid) else { continue };
            out.push(KnownPlacement {
                message,
                spec: PlacementSpec {
                    account: job.account.to_string(),
                    mailbox: job.folder.name.clone(),
                    source: SourceKey::Imap { uidvalidity, uid },
                    flags: flags_of(&item),
                    internal_date: item.internal_date().map(|d| d.timestamp()),
                },
            });
        }
        Ok(out)
    })
    .await
}

fn account_commit(summary: &mut FolderSummary, r: crate::archive::IngestReport) {
    summary.new_messages += r.new_messages;
    summary.duplicates += r.duplicates;
    summary.new_placements += r.new_placements;
    summary.flag_changes += r.flag_changes;
    summary.deleted_at_source += r.deleted_at_source;
}

/// What one `UID FETCH` with bodies brought.
#[derive(Default)]
struct Fetched {
    messages: Vec<RawMessage>,
    /// Over the maximum message size by what the server sent: (UID, bytes).
    too_large: Vec<(u32, u64)>,
    /// Sent, but not kept: the batch already held its bound of bytes.
    deferred: Vec<UidSize>,
}

/// `UID FETCH` of one batch of UIDs with bodies. The bodies kept are bounded by the
/// bytes actually received, not by the sizes announced: past the announced total
/// plus one maximum-size message, further bodies are dropped and returned as
/// deferred (a single UID is always kept, and the guard bounds it).
async fn fetch_bodies(
    s: &mut ImapSession,
    job: &FolderJob<'_>,
    chunk: &[UidSize],
    query: &str,
    uidvalidity: u32,
) -> Result<Fetched, ImapError> {
    let server = job.server;
    let f = job.folder;
    let set = uid_set(chunk.iter().map(|t| t.0));
    let what = format!("fetching {} messages of {}", chunk.len(), f.name);
    let wanted: HashMap<u32, u64> = chunk.iter().copied().collect();
    let bound = chunk
        .iter()
        .fold(0u64, |n, t| n.saturating_add(t.1))
        .saturating_add(job.max_message_size);
    job.dropped.clear();
    let mut st = s
        .uid_fetch(&set, query)
        .await
        .map_err(|e| ImapError::from_client(server, &what, e))?;
    let mut out = Fetched::default();
    let mut held = 0u64;
    let mut seen: HashSet<u32> = HashSet::new();
    loop {
        // Each item within the I/O timeout: a stalled server cannot hang the pull.
        let next = match tokio::time::timeout(job.io_timeout, st.next()).await {
            Ok(n) => n,
            Err(_) => {
                return Err(ImapError::Timeout {
                    server: server.into(),
                    what,
                    seconds: job.io_timeout.as_secs(),
                })
            }
        };
        let Some(item) = next else { break };
        let item = item.map_err(|e| ImapError::from_client(server, &what, e))?;
        let Some(uid) = item.uid else { continue };
        let Some(&announced) = wanted.get(&uid) else {
            // Unsolicited FETCH (flag updates of other messages; a hostile server's
            // bodies never asked for): skipped.
            continue;
        };
        let body = match item.body() {
            Some(b) if b.len() as u64 > job.max_message_size => {
                out.too_large.push((uid, b.len() as u64));
                seen.insert(uid);
                continue;
            }
            Some(b) => b,
            None => {
                // The guard turned a literal over the maximum into NIL.
                if let Some(n) = job.dropped.take() {
                    if seen.insert(uid) {
                        out.too_large.push((uid, n));
                    }
                }
                continue;
            }
        };
        if !seen.insert(uid) {
            continue;
        }
        if held > 0 && held.saturating_add(body.len() as u64) > bound {
            out.deferred.push((uid, announced));
            continue;
        }
        held += body.len() as u64;
        let spec = PlacementSpec {
            account: job.account.to_string(),
            mailbox: f.name.clone(),
            source: SourceKey::Imap { uidvalidity, uid },
            flags: flags_of(&item),
            internal_date: item.internal_date().map(|d| d.timestamp()),
        };
        out.messages.push(job.writer.ids().message(body.to_vec(), vec![spec]));
    }
    drop(st);
    drop_unsolicited(s);
    Ok(out)
}

/// Empties the session's queue of unsolicited responses, which this sync does not
/// read: async-imap keeps up to 100, each holding its whole receive buffer.
fn drop_unsolicited(s: &mut ImapSession) {
    for _ in 0..1000 {
        if s.unsolicited_responses.try_recv().is_err() {
            break;
        }
    }
}

/// Steps 3b: flags of archived messages; a change becomes an update. Returns the
/// UIDs (up to `up_to`) the server answered for.
async fn flag_changes(
    s: &mut ImapSession,
    job: &FolderJob<'_>,
    up_to: u32,
    query: &str,
    uidvalidity: u32,
    live: &HashMap<u32, Flags>,
    updates: &mut Vec<PlacementUpdate>,
) -> Result<Vec<u32>, ImapError> {
    let server = job.server;
    let what = format!("fetching flags of {}", job.folder.name);
    let fetched: Vec<(u32, Flags)> = timed(job.io_timeout * 4, server, &what, async {
        let mut st = s
            .uid_fetch(format!("1:{up_to}"), query)
            .await
            .map_err(|e| ImapError::from_client(server, &what, e))?;
        let mut out = Vec::new();
        while let Some(item) = st.next().await {
            let item = item.map_err(|e| ImapError::from_client(server, &what, e))?;
            if let Some(uid) = item.uid {
                out.push((uid, flags_of(&item)));
            }
        }
        Ok(out)
    })
    .await?;
    let mut seen = Vec::with_capacity(fetched.len());
    for (uid, flags) in fetched {
        if uid == 0 || uid > up_to {
            continue; // `1:n` may name the last message when n is past it
        }
        seen.push(uid);
        if let Some(old) = live.get(&uid) {
            if *old != flags {
                updates.push(update(job, uidvalidity, uid, PlacementChange::Flags(flags)));
            }
        }
    }
    Ok(seen)
}

/// Step 3c with QRESYNC: `UID FETCH 1:top (UID) (CHANGEDSINCE m VANISHED)`; the
/// `VANISHED (EARLIER)` answers list the expunged UIDs, of which those in `known`
/// (sorted) are returned. Read response by response, since the client library would
/// route VANISHED to its unsolicited queue.
async fn vanished_since(
    s: &mut ImapSession,
    job: &FolderJob<'_>,
    top: u32,
    modseq: u64,
    known: &[u32],
) -> Result<Vec<u32>, ImapError> {
    let server = job.server;
    let what = format!("asking for expunges in {}", job.folder.name);
    let lost = |e: std::io::Error| ImapError::Lost {
        server: server.into(),
        what: what.clone(),
        detail: e.to_string(),
    };
    let cmd = format!("UID FETCH 1:{top} (UID) (CHANGEDSINCE {modseq} VANISHED)");
    let tag = s
        .run_command(&cmd)
        .await
        .map_err(|e| ImapError::from_client(server, &what, e))?;
    let mut gone = Vec::new();
    loop {
        let resp = match tokio::time::timeout(job.io_timeout, s.read_response()).await {
            Err(_) => {
                return Err(ImapError::Timeout {
                    server: server.into(),
                    what,
                    seconds: job.io_timeout.as_secs(),
                })
            }
            Ok(r) => r.map_err(lost)?,
        };
        let Some(resp) = resp else {
            return Err(lost(std::io::Error::other("connection closed")));
        };
        match resp.parsed() {
            Response::Vanished { uids, .. } => gone.extend(imap_sync::known_in_ranges(known, uids)),
            Response::Done {
                tag: t,
                status,
                outcome,
            } if *t == tag => {
                if *status != imap_proto::Status::Ok {
                    return Err(ImapError::Protocol {
                        server: server.into(),
                        what,
                        detail: format!("{status:?} {}", outcome.information.as_deref().unwrap_or("")),
                    });
                }
                break;
            }
            _ => {}
        }
    }
    Ok(gone)
}

/// IMAP flags of a FETCH answer (`\Recent` is session state, not kept).
pub fn flags_of(item: &Fetch) -> Flags {
    let mut f = Flags::default();
    for fl in item.flags() {
        match fl {
            Flag::Seen => f.system |= Flags::SEEN,
            Flag::Answered => f.system |= Flags::ANSWERED,
            Flag::Flagged => f.system |= Flags::FLAGGED,
            Flag::Deleted => f.system |= Flags::DELETED,
            Flag::Draft => f.system |= Flags::DRAFT,
            Flag::Recent | Flag::MayCreate => {}
            Flag::Custom(k) => f.add_keyword(&k),
        }
    }
    f.keywords.sort();
    f
}

/// A compact UID set: `1:5,9,12:14`.
pub fn uid_set(uids: impl Iterator<Item = u32>) -> String {
    let mut v: Vec<u32> = uids.collect();
    v.sort_unstable();
    v.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if j > i {
            out.push_str(&format!("{}:{}", v[i], v[j]));
        } else {
            out.push_str(&v[i].to_string());
        }
        i = j + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets() {
        assert_eq!(uid_set([5, 1, 2, 3, 9, 12, 13, 14].into_iter()), "1:3,5,9,12:14");
        assert_eq!(uid_set([7].into_iter()), "7");
        assert_eq!(uid_set([2, 2, 3].into_iter()), "2:3");
        assert_eq!(uid_set(std::iter::empty()), "");
    }
}
