//! Pulling a POP3 mailbox: UIDL + LIST, the pure plan of
//! [`crate::plan::pop3_sync`], RETR in batches each committed durably, then DELE —
//! only of messages whose batch is committed — and QUIT.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use tracing::{info, info_span, warn, Instrument};

use super::client::{Pop3Client, Pop3Session};
use super::{proto, Pop3Error};
use crate::archive::{IngestReport, PlacementChange, PlacementUpdate, Pop3Placements, SourceChanges, TooLargeSource};
use crate::model::{Flags, IdHasher, MessageId, PlacementSpec, RawMessage, SourceKey};
use crate::plan::pop3_sync::{self, DeletePolicy, Listed};
use crate::records::TooLargeRecord;
use crate::remote::{
    backoff, BatchLimits, ConnectOptions, FolderSummary, PullProgress, PullSummary, SizeSeen, TooLarge,
};
use crate::writer::{PendingCommit, Writer};

/// POP3 serves one mailbox; it is archived under this name.
pub const MAILBOX: &str = "INBOX";

#[derive(Clone, Debug)]
pub struct Pop3PullOptions {
    pub connect: ConnectOptions,
    pub account: String,
    pub delete: DeletePolicy,
    pub session: Pop3Session,
    pub limits: BatchLimits,
    /// Reconnect attempts after a lost connection; each resumes from what is committed.
    pub max_retries: u32,
    /// First backoff delay; doubles on each retry (with jitter).
    pub backoff: std::time::Duration,
    /// Stop signal and pace from a service (default: neither).
    pub control: crate::control::Control,
}

/// How this server's messages are told apart from one another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// By UIDL (every server in practice).
    Uidl,
    /// No UIDL: by a hash of the header `TOP n 0` gives, plus the size. Used to skip
    /// archived messages; a message is deleted only once its bytes, fetched in the
    /// same session, are committed.
    Header,
    /// No UIDL and no TOP: by content; every run retrieves every message (the archive
    /// stores nothing twice).
    Content,
}

impl Identity {
    pub fn describe(self) -> &'static str {
        match self {
            Identity::Uidl => "UIDL",
            Identity::Header => "header hash (the server has no UIDL)",
            Identity::Content => "content hash (the server has neither UIDL nor TOP)",
        }
    }
}

/// What the server lists and what this run would do about it.
struct Survey {
    identity: Identity,
    listed: Vec<Listed>,
    plan: pop3_sync::Plan,
    /// Already-archived messages to delete that must first be fetched again, to be
    /// sure the bytes deleted are the bytes archived (no-UIDL servers).
    refetch_to_delete: HashSet<u32>,
    /// Archived placements no longer on the server.
    gone: Vec<String>,
}

/// The message's id on this server as the placement key carries it: the key for
/// [`Identity::Uidl`], the header id for [`Identity::Header`], none otherwise.
fn server_id_of(identity: Identity, key: &str) -> Option<&str> {
    match identity {
        Identity::Uidl if !key.starts_with("blake3:") && !key.starts_with("hdr:") => Some(key),
        Identity::Header => proto::no_uidl_id_of(key),
        _ => None,
    }
}

