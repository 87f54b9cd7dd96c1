//! `mailvault replay --to URL` (archive → IMAP server) and `mailvault migrate --from
//! URL --to URL` (pull, then replay what the target lacks), with the per-folder
//! report as a table or JSON.

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use mailvault::access::Action;

use super::pull::{print_summary, pull_into, Bars};
use super::server_args::{FromServerArgs, ServerArgs, ToServerArgs};
use super::{human_bytes, Cli, Ui};
use mailvault::archive::{Archive, PlacementFilter};
use mailvault::imap::PullOptions;
use mailvault::plan::folder_map::{parse_rule, Mapping, Rule};
use mailvault::plan::pop3_sync::DeletePolicy;
use mailvault::pop3::{Pop3PullOptions, Pop3Session};
use mailvault::remote::{BatchLimits, ConnectOptions, Sessions};
use mailvault::replay::append::Pipeline;
use mailvault::replay::run::{self, ReplayOptions, ReplayReport};

/// What to replay and how; shared by `replay` and `migrate`.
#[derive(clap::Args, Debug)]
pub struct ReplayTuning {
    /// Put FROM (an archive folder, `/`-separated, and its subfolders) into TO on
    /// the target; repeatable; the longest matching FROM wins
    #[arg(long = "map", value_name = "FROM=TO")]
    maps: Vec<String>,
    /// Keep every source folder under its own name: do not send folders with a
    /// SPECIAL-USE role (Sent, Trash, …) to the target's folder of that role
    #[arg(long)]
    no_role_map: bool,
    /// Show what would be appended and created; change nothing on the target or in
    /// the archive
    #[arg(long)]
    dry_run: bool,
    /// Also replay messages that were deleted at the source after being archived
    #[arg(long)]
    include_deleted: bool,
    /// Also set each message's tags (`mailvault tag`) as IMAP keywords on the
    /// target
    #[arg(long)]
    tags_as_keywords: bool,
    /// Messages per APPEND when the target offers MULTIAPPEND (1: one per command)
    #[arg(long, default_value_t = 50, value_name = "N")]
    per_append: usize,
    /// Connections to the target, each replaying one folder at a time
    #[arg(long, default_value_t = 2, value_name = "N")]
    connections: usize,
    /// Seconds to wait for any single network step
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    timeout: u64,
    /// Reconnect attempts per folder after a lost connection
    #[arg(long, default_value_t = 8, value_name = "N")]
    retries: u32,
    /// Append at most N messages a second (a provider's upload limit, a shared link)
    #[arg(long, value_name = "N")]
    messages_per_second: Option<u32>,
    #[command(flatten)]
    output: super::Output,
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The target: imaps://USER@HOST[:PORT] or imap://… (STARTTLS); with --provider,
    /// just USER
    #[arg(long, value_name = "URL")]
    to: String,
    /// Only messages matching this search (the query language of `search`)
    #[arg(long, value_name = "QUERY")]
    query: Option<String>,
    /// Only placements of this archive account; repeatable [default: all]
    #[arg(long = "account", value_name = "NAME")]
    accounts: Vec<String>,
    /// Only placements in this archive folder (exact name); repeatable [default: all]
    #[arg(long = "folder", value_name = "NAME")]
    folders: Vec<String>,
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    tuning: ReplayTuning,
}

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// The source: imaps://, imap://, pop3s:// or pop3:// USER@HOST[:PORT]
    #[arg(long, value_name = "URL")]
    from: String,
    /// The target: imaps://USER@HOST[:PORT] or imap://… (STARTTLS)
    #[arg(long, value_name = "URL")]
    to: String,
    /// Account name of the source in the archive [default: USER@HOST of --from]
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
    #[command(flatten)]
    source: FromServerArgs,
    #[command(flatten)]
    target: ToServerArgs,
    #[command(flatten)]
    tuning: ReplayTuning,
}

fn rules(maps: &[String]) -> Result<Vec<Rule>> {
    maps.iter()
        .map(|m| parse_rule(m).with_context(|| format!("--map {m}")))
        .collect()
}

