//! A replay, start to finish: the archive's placements to replay, mapped to target
//! folders; per target mailbox, the ledger consulted ([`crate::plan::replay`]),
//! pending intents resolved on the target, then APPEND in chunks with the intents
//! written (durably) before and the outcomes after; a report per folder.
//!
//! ```text
//! 1. LIST the target (its personal namespace); map every source folder (rules,
//!    SPECIAL-USE unless --no-role-map, INBOX, name under the target's prefix).
//! 2. Number byte-identical messages per target mailbox: copy 0, 1, … in source
//!    order, so two identical messages are both replayed, and a rerun finds both.
//! 3. Per target mailbox: CREATE + SUBSCRIBE when missing; STATUS (UIDVALIDITY,
//!    UIDNEXT).
//! 4. Plan from the ledger. Items the ledger shows appended under this UIDVALIDITY
//!    are present; intents without an outcome, or entries of an older UIDVALIDITY,
//!    are looked for on the target (EXAMINE; the messages from the intents' UIDNEXT
//!    on, or a SEARCH; FETCH; compare hashes) and recorded present or appended
//!    again — never more appended than are missing.
//! 5. Chunk by chunk: intents (with UIDVALIDITY and UIDNEXT) written with one
//!    fsync, APPEND pipelined, outcomes (APPENDUID when UIDPLUS) written with one
//!    fsync; the next chunk is read from the archive meanwhile. A refusal is reported with
//!    the message and the server's words; the run goes on.
//! 6. A lost connection: reconnect with backoff and redo the mailbox from step 3
//!    (the ledger makes that safe).
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::{debug, info, info_span, warn, Instrument};

use super::append::{self, AppendOutcome, Pipeline};
use super::target;
use super::{resolve, wire};
use crate::archive::{Archive, ArchiveError, LedgerEntry, PlacementFilter};
use crate::imap::connect::{connect, Connected};
use crate::imap::ImapError;
use crate::model::{Flags, MessageId};
use crate::plan::folder_map::{map_folder, Mapping, Target};
use crate::plan::replay::{self as plan, Item, Ledger};
use crate::remote::{backoff, ConnectOptions, PullProgress};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

impl ReplayError {
    fn is_retryable(&self) -> bool {
        matches!(self, ReplayError::Imap(e) if e.is_retryable())
    }
}

/// One archived placement to replay.
/// `replay --tags-as-keywords`: each item's flags gain its message's tags as
/// keywords (a tag is an IMAP atom by construction, `crate::tags`).
pub fn add_tags_as_keywords(archive: &Archive, items: &mut [SourceItem]) -> Result<(), ArchiveError> {
    for chunk in items.chunks_mut(10_000) {
        let ids: Vec<MessageId> = chunk.iter().map(|i| i.message).collect();
        for (item, tags) in chunk.iter_mut().zip(archive.tags_of_many(&ids)?) {
            for t in tags {
                item.flags.add_keyword(t.as_str());
            }
        }
    }
    Ok(())
}

#[derive(Clone, Debug)]
pub struct SourceItem {
    pub account: String,
    pub folder: String,
    /// The folder's SPECIAL-USE role at the source, or empty.
    pub special_use: String,
    pub message: MessageId,
    pub flags: Flags,
    pub internal_date: Option<i64>,
    pub size: u64,
}