/// LIST, UIDL (or the no-UIDL fallbacks) and the plan.
async fn survey(
    c: &mut Pop3Client,
    o: &Pop3PullOptions,
    archived_all: &Pop3Placements,
    now: i64,
    id_maker: &IdHasher,
) -> Result<Survey, Pop3Error> {
    let sizes: Vec<(u32, u64)> = c.list().await?;
    let size_of: HashMap<u32, u64> = sizes.iter().copied().collect();
    let (identity, ids) = match c.uidl().await? {
        Some(u) => (Identity::Uidl, u),
        None => {
            let msgs: Vec<u32> = sizes.iter().map(|s| s.0).collect();
            match c.headers(&msgs).await? {
                Some(h) => (
                    Identity::Header,
                    h.into_iter()
                        .map(|(m, hdr)| {
                            (
                                m,
                                proto::no_uidl_id(id_maker, &hdr, size_of.get(&m).copied().unwrap_or(0)),
                            )
                        })
                        .collect(),
                ),
                None => (
                    Identity::Content,
                    msgs.iter().map(|m| (*m, format!("msg-{m}"))).collect(),
                ),
            }
        }
    };
    if identity != Identity::Uidl {
        warn!(
            identified_by = identity.describe(),
            "the server does not support UIDL; messages are identified by their bytes"
        );
    }
    let listed: Vec<Listed> = ids
        .into_iter()
        .map(|(msg, uidl)| Listed {
            msg,
            size: size_of.get(&msg).copied().unwrap_or(0),
            uidl,
        })
        .collect();
    // The planner's view of the archive: server id → first seen (the age reference of
    // --delete-older-than, as in Thunderbird and getmail: time since first archived).
    let mut archived: HashMap<String, i64> = HashMap::new();
    for (key, p) in archived_all {
        if let Some(id) = server_id_of(identity, key) {
            let e = archived.entry(id.to_string()).or_insert(p.first_seen);
            *e = (*e).min(p.first_seen);
        }
    }
    let mut plan = pop3_sync::plan(&listed, &archived, o.delete, now);
    let mut refetch_to_delete = HashSet::new();
    if identity == Identity::Header {
        refetch_to_delete = std::mem::take(&mut plan.delete).into_iter().collect();
        plan.retrieve.extend(&refetch_to_delete);
        plan.retrieve.sort_unstable();
    }
    for (msg, why) in &plan.untrusted {
        warn!(msg, why, "UIDL not trusted; the message is identified by its content");
    }
    let on_server: HashSet<&str> = listed.iter().map(|l| l.uidl.as_str()).collect();
    let gone = archived_all
        .iter()
        .filter(|(k, p)| p.deleted_at.is_none() && server_id_of(identity, k).is_some_and(|id| !on_server.contains(id)))
        .map(|(k, _)| k.clone())
        .collect();
    info!(
        listed = listed.len(),
        retrieve = plan.retrieve.len(),
        delete = plan.delete.len() + refetch_to_delete.len(),
        identified_by = identity.describe(),
        "plan"
    );
    Ok(Survey {
        identity,
        listed,
        plan,
        refetch_to_delete,
        gone,
    })
}

/// The placement key of a retrieved message whose id is `content` (the
/// archive's id of its bytes, keyed in an encrypted archive).
fn source_of(identity: Identity, l: &Listed, trusted: bool, content: &MessageId) -> SourceKey {
    let uidl = match identity {
        Identity::Uidl if trusted => l.uidl.clone(),
        Identity::Header if trusted => proto::no_uidl_placement(&l.uidl, content),
        _ => format!("blake3:{}", content.to_hex()),
    };
    SourceKey::Pop3 { uidl }
}