fn replay_options(connect: ConnectOptions, t: &ReplayTuning) -> Result<ReplayOptions> {
    if !connect.endpoint.scheme.is_imap() {
        bail!("the replay target must be an IMAP address (imaps:// or imap://)");
    }
    Ok(ReplayOptions {
        connect,
        mapping: Mapping {
            rules: rules(&t.maps)?,
            roles: !t.no_role_map,
        },
        pipeline: Pipeline {
            per_command: t.per_append.max(1),
            ..Pipeline::default()
        },
        chunk_messages: 1000,
        chunk_bytes: 64 << 20,
        max_retries: t.retries,
        backoff: Duration::from_millis(250),
        connections: t.connections.max(1),
        pace: mailvault::control::Pace::new(t.messages_per_second, None),
        dry_run: t.dry_run,
    })
}

pub fn replay(cli: &Cli, ui: &Ui, a: &ReplayArgs) -> Result<ExitCode> {
    let ep = a.server.options().endpoint(&a.to)?;
    let store = super::secret::token_store(&cli.secret, &super::archive_dir(cli)?)?;
    let opts = replay_options(
        a.server.options().connect_options(ep, a.tuning.timeout, Some(&store))?,
        &a.tuning,
    )?;
    let archive = Arc::new(if a.tuning.dry_run {
        super::open_archive_read_only(cli)?
    } else {
        super::open_archive(cli, false)?
    });
    let messages = match &a.query {
        None => None,
        Some(q) => {
            let mut idx = if a.tuning.dry_run {
                super::search::fresh_index(cli, ui)?
            } else {
                super::search::updated_index(&archive, ui)?
            };
            Some(
                super::search::matching(&mut idx, &archive, q)?
                    .into_iter()
                    .collect::<HashSet<_>>(),
            )
        }
    };
    let what = super::compliance::describe_selection(a.query.as_deref(), &a.accounts, &a.folders);
    let ids: Vec<_> = messages.iter().flatten().copied().collect();
    let count = messages
        .as_ref()
        .map_or(archive.counters().messages, |m| m.len() as u64);
    super::compliance::log_access(
        archive.dir(),
        archive.access_log_key(),
        Action::Replay,
        Some(&what),
        &ids,
        count,
    )?;
    let filter = PlacementFilter {
        accounts: a.accounts.clone(),
        mailboxes: a.folders.clone(),
        messages,
    };
    let report = run_replay(&archive, ui, &opts, &filter, &a.tuning)?;
    if a.tuning.output.json() {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report)?;
    }
    Ok(exit_code(&report))
}

pub fn migrate(cli: &Cli, ui: &Ui, a: &MigrateArgs) -> Result<ExitCode> {
    let from = a.source.options().endpoint(&a.from)?;
    let to = a.target.options().endpoint(&a.to)?;
    let account = a
        .account
        .clone()
        .unwrap_or_else(|| format!("{}@{}", from.user, from.host));
    let store = super::secret::token_store(&cli.secret, &super::archive_dir(cli)?)?;
    let source = a
        .source
        .options()
        .connect_options(from, a.tuning.timeout, Some(&store))?;
    let opts = replay_options(
        a.target.options().connect_options(to, a.tuning.timeout, Some(&store))?,
        &a.tuning,
    )?;
    let filter = PlacementFilter {
        accounts: vec![account.clone()],
        ..Default::default()
    };
    // A dry run pulls too (the source is only read; the archive is where the plan
    // comes from): only the target is left untouched.
    let archive = Arc::new(super::open_archive(cli, true)?);
    let pull = PullOptions {
        connect: source.clone(),
        account: account.clone(),
        include: Vec::new(),
        exclude: Vec::new(),
        namespaces: Vec::new(),
        connections: a.source.options().preset()?.map_or(Sessions::DEFAULT, |p| {
            Sessions::of_preset(p.connections, p.max_connections)
        }),
        limits: BatchLimits::default(),
        max_retries: a.tuning.retries,
        backoff: Duration::from_millis(250),
        control: Default::default(),
    };
    let pop3 = (!source.endpoint.scheme.is_imap()).then(|| Pop3PullOptions {
        connect: source.clone(),
        account: account.clone(),
        delete: DeletePolicy::Keep,
        session: Pop3Session::default(),
        limits: pull.limits,
        max_retries: pull.max_retries,
        backoff: pull.backoff,
        control: Default::default(),
    });
    let summary = pull_into(&archive, ui, &pull, pop3.as_ref(), true, false)?;
    let what = super::compliance::describe_selection(None, &filter.accounts, &[]);
    super::compliance::log_access(
        archive.dir(),
        archive.access_log_key(),
        Action::Replay,
        Some(&what),
        &[],
        archive.counters().messages,
    )?;
    if summary.failed_folders() > 0 {
        print_summary(&summary, a.tuning.output.json())?;
        bail!(
            "{} folder(s) of {} could not be pulled; not replaying an incomplete account (see the summary)",
            summary.failed_folders(),
            summary.account
        );
    }
    let report = run_replay(&archive, ui, &opts, &filter, &a.tuning)?;
    let code = exit_code(&report);
    if a.tuning.output.json() {
        let both = mailvault::output::MigrateReport {
            pull: summary,
            replay: report,
        };
        println!("{}", serde_json::to_string_pretty(&both)?);
    } else {
        print_summary(&summary, false)?;
        println!();
        print_report(&report)?;
    }
    Ok(code)
}

