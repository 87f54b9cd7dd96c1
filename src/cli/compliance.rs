//! `retention`, `hold`, `purge`, `attest` and `audit`, and the access-log entry
//! every read command writes first.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};

use mailvault::access::{self, Access, Action};
use mailvault::archive::Archive;
use mailvault::evidence::{Expiry, RuleKind, RuleRecord};
use mailvault::model::{Hash32, MessageId};
use mailvault::output::{AuditOutput, PurgeOutput};
use mailvault::plan::retention::KeepFrom;
use mailvault::retention;

use super::{human_bytes, open_archive, open_archive_read_only, plural, Cli, Output, Ui};

/// Appends the access-log entry of a read about to happen; the read is refused
/// when it cannot be written — except on an archive this user may not write at
/// all (a read-only copy, an auditor's backup), where nothing could be recorded:
/// the read goes on with a warning saying it is not logged.
/// `key` is the access-log key of an encrypted archive.
pub fn log_access(
    dir: &Path,
    key: Option<&mailvault::crypt::Key>,
    action: Action,
    query: Option<&str>,
    ids: &[MessageId],
    count: u64,
) -> Result<()> {
    let user = mailvault::identity::os_user();
    let entry = Access {
        user: &user,
        action,
        query,
        ids,
        count,
    };
    match access::record(dir, key, &entry) {
        Ok(_) => Ok(()),
        Err(e) if !access::may_record(dir) => {
            tracing::warn!(
                "this read is not in the access log: {user} may not write {} ({e})",
                access::path(dir).display()
            );
            Ok(())
        }
        Err(e) => Err(e).context("recording the read in the archive's access log (reads are not allowed without it)"),
    }
}

/// What an export or replay reads, as the access log says it: the query, the
/// accounts and folders (`*` for everything).
pub fn describe_selection(query: Option<&str>, accounts: &[String], folders: &[String]) -> String {
    let mut parts: Vec<String> = query.into_iter().map(str::to_string).collect();
    parts.extend(accounts.iter().map(|a| format!("account:{a:?}")));
    parts.extend(folders.iter().map(|f| format!("folder:{f:?}")));
    if parts.is_empty() {
        "*".into()
    } else {
        parts.join(" ")
    }
}

#[derive(Subcommand, Debug)]
pub enum RetentionCommand {
    /// Keep what QUERY matches for a period (replaces a policy of the same name)
    Set(RetentionSetArgs),
    /// Every retention policy
    List(ListArgs),
    /// Remove a retention policy (what it covered is kept forever unless another
    /// policy covers it)
    Remove(NameArgs),
}

#[derive(Args, Debug)]
pub struct RetentionSetArgs {
    /// The policy's name
    name: String,
    /// The search query selecting what the policy covers (e.g. 'folder:Spam', '*')
    #[arg(long, value_name = "QUERY")]
    query: String,
    /// How long to keep it: 90d, 6m, 10y (days, months, years) or forever
    #[arg(long, value_name = "PERIOD")]
    keep: String,
    /// Where the period starts: when first archived, or the message's Date header
    #[arg(long, value_enum, default_value_t = FromArg::Received)]
    from: FromArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FromArg {
    /// When the archive first stored the message
    Received,
    /// The message's Date header (first archived when it has none)
    Date,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    output: Output,
}

#[derive(Args, Debug)]
pub struct NameArgs {
    /// The name
    name: String,
}

#[derive(Subcommand, Debug)]
pub enum HoldCommand {
    /// Place a legal hold on what QUERY matches: it survives every purge
    Add(HoldAddArgs),
    /// Every legal hold
    List(ListArgs),
    /// Release a legal hold
    Release(NameArgs),
}

#[derive(Args, Debug)]
pub struct HoldAddArgs {
    /// The hold's name (e.g. a case number)
    name: String,
    /// The search query selecting what the hold covers
    #[arg(long, value_name = "QUERY")]
    query: String,
    /// Why (recorded with the hold and in the change log)
    #[arg(long, value_name = "TEXT", default_value = "")]
    reason: String,
}

/// One rule, as `retention list` and `hold list` print it.
#[derive(serde::Serialize)]
struct RuleLine<'a> {
    name: &'a str,
    query: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    keep: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'static str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'a str,
    by: &'a str,
    at: String,
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| t.to_string())
}