/// Pulls the account's mailbox into the archive behind `writer`.
pub async fn pull(o: &Pop3PullOptions, writer: &Writer, progress: &dyn PullProgress) -> Result<PullSummary, Pop3Error> {
    let started = Instant::now();
    let server = o.connect.endpoint.to_string();
    let span = info_span!("pop3", account = %o.account, server = %server);
    let mut summary = FolderSummary {
        folder: MAILBOX.into(),
        ..Default::default()
    };
    async {
        // A lost connection costs at most the batch in flight: the next attempt plans
        // again from what the archive holds. Deletions not yet committed by QUIT are
        // undone by the server.
        loop {
            match pull_once(o, writer, progress, &mut summary).await {
                Ok(()) => break,
                // An unreachable server on the first attempt is an answer, not a
                // drop: backoff is for sessions lost after they were made.
                Err(e) if e.is_unreachable() && summary.retries == 0 => return Err(e),
                Err(e) if e.is_retryable() && summary.retries < o.max_retries => {
                    summary.retries += 1;
                    let d = backoff(o.backoff, summary.retries);
                    tracing::warn!(error = %e, retry_in_ms = d.as_millis() as u64, "POP3 session interrupted; resuming");
                    tokio::time::sleep(d).await;
                }
                Err(e) => return Err(e),
            }
        }
        progress.folder_done(MAILBOX);
        summary.seconds = started.elapsed().as_secs_f64();
        let mut total = summary.clone();
        total.folder = "total".into();
        Ok(PullSummary {
            account: o.account.clone(),
            server: server.clone(),
            folders: vec![summary.clone()],
            total,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
    .instrument(span)
    .await
}

/// One session: plan, retrieve and commit in batches, delete, QUIT.
async fn pull_once(
    o: &Pop3PullOptions,
    writer: &Writer,
    progress: &dyn PullProgress,
    summary: &mut FolderSummary,
) -> Result<(), Pop3Error> {
    let mut c = Pop3Client::connect(&o.connect, o.session).await?;
    let archived_all = writer.pop3_placements(&o.account, MAILBOX).await?;
    let now = chrono::Utc::now().timestamp();
    let Survey {
        identity,
        listed,
        plan,
        refetch_to_delete,
        gone,
    } = survey(&mut c, o, &archived_all, now, writer.ids()).await?;
    summary.exists = listed.len() as u32;
    let mut updates: Vec<PlacementUpdate> = gone
        .into_iter()
        .map(|uidl| PlacementUpdate {
            account: o.account.clone(),
            mailbox: MAILBOX.into(),
            source: SourceKey::Pop3 { uidl },
            change: PlacementChange::DeletedAtSource,
        })
        .collect();

    let untrusted: HashSet<u32> = plan.untrusted.iter().map(|u| u.0).collect();
    let by_msg: HashMap<u32, &Listed> = listed.iter().map(|l| (l.msg, l)).collect();
    let max = o.connect.max_message_size;
    // Recorded as too large by an earlier run: not retrieved again.
    let known_large: HashSet<String> = writer
        .too_large(&o.account, MAILBOX)
        .await?
        .into_iter()
        .filter_map(|(s, _)| match s {
            SourceKey::Pop3 { uidl } => Some(uidl),
            _ => None,
        })
        .collect();
    // Over the maximum by LIST's size: never retrieved, never deleted.
    type Sized = Vec<(u32, u64)>;
    let (over, mut todo): (Sized, Sized) = plan
        .retrieve
        .iter()
        .filter(|m| identity != Identity::Uidl || untrusted.contains(m) || !known_large.contains(&by_msg[m].uidl))
        .map(|m| (*m, by_msg[m].size))
        .partition(|t| t.1 > max);
    let record = |l: &Listed| (identity == Identity::Uidl && !untrusted.contains(&l.msg)).then(|| l.uidl.clone());
    let mut large: Vec<TooLargeSource> = over
        .iter()
        .map(|&(msg, size)| too_large(summary, by_msg[&msg], size, SizeSeen::Announced, max))
        .filter_map(|t| record(by_msg[&t.0]).map(|uidl| too_large_source(o, uidl, t.1)))
        .collect();
    // Sizes are the server's word: summed without overflow.
    progress.to_fetch(
        MAILBOX,
        todo.len() as u64,
        todo.iter().fold(0, |a, t| a.saturating_add(t.1)),
    );
    // Deleted once their batch is committed: with --delete-after-archive everything
    // retrieved under a trusted id; on a no-UIDL server, the archived messages the
    // policy deletes, fetched again to be sure of their bytes.
    let delete_after_commit =
        |m: u32| (o.delete == DeletePolicy::AfterArchive && !untrusted.contains(&m)) || refetch_to_delete.contains(&m);
    let mut to_delete: Vec<u32> = plan.delete.clone();
    // Messages the server would not hand out: left there, reported.
    let mut refused: Vec<(u32, String)> = Vec::new();
    // The batch being stored while the next one is retrieved, with the messages to
    // delete once it is durable.
    let mut in_flight: Option<(PendingCommit, Vec<u32>)> = None;
    let mut settle = |r: IngestReport, deletable: Vec<u32>, summary: &mut FolderSummary| {
        summary.new_messages += r.new_messages;
        summary.duplicates += r.duplicates;
        summary.new_placements += r.new_placements;
        summary.deleted_at_source += r.deleted_at_source;
        to_delete.extend(deletable);
    };
    let limits = o.control.narrow(o.limits);
    let mut start = 0;
    while start < todo.len() {
        // Stopping: the committed batches are still deleted (by policy) and QUIT.
        if o.control.stop.requested() {
            summary.mark_stopped();
            break;
        }
        let mut end = start;
        let mut bytes = 0u64;
        while end < todo.len()
            && end - start < limits.max_messages
            && (end == start || bytes.saturating_add(todo[end].1) <= limits.max_bytes)
        {
            bytes = bytes.saturating_add(todo[end].1);
            end += 1;
        }
        let chunk = &todo[start..end].to_vec();
        o.control.pace(chunk.len() as u64, bytes).await;
        let mut batch: Vec<RawMessage> = Vec::with_capacity(chunk.len());
        let bound = bytes.saturating_add(max);
        let got = c
            .retr_many(chunk, max, bound, |msg, raw| {
                let l = by_msg[&msg];
                let raw = proto::strip_added_crlf(raw, l.size);
                let mut m = writer.ids().message(raw, Vec::with_capacity(1));
                m.placements.push(PlacementSpec {
                    account: o.account.clone(),
                    mailbox: MAILBOX.into(),
                    source: source_of(identity, l, !untrusted.contains(&msg), &m.id),
                    flags: Flags::default(),
                    internal_date: None,
                });
                batch.push(m);
            })
            .await?;
        for &(msg, n) in &got.too_large {
            let t = too_large(summary, by_msg[&msg], n, SizeSeen::Received, max);
            if let Some(uidl) = record(by_msg[&msg]) {
                large.push(too_large_source(o, uidl, t.1));
            }
        }
        // Past the batch's bound of bytes held: retrieved again, each alone (a size of
        // `max` puts it in a batch of its own).
        todo.extend(got.deferred.iter().map(|&(m, _)| (m, max)));
        let skipped: HashSet<u32> = got.too_large.iter().chain(&got.deferred).map(|t| t.0).collect();
        let refused_here = got.refused;
        let fetched_bytes: u64 = batch.iter().map(|m| m.raw.len() as u64).sum();
        summary.fetched += batch.len() as u64;
        summary.fetched_bytes += fetched_bytes;
        progress.fetched(MAILBOX, batch.len() as u64, fetched_bytes);
        let changes = SourceChanges {
            updates: std::mem::take(&mut updates),
            too_large: std::mem::take(&mut large),
            ..Default::default()
        };
        let deletable: Vec<u32> = chunk
            .iter()
            .map(|t| t.0)
            .filter(|m| delete_after_commit(*m) && !skipped.contains(m) && !refused_here.iter().any(|r| r.0 == *m))
            .collect();
        refused.extend(refused_here);
        let pending = writer.commit(batch, changes).await?;
        // Nothing of a batch is deleted before the batch is durable.
        if let Some((prev, d)) = in_flight.replace((pending, deletable)) {
            settle(prev.wait().await?, d, summary);
        }
        start = end;
    }
    if let Some((prev, d)) = in_flight.take() {
        settle(prev.wait().await?, d, summary);
    }
    if !updates.is_empty() || !large.is_empty() {
        let changes = SourceChanges {
            updates,
            too_large: large,
            ..Default::default()
        };
        let r = writer.commit(Vec::new(), changes).await?.wait().await?;
        summary.deleted_at_source += r.deleted_at_source;
    }
    to_delete.sort_unstable();
    to_delete.dedup();
    if !to_delete.is_empty() {
        c.dele_many(&to_delete).await?;
    }
    // Deletions count once QUIT has committed them.
    c.quit().await?;
    summary.deleted_on_server += to_delete.len() as u64;
    if !refused.is_empty() {
        let list: Vec<String> = refused
            .iter()
            .take(5)
            .map(|(m, d)| format!("RETR {m}: -ERR {d}"))
            .collect();
        summary.error = Some(format!(
            "the server refused {} message(s), left on the server: {}",
            refused.len(),
            list.join("; ")
        ));
    }
    Ok(())
}

/// Says that `l` is over the maximum message size and adds it to `summary`;
/// returns (message number, bytes, seen).
fn too_large(summary: &mut FolderSummary, l: &Listed, bytes: u64, seen: SizeSeen, max: u64) -> (u32, (u64, bool)) {
    warn!(msg = l.msg, uidl = %l.uidl, bytes, max, ?seen, "message larger than the maximum message size: not archived, not deleted");
    summary.too_large.push(TooLarge {
        folder: MAILBOX.into(),
        uidvalidity: None,
        uid: None,
        uidl: Some(l.uidl.clone()),
        bytes,
        seen,
    });
    (l.msg, (bytes, seen == SizeSeen::Received))
}

/// The record that keeps a too-large message from being retrieved again.
fn too_large_source(o: &Pop3PullOptions, uidl: String, (bytes, received): (u64, bool)) -> TooLargeSource {
    TooLargeSource {
        account: o.account.clone(),
        mailbox: MAILBOX.into(),
        source: SourceKey::Pop3 { uidl },
        record: TooLargeRecord {
            bytes,
            received,
            at: chrono::Utc::now().timestamp(),
        },
    }
}

/// One message in a dry run's lists.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct PlannedMessage {
    pub msg: u32,
    pub uidl: String,
    pub size: u64,
    /// Why it is listed, where that is not obvious.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What a pull would do, found without retrieving, deleting or storing anything.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct DryRun {
    pub account: String,
    pub server: String,
    pub identified_by: &'static str,
    pub on_server: usize,
    pub already_archived: usize,
    pub fetch: Vec<PlannedMessage>,
    pub delete: Vec<PlannedMessage>,
}

/// Connects, lists and plans as a pull would, then QUITs with the mailbox and the
/// archive untouched. `archived` is what the archive holds for the account (empty
/// when there is no archive yet).
/// `ids` is the archive's id maker.
pub async fn dry_run(o: &Pop3PullOptions, archived: &Pop3Placements, ids: &IdHasher) -> Result<DryRun, Pop3Error> {
    let mut c = Pop3Client::connect(&o.connect, o.session).await?;
    let now = chrono::Utc::now().timestamp();
    let sv = survey(&mut c, o, archived, now, ids).await?;
    c.quit().await?;
    let by_msg: HashMap<u32, &Listed> = sv.listed.iter().map(|l| (l.msg, l)).collect();
    let untrusted: HashMap<u32, &str> = sv.plan.untrusted.iter().copied().collect();
    let entry = |m: &u32, note: Option<String>| PlannedMessage {
        msg: *m,
        uidl: by_msg[m].uidl.clone(),
        size: by_msg[m].size,
        note,
    };
    let fetch = sv
        .plan
        .retrieve
        .iter()
        .map(|m| {
            let note = if let Some(why) = untrusted.get(m) {
                Some(format!("{why}: identified by content, never deleted"))
            } else if sv.refetch_to_delete.contains(m) {
                Some("archived; fetched again to check its bytes before deleting".into())
            } else {
                None
            };
            entry(m, note)
        })
        .collect();
    let mut delete: Vec<PlannedMessage> = sv
        .plan
        .delete
        .iter()
        .chain(&sv.refetch_to_delete)
        .map(|m| entry(m, Some("archived".into())))
        .collect();
    if o.delete == DeletePolicy::AfterArchive {
        delete.extend(
            sv.plan
                .retrieve
                .iter()
                .filter(|m| !untrusted.contains_key(m) && !sv.refetch_to_delete.contains(m))
                .map(|m| entry(m, Some("once archived by this run".into()))),
        );
    }
    delete.sort_by_key(|d| d.msg);
    Ok(DryRun {
        account: o.account.clone(),
        server: o.connect.endpoint.to_string(),
        identified_by: sv.identity.describe(),
        on_server: sv.listed.len(),
        already_archived: sv.plan.already_archived,
        fetch,
        delete,
    })
}