/// The placements `filter` selects, in archive order (account, folder, UID).
/// Placements whose message was deleted at the source are left out unless
/// `include_deleted`.
pub fn select(
    archive: &Archive,
    filter: &PlacementFilter,
    include_deleted: bool,
) -> Result<Vec<SourceItem>, ArchiveError> {
    let mut roles: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut sizes: HashMap<MessageId, u64> = HashMap::new();
    let mut out = Vec::new();
    for p in archive.placements(filter)? {
        if p.record.deleted_at.is_some() && !include_deleted {
            continue;
        }
        if !roles.contains_key(&p.key.account) {
            let r = archive
                .cursors(&p.key.account)?
                .into_iter()
                .map(|(m, c)| (m, c.special_use))
                .collect();
            roles.insert(p.key.account.clone(), r);
        }
        let special_use = roles[&p.key.account].get(&p.key.mailbox).cloned().unwrap_or_default();
        let size = match sizes.get(&p.record.message) {
            Some(s) => *s,
            None => {
                let s = archive
                    .message_record(&p.record.message)?
                    .map(|r| r.raw_len)
                    .ok_or_else(|| ArchiveError::Corrupt {
                        id: p.record.message.to_hex(),
                        what: format!("placed in {}/{} but not stored", p.key.account, p.key.mailbox),
                    })?;
                sizes.insert(p.record.message, s);
                s
            }
        };
        out.push(SourceItem {
            account: p.key.account,
            folder: p.key.mailbox,
            special_use,
            message: p.record.message,
            flags: p.record.flags,
            internal_date: p.record.internal_date,
            size,
        });
    }
    Ok(out)
}

#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub connect: ConnectOptions,
    /// `--map` rules and whether SPECIAL-USE roles are matched.
    pub mapping: Mapping,
    pub pipeline: Pipeline,
    /// Messages per ledger chunk (intents, APPENDs, outcomes).
    pub chunk_messages: usize,
    pub chunk_bytes: u64,
    pub max_retries: u32,
    pub backoff: Duration,
    /// Sessions to the target, each replaying one folder at a time.
    pub connections: usize,
    /// Plan and report only: the target and the archive are not changed.
    pub dry_run: bool,
    /// At most so many messages/bytes appended per second (chunks shrink to a
    /// second of work). Default: no limit.
    pub pace: Option<std::sync::Arc<crate::control::Pace>>,
}

impl ReplayOptions {
    /// The ledger's name for the target account.
    pub fn target_name(&self) -> String {
        let ep = &self.connect.endpoint;
        format!("{}@{}:{}", ep.user, ep.host, ep.port)
    }
}

/// One message that did not make it.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct MessageFailure {
    pub message: String,
    /// `account/folder` it came from.
    pub source: String,
    pub reason: String,
}

/// What happened in one target folder.
#[derive(Clone, Debug, Default, Serialize, schemars::JsonSchema)]
pub struct FolderReport {
    pub folder: String,
    /// Source folders mapped here (`account/folder`), and why. More than one: folders
    /// merged (by role mapping or rules), said in the report.
    pub sources: Vec<String>,
    pub created: bool,
    pub in_source: u64,
    /// Appended by this run (a dry run: would be).
    pub appended: u64,
    pub appended_bytes: u64,
    pub already_present: u64,
    /// Of those, found on the target while resolving pending intents.
    pub resolved_present: u64,
    /// Pending intents looked for on the target (a dry run: to look for).
    pub checked: u64,
    pub failed: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<MessageFailure>,
    pub retries: u32,
    /// Why the folder failed as a whole (its messages not arrived are counted in
    /// `failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What this run appended or found, so that a retry after a lost connection
    /// does not count it again as already present.
    #[serde(skip)]
    done_this_run: std::collections::HashSet<(MessageId, u32)>,
}

impl FolderReport {
    fn add(&mut self, o: &FolderReport) {
        self.in_source += o.in_source;
        self.appended += o.appended;
        self.appended_bytes += o.appended_bytes;
        self.already_present += o.already_present;
        self.resolved_present += o.resolved_present;
        self.checked += o.checked;
        self.failed += o.failed;
        self.retries += o.retries;
    }
}

#[derive(Clone, Debug, Default, Serialize, schemars::JsonSchema)]
pub struct ReplayReport {
    pub target: String,
    pub dry_run: bool,
    pub folders: Vec<FolderReport>,
    pub total: FolderReport,
    pub seconds: f64,
}

impl ReplayReport {
    /// Messages that did not arrive, plus folders that failed as a whole with none
    /// to lose.
    pub fn problems(&self) -> u64 {
        self.total.failed
            + self
                .folders
                .iter()
                .filter(|f| f.error.is_some() && f.failed == 0)
                .count() as u64
    }
}

