//! Pulling a whole IMAP account: LIST the folders, then sync them in parallel on up
//! to `connections` sessions (a shared folder queue), reconnecting with exponential
//! backoff when a connection fails, and collect one summary per folder.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tracing::{info, info_span, warn, Instrument};

use super::connect::{connect, timed, Connected};
use super::folders::{folder_from_list, selected, Folder};
use super::sync::{sync_folder, FolderJob};
use super::ImapError;
use crate::archive::{PlacementChange, PlacementUpdate, SourceChanges};
use crate::control::Control;
use crate::model::SourceKey;
use crate::plan::namespace::{NamespaceKind, Namespaces};
use crate::remote::{backoff, BatchLimits, ConnectOptions, FolderSummary, PullProgress, PullSummary, Sessions};
use crate::writer::Writer;

/// What to pull and how.
#[derive(Clone, Debug)]
pub struct PullOptions {
    pub connect: ConnectOptions,
    /// The archive's account name for this mailbox.
    pub account: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Namespaces pulled besides the personal one (other users', shared).
    pub namespaces: Vec<NamespaceKind>,
    /// Sessions opened in parallel, by the first one's round trip.
    pub connections: Sessions,
    pub limits: BatchLimits,
    /// Reconnect attempts per folder before giving up on it.
    pub max_retries: u32,
    /// First backoff delay; doubles on each retry (with jitter), capped at 30 s.
    pub backoff: Duration,
    /// Stop signal and pace from a service (default: neither).
    pub control: Control,
}

/// Connects with retries for transient failures (bounded by `max_retries`). For
/// the `first` session of a pull, a server that cannot be reached at all fails at
/// once: backoff is for drops after a session was made.
async fn connect_retrying(o: &PullOptions, attempt: &mut u32, first: bool) -> Result<Connected, ImapError> {
    loop {
        match connect(&o.connect).await {
            Ok(c) => return Ok(c),
            Err(e) if first && e.is_unreachable() => return Err(e),
            Err(e) if e.is_retryable() && *attempt < o.max_retries => {
                *attempt += 1;
                let d = backoff(o.backoff, *attempt);
                warn!(error = %e, retry_in_ms = d.as_millis() as u64, "connection failed; retrying");
                tokio::time::sleep(d).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Every selectable folder the server lists, named relative to its personal
/// namespace, in every namespace.
pub async fn list_all(c: &mut Connected, server: &str, t: Duration) -> Result<Vec<Folder>, ImapError> {
    let what = "LIST";
    let namespaces = c.namespaces(server, t).await?;
    timed(t, server, what, async {
        let mut st = c
            .session
            .list(Some(""), Some("*"))
            .await
            .map_err(|e| ImapError::from_client(server, what, e))?;
        let mut out = Vec::new();
        while let Some(n) = st.next().await {
            let n = n.map_err(|e| ImapError::from_client(server, what, e))?;
            if let Some(f) = folder_from_list(n.name(), n.delimiter(), n.attributes(), namespaces.as_ref()) {
                out.push(f);
            }
        }
        Ok(out)
    })
    .await
}

/// One folder as `pull --list-folders` shows it.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ListedFolder {
    /// The name as the server spells it, decoded from modified UTF-7.
    pub server_name: String,
    /// The archive's name for it.
    pub name: String,
    pub special_use: String,
    pub namespace: NamespaceKind,
    /// Whether a pull with these options takes it.
    pub pulled: bool,
}

/// The server's namespaces (`None` without NAMESPACE) and every selectable folder.
pub async fn list_folders_only(o: &PullOptions) -> Result<(Option<Namespaces>, Vec<ListedFolder>), ImapError> {
    let server = o.connect.endpoint.to_string();
    let mut c = connect(&o.connect).await?;
    let all = list_all(&mut c, &server, o.connect.io_timeout).await?;
    let _ = tokio::time::timeout(o.connect.io_timeout, c.session.logout()).await;
    let mut out: Vec<ListedFolder> = all
        .into_iter()
        .map(|f| ListedFolder {
            server_name: crate::plan::mutf7::decode(&f.remote).unwrap_or_else(|_| f.remote.clone()),
            pulled: takes(o, &f),
            name: f.name,
            special_use: f.special_use,
            namespace: f.namespace,
        })
        .collect();
    out.sort_by(|a, b| (a.namespace, &a.name).cmp(&(b.namespace, &b.name)));
    let namespaces = c.namespaces(&server, o.connect.io_timeout).await?;
    Ok((namespaces, out))
}

/// Whether a pull with `o` takes `f`: a personal folder or one of a namespace asked
/// for, passing the include/exclude globs.
fn takes(o: &PullOptions, f: &Folder) -> bool {
    (f.namespace == NamespaceKind::Personal || o.namespaces.contains(&f.namespace))
        && selected(&f.name, &o.include, &o.exclude)
}

/// The folders to pull (personal ones and those of the namespaces asked for, with
/// the include/exclude globs applied) and the names of all listed folders.
async fn list_folders(
    c: &mut Connected,
    o: &PullOptions,
    server: &str,
) -> Result<(Vec<Folder>, HashSet<String>), ImapError> {
    let names = list_all(c, server, o.connect.io_timeout).await?;
    let all: HashSet<String> = names.iter().map(|f| f.name.clone()).collect();
    let mut folders: Vec<Folder> = names.into_iter().filter(|f| takes(o, f)).collect();
    folders.sort_by(|a, b| (a.name != "INBOX", &a.name).cmp(&(b.name != "INBOX", &b.name)));
    folders.dedup_by(|a, b| a.name == b.name);
    Ok((folders, all))
}

/// Folders pulled before that the server no longer lists (deleted or renamed there):
/// their live placements are marked deleted at source; the messages stay.
async fn retire_vanished_folders(
    o: &PullOptions,
    writer: &Writer,
    listed: &HashSet<String>,
) -> Result<Vec<FolderSummary>, ImapError> {
    let mut out = Vec::new();
    for (mailbox, cursor) in writer.cursors(&o.account).await? {
        if listed.contains(&mailbox) || !selected(&mailbox, &o.include, &o.exclude) {
            continue;
        }
        let state = writer.folder_state(&o.account, &mailbox).await?;
        let updates: Vec<PlacementUpdate> = state
            .imap
            .iter()
            .filter(|p| p.deleted_at.is_none())
            .map(|p| PlacementUpdate {
                account: o.account.clone(),
                mailbox: mailbox.clone(),
                source: SourceKey::Imap {
                    uidvalidity: p.uidvalidity,
                    uid: p.uid,
                },
                change: PlacementChange::DeletedAtSource,
            })
            .collect();
        info!(folder = %mailbox, placements = updates.len(), "folder gone from the server; its messages are marked deleted at source");
        // Without its cursor, a folder that comes back (or was missing from one LIST
        // by accident) is read again, and its placements come back to life.
        let changes = SourceChanges {
            updates,
            drop_cursors: vec![(o.account.clone(), mailbox.clone())],
            ..Default::default()
        };
        let r = writer.commit(Vec::new(), changes).await?.wait().await?;
        if r.deleted_at_source == 0 {
            continue;
        }
        out.push(FolderSummary {
            folder: mailbox,
            special_use: cursor.special_use,
            uidvalidity: cursor.uidvalidity,
            deleted_at_source: r.deleted_at_source,
            ..Default::default()
        });
    }
    Ok(out)
}

/// Pulls every selected folder of the account into the archive behind `writer`.
pub async fn pull(o: &PullOptions, writer: &Writer, progress: Arc<dyn PullProgress>) -> Result<PullSummary, ImapError> {
    let started = Instant::now();
    let server = o.connect.endpoint.to_string();
    let span = info_span!("pull", account = %o.account, server = %server);
    async {
        // The first connection also lists the folders; both retried when the
        // connection drops. Once it has logged in (a wrong password fails once, not
        // once per connection), the others open while it lists: on a WAN their
        // handshakes overlap the listing instead of following it.
        let mut attempts = 0;
        let mut extras = Extras(Vec::new());
        let mut sessions = 1;
        let known_folders = writer.cursors(&o.account).await?.len();
        let (first, folders) = loop {
            let first = attempts == 0;
            let mut c = connect_retrying(o, &mut attempts, first).await?;
            if extras.0.is_empty() {
                sessions = o.connections.for_round_trip(c.round_trip);
                info!(round_trip_ms = c.round_trip.as_millis() as u64, sessions, "connected");
                // Folders pulled before bound what is opened before the listing: an
                // account of one folder does not open four sessions each run.
                let early = match known_folders {
                    0 => sessions,
                    k => sessions.min(k),
                };
                extras = open_extras(o, early - 1);
            }
            match list_folders(&mut c, o, &server).await {
                Ok(f) => break (c, f),
                Err(e) if e.is_retryable() && attempts < o.max_retries => {
                    attempts += 1;
                    let d = backoff(o.backoff, attempts);
                    warn!(error = %e, retry_in_ms = d.as_millis() as u64, "listing folders failed; retrying");
                    tokio::time::sleep(d).await;
                }
                Err(e) => return Err(e),
            }
        };
        let (folders, listed) = folders;
        let gone = retire_vanished_folders(o, writer, &listed).await?;
        info!(folders = folders.len(), "folders to pull");
        let queue = Arc::new(Mutex::new(folders.into_iter().collect::<VecDeque<Folder>>()));
        let results = Arc::new(Mutex::new(gone));
        let n = sessions.min(queue.lock().expect("queue").len().max(1));
        // Sessions the folders don't need are closed; each needed one is awaited by
        // its own worker, so a slow handshake holds back only that worker.
        let mut pending = std::mem::take(&mut extras.0);
        for surplus in pending.split_off((n - 1).min(pending.len())) {
            close_surplus(surplus);
        }
        if pending.len() < n - 1 {
            // More folders than the archive knew of: the rest open now.
            pending.append(&mut open_extras(o, n - 1 - pending.len()).0);
        }
        let mut tasks = Vec::new();
        let mut first = Some(first);
        for (i, handle) in std::iter::once(None).chain(pending.into_iter().map(Some)).enumerate() {
            let conn = first.take();
            let (o, writer, queue, results, progress, server) = (
                o.clone(),
                writer.clone(),
                queue.clone(),
                results.clone(),
                progress.clone(),
                server.clone(),
            );
            tasks.push(tokio::spawn(
                async move {
                    let conn = match handle {
                        None => conn,
                        Some(h) => match opened(h, &queue, &o.control.stop).await {
                            Some(c) => Some(c),
                            None => return,
                        },
                    };
                    worker(conn, &o, &writer, &queue, &results, progress.as_ref(), &server).await
                }
                .instrument(info_span!("connection", n = i)),
            ));
        }
        for t in tasks {
            if let Err(e) = t.await {
                warn!(error = %e, "a connection task failed");
            }
        }
        // Folders no worker could take (every connection failed) are reported.
        let left: Vec<Folder> = queue.lock().expect("queue").drain(..).collect();
        let mut folders = std::mem::take(&mut *results.lock().expect("results"));
        let stopped = o.control.stop.requested();
        for f in left {
            let mut s = FolderSummary {
                folder: f.name,
                special_use: f.special_use,
                error: Some("not pulled: no connection to the server could be opened".into()),
                ..Default::default()
            };
            if stopped {
                s.mark_stopped();
            }
            folders.push(s);
        }
        folders.sort_by(|a, b| (a.folder != "INBOX", &a.folder).cmp(&(b.folder != "INBOX", &b.folder)));
        let mut total = FolderSummary {
            folder: "total".into(),
            ..Default::default()
        };
        for f in &folders {
            total.exists += f.exists;
            total.fetched += f.fetched;
            total.fetched_bytes += f.fetched_bytes;
            total.new_messages += f.new_messages;
            total.duplicates += f.duplicates;
            total.new_placements += f.new_placements;
            total.flag_changes += f.flag_changes;
            total.deleted_at_source += f.deleted_at_source;
            total.below_cursor += f.below_cursor;
            total.too_large.extend(f.too_large.iter().cloned());
            total.retries += f.retries;
        }
        total.seconds = started.elapsed().as_secs_f64();
        Ok(PullSummary {
            account: o.account.clone(),
            server: server.clone(),
            folders,
            total,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
    .instrument(span)
    .await
}

/// One connection's loop: take a folder, sync it (reconnecting and resuming from the
/// committed cursor on transient errors), repeat until the queue is empty.
async fn worker(
    mut conn: Option<Connected>,
    o: &PullOptions,
    writer: &Writer,
    queue: &Mutex<VecDeque<Folder>>,
    results: &Mutex<Vec<FolderSummary>>,
    progress: &dyn PullProgress,
    server: &str,
) {
    // A connection beyond the first that cannot be opened (the server's per-user
    // limit, say) hands its folder back and leaves the work to the others.
    let mut ever_connected = conn.is_some();
    loop {
        if o.control.stop.requested() {
            break;
        }
        let Some(folder) = queue.lock().expect("queue").pop_front() else {
            break;
        };
        let mut summary = FolderSummary {
            folder: folder.name.clone(),
            special_use: folder.special_use.clone(),
            ..Default::default()
        };
        let mut attempts = 0u32;
        loop {
            if conn.as_ref().is_some_and(Connected::retiring) {
                retire(conn.take()).await;
            }
            if conn.is_none() {
                match connect_retrying(o, &mut attempts, false).await {
                    Ok(c) => {
                        conn = Some(c);
                        ever_connected = true;
                    }
                    Err(e) if !ever_connected => {
                        warn!(error = %e, "could not open an extra connection; continuing with fewer");
                        queue.lock().expect("queue").push_front(folder);
                        return;
                    }
                    Err(e) => {
                        summary.error = Some(e.to_string());
                        break;
                    }
                }
            }
            let c = conn.as_mut().expect("connected");
            let job = FolderJob {
                server,
                account: &o.account,
                folder: &folder,
                caps: c.caps,
                limits: o.control.narrow(o.limits),
                control: &o.control,
                io_timeout: o.connect.io_timeout,
                max_message_size: o.connect.max_message_size,
                dropped: &c.dropped,
                writer,
                progress,
                retire_at: c.retire_at,
            };
            match sync_folder(&mut c.session, &job, &mut summary).await {
                Ok(()) => break,
                // Its token is due: a new session (with a fresh token) resumes the
                // folder from the last commit; not a failure, not counted.
                Err(ImapError::SessionRetiring { .. }) => retire(conn.take()).await,
                Err(e) if e.is_retryable() && attempts < o.max_retries => {
                    attempts += 1;
                    summary.retries += 1;
                    conn = None; // the session is in an unknown state
                    let d = backoff(o.backoff, attempts);
                    warn!(folder = %folder.name, error = %e, retry_in_ms = d.as_millis() as u64, "folder sync interrupted; resuming from the last committed batch");
                    tokio::time::sleep(d).await;
                }
                Err(e) => {
                    warn!(folder = %folder.name, error = %e, "folder failed");
                    summary.error = Some(e.to_string());
                    if !matches!(e, ImapError::Mailbox { .. }) {
                        conn = None;
                    }
                    break;
                }
            }
        }
        progress.folder_done(&folder.name);
        results.lock().expect("results").push(summary);
    }
    retire(conn).await;
}

/// Sessions opening in the background; aborted when the pull ends before taking
/// them (the listing failed).
struct Extras(Vec<tokio::task::JoinHandle<Result<Connected, ImapError>>>);

impl Drop for Extras {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Opens `n` more sessions in the background (each retrying as a worker would).
fn open_extras(o: &PullOptions, n: usize) -> Extras {
    Extras(
        (0..n)
            .map(|i| {
                let o = o.clone();
                tokio::spawn(
                    async move { connect_retrying(&o, &mut 0, false).await }
                        .instrument(info_span!("connection", n = i + 1)),
                )
            })
            .collect(),
    )
}

/// The session `h` opens, once open; `None` when it could not be opened, or the
/// other sessions took every folder first, or a stop came (the opening is then
/// abandoned: a server slow to greet does not hold the pull's end).
async fn opened(
    mut h: tokio::task::JoinHandle<Result<Connected, ImapError>>,
    queue: &Mutex<VecDeque<Folder>>,
    stop: &crate::control::Stop,
) -> Option<Connected> {
    loop {
        tokio::select! {
            r = &mut h => {
                return match r {
                    Ok(Ok(c)) => Some(c),
                    Ok(Err(e)) => {
                        warn!(error = %e, "could not open an extra connection; continuing with fewer");
                        None
                    }
                    Err(_) => None, // aborted
                };
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if stop.requested() || queue.lock().expect("queue").is_empty() {
                    h.abort();
                    return None;
                }
            }
        }
    }
}

/// A session opening that the folders turned out not to need: logged out once
/// open, or abandoned while it is still opening.
fn close_surplus(t: tokio::task::JoinHandle<Result<Connected, ImapError>>) {
    if t.is_finished() {
        tokio::spawn(async move {
            if let Ok(Ok(c)) = t.await {
                retire(Some(c)).await;
            }
        });
    } else {
        t.abort();
    }
}

/// Logs a session out (bounded in time), if there is one.
async fn retire(conn: Option<Connected>) {
    if let Some(mut c) = conn {
        let _ = tokio::time::timeout(Duration::from_secs(5), c.session.logout()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Duration::from_millis(200);
        let d1 = backoff(b, 1);
        let d4 = backoff(b, 4);
        assert!(
            d1 >= Duration::from_millis(150) && d1 <= Duration::from_millis(250),
            "{d1:?}"
        );
        assert!(
            d4 >= Duration::from_millis(1200) && d4 <= Duration::from_millis(2000),
            "{d4:?}"
        );
        assert!(backoff(b, 40) <= Duration::from_millis(37_500));
    }
}