fn print_rules(kind: RuleKind, rules: &[(String, RuleRecord)], output: &Output) -> Result<()> {
    let lines: Vec<RuleLine<'_>> = rules
        .iter()
        .map(|(name, r)| RuleLine {
            name,
            query: &r.query,
            keep: &r.keep,
            from: (kind == RuleKind::Retention).then_some(if r.from_date { "date" } else { "received" }),
            reason: &r.reason,
            by: &r.by,
            at: rfc3339(r.at),
        })
        .collect();
    if output.json() {
        for l in &lines {
            println!("{}", serde_json::to_string(l)?);
        }
        return Ok(());
    }
    if lines.is_empty() {
        eprintln!(
            "no {}s{}",
            kind.name(),
            if kind == RuleKind::Retention {
                " (everything is kept forever)"
            } else {
                ""
            }
        );
    }
    for l in &lines {
        match kind {
            RuleKind::Retention => println!(
                "{}: keep {} from {} what matches {:?} (set by {} at {})",
                l.name,
                l.keep,
                l.from.unwrap_or("received"),
                l.query,
                l.by,
                l.at
            ),
            RuleKind::Hold => println!(
                "{}: holds what matches {:?}{} (placed by {} at {})",
                l.name,
                l.query,
                if l.reason.is_empty() {
                    String::new()
                } else {
                    format!(", because {:?}", l.reason)
                },
                l.by,
                l.at
            ),
        }
    }
    Ok(())
}