/// The items of one target mailbox.
struct Group {
    sources: Vec<String>,
    create: bool,
    /// (index into the source items, copy number).
    items: Vec<(usize, u32)>,
}

/// Replays `items` into the target. `archive` must be writable unless dry-running.
pub async fn replay(
    archive: &Arc<Archive>,
    o: &ReplayOptions,
    items: &[SourceItem],
    progress: &dyn PullProgress,
) -> Result<ReplayReport, ReplayError> {
    let started = Instant::now();
    let target_name = o.target_name();
    let server = o.connect.endpoint.to_string();
    let t = o.connect.io_timeout;
    let span = info_span!("replay", target = %target_name);
    async {
        let mut c = connect(&o.connect).await?;
        let folders = target::list(&mut c, &server, t).await?;
        let groups: Vec<(String, Group)> = map_all(items, o, &folders).into_iter().collect();
        // Folders are shared out to `connections` workers, each with its own
        // session (the first has the one that listed); while one waits for the
        // server to store a batch, another sends.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let env = ReplayContext {
            archive,
            o,
            target_name: &target_name,
            folders: &folders,
            items,
            progress,
        };
        let mut first = Some(c);
        let workers: Vec<_> = (0..o.connections.max(1).min(groups.len().max(1)))
            .map(|_| worker(&env, first.take(), &groups, &next))
            .collect();
        let mut done: Vec<(usize, FolderReport)> =
            futures::future::join_all(workers).await.into_iter().flatten().collect();
        done.sort_by_key(|(i, _)| *i);
        let mut report = ReplayReport {
            target: target_name.clone(),
            dry_run: o.dry_run,
            ..Default::default()
        };
        for (_, r) in done {
            report.total.add(&r);
            report.folders.push(r);
        }
        report.total.folder = "total".into();
        report.seconds = started.elapsed().as_secs_f64();
        info!(
            appended = report.total.appended,
            present = report.total.already_present,
            failed = report.total.failed,
            "replay done"
        );
        Ok(report)
    }
    .instrument(span)
    .await
}

/// What every folder of a replay shares.
struct ReplayContext<'a> {
    archive: &'a Arc<Archive>,
    o: &'a ReplayOptions,
    target_name: &'a str,
    folders: &'a Target,
    items: &'a [SourceItem],
    progress: &'a dyn PullProgress,
}

/// Takes folders from `groups` (the next index in `next`) until none are left; one
/// connection, reconnected with backoff when lost (step 6).
async fn worker(
    env: &ReplayContext<'_>,
    mut conn: Option<Connected>,
    groups: &[(String, Group)],
    next: &std::sync::atomic::AtomicUsize,
) -> Vec<(usize, FolderReport)> {
    let o = env.o;
    let mut out = Vec::new();
    loop {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some((name, g)) = groups.get(i) else { break };
        let mut r = FolderReport {
            folder: name.clone(),
            sources: g.sources.clone(),
            in_source: g.items.len() as u64,
            ..Default::default()
        };
        env.progress.to_fetch(
            name,
            g.items.len() as u64,
            g.items.iter().map(|(i, _)| env.items[*i].size).sum(),
        );
        let mut attempt = 0;
        loop {
            let mut c = match conn.take() {
                Some(c) if !c.retiring() => c,
                Some(mut c) => {
                    // Its token is due: a new session takes over.
                    let _ = tokio::time::timeout(o.connect.io_timeout, c.session.logout()).await;
                    continue;
                }
                None => match connect(&o.connect).await {
                    Ok(c) => c,
                    Err(e) if e.is_retryable() && attempt < o.max_retries => {
                        attempt += 1;
                        tokio::time::sleep(backoff(o.backoff, attempt)).await;
                        continue;
                    }
                    Err(e) => {
                        r.error = Some(e.to_string());
                        break;
                    }
                },
            };
            let res = replay_folder(&mut c, env, name, g, &mut r)
                .instrument(info_span!("folder", folder = %name))
                .await;
            match res {
                Ok(()) => {
                    conn = Some(c);
                    break;
                }
                // Not a failure: the folder resumes from the ledger on a new session.
                Err(ReplayError::Imap(ImapError::SessionRetiring { .. })) => {
                    let _ = tokio::time::timeout(o.connect.io_timeout, c.session.logout()).await;
                }
                Err(e) if e.is_retryable() && attempt < o.max_retries => {
                    attempt += 1;
                    r.retries += 1;
                    warn!(folder = %name, error = %e, attempt, "connection lost; reconnecting and resuming from the ledger");
                    tokio::time::sleep(backoff(o.backoff, attempt)).await;
                }
                Err(e) => {
                    r.error = Some(e.to_string());
                    if !e.is_retryable() {
                        conn = Some(c);
                    }
                    break;
                }
            }
        }
        if r.error.is_some() {
            // A folder that could not be created or replayed: whatever of it did
            // not arrive has failed.
            let arrived = r.appended + r.already_present;
            r.failed = r.failed.max(r.in_source.saturating_sub(arrived));
        }
        env.progress.folder_done(name);
        out.push((i, r));
    }
    if let Some(mut c) = conn {
        let _ = tokio::time::timeout(o.connect.io_timeout, c.session.logout()).await;
    }
    out
}

