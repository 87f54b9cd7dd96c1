//! `search` and `reindex`, and the index catch-up other commands share.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use mailvault::access::Action;
use mailvault::archive::{layout, Archive};
use mailvault::index::{IndexError, MessageIndex};

use super::{open_archive, open_archive_read_only, Cli, Ui};

/// Brings the index up to date with the archive (a no-op when it is). An index
/// that is up to date is opened without writing anything; one that is behind on
/// an archive the user cannot write is searched as it is, with a warning.
pub fn updated_index(archive: &Archive, ui: &Ui) -> Result<MessageIndex> {
    if let Ok(idx) = MessageIndex::open_read_only(archive.dir(), archive.index_key()) {
        if idx.covers()? >= archive.counters().next_seq {
            return Ok(idx);
        }
        if !mailvault::private::may_write(&archive.dir().join(mailvault::index::INDEX_DIR)) {
            tracing::warn!("the search index is behind the archive and this user may not update it; results may miss the newest messages");
            return Ok(idx);
        }
    }
    let idx = MessageIndex::open(archive.dir(), archive.index_key()).context("opening the search index")?;
    catch_up(idx, archive, ui)
}

/// Indexes what `idx` does not cover yet.
fn catch_up(mut idx: MessageIndex, archive: &Archive, ui: &Ui) -> Result<MessageIndex> {
    let behind = archive.counters().next_seq.saturating_sub(idx.covers()?);
    if behind > 0 {
        let pb = ui.progress(None, "indexing");
        let r = idx.catch_up(archive, &mut |n| pb.set_position(n));
        pb.finish_and_clear();
        match r {
            Ok(r) => tracing::info!(indexed = r.indexed, "search index caught up"),
            // Another mailvault is indexing right now: search what is indexed.
            Err(IndexError::Tantivy {
                source: tantivy::TantivyError::LockFailure(..),
                ..
            }) => {
                tracing::warn!("another mailvault process is updating the index; results may miss the newest messages")
            }
            Err(e) => return Err(e).context("updating the search index"),
        }
    }
    Ok(idx)
}

/// The ids of every message query `q` matches, holds and tags resolved.
pub fn matching(idx: &mut MessageIndex, archive: &Archive, q: &str) -> Result<Vec<mailvault::model::MessageId>> {
    let expr = mailvault::query::parse(q)?;
    with_holds_and_tags(idx, archive, &[&expr])?;
    Ok(idx.matching_expr(&expr)?.into_iter().map(|(id, _)| id).collect())
}

/// Gives `idx` the archive's legal holds (`is:held`, `hold:NAME`) and the
/// messages of the tags `queries`, the holds and the policies name (`tag:NAME`).
pub fn with_holds_and_tags(
    idx: &mut MessageIndex,
    archive: &Archive,
    queries: &[&mailvault::query::Expr],
) -> Result<()> {
    mailvault::retention::prepare_index(archive, idx, mailvault::retention::TagScope::Named(queries))
        .context("reading the archive's legal holds and tags")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Aligned columns for people
    Table,
    /// One JSON object per line
    Json,
    /// Message ids only, one per line
    Ids,
}

pub const QUERY_HELP: &str = "\
Query language:
  words, \"a phrase\"       subject, body, from, to, cc, attachment names and text
  from: to: cc: bcc:       names and addresses     subject: body: list: filename:
  att:word                 the text inside attachments (PDF, office files, ZIP, ...)
  msgid: folder: account:  mime:type/sub  flag:seen  has:attachment
  refs:ID                  replies to ID (named in In-Reply-To or References)
  thread:ID                every message of a thread (ID from search --threads)
  is:unread|read|flagged|answered|draft|deleted
  is:held  hold:NAME       under any legal hold, under the hold NAME
  date:2020-01-01..2020-06-30  date:2020  date:2020-03  after:2020  before:2021-06
  date:today  date:yesterday  date:2w..  after:3d  before:6m  (d, w, m, y back)
  size:>1M  size:<10k  size:1M..5M (k, M, G = 1024-based)
  AND, OR, NOT, -word, ( )   (AND is implied between terms)
Matching ignores case and accents; Chinese, Japanese and Korean text is matched by
character pairs, so words are found without spaces. Dates are UTC. `*` alone matches
every message.

Examples:
  mailvault search from:alice subject:invoice date:2021
  mailvault search --count '*'
  mailvault search --threads 'subject:budget'   then   mailvault show --thread ID
  mailvault search --format ids has:attachment size:>5M | xargs -n1 mailvault show
  mailvault search -- -press release";

#[derive(Args, Debug)]
#[command(after_long_help = QUERY_HELP)]
pub struct SearchArgs {
    /// The query; several arguments are joined with spaces. Options may come before
    /// or after it; a query that starts with `-` goes after `--`
    #[arg(required = true, value_name = "QUERY")]
    query: Vec<String>,
    /// Most results to print; 0 prints them all
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Print only how many messages match
    #[arg(long, conflicts_with_all = ["limit", "offset", "sort"])]
    count: bool,
    /// Results to skip
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// Result order
    #[arg(long, value_enum, default_value = "-date", allow_hyphen_values = true)]
    sort: super::choices::SortArg,
    /// Output for people (table), programs (json, one object per line; see
    /// schemas/output/) or other commands (ids)
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Same as --format json
    #[arg(long)]
    json: bool,
    /// One line per thread instead of per message: its dates, matching and
    /// total messages, participants, subject and thread id (`thread:ID`,
    /// `show --thread ID`); most recently active first. --limit and --offset
    /// count threads
    #[arg(long, conflicts_with_all = ["count", "sort"])]
    threads: bool,
}

