//! `import` and `export`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;

use mailvault::archive::PlacementFilter;
use mailvault::export;
use mailvault::import::{import_paths, BatchLimits};
use mailvault::source::LocalOptions;

use mailvault::access::Action;

use super::choices::{ExportFormatArg, MboxFormatArg};

use super::{human_bytes, open_archive, Cli, Ui};

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// mbox files, maildirs, .eml files, or directories holding any of them
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Account name recorded on the placements
    #[arg(long, default_value = "local")]
    account: String,
    /// Put every message into this folder (default: derived from the path)
    #[arg(long)]
    folder: Option<String>,
    /// Quoting convention of mbox files (mboxo and mboxrd differ only on `>>From `)
    #[arg(long, value_enum, default_value_t = MboxFormatArg::Mboxrd)]
    mbox_format: MboxFormatArg,
    /// Follow symbolic links inside the directories named (loops are detected); by
    /// default they are skipped and reported. Paths named here are always followed
    #[arg(long)]
    follow_symlinks: bool,
    /// Import a file named here even when it does not look like mail (no header
    /// section): it is stored as it is
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    output: super::Output,
    /// Do not update the search index now (the next search catches up)
    #[arg(long)]
    no_index: bool,
}

pub fn import(cli: &Cli, ui: &Ui, a: &ImportArgs) -> Result<ExitCode> {
    for p in &a.paths {
        if !p.exists() {
            bail!("{}: no such file or directory", p.display());
        }
    }
    let mut archive = open_archive(cli, true)?;
    let opts = LocalOptions {
        account: a.account.clone(),
        folder: a.folder.clone(),
        mbox_format: a.mbox_format.into(),
        follow_symlinks: a.follow_symlinks,
        force: a.force,
        ..Default::default()
    };
    let pb = ui.progress(None, "importing");
    let summary = import_paths(&mut archive, &a.paths, &opts, BatchLimits::default(), &mut |r| {
        pb.set_position(r.messages);
    })
    .with_context(|| format!("importing into {}", archive.dir().display()))?;
    pb.finish_and_clear();
    if !a.no_index {
        super::search::updated_index(&archive, ui)?;
    }
    if !ui.quiet {
        const SHOWN: usize = 20;
        for (path, why) in summary.skipped.iter().chain(&summary.warnings).take(SHOWN) {
            eprintln!("mailvault: {}: {why}", path.display());
        }
        let notes = summary.skipped.len() + summary.warnings.len();
        if notes > SHOWN {
            eprintln!("mailvault: … and {} more (-v logs every one)", notes - SHOWN);
        }
    }
    let r = &summary.report;
    if a.output.json() {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        let secs = summary.elapsed.as_secs_f64().max(1e-6);
        println!(
            "imported {} messages: {} new, {} duplicates, {} new placements, {} updated; {} in, {} stored; {:.0} msg/s, {:.1} MB/s in {:.2} s{}",
            r.messages,
            r.new_messages,
            r.duplicates,
            r.new_placements,
            r.updated_placements,
            human_bytes(r.bytes_in),
            human_bytes(r.stored_bytes),
            r.messages as f64 / secs,
            r.bytes_in as f64 / secs / 1e6,
            secs,
            if summary.skipped.is_empty() {
                String::new()
            } else {
                format!("; {} skipped", super::plural(summary.skipped.len() as u64, "file", "files"))
            }
        );
    }
    // A file the user named that was not imported fails the command, after the
    // rest was imported.
    for (path, why) in &summary.refused {
        eprintln!("mailvault: error: {}: {why}", path.display());
    }
    Ok(if summary.refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Output format
    #[arg(long, value_enum)]
    format: ExportFormatArg,
    /// Output directory (created if missing)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Only these accounts (repeatable)
    #[arg(long)]
    account: Vec<String>,
    /// Only these folders (repeatable)
    #[arg(long)]
    folder: Vec<String>,
    /// Only messages matching this search query
    #[arg(long, value_name = "QUERY")]
    query: Option<String>,
}

/// An account or folder named to `export` that the archive does not have is a
/// mistake (a typo would otherwise export nothing and exit 0).
fn refuse_unknown_names(archive: &mailvault::archive::Archive, accounts: &[String], folders: &[String]) -> Result<()> {
    let names = accounts
        .iter()
        .map(|n| ("account", n, vec![n.clone()], vec![]))
        .chain(folders.iter().map(|n| ("folder", n, vec![], vec![n.clone()])));
    for (what, name, accounts, mailboxes) in names {
        let filter = PlacementFilter {
            accounts,
            mailboxes,
            messages: None,
        };
        if archive.placements(&filter)?.is_empty() {
            bail!("the archive has no {what} named {name:?}; nothing exported");
        }
    }
    Ok(())
}

pub fn export(cli: &Cli, ui: &Ui, a: &ExportArgs) -> Result<ExitCode> {
    let archive = super::open_archive_read_only(cli)?;
    let matched = match &a.query {
        Some(q) => {
            let mut idx = super::search::updated_index(&archive, ui)?;
            Some(super::search::matching(&mut idx, &archive, q)?)
        }
        None => None,
    };
    refuse_unknown_names(&archive, &a.account, &a.folder)?;
    let what = super::compliance::describe_selection(a.query.as_deref(), &a.account, &a.folder);
    let ids = matched.as_deref().unwrap_or_default();
    let count = matched.as_ref().map_or(archive.counters().messages, |m| m.len() as u64);
    super::compliance::log_access(
        archive.dir(),
        archive.access_log_key(),
        Action::Export,
        Some(&what),
        ids,
        count,
    )?;
    let messages = matched.map(|m| m.into_iter().collect());
    let filter = PlacementFilter {
        accounts: a.account.clone(),
        mailboxes: a.folder.clone(),
        messages,
    };
    let pb = ui.progress(None, "exporting");
    let s = export::export(&archive, &filter, a.format.into(), &a.out, &mut |n| pb.set_position(n))?;
    pb.finish_and_clear();
    println!(
        "exported {} messages ({}) to {}",
        s.messages,
        human_bytes(s.bytes),
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