/// Steps 1 and 2: target folder → its items, copies numbered.
fn map_all(items: &[SourceItem], o: &ReplayOptions, t: &Target) -> BTreeMap<String, Group> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut mapped: HashMap<(&str, &str), (String, bool)> = HashMap::new();
    let mut copies: HashMap<(String, MessageId), u32> = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        let (name, create) = mapped
            .entry((it.account.as_str(), it.folder.as_str()))
            .or_insert_with(|| {
                let m = map_folder(&it.folder, &it.special_use, &o.mapping, t);
                let g = groups.entry(m.name.clone()).or_insert_with(|| Group {
                    sources: Vec::new(),
                    create: m.create,
                    items: Vec::new(),
                });
                g.sources.push(format!("{}/{} ({})", it.account, it.folder, m.why));
                (m.name, m.create)
            })
            .clone();
        let n = copies.entry((name.clone(), it.message)).or_insert(0);
        let g = groups.get_mut(&name).expect("group made with its mapping");
        g.create |= create;
        g.items.push((i, *n));
        *n += 1;
    }
    groups
}

/// Replays one target folder (steps 3 to 5).
async fn replay_folder(
    c: &mut Connected,
    env: &ReplayContext<'_>,
    name: &str,
    g: &Group,
    r: &mut FolderReport,
) -> Result<(), ReplayError> {
    // 3.
    let status = open_target_folder(c, env, name, g, r).await?;
    let uidvalidity = status.map(|s| s.uidvalidity);
    // 4.
    let ledger = read_ledger(env, name).await?;
    let mut planned = plan_folder(env, g, &ledger, uidvalidity, r);
    if env.o.dry_run {
        // Pending intents would be looked for; count them as to append (the worst case).
        for (m, copies) in &planned.plan.resolve {
            planned
                .to_append
                .extend(copies.iter().map(|c| (planned.by_item[&(*m, *c)], *c)));
        }
        r.appended = planned.to_append.len() as u64;
        r.appended_bytes = planned.to_append.iter().map(|&(i, _)| env.items[i].size).sum();
        return Ok(());
    }
    if !planned.plan.resolve.is_empty() {
        let missing = resolve_intents(c, env, name, &planned, &ledger, r).await?;
        planned.to_append.extend(missing);
    }
    env.progress
        .fetched(name, (planned.plan.present - planned.counted_before) as u64, 0);
    // Keep the source order on the target (resolution appended some at the end).
    planned.to_append.sort_unstable();
    // 5.
    let chunks = chunk_appends(&planned.to_append, env.items, env.o);
    append_chunks(c, env, name, &chunks, status, r).await
}