/// The index of the archive named on the command line, brought up to date. When the
/// archive's sequence hint shows nothing new, RocksDB is not even opened: a search
/// then costs a few milliseconds.
pub fn fresh_index(cli: &Cli, ui: &Ui) -> Result<MessageIndex> {
    let dir = super::archive_dir(cli)?;
    if layout::check(&dir)
        .with_context(|| format!("opening archive {}", dir.display()))?
        .is_some()
    {
        if let Ok(idx) = MessageIndex::open_read_only(&dir, super::secret::index_key(&cli.secret, &dir)?) {
            if layout::read_seq_hint(&dir).is_some_and(|hint| idx.covers().is_ok_and(|c| c >= hint)) {
                return Ok(idx);
            }
        }
    }
    // The index is behind (or missing), or there is no archive: open the archive,
    // which fails with the usual "no archive" message when there is none.
    updated_index(&open_archive_read_only(cli)?, ui)
}

pub fn search(cli: &Cli, ui: &Ui, a: &SearchArgs) -> Result<ExitCode> {
    let q = a.query.join(" ");
    // A query that cannot be parsed is a usage error (exit 2), found before the
    // archive is opened.
    let format = if a.json { Format::Json } else { a.format };
    let expr = match mailvault::query::parse(&q) {
        Ok(e) => e,
        Err(e) => return Ok(super::report_error(&e.to_string(), 2, format == Format::Json)),
    };
    let t = std::time::Instant::now();
    let mut idx = fresh_index(cli, ui)?;
    let dir = super::archive_dir(cli)?;
    let keys = super::secret::keys(&cli.secret, &dir)?;
    let log_key = keys.as_deref().map(|k| &k.log);
    if expr.mentions_holds() || !expr.tag_names().is_empty() {
        with_holds_and_tags(&mut idx, &open_archive_read_only(cli)?, &[&expr])?;
    }
    let t_index = t.elapsed();
    tracing::debug!(query = %q, limit = a.limit, "search");
    if a.count {
        let n = idx.count_expr(&expr)?;
        super::compliance::log_access(&dir, log_key, Action::Search, Some(&q), &[], n as u64)?;
        match format {
            Format::Json => println!("{}", serde_json::json!({ "count": n })),
            _ => println!("{n}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let limit = if a.limit == 0 {
        idx.num_docs().max(1) as usize
    } else {
        a.limit
    };
    if a.threads {
        let (threads, total) = idx.threads(&expr, limit, a.offset)?;
        let ids: Vec<mailvault::model::MessageId> = threads
            .iter()
            .flat_map(|t| &t.ids)
            .filter_map(|id| mailvault::model::Hash32::from_hex(id))
            .collect();
        super::compliance::log_access(&dir, log_key, Action::Search, Some(&q), &ids, ids.len() as u64)?;
        print_threads(&threads, total, a.offset, format, ui)?;
        return Ok(ExitCode::SUCCESS);
    }
    let hits = idx.search_expr(&expr, a.sort.into(), limit, a.offset)?;
    let ids: Vec<mailvault::model::MessageId> = hits
        .iter()
        .filter_map(|h| mailvault::model::Hash32::from_hex(&h.id))
        .collect();
    super::compliance::log_access(&dir, log_key, Action::Search, Some(&q), &ids, ids.len() as u64)?;
    tracing::debug!(
        index_us = t_index.as_micros() as u64,
        search_us = (t.elapsed() - t_index).as_micros() as u64,
        "search timings"
    );
    match format {
        Format::Json => {
            for h in &hits {
                println!("{}", serde_json::to_string(h)?);
            }
        }
        Format::Ids => {
            for h in &hits {
                println!("{}", h.id);
            }
        }
        Format::Table => {
            if hits.is_empty() {
                eprintln!("no messages match");
            } else {
                print_table(&hits, ui);
            }
            // Say when there is more than was shown (people; programs use --count).
            if hits.len() == limit || a.offset > 0 {
                let total = idx.count_expr(&expr)?;
                if total > hits.len() {
                    eprintln!(
                        "{} of {total} shown{}",
                        hits.len(),
                        if a.offset > 0 {
                            format!(" (from {})", a.offset + 1)
                        } else {
                            String::new()
                        }
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `search --threads`: a line (or JSON object, or id) per thread, and on
/// standard error how many more there are.
fn print_threads(
    threads: &[mailvault::index::conversations::ThreadSummary],
    total: usize,
    offset: usize,
    format: Format,
    ui: &Ui,
) -> Result<()> {
    use super::table::{columns, fit_end, output_width};
    match format {
        Format::Json => {
            for t in threads {
                println!("{}", serde_json::to_string(t)?);
            }
        }
        Format::Ids => {
            for t in threads {
                println!("{}", t.thread);
            }
        }
        Format::Table => {
            if threads.is_empty() {
                eprintln!("no messages match");
                return Ok(());
            }
            // DATES (23), COUNT (7), THREAD (16) and four gaps take 54 cells.
            let c = columns(output_width().saturating_sub(24));
            let header = format!(
                "{}  {}  {}  {}  THREAD",
                fit_end("DATES", 23),
                fit_end("COUNT", 7),
                fit_end("PARTICIPANTS", c.from + c.folder / 2),
                fit_end("SUBJECT", c.subject + c.folder - c.folder / 2)
            );
            println!("{}", ui.bold(&header));
            let day = |t: i64| {
                chrono::DateTime::from_timestamp(t, 0)
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default()
            };
            for t in threads {
                let dates = if day(t.first) == day(t.last) {
                    day(t.first)
                } else {
                    format!("{}..{}", day(t.first), day(t.last))
                };
                let mut people: Vec<String> = t.participants.iter().map(|p| short_name(p)).collect();
                if t.more_participants > 0 {
                    people.push(format!("+{}", t.more_participants));
                }
                println!(
                    "{}  {}  {}  {}  {}",
                    fit_end(&dates, 23),
                    fit_end(&format!("{}/{}", t.matched, t.messages), 7),
                    fit_end(&people.join(", "), c.from + c.folder / 2),
                    fit_end(
                        &t.subject.replace(['\r', '\n', '\t'], " "),
                        c.subject + c.folder - c.folder / 2
                    ),
                    t.thread
                );
            }
            if offset + threads.len() < total || offset > 0 {
                eprintln!("{} of {total} threads shown (from {})", threads.len(), offset + 1);
            }
        }
    }
    Ok(())
}

/// A participant as a table shows them: the name, else the address.
fn short_name(from: &str) -> String {
    match from.rsplit_once(" <") {
        Some((name, _)) if !name.trim().is_empty() => name.trim_matches('"').to_string(),
        _ => from.to_string(),
    }
}

/// DATE, FROM, SUBJECT, FOLDER (the first, ` +N` for more) and a short ID,
/// fitted to the terminal's width.
fn print_table(hits: &[mailvault::index::Hit], ui: &Ui) {
    use super::table::{columns, first_and_more, fit_end, output_width};
    let c = columns(output_width());
    let header = format!(
        "{}  {}  {}  {}  ID",
        fit_end("DATE", 10),
        fit_end("FROM", c.from),
        fit_end("SUBJECT", c.subject),
        fit_end("FOLDER", c.folder)
    );
    println!("{}", ui.bold(&header));
    for h in hits {
        let date = chrono::DateTime::from_timestamp(h.date, 0)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        println!(
            "{}  {}  {}  {}  {}",
            fit_end(&date, 10),
            fit_end(h.from.first().map_or("", String::as_str), c.from),
            fit_end(&h.subject.replace(['\r', '\n', '\t'], " "), c.subject),
            first_and_more(&h.folders, c.folder),
            &h.id[..12.min(h.id.len())]
        );
    }
}

#[derive(clap::Args, Debug)]
pub struct ReindexArgs {
    /// Leave out the text inside attachments (faster; `att:` and free words then
    /// find nothing in attachments), also for what is indexed later, until a
    /// reindex without this flag
    #[arg(long)]
    no_attachment_text: bool,
    /// Split the index into N shards (each message in one, by its id; searches
    /// ask every shard and merge); kept by later reindexes. Default: as many as
    /// the index has (one for a new index)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=mailvault::index::shard::MAX_SHARDS as i64))]
    shards: Option<u16>,
    /// Rebuild only shard K (from 0) of a split index; the others stay
    #[arg(long, value_name = "K", conflicts_with_all = ["shards", "no_attachment_text"])]
    shard: Option<usize>,
}

pub fn reindex(cli: &Cli, ui: &Ui, a: &ReindexArgs) -> Result<ExitCode> {
    let archive = open_archive(cli, false)?;
    let pb = ui.progress(Some(archive.counters().messages), "reindexing");
    let t = std::time::Instant::now();
    let mut progress = |n| pb.set_position(n);
    let (idx, r) = match a.shard {
        Some(k) => MessageIndex::rebuild_shard(&archive, k, &mut progress)
            .with_context(|| format!("rebuilding shard {k} of the search index"))?,
        None => MessageIndex::rebuild(
            &archive,
            !a.no_attachment_text,
            a.shards.map(usize::from),
            &mut progress,
        )
        .context("rebuilding the search index")?,
    };
    pb.finish_and_clear();
    let secs = t.elapsed().as_secs_f64().max(1e-6);
    let shards = match idx.shard_count() {
        1 => String::new(),
        n => format!(", {n} shards"),
    };
    println!(
        "reindexed {} messages ({} documents{shards}) in {:.2} s, {:.0} msg/s",
        r.indexed,
        idx.num_docs(),
        secs,
        r.indexed as f64 / secs
    );
    Ok(ExitCode::SUCCESS)
}
