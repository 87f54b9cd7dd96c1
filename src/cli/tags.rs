//! `mailvault tag`: add and remove user tags on the messages a query matches, or
//! list the tags in use.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use super::{open_archive, Cli, Ui};

#[derive(Args, Debug)]
pub struct TagArgs {
    /// What to change: +TAG adds the tag, -TAG removes it (several at once); a tag
    /// is 1 to 64 letters, digits and - _ . : / @ +, kept in lower case
    #[arg(
        value_name = "+TAG|-TAG",
        allow_hyphen_values = true,
        value_terminator = "--",
        required_unless_present = "list"
    )]
    changes: Vec<String>,
    /// The messages to change, as a search query, after `--` (`*` for all)
    #[arg(value_name = "QUERY", allow_hyphen_values = true, required_unless_present = "list")]
    query: Vec<String>,
    /// List every tag in use and how many messages carry it
    #[arg(long, conflicts_with_all = ["changes", "query"])]
    list: bool,
}

pub fn tag(cli: &Cli, ui: &Ui, a: &TagArgs) -> Result<ExitCode> {
    if a.list {
        return list(cli);
    }
    let changes = mailvault::tags::parse_changes(&a.changes)?;
    let q = a.query.join(" ");
    let archive = open_archive(cli, false)?;
    let t = Instant::now();
    let mut idx = super::search::updated_index(&archive, ui)?;
    let ids = super::search::matching(&mut idx, &archive, &q).with_context(|| format!("searching {q:?}"))?;
    let changed = archive
        .change_tags(&ids, &changes)
        .with_context(|| format!("tagging the {} messages matching {q:?}", ids.len()))?;
    println!(
        "{} messages match {q:?}; {changed} changed ({}) in {:.2} s",
        ids.len(),
        a.changes.join(" "),
        t.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn list(cli: &Cli) -> Result<ExitCode> {
    let archive = super::open_archive_read_only(cli)?;
    let counts = archive.tag_counts()?;
    if counts.is_empty() {
        eprintln!("no tags");
    }
    for (tag, n) in counts {
        println!("{n:>8}  {tag}");
    }
    Ok(ExitCode::SUCCESS)
}