/// Runs `f` with the archive on a blocking thread: async code never calls the
/// (synchronous, fsyncing) archive directly.
async fn on_archive<T: Send + 'static>(
    archive: &Arc<Archive>,
    f: impl FnOnce(&Archive) -> Result<T, ArchiveError> + Send + 'static,
) -> Result<T, ArchiveError> {
    let a = archive.clone();
    tokio::task::spawn_blocking(move || f(&a))
        .await
        .map_err(|e| ArchiveError::Corrupt {
            id: "replay".into(),
            what: format!("an archive task failed: {e}"),
        })?
}

/// Writes ledger entries of `folder` durably; gives them back.
async fn write_ledger(
    env: &ReplayContext<'_>,
    folder: &str,
    entries: Vec<LedgerEntry>,
) -> Result<Vec<LedgerEntry>, ArchiveError> {
    let (target, folder) = (env.target_name.to_string(), folder.to_string());
    on_archive(env.archive, move |a| {
        a.ledger_write(&target, &folder, &entries, now())?;
        Ok(entries)
    })
    .await
}

/// The ledger of one target folder: what was appended or found there, by message
/// and copy.
async fn read_ledger(env: &ReplayContext<'_>, folder: &str) -> Result<HashMap<(MessageId, u32), Ledger>, ArchiveError> {
    let (target, folder) = (env.target_name.to_string(), folder.to_string());
    let records = on_archive(env.archive, move |a| a.ledger(&target, &folder)).await?;
    Ok(records.into_iter().map(|(k, v)| (k, v.state)).collect())
}

/// Step 3: the target folder's status, creating the folder when it is missing
/// (`None` in a dry run where it would be created).
async fn open_target_folder(
    c: &mut Connected,
    env: &ReplayContext<'_>,
    name: &str,
    g: &Group,
    r: &mut FolderReport,
) -> Result<Option<resolve::MailboxStatus>, ReplayError> {
    let (o, server, t) = (env.o, env.o.connect.endpoint.to_string(), env.o.connect.io_timeout);
    let exists = env
        .folders
        .folders
        .iter()
        .any(|f| f.name == name || (name == "INBOX" && f.name.eq_ignore_ascii_case("INBOX")));
    // The status stays good for the first chunk: resolving only reads.
    if exists {
        Ok(Some(resolve::status(c, &server, t, name).await?))
    } else if o.dry_run {
        r.created = g.create;
        Ok(None)
    } else {
        target::create(c, &server, t, name).await?;
        r.created = true;
        Ok(Some(resolve::status(c, &server, t, name).await?))
    }
}

/// A folder's plan, with what the report needs of it.
struct Planned {
    plan: plan::Plan,
    /// (message, copy) → index into the source items.
    by_item: HashMap<(MessageId, u32), usize>,
    /// Items present that an earlier attempt of this run already counted.
    counted_before: usize,
    /// (index into the source items, copy number)
    to_append: Vec<(usize, u32)>,
}

/// Step 4: plans the folder from the ledger; counts what is there already.
fn plan_folder(
    env: &ReplayContext<'_>,
    g: &Group,
    ledger: &HashMap<(MessageId, u32), Ledger>,
    uidvalidity: Option<u32>,
    r: &mut FolderReport,
) -> Planned {
    let items = env.items;
    let plan_items: Vec<Item> = g
        .items
        .iter()
        .map(|&(i, copy)| Item {
            message: items[i].message,
            copy,
        })
        .collect();
    let p = plan::plan(&plan_items, ledger, uidvalidity);
    let by_item: HashMap<(MessageId, u32), usize> =
        g.items.iter().map(|&(i, copy)| ((items[i].message, copy), i)).collect();
    let counted_before = plan_items
        .iter()
        .filter(|it| r.done_this_run.contains(&(it.message, it.copy)))
        .filter(|it| {
            matches!(ledger.get(&(it.message, it.copy)),
                Some(Ledger::Appended { uidvalidity: v, .. } | Ledger::Present { uidvalidity: v, .. }) if Some(*v) == uidvalidity)
        })
        .count();
    r.already_present += (p.present - counted_before) as u64;
    r.checked += p.resolve.iter().map(|(_, c)| c.len() as u64).sum::<u64>();
    let to_append = p
        .append
        .iter()
        .map(|it| (by_item[&(it.message, it.copy)], it.copy))
        .collect();
    Planned {
        plan: p,
        by_item,
        counted_before,
        to_append,
    }
}

