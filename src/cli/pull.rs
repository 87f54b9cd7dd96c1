//! `mailvault pull URL`: IMAP and POP3 pulls, with credential and TLS options, live
//! progress, and a per-folder summary.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::server_args::ServerArgs;
use super::{human_bytes, Cli, Ui};
use mailvault::archive::Archive;
use mailvault::control::{Control, Stop};
use mailvault::imap::{self, PullOptions};
use mailvault::job::units::ByteSize;
use mailvault::plan::pop3_sync::DeletePolicy;
use mailvault::pop3::{PlannedMessage, Pop3PullOptions, Pop3Session};
use mailvault::remote::{BatchLimits, PullProgress, PullSummary, Sessions, SizeSeen};
use mailvault::writer::Writer;

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// Server and login: imaps://USER@HOST[:PORT], imap://… (STARTTLS), pop3s://…, pop3://… (STLS);
    /// with --provider, just USER (pop3:USER for its POP3)
    #[arg(value_name = "URL")]
    url: String,
    /// Only folders matching this glob (`*`, `?`); repeatable [default: all]
    #[arg(long = "folder", value_name = "GLOB")]
    folders: Vec<String>,
    /// Skip folders matching this glob; repeatable
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Also pull the folders of this namespace: `other` (other users' folders shared
    /// with you) or `shared` (public folders); repeatable [default: personal only]
    #[arg(long = "namespace", value_name = "KIND")]
    namespaces: Vec<super::choices::NamespaceArg>,
    /// List the server's folders (namespace, role, archive name) and pull nothing
    #[arg(long)]
    list_folders: bool,
    /// Account name in the archive [default: USER@HOST]
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
    /// Connections to the server, each pulling one folder at a time [default: the
    /// provider preset's, else 4; over a WAN (a round trip of 20 ms or more) up to 8
    /// within the preset's limit]
    #[arg(long, value_name = "N")]
    connections: Option<usize>,
    /// Seconds to wait for any single network step
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    timeout: u64,
    /// Reconnect attempts per folder after a lost connection
    #[arg(long, default_value_t = 8, value_name = "N")]
    retries: u32,
    /// Fetch at most N messages a second (a provider's download limit, a shared link)
    #[arg(long, value_name = "N")]
    messages_per_second: Option<u32>,
    /// POP3: delete each message from the server once it is durably archived
    #[arg(long)]
    delete_after_archive: bool,
    /// POP3: delete archived messages first archived at least DAYS days ago
    #[arg(long, value_name = "DAYS", conflicts_with = "delete_after_archive")]
    delete_older_than: Option<u32>,
    /// POP3: list what would be fetched and deleted; change nothing
    #[arg(long)]
    dry_run: bool,
    /// POP3: log in with APOP only (by default APOP is used on plaintext connections
    /// when the server offers it)
    #[arg(long, conflicts_with_all = ["oauth2_token_command", "oauth2_account"])]
    apop: bool,
    /// POP3: one command at a time even when the server offers PIPELINING
    #[arg(long)]
    no_pipelining: bool,
    /// The largest message archived (e.g. 512MiB, 20M, 1GB): one the server announces
    /// or sends larger is reported by folder and UID, not archived, not deleted
    #[arg(long, value_name = "SIZE", default_value = "512MiB")]
    max_message_size: ByteSize,
    #[command(flatten)]
    output: super::Output,
    /// Do not update the search index now (the next search catches up)
    #[arg(long)]
    no_index: bool,
}