fn exit_code(r: &ReplayReport) -> ExitCode {
    let problems = r.problems();
    if problems > 0 {
        eprintln!("mailvault: error: {problems} message(s) or folder(s) failed (see the report)");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn run_replay(
    archive: &Arc<Archive>,
    ui: &Ui,
    opts: &ReplayOptions,
    filter: &PlacementFilter,
    t: &ReplayTuning,
) -> Result<ReplayReport> {
    let mut items = run::select(archive, filter, t.include_deleted)?;
    if t.tags_as_keywords {
        run::add_tags_as_keywords(archive, &mut items)?;
    }
    tracing::debug!(placements = items.len(), "selected");
    let progress = Bars::new(ui);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = rt.block_on(run::replay(archive, opts, &items, &progress));
    progress.finish();
    Ok(report?)
}

fn print_report(r: &ReplayReport) -> Result<()> {
    let verb = if r.dry_run { "to append" } else { "appended" };
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>7} {:>10}  from / error",
        "target folder", "in source", verb, "present", "failed", "bytes"
    );
    for f in r.folders.iter().chain(std::iter::once(&r.total)) {
        let mut folder = f.folder.clone();
        if f.created {
            folder.push_str(if r.dry_run { " (to create)" } else { " (created)" });
        }
        println!(
            "{:<28} {:>9} {:>9} {:>9} {:>7} {:>10}  {}",
            folder,
            f.in_source,
            f.appended,
            f.already_present,
            f.failed,
            human_bytes(f.appended_bytes),
            f.error.clone().unwrap_or_else(|| f.sources.join(", "))
        );
        for x in &f.failures {
            println!("    refused {} from {}: {}", x.message, x.source, x.reason);
        }
    }
    for f in r.folders.iter().filter(|f| f.sources.len() > 1) {
        let by_role = f.sources.iter().any(|s| s.ends_with(" on both)"));
        println!(
            "note: {} source folders {} {}: {}{}",
            f.sources.len(),
            if r.dry_run { "would go into" } else { "went into" },
            f.folder,
            f.sources.join(", "),
            if by_role {
                " (--no-role-map keeps each under its own name)"
            } else {
                ""
            }
        );
    }
    if r.total.checked > 0 {
        println!(
            "{} pending intent(s) from an interrupted run {}; {} found on the target",
            r.total.checked,
            if r.dry_run { "would be looked for" } else { "looked for" },
            r.total.resolved_present
        );
    }
    if r.dry_run {
        println!("dry run: nothing was created or appended on {}", r.target);
    } else {
        println!(
            "{}",
            super::rate_line(
                &r.target,
                r.total.appended,
                r.total.appended_bytes,
                "appended",
                r.seconds
            )
        );
    }
    Ok(())
}