/// Step 4, pending intents: looks for their messages on the target and records
/// those found as present; returns the copies still to append.
async fn resolve_intents(
    c: &mut Connected,
    env: &ReplayContext<'_>,
    name: &str,
    planned: &Planned,
    ledger: &HashMap<(MessageId, u32), Ledger>,
    r: &mut FolderReport,
) -> Result<Vec<(usize, u32)>, ReplayError> {
    let (server, t) = (env.o.connect.endpoint.to_string(), env.o.connect.io_timeout);
    let resolve_list = &planned.plan.resolve;
    let v = resolve::examine(c, &server, t, name).await?;
    // The ledger's entries of each message in question, other copies included.
    let mut entries_of: HashMap<MessageId, Vec<(u32, Ledger)>> =
        resolve_list.iter().map(|(m, _)| (*m, Vec::new())).collect();
    for ((m, copy), st) in ledger {
        if let Some(e) = entries_of.get_mut(m) {
            e.push((*copy, *st));
        }
    }
    // Intents under this UIDVALIDITY are looked for among the UIDs from the
    // earliest of their UIDNEXTs on, all at once; anything else (an older
    // UIDVALIDITY, or another copy recorded without its UID, which may lie
    // anywhere) by a search of the whole mailbox.
    let other_copy_without_uid = |m: &MessageId, copies: &[u32]| {
        entries_of[m].iter().any(|(lc, st)| {
            !copies.contains(lc)
                && matches!(st, Ledger::Appended { uidvalidity: lv, uid: None }
                    | Ledger::Present { uidvalidity: lv, uid: None } if *lv == v)
        })
    };
    let since = |m: &MessageId, copies: &[u32]| -> Option<u32> {
        copies
            .iter()
            .map(|copy| match ledger.get(&(*m, *copy)) {
                Some(Ledger::Intent { uidvalidity, uidnext }) if *uidvalidity == v => Some(*uidnext),
                _ => None,
            })
            .collect::<Option<Vec<u32>>>()?
            .into_iter()
            .min()
    };
    let fast_ids: Vec<(MessageId, u32)> = resolve_list
        .iter()
        .filter_map(
            |(m, copies)| match (since(m, copies), other_copy_without_uid(m, copies)) {
                (Some(n), false) => Some((*m, n)),
                _ => None,
            },
        )
        .collect();
    let ids: Vec<MessageId> = fast_ids.iter().map(|(m, _)| *m).collect();
    let raws: Vec<Vec<u8>> = on_archive(env.archive, move |a| ids.iter().map(|m| a.get_raw(m)).collect()).await?;
    let mut fast: HashMap<MessageId, u64> = HashMap::new();
    let mut crlf_id: HashMap<MessageId, MessageId> = HashMap::new();
    let mut from = u32::MAX;
    for ((m, n), raw) in fast_ids.iter().zip(raws) {
        let bytes = wire::crlf(&raw);
        let id = MessageId::of(&bytes);
        fast.insert(id, bytes.len() as u64);
        crlf_id.insert(*m, id);
        from = from.min(*n);
    }
    let found_since = if fast.is_empty() {
        HashMap::new()
    } else {
        resolve::find_since(c, &server, t, name, from, &fast).await?
    };
    let mut present = Vec::new();
    let mut missing_copies = Vec::new();
    // A UID found for one message is not found again for another (two archived
    // messages can be the same bytes once line ends are CRLF).
    let mut claimed: std::collections::HashSet<u32> = std::collections::HashSet::new();
    for (m, copies) in resolve_list {
        let mut found = match crlf_id.get(m) {
            Some(id) => found_since.get(id).cloned().unwrap_or_default(),
            None => {
                let id = *m;
                let raw = on_archive(env.archive, move |a| a.get_raw(&id)).await?;
                resolve::find(c, &server, t, name, &raw).await?
            }
        };
        found.retain(|u| !claimed.contains(u));
        let accounted_without_uid = discount_other_copies(&mut found, &entries_of[m], copies, v);
        let k = found.len().saturating_sub(accounted_without_uid);
        let (here, missing) = plan::settle(copies, k);
        for (n, copy) in here.iter().enumerate() {
            let uid = found.get(accounted_without_uid + n).copied();
            claimed.extend(uid);
            present.push(LedgerEntry {
                message: *m,
                copy: *copy,
                state: Ledger::Present { uidvalidity: v, uid },
            });
        }
        missing_copies.extend(missing.iter().map(|c| (planned.by_item[&(*m, *c)], *c)));
    }
    let present = write_ledger(env, name, present).await?;
    r.resolved_present += present.len() as u64;
    r.already_present += present.len() as u64;
    r.done_this_run.extend(present.iter().map(|e| (e.message, e.copy)));
    env.progress.fetched(name, present.len() as u64, 0);
    Ok(missing_copies)
}

