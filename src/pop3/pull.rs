//! Pulling a POP3 mailbox: UIDL + LIST, the pure plan of
//! [`crate::plan::pop3_sync`], RETR in batches each committed durably, then DELE —
//! only of messages whose batch is committed — and QUIT.

use std::collections::HashMap;
use std::time::Instant;

use tracing::{info, info_span, Instrument};

use super::client::Pop3Client;
use super::Pop3Error;
use crate::archive::{PlacementChange, PlacementUpdate, SourceChanges};
use crate::imap::{BatchLimits, ConnectOptions, FolderSummary, PullProgress, PullSummary};
use crate::model::{Flags, PlacementSpec, RawMessage, SourceKey};
use crate::plan::pop3_sync::{self, DeletePolicy, Listed};
use crate::writer::Writer;

/// POP3 serves one mailbox; it is archived under this name.
pub const MAILBOX: &str = "INBOX";

#[derive(Clone, Debug)]
pub struct Pop3PullOptions {
    pub connect: ConnectOptions,
    pub account: String,
    pub delete: DeletePolicy,
    pub limits: BatchLimits,
    /// Reconnect attempts after a lost connection; each resumes from what is committed.
    pub max_retries: u32,
    /// First backoff delay; doubles on each retry (with jitter).
    pub backoff: std::time::Duration,
}

/// The placement identity of a message: its UIDL, or — when the UIDL cannot be
/// trusted (malformed, shared) — its content hash.
fn source_of(uidl: &str, trusted: bool, raw: &[u8]) -> SourceKey {
    if trusted {
        SourceKey::Pop3 { uidl: uidl.to_string() }
    } else {
        SourceKey::Pop3 {
            uidl: format!("blake3:{}", crate::model::Hash32::of(raw).to_hex()),
        }
    }
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
                Err(e) if e.is_retryable() && summary.retries < o.max_retries => {
                    summary.retries += 1;
                    let d = crate::imap::pull::backoff(o.backoff, summary.retries);
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
    let mut c = Pop3Client::connect(&o.connect).await?;
    let uidls = c.uidl().await?;
    let sizes: HashMap<u32, u64> = c.list().await?.into_iter().collect();
    let listed: Vec<Listed> = uidls
        .iter()
        .map(|(msg, uidl)| Listed {
            msg: *msg,
            uidl: uidl.clone(),
            size: sizes.get(msg).copied().unwrap_or(0),
        })
        .collect();
    let archived_all = writer.pop3_placements(&o.account, MAILBOX).await?;
    let archived: HashMap<String, i64> = archived_all.iter().map(|(u, p)| (u.clone(), p.first_seen)).collect();
    let now = chrono::Utc::now().timestamp();
    let plan = pop3_sync::plan(&listed, &archived, o.delete, now);
    for (msg, why) in &plan.untrusted {
        tracing::warn!(msg, why, "UIDL not trusted; the message is identified by its content");
    }
    info!(
        listed = listed.len(),
        retrieve = plan.retrieve.len(),
        delete = plan.delete.len(),
        "plan"
    );
    summary.exists = listed.len() as u32;
    // Archived messages no longer on the server: deleted at source.
    let on_server: std::collections::HashSet<&str> = listed.iter().map(|l| l.uidl.as_str()).collect();
    let mut updates: Vec<PlacementUpdate> = archived_all
        .iter()
        .filter(|(u, p)| p.deleted_at.is_none() && !u.starts_with("blake3:") && !on_server.contains(u.as_str()))
        .map(|(u, _)| PlacementUpdate {
            account: o.account.clone(),
            mailbox: MAILBOX.into(),
            source: SourceKey::Pop3 { uidl: u.clone() },
            change: PlacementChange::DeletedAtSource,
        })
        .collect();

    let untrusted: std::collections::HashSet<u32> = plan.untrusted.iter().map(|u| u.0).collect();
    let by_msg: HashMap<u32, &Listed> = listed.iter().map(|l| (l.msg, l)).collect();
    let todo: Vec<(u32, u64)> = plan.retrieve.iter().map(|m| (*m, by_msg[m].size)).collect();
    progress.to_fetch(MAILBOX, todo.len() as u64, todo.iter().map(|t| t.1).sum());
    let mut to_delete: Vec<u32> = plan.delete.clone();
    // Messages the server would not hand out: left there, reported.
    let mut refused: Vec<(u32, String)> = Vec::new();
    let mut start = 0;
    while start < todo.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < todo.len()
            && end - start < o.limits.max_messages
            && (end == start || bytes + todo[end].1 <= o.limits.max_bytes)
        {
            bytes += todo[end].1;
            end += 1;
        }
        let chunk = &todo[start..end];
        let mut batch: Vec<RawMessage> = Vec::with_capacity(chunk.len());
        let refused_here = c
            .retr_many(chunk, |msg, raw| {
                let l = by_msg[&msg];
                let raw = super::proto::strip_added_crlf(raw, l.size);
                let spec = PlacementSpec {
                    account: o.account.clone(),
                    mailbox: MAILBOX.into(),
                    source: source_of(&l.uidl, !untrusted.contains(&msg), &raw),
                    flags: Flags::default(),
                    internal_date: None,
                };
                batch.push(RawMessage::new(raw, vec![spec]));
            })
            .await?;
        let fetched_bytes: u64 = batch.iter().map(|m| m.raw.len() as u64).sum();
        summary.fetched += batch.len() as u64;
        summary.fetched_bytes += fetched_bytes;
        progress.fetched(MAILBOX, batch.len() as u64, fetched_bytes);
        let changes = SourceChanges {
            updates: std::mem::take(&mut updates),
            ..Default::default()
        };
        // Durable before anything of this batch may be deleted on the server.
        let r = writer.commit(batch, changes).await?.wait().await?;
        summary.new_messages += r.new_messages;
        summary.duplicates += r.duplicates;
        summary.new_placements += r.new_placements;
        summary.deleted_at_source += r.deleted_at_source;
        if o.delete == DeletePolicy::AfterArchive {
            to_delete.extend(
                chunk
                    .iter()
                    .map(|t| t.0)
                    .filter(|m| !untrusted.contains(m) && !refused_here.iter().any(|r| r.0 == *m)),
            );
        }
        refused.extend(refused_here);
        start = end;
    }
    if !updates.is_empty() {
        let changes = SourceChanges {
            updates,
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