pub fn retention_cmd(cli: &Cli, cmd: &RetentionCommand) -> Result<ExitCode> {
    match cmd {
        RetentionCommand::Set(a) => {
            let archive = open_archive(cli, false)?;
            let from = match a.from {
                FromArg::Received => KeepFrom::Received,
                FromArg::Date => KeepFrom::Date,
            };
            retention::set_policy(&archive, &a.name, &a.query, &a.keep, from)
                .map_err(|e| super::UsageError(e.to_string()))?;
            println!(
                "retention policy {} set: keep {} what matches {:?}",
                a.name, a.keep, a.query
            );
        }
        RetentionCommand::List(a) => {
            let archive = open_archive_read_only(cli)?;
            print_rules(RuleKind::Retention, &archive.rules(RuleKind::Retention)?, &a.output)?;
        }
        RetentionCommand::Remove(a) => {
            let archive = open_archive(cli, false)?;
            archive.remove_rule(RuleKind::Retention, &a.name)?;
            println!("retention policy {} removed", a.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn hold_cmd(cli: &Cli, cmd: &HoldCommand) -> Result<ExitCode> {
    match cmd {
        HoldCommand::Add(a) => {
            let archive = open_archive(cli, false)?;
            retention::add_hold(&archive, &a.name, &a.query, &a.reason, &mailvault::identity::os_user())
                .map_err(|e| super::UsageError(e.to_string()))?;
            println!("legal hold {} placed on what matches {:?}", a.name, a.query);
        }
        HoldCommand::List(a) => {
            let archive = open_archive_read_only(cli)?;
            print_rules(RuleKind::Hold, &archive.rules(RuleKind::Hold)?, &a.output)?;
        }
        HoldCommand::Release(a) => {
            let archive = open_archive(cli, false)?;
            archive.remove_rule(RuleKind::Hold, &a.name)?;
            println!("legal hold {} released", a.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct PurgeArgs {
    /// List what would be removed, and why, without removing anything
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    output: Output,
}

pub fn purge(cli: &Cli, ui: &Ui, a: &PurgeArgs) -> Result<ExitCode> {
    let archive = open_archive(cli, false)?;
    let mut index = super::search::updated_index(&archive, ui)?;
    // The tags the holds and policies name.
    super::search::with_holds_and_tags(&mut index, &archive, &[])?;
    // Holds and policies are weighed by the index's answers: every one of them
    // must be current, or a message moved under a hold could look unheld.
    let (covers, due) = (index.covers()?, archive.counters().next_seq);
    if covers < due {
        anyhow::bail!(
            "the search index of {} is behind the archive ({covers} of {due} changes; another mailvault may be \
             updating it): nothing purged; try again when it is done",
            archive.dir().display()
        );
    }
    let now = retention::now();
    let plan = retention::plan(&archive, &index, now).context("weighing retention")?;
    drop(index);
    let removed = if a.dry_run {
        None
    } else {
        let expired: Vec<(MessageId, Expiry)> = plan
            .expired
            .iter()
            .map(|e| {
                let why = Expiry {
                    policy: e.policy.clone(),
                    since: e.since,
                    weighed_at: now,
                };
                (e.id, why)
            })
            .collect();
        let pb = ui.progress(Some(expired.len() as u64), "purging");
        let r = archive
            .purge(&expired, |n| pb.set_position(n))
            .with_context(|| format!("purging archive {}", archive.dir().display()))?;
        pb.finish_and_clear();
        // The index forgets the removed messages now, not at the next search.
        super::search::updated_index(&archive, ui)?;
        Some(r)
    };
    let out = PurgeOutput {
        dry_run: a.dry_run,
        plan,
        removed,
    };
    if a.output.json() {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        print_purge(&out);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_purge(out: &PurgeOutput) {
    for e in &out.plan.expired {
        println!(
            "{}  expired {} under policy {}",
            e.id.to_hex(),
            rfc3339(e.since),
            e.policy
        );
    }
    let held = if out.plan.held_past_retention > 0 {
        format!(
            "; {} kept by legal holds",
            plural(
                out.plan.held_past_retention,
                "message past retention",
                "messages past retention"
            )
        )
    } else {
        String::new()
    };
    match &out.removed {
        None => println!(
            "dry run: {} would be removed ({} covered by policies){held}",
            plural(out.plan.expired.len() as u64, "message", "messages"),
            out.plan.covered
        ),
        Some(r) => println!(
            "purged {} ({}), {}, {}{held}; run `mailvault compact` to reclaim their space",
            plural(r.messages, "message", "messages"),
            human_bytes(r.raw_bytes),
            plural(r.placements, "placement", "placements"),
            plural(r.parts, "part", "parts"),
        ),
    }
}

#[derive(Args, Debug)]
pub struct AttestArgs {
    /// Where to write the checkpoint (JSON); keep it away from the archive
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// An exported checkpoint (`attest`): enough to prove later, with `verify --chain
/// --against FILE`, that the archive still extends this history.
#[derive(serde::Serialize, serde::Deserialize)]
struct Attestation {
    format: String,
    archive: PathBuf,
    count: u64,
    head: String,
    /// Unix seconds, and the same as RFC 3339.
    at: i64,
    at_text: String,
    signature: String,
    public_key: String,
}

const ATTESTATION_FORMAT: &str = "mailvault-attestation-v1";

pub fn attest(cli: &Cli, a: &AttestArgs) -> Result<ExitCode> {
    let archive = open_archive_read_only(cli)?;
    let Some((c, public)) = archive.latest_checkpoint()? else {
        anyhow::bail!(
            "archive {} has no signed checkpoint yet (format {}: open it for writing once to start its change log)",
            archive.dir().display(),
            archive.format_version()
        );
    };
    let att = Attestation {
        format: ATTESTATION_FORMAT.into(),
        archive: std::path::absolute(archive.dir())?,
        count: c.count,
        head: c.head.to_hex(),
        at: c.at,
        at_text: rfc3339(c.at),
        signature: hex(&c.signature),
        public_key: hex(&public),
    };
    std::fs::write(&a.out, serde_json::to_string_pretty(&att)? + "\n")
        .with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "checkpoint after {} written to {} (head {})",
        plural(c.count, "change", "changes"),
        a.out.display(),
        att.head
    );
    Ok(ExitCode::SUCCESS)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Reads an `attest` file.
pub fn read_attestation(path: &Path) -> Result<mailvault::archive::Attested> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let att: Attestation =
        serde_json::from_str(&text).with_context(|| format!("{} is not an attestation", path.display()))?;
    if att.format != ATTESTATION_FORMAT {
        anyhow::bail!(
            "{}: format {:?} is not {ATTESTATION_FORMAT}",
            path.display(),
            att.format
        );
    }
    let bad = |what: &str| anyhow::anyhow!("{}: {what} is malformed", path.display());
    Ok(mailvault::archive::Attested {
        checkpoint: mailvault::evidence::CheckpointRecord {
            count: att.count,
            head: Hash32(unhex(&att.head).ok_or_else(|| bad("head"))?),
            at: att.at,
            signature: unhex(&att.signature).ok_or_else(|| bad("signature"))?,
        },
        public_key: unhex(&att.public_key).ok_or_else(|| bad("public_key"))?,
    })
}

/// `verify --chain [--against FILE]`: prints what it found (unless `json`).
pub fn verify_chain(archive: &Archive, against: Option<&Path>, json: bool) -> Result<mailvault::archive::ChainSummary> {
    let attested = against.map(read_attestation).transpose()?;
    let key = mailvault::archive::changelog::key_path(archive.dir())?;
    let r = archive.verify_chain(attested.as_ref(), Some(&key))?.summary();
    if !json {
        for p in &r.problems {
            println!("{p}");
        }
        println!(
            "change log: {}, {} verified, {} accounted for{}: {}",
            plural(r.records, "record", "records"),
            plural(r.checkpoints, "signed checkpoint", "signed checkpoints"),
            plural(r.messages, "message", "messages"),
            if r.against_checked {
                " and the attested checkpoint extended"
            } else {
                ""
            },
            if r.problems.is_empty() {
                "clean".to_string()
            } else {
                plural(r.problems.len() as u64, "problem", "problems")
            }
        );
    }
    Ok(r)
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only reads at or after this time (RFC 3339, a date, or an age such as 7d)
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Only reads by this user
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    #[command(flatten)]
    output: Output,
}

/// `--since`: RFC 3339, a date (UTC midnight), or an age (`30m`, `12h`, `7d`).
fn parse_since(text: &str, now: chrono::DateTime<chrono::Utc>) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    if let Ok(age) = humantime::parse_duration(text) {
        if let Ok(age) = chrono::Duration::from_std(age) {
            return Ok(now - age);
        }
    }
    Err(super::UsageError(format!(
        "--since {text:?}: give an RFC 3339 time, a date (2026-01-31) or an age (7d, 12h)"
    ))
    .into())
}

pub fn audit(cli: &Cli, a: &AuditArgs) -> Result<ExitCode> {
    let dir = super::existing_archive_dir(cli)?;
    let since = a
        .since
        .as_deref()
        .map(|s| parse_since(s, chrono::Utc::now()))
        .transpose()?;
    let keys = super::secret::keys(&cli.secret, &dir)?;
    let log = access::read(&dir, keys.as_deref().map(|k| &k.log))?;
    let total = log.entries.len() as u64;
    let entries: Vec<access::AccessEntry> = log
        .entries
        .into_iter()
        .filter(|e| a.user.as_ref().is_none_or(|u| *u == e.user))
        .filter(|e| since.is_none_or(|s| chrono::DateTime::parse_from_rfc3339(&e.at).is_ok_and(|t| t >= s)))
        .collect();
    let out = AuditOutput {
        entries,
        total,
        problems: log.problems,
    };
    if a.output.json() {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        for e in &out.entries {
            let what = match (&e.query, e.ids.as_slice()) {
                (Some(q), _) => format!("query {q:?}"),
                (None, [one]) => one.clone(),
                (None, ids) => plural(ids.len() as u64, "message", "messages"),
            };
            println!("{}  {}  {:?}  {what}  ({})", e.at, e.user, e.action, e.count);
        }
        for p in &out.problems {
            println!("{p}");
        }
        println!(
            "{} of {} shown; chain {}",
            out.entries.len(),
            plural(out.total, "read", "reads"),
            if out.problems.is_empty() { "intact" } else { "BROKEN" }
        );
    }
    Ok(if out.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