/// Equal messages the ledger already accounts for (other copies recorded under
/// UIDVALIDITY `v`) are not the copies in question: removes their UIDs from
/// `found`, and returns how many were recorded without one.
fn discount_other_copies(found: &mut Vec<u32>, entries: &[(u32, Ledger)], copies: &[u32], v: u32) -> usize {
    let mut accounted_without_uid = 0usize;
    for (lc, state) in entries {
        if copies.contains(lc) {
            continue;
        }
        match state {
            Ledger::Appended { uidvalidity: lv, uid } | Ledger::Present { uidvalidity: lv, uid } if *lv == v => {
                match uid {
                    Some(u) => found.retain(|x| x != u),
                    None => accounted_without_uid += 1,
                }
            }
            _ => {}
        }
    }
    accounted_without_uid
}

/// Step 5's chunks: up to `chunk_messages` messages and `chunk_bytes` bytes each
/// (a larger message alone).
fn chunk_appends<'a>(
    to_append: &'a [(usize, u32)],
    items: &[SourceItem],
    o: &ReplayOptions,
) -> Vec<&'a [(usize, u32)]> {
    let (max_messages, max_bytes) = match &o.pace {
        Some(p) => {
            let (m, b) = p.batch_cap();
            (o.chunk_messages.min(m).max(1), o.chunk_bytes.min(b))
        }
        None => (o.chunk_messages, o.chunk_bytes),
    };
    let mut start = 0;
    let mut chunks = Vec::new();
    while start < to_append.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < to_append.len()
            && (end == start || (end - start < max_messages && bytes + items[to_append[end].0].size <= max_bytes))
        {
            bytes += items[to_append[end].0].size;
            end += 1;
        }
        chunks.push(&to_append[start..end]);
        start = end;
    }
    chunks
}