pub fn pull(cli: &Cli, ui: &Ui, a: &PullArgs) -> Result<ExitCode> {
    let ep = &a.server.options().endpoint(&a.url)?;
    if !ep.scheme.is_imap() && (!a.folders.is_empty() || !a.exclude.is_empty()) {
        bail!("--folder and --exclude apply to IMAP; POP3 serves one mailbox");
    }
    if ep.scheme.is_imap() && (a.delete_after_archive || a.delete_older_than.is_some()) {
        bail!("--delete-after-archive and --delete-older-than apply to POP3; an IMAP pull never changes the server");
    }
    if ep.scheme.is_imap() && (a.dry_run || a.apop || a.no_pipelining) {
        bail!("--dry-run, --apop and --no-pipelining apply to POP3 addresses");
    }
    let account = a.account.clone().unwrap_or_else(|| format!("{}@{}", ep.user, ep.host));
    let store = super::secret::token_store(&cli.secret, &super::archive_dir(cli)?)?;
    let mut connect = a
        .server
        .options()
        .connect_options(ep.clone(), a.timeout, Some(&store))?;
    connect.max_message_size = a.max_message_size.0;
    let opts = PullOptions {
        connect,
        account,
        include: a.folders.clone(),
        exclude: a.exclude.clone(),
        namespaces: a.namespaces.iter().map(|&n| n.into()).collect(),
        connections: match (a.connections, a.server.options().preset()?) {
            (Some(n), _) => Sessions::exactly(n),
            (None, Some(p)) => Sessions::of_preset(p.connections, p.max_connections),
            (None, None) => Sessions::DEFAULT,
        },
        limits: BatchLimits::default(),
        max_retries: a.retries,
        backoff: Duration::from_millis(250),
        control: Control {
            stop: Stop::default(),
            pace: mailvault::control::Pace::new(a.messages_per_second, None),
        },
    };
    if a.list_folders {
        if !opts.connect.endpoint.scheme.is_imap() {
            bail!("--list-folders applies to IMAP; POP3 serves one mailbox");
        }
        return list_folders(&opts, a.output.json());
    }
    if !opts.connect.endpoint.scheme.is_imap() && a.dry_run {
        return pop3_dry_run(cli, &pop3_options(a, &opts), a.output.json());
    }
    let archive = Arc::new(super::open_archive(cli, true)?);
    let pop3 = (!opts.connect.endpoint.scheme.is_imap()).then(|| pop3_options(a, &opts));
    let summary = pull_into(&archive, ui, &opts, pop3.as_ref(), !a.no_index, true)?;
    print_summary(&summary, a.output.json())?;
    if summary.folders.iter().any(|f| f.stopped) {
        eprintln!("mailvault: stopped by a signal; what was fetched is committed, the next pull resumes");
        return Ok(ExitCode::from(130));
    }
    let failed = summary.failed_folders();
    if failed > 0 {
        eprintln!(
            "mailvault: error: {failed} folder(s) of {} failed (see the summary)",
            summary.account
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `pull --list-folders`: every selectable folder in every namespace, and whether a
/// pull with these options takes it.
fn list_folders(o: &PullOptions, json: bool) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (namespaces, folders) = rt.block_on(imap::pull::list_folders_only(o))?;
    if json {
        let v = mailvault::output::FolderList {
            namespaces: namespaces.clone(),
            folders: folders.clone(),
        };
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    match &namespaces {
        Some(n) => {
            for (kind, list) in [("personal", &n.personal), ("other", &n.other), ("shared", &n.shared)] {
                for ns in list {
                    let sep = ns.separator.map_or("none".to_string(), |c| format!("{c:?}"));
                    println!("namespace {kind:<8} prefix {:?} separator {sep}", ns.prefix);
                }
            }
        }
        None => println!("the server announces no namespaces (no NAMESPACE): folders are named from the top"),
    }
    println!();
    println!(
        "{:<8} {:<4} {:<10} {:<32} server name",
        "pull", "ns", "role", "archive name"
    );
    for f in &folders {
        println!(
            "{:<8} {:<4} {:<10} {:<32} {}",
            if f.pulled { "yes" } else { "no" },
            &f.namespace.to_string()[..2],
            f.special_use,
            f.name,
            f.server_name
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Pulls into `archive` (over IMAP, or over POP3 with `pop3`'s options), with
/// progress bars; then brings the search index up to date unless `!index`. With
/// `graceful_stop`, SIGINT/SIGTERM end the pull after the batch in hand.
pub fn pull_into(
    archive: &Arc<Archive>,
    ui: &Ui,
    opts: &PullOptions,
    pop3: Option<&Pop3PullOptions>,
    index: bool,
    graceful_stop: bool,
) -> Result<PullSummary> {
    let (writer, handle) = Writer::spawn(archive.clone());
    let progress = Arc::new(Bars::new(ui));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // SIGINT/SIGTERM: the batch in hand is committed, then the pull returns. (Not
    // for `migrate`: once installed, the handler would also swallow a Ctrl-C during
    // its replay.)
    let stop = Stop::default();
    if graceful_stop {
        rt.block_on(async { super::jobs::on_signal(stop.clone()) })?;
    }
    let control = Control {
        stop,
        pace: opts.control.pace.clone(),
    };
    let result = match pop3 {
        None => {
            let o = PullOptions {
                control,
                ..opts.clone()
            };
            rt.block_on(imap::pull(&o, &writer, progress.clone()))
                .map_err(anyhow::Error::from)
        }
        Some(p) => {
            let o = Pop3PullOptions { control, ..p.clone() };
            rt.block_on(mailvault::pop3::pull(&o, &writer, progress.as_ref()))
                .map_err(anyhow::Error::from)
        }
    };
    drop(writer);
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("the archive writer thread panicked"))?;
    progress.finish();
    let summary = result?;
    // Indexing after the pull rather than alongside it: on two cores the two only
    // compete, and one catch-up merges less than many (measured: 7.3 s vs 8.1 s for
    // the main corpus, README).
    if index {
        super::search::updated_index(archive, ui)?;
    }
    Ok(summary)
}

fn pop3_options(a: &PullArgs, opts: &PullOptions) -> Pop3PullOptions {
    Pop3PullOptions {
        connect: opts.connect.clone(),
        account: opts.account.clone(),
        delete: match (a.delete_after_archive, a.delete_older_than) {
            (true, _) => DeletePolicy::AfterArchive,
            (false, Some(days)) => DeletePolicy::OlderThan { days },
            (false, None) => DeletePolicy::Keep,
        },
        session: Pop3Session {
            require_apop: a.apop,
            pipelining: !a.no_pipelining,
        },
        limits: opts.limits,
        max_retries: opts.max_retries,
        backoff: opts.backoff,
        control: opts.control.clone(),
    }
}

/// `pull pop3… --dry-run`: the plan, printed; the server and the archive untouched
/// (the archive is opened read-only, and not created when missing).
fn pop3_dry_run(cli: &Cli, p: &Pop3PullOptions, json: bool) -> Result<ExitCode> {
    let dir = super::archive_dir(cli)?;
    let (archived, ids) = if dir.exists() {
        let a = super::open_archive_read_only(cli)?;
        (
            a.pop3_placements(&p.account, mailvault::pop3::pull::MAILBOX)?,
            a.ids().clone(),
        )
    } else {
        Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let d = rt.block_on(mailvault::pop3::dry_run(p, &archived, &ids))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(ExitCode::SUCCESS);
    }
    let bytes = |l: &[PlannedMessage]| human_bytes(l.iter().map(|m| m.size).sum());
    println!(
        "{} ({}): {} messages on the server, {} already archived; identified by {}",
        d.account, d.server, d.on_server, d.already_archived, d.identified_by
    );
    for (verb, list) in [("fetch", &d.fetch), ("delete", &d.delete)] {
        println!("would {verb} {} messages ({})", list.len(), bytes(list));
        for m in list.iter() {
            println!(
                "  {verb:<6} {:>6} {:>10}  {}{}",
                m.msg,
                human_bytes(m.size),
                m.uidl,
                m.note.as_deref().map(|n| format!("  ({n})")).unwrap_or_default()
            );
        }
    }
    println!("dry run: nothing was fetched, stored or deleted");
    Ok(ExitCode::SUCCESS)
}

pub fn print_summary(s: &PullSummary, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    println!(
        "{:<28} {:>7} {:>8} {:>6} {:>6} {:>8} {:>10}  error",
        "folder", "server", "fetched", "new", "flags", "deleted", "bytes"
    );
    for f in s.folders.iter().chain(std::iter::once(&s.total)) {
        println!(
            "{:<28} {:>7} {:>8} {:>6} {:>6} {:>8} {:>10}  {}",
            f.folder,
            f.exists,
            f.fetched,
            f.new_messages,
            f.flag_changes,
            f.deleted_at_source,
            human_bytes(f.fetched_bytes),
            f.error.as_deref().unwrap_or("")
        );
    }
    for f in s.folders.iter().filter(|f| f.below_cursor > 0) {
        println!(
            "note: {}: {} messages were at UIDs below ones already archived (the server reused or \
             reordered UIDs); they were found by a full listing and archived",
            f.folder, f.below_cursor
        );
    }
    for t in &s.total.too_large {
        let how = match t.seen {
            SizeSeen::Announced => "the server gives its size as",
            SizeSeen::Received => "the server sent",
        };
        println!(
            "skipped: {}: {how} {} (over --max-message-size); not archived, not deleted, not fetched again",
            t.which(),
            human_bytes(t.bytes)
        );
    }
    println!(
        "{}",
        super::rate_line(&s.account, s.total.fetched, s.total.fetched_bytes, "fetched", s.seconds)
    );
    Ok(())
}

/// Live progress on a terminal: a total bar and one bar per active folder.
pub struct Bars {
    mp: MultiProgress,
    total: ProgressBar,
    folders: Mutex<HashMap<String, ProgressBar>>,
    hidden: bool,
}

impl Bars {
    pub fn new(ui: &Ui) -> Bars {
        let hidden = ui.quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr());
        let mp = if hidden {
            MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden())
        } else {
            MultiProgress::new()
        };
        let total = mp.add(ProgressBar::new(0));
        total.set_style(
            ProgressStyle::with_template("total  {pos}/{len} msgs {msg} [{elapsed_precise}] {per_sec} eta {eta}")
                .expect("valid template"),
        );
        Bars {
            mp,
            total,
            folders: Mutex::new(HashMap::new()),
            hidden,
        }
    }
    pub fn finish(&self) {
        self.total.finish_and_clear();
        let _ = self.mp.clear();
    }
}

impl PullProgress for Bars {
    fn to_fetch(&self, folder: &str, messages: u64, bytes: u64) {
        if self.hidden {
            return;
        }
        self.total.inc_length(messages);
        let pb = self.mp.add(ProgressBar::new(bytes));
        pb.set_style(
            ProgressStyle::with_template("{msg:<24} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
                .expect("valid template"),
        );
        pb.set_message(folder.to_string());
        self.folders.lock().expect("bars").insert(folder.to_string(), pb);
    }
    fn fetched(&self, folder: &str, messages: u64, bytes: u64) {
        if self.hidden {
            return;
        }
        self.total.inc(messages);
        if let Some(pb) = self.folders.lock().expect("bars").get(folder) {
            pb.inc(bytes);
        }
    }
    fn folder_done(&self, folder: &str) {
        if let Some(pb) = self.folders.lock().expect("bars").remove(folder) {
            pb.finish_and_clear();
        }
    }
}