/// Step 5: per chunk, intents (durable), APPENDs, then outcomes (durable). Chunk
/// k+1 is read from the archive (on other threads) while chunk k is appended.
async fn append_chunks(
    c: &mut Connected,
    env: &ReplayContext<'_>,
    name: &str,
    chunks: &[&[(usize, u32)]],
    mut status: Option<resolve::MailboxStatus>,
    r: &mut FolderReport,
) -> Result<(), ReplayError> {
    let (server, t, items) = (env.o.connect.endpoint.to_string(), env.o.connect.io_timeout, env.items);
    let read = |chunk: &[(usize, u32)]| {
        let ids: Vec<MessageId> = chunk.iter().map(|&(i, _)| items[i].message).collect();
        let archive = env.archive.clone();
        tokio::task::spawn_blocking(move || read_for_append(&archive, &ids))
    };
    let mut next = chunks.first().map(|c| read(c));
    for (k, chunk) in chunks.iter().enumerate() {
        if k > 0 && c.retiring() {
            // Every chunk so far has its outcomes in the ledger: a new session resumes.
            return Err(ReplayError::Imap(ImapError::SessionRetiring { server }));
        }
        if let Some(p) = &env.o.pace {
            p.take(chunk.len() as u64, chunk.iter().map(|&(i, _)| items[i].size).sum())
                .await;
        }
        let read_started = Instant::now();
        let raws = next
            .take()
            .expect("each chunk's read was started")
            .await
            .map_err(|e| ArchiveError::Corrupt {
                id: "replay".into(),
                what: format!("reading messages for APPEND failed: {e}"),
            })??;
        next = chunks.get(k + 1).map(|c| read(c));
        // Where the chunk's messages will land if they do: from UIDNEXT on.
        let now_status = match status.take() {
            Some(s) => s,
            None => resolve::status(c, &server, t, name).await?,
        };
        let intents: Vec<LedgerEntry> = chunk
            .iter()
            .map(|&(i, copy)| LedgerEntry {
                message: items[i].message,
                copy,
                state: Ledger::Intent {
                    uidvalidity: now_status.uidvalidity,
                    uidnext: now_status.uidnext,
                },
            })
            .collect();
        write_ledger(env, name, intents).await?;
        debug!(
            messages = chunk.len(),
            bytes = raws.iter().map(Vec::len).sum::<usize>(),
            uidnext = now_status.uidnext,
            read_ms = read_started.elapsed().as_millis() as u64,
            "intents written; appending"
        );
        let append_started = Instant::now();
        let append_items: Vec<wire::AppendItem<'_>> = chunk
            .iter()
            .zip(&raws)
            .map(|(&(i, _), raw)| wire::AppendItem {
                flags: &items[i].flags,
                internal_date: items[i].internal_date,
                raw,
            })
            .collect();
        let outcomes = append::append(c, &server, t, name, &append_items, env.o.pipeline).await?;
        let append_ms = append_started.elapsed().as_millis() as u64;
        let (done, chunk_bytes) = record_outcomes(items, name, chunk, &outcomes, &raws, now_status.uidvalidity, r);
        let done = write_ledger(env, name, done).await?;
        debug!(appended = done.len(), append_ms, "outcomes written");
        env.progress.fetched(name, chunk.len() as u64, chunk_bytes);
    }
    Ok(())
}

/// The ledger entries of a chunk's APPENDs that succeeded (and their bytes); the
/// refused ones go into the report.
fn record_outcomes(
    items: &[SourceItem],
    name: &str,
    chunk: &[(usize, u32)],
    outcomes: &[AppendOutcome],
    raws: &[Vec<u8>],
    uidvalidity: u32,
    r: &mut FolderReport,
) -> (Vec<LedgerEntry>, u64) {
    let mut done = Vec::with_capacity(chunk.len());
    let mut chunk_bytes = 0;
    for ((&(i, copy), outcome), raw) in chunk.iter().zip(outcomes).zip(raws) {
        match outcome {
            AppendOutcome::Appended { uidvalidity: v, uid } => {
                done.push(LedgerEntry {
                    message: items[i].message,
                    copy,
                    state: Ledger::Appended {
                        uidvalidity: v.unwrap_or(uidvalidity),
                        uid: *uid,
                    },
                });
                r.appended += 1;
                r.appended_bytes += raw.len() as u64;
                r.done_this_run.insert((items[i].message, copy));
                chunk_bytes += raw.len() as u64;
            }
            AppendOutcome::Refused(why) => {
                warn!(message = %items[i].message, folder = %name, reason = %why, "the target refused a message");
                r.failed += 1;
                r.failures.push(MessageFailure {
                    message: items[i].message.to_hex(),
                    source: format!("{}/{}", items[i].account, items[i].folder),
                    reason: why.clone(),
                });
            }
        }
    }
    (done, chunk_bytes)
}

/// The messages as they will be appended (CRLF line ends), read and rebuilt on
/// rayon's threads.
fn read_for_append(archive: &Archive, ids: &[MessageId]) -> Result<Vec<Vec<u8>>, ArchiveError> {
    use rayon::prelude::*;
    ids.par_iter()
        .map(|m| archive.get_raw(m).map(wire::into_crlf))
        .collect()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
