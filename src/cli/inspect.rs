//! `show`, `stats` and `verify`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use mailvault::access::Action;
use mailvault::mime;

use super::{human_bytes, open_archive_read_only, Cli, Ui};

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Message id, or an unambiguous prefix of at least 4 hex characters
    #[arg(required_unless_present_any = ["query", "thread"])]
    id: Option<String>,
    /// Show every message of this thread (its id, as `search --threads` and
    /// search results show it), oldest first
    #[arg(long, value_name = "THREAD", conflicts_with_all = ["id", "query", "raw", "headers", "extraction"])]
    thread: Option<String>,
    /// Show the one message matching this search query instead
    #[arg(long, value_name = "QUERY", conflicts_with = "id")]
    query: Option<String>,
    /// The message's bytes exactly as archived, instead of the readable form
    #[arg(long)]
    raw: bool,
    /// Only the header section, as archived
    #[arg(long, conflicts_with = "raw")]
    headers: bool,
    /// What text extraction makes of each attachment: format, outcome, text
    /// length, time, and why it failed
    #[arg(long, conflicts_with_all = ["raw", "headers"])]
    extraction: bool,
}

pub fn show(cli: &Cli, ui: &Ui, a: &ShowArgs) -> Result<ExitCode> {
    let archive = open_archive_read_only(cli)?;
    if let Some(thread) = &a.thread {
        return show_thread(&archive, ui, thread);
    }
    let id = match (&a.id, &a.query) {
        (Some(id), _) => archive.resolve(id)?,
        (None, Some(q)) => {
            let mut idx = super::search::updated_index(&archive, ui)?;
            let ids = super::search::matching(&mut idx, &archive, q)?;
            match ids.as_slice() {
                [one] => *one,
                [] => anyhow::bail!("no message matches {q:?}"),
                many => anyhow::bail!(
                    "{} messages match {q:?} (e.g. {}); narrow the query, or use `export --query`",
                    many.len(),
                    many.iter().take(3).map(|i| i.short(12)).collect::<Vec<_>>().join(", ")
                ),
            }
        }
        (None, None) => anyhow::bail!("give a message id or --query"),
    };
    super::compliance::log_access(
        archive.dir(),
        archive.access_log_key(),
        Action::Show,
        a.query.as_deref(),
        &[id],
        1,
    )?;
    let raw = archive.get_raw(&id)?;
    let mut out = std::io::stdout().lock();
    if a.extraction {
        out.write_all(render_extraction(&raw).as_bytes())?;
    } else if a.raw || a.headers {
        let end = if a.headers {
            mime::body_start(&raw).unwrap_or(raw.len())
        } else {
            raw.len()
        };
        out.write_all(&raw[..end])?;
    } else {
        let mut folders: Vec<String> = archive
            .placements_of(&id)?
            .iter()
            .map(|p| format!("{}: {}", p.key.account, p.key.mailbox))
            .collect();
        let held = holds_of(&archive, &id, ui)?;
        if !held.is_empty() {
            folders.push(format!("legal hold: {}", held.join(", ")));
        }
        let tags = archive.tags_of(&id)?;
        if !tags.is_empty() {
            folders.push(format!(
                "tags: {}",
                tags.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        out.write_all(render_readable(&mime::readable::readable(&raw), &id.to_hex(), &folders, ui).as_bytes())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `show --thread`: each message of the thread in its readable form, oldest
/// first, under a line saying which of how many it is.
fn show_thread(archive: &mailvault::archive::Archive, ui: &Ui, thread: &str) -> Result<ExitCode> {
    if !mailvault::thread::is_key(thread) {
        anyhow::bail!("{thread:?} is not a thread id (16 hex digits, as `search --threads` shows)");
    }
    let idx = super::search::updated_index(archive, ui)?;
    let hits = idx.thread_messages(thread)?;
    if hits.is_empty() {
        anyhow::bail!("no thread {thread} in this archive");
    }
    let ids: Vec<_> = hits
        .iter()
        .filter_map(|h| mailvault::model::Hash32::from_hex(&h.id))
        .collect();
    let query = format!("thread:{thread}");
    super::compliance::log_access(
        archive.dir(),
        archive.access_log_key(),
        Action::Show,
        Some(&query),
        &ids,
        ids.len() as u64,
    )?;
    let mut out = std::io::stdout().lock();
    for (n, id) in ids.iter().enumerate() {
        let rule = format!("── message {} of {} in thread {thread} ──", n + 1, ids.len());
        writeln!(out, "{}", ui.bold(&rule))?;
        let raw = archive.get_raw(id)?;
        let folders: Vec<String> = archive
            .placements_of(id)?
            .iter()
            .map(|p| format!("{}: {}", p.key.account, p.key.mailbox))
            .collect();
        out.write_all(render_readable(&mime::readable::readable(&raw), &id.to_hex(), &folders, ui).as_bytes())?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Header lines, the message's id and folders, a blank line, the text, and the
/// attachments.
fn render_readable(r: &mime::readable::Readable, id: &str, folders: &[String], ui: &Ui) -> String {
    let mut s = String::new();
    let mut field = |name: &str, value: &str| {
        let label = format!("{name}:");
        s.push_str(&format!("{} {value}\n", ui.bold(&format!("{label:<8}"))));
    };
    for (name, value) in &r.headers {
        field(name, value);
    }
    field("Id", id);
    if !folders.is_empty() {
        field("Folders", &folders.join(", "));
    }
    s.push('\n');
    s.push_str(&r.text);
    s.push('\n');
    if !r.attachments.is_empty() {
        s.push_str(&format!(
            "\n{}\n",
            ui.bold(&format!("{} attached:", r.attachments.len()))
        ));
        for a in &r.attachments {
            s.push_str(&format!(
                "  {}  ({}, {})\n",
                a.name,
                a.content_type,
                human_bytes(a.size as u64)
            ));
        }
    }
    s
}

/// One line per attachment (and member inside one): what extraction made of it.
fn render_extraction(raw: &[u8]) -> String {
    use mailvault::extract::{self, Budget, Outcome};
    let Some(m) = mail_parser::MessageParser::default().parse(raw) else {
        return "the message could not be parsed: nothing extracted\n".into();
    };
    let e = extract::message(&m, &Budget::default());
    if e.parts.is_empty() {
        return "no attachments\n".into();
    }
    let mut s = String::new();
    for p in &e.parts {
        let kind = p.kind.map_or("-", |k| k.as_str());
        let what = match &p.outcome {
            Outcome::Text { bytes, truncated } => format!(
                "extracted {}{}",
                human_bytes(*bytes as u64),
                if *truncated { " (cut at the text budget)" } else { "" }
            ),
            Outcome::Skipped => "skipped: not a format we read".into(),
            Outcome::Failed(f) => format!("failed ({}): {f}", f.code()),
        };
        let mime = if p.mime.is_empty() { "-" } else { &p.mime };
        s.push_str(&format!(
            "{}  [{mime}, read as {kind}]  {what}  in {:.1?}\n",
            p.path, p.took
        ));
    }
    s.push_str(&format!("{} of text in all\n", human_bytes(e.text.len() as u64)));
    s
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    output: super::Output,
}

pub fn stats(cli: &Cli, a: &StatsArgs) -> Result<ExitCode> {
    let archive = open_archive_read_only(cli)?;
    let c = archive.counters();
    let disk = archive.disk_bytes();
    let saved = c.dedup_saved_bytes();
    let packs = archive.pack_records();
    let pack_bytes: u64 = packs.iter().map(|(_, r)| r.size).sum();
    let ratio = if c.raw_bytes == 0 {
        0.0
    } else {
        c.stored_bytes as f64 / c.raw_bytes as f64
    };
    if a.output.json() {
        let v = mailvault::output::StatsReport {
            archive: archive.dir().to_path_buf(),
            format_version: archive.format_version(),
            messages: c.messages,
            placements: c.placements,
            parts: c.parts,
            raw_bytes: c.raw_bytes,
            placement_raw_bytes: c.placement_raw_bytes,
            unique_bytes: c.unique_bytes,
            part_dedup_bytes: c.part_dedup_bytes,
            stored_bytes: c.stored_bytes,
            dedup_saved_bytes: saved,
            ratio,
            disk_bytes: disk,
            dictionaries: c.dictionaries,
            blob_store: archive.blob_store().describe(),
            packs: packs.len() as u64,
            pack_bytes,
            extraction: extraction_counts(&archive),
        };
        println!("{}", serde_json::to_string(&v)?);
    } else {
        let rows = [
            ("archive", archive.dir().display().to_string()),
            ("format version", archive.format_version().to_string()),
            ("messages", c.messages.to_string()),
            ("placements", c.placements.to_string()),
            ("parts", c.parts.to_string()),
            ("raw bytes", human_bytes(c.raw_bytes)),
            (
                "stored bytes",
                format!("{} ({:.1}% of raw)", human_bytes(c.stored_bytes), ratio * 100.0),
            ),
            ("saved by dedup", human_bytes(saved)),
            ("on disk", human_bytes(disk)),
            ("dictionaries", c.dictionaries.to_string()),
            (
                "packs",
                format!(
                    "{} ({}) in {}",
                    packs.len(),
                    human_bytes(pack_bytes),
                    archive.blob_store().describe()
                ),
            ),
        ];
        for (k, v) in rows {
            println!("{k:<16}{v}");
        }
        print_extraction(&extraction_counts(&archive));
    }
    Ok(ExitCode::SUCCESS)
}

/// Messages by what extraction made of their attachments, from the index (none
/// when the archive has no index of this version).
fn extraction_counts(archive: &mailvault::archive::Archive) -> Vec<mailvault::output::ExtractionCount> {
    let Ok(idx) = mailvault::index::MessageIndex::open_read_only(archive.dir(), archive.index_key()) else {
        return Vec::new();
    };
    idx.extraction_counts()
        .unwrap_or_default()
        .into_iter()
        .map(|(outcome, detail, messages)| mailvault::output::ExtractionCount {
            outcome,
            detail,
            messages,
        })
        .collect()
}

/// `attachments     extracted: pdf 12, docx 3; skipped: image-png 40; failed: corrupt 1`
fn print_extraction(counts: &[mailvault::output::ExtractionCount]) {
    if counts.is_empty() {
        return;
    }
    let mut groups: Vec<String> = Vec::new();
    for outcome in ["extracted", "skipped", "failed"] {
        let of: Vec<String> = counts
            .iter()
            .filter(|c| c.outcome == outcome)
            .map(|c| format!("{} {}", c.detail, c.messages))
            .collect();
        if !of.is_empty() {
            groups.push(format!("{outcome}: {}", of.join(", ")));
        }
    }
    println!("{:<16}{} (messages)", "attachments", groups.join("; "));
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Also prove the history: the change log's hash chain, its signed
    /// checkpoints, and that every message the archive holds was logged
    #[arg(long)]
    chain: bool,
    /// With --chain: a checkpoint exported by `attest` that the archive must
    /// still extend
    #[arg(long, value_name = "FILE", requires = "chain")]
    against: Option<std::path::PathBuf>,
    #[command(flatten)]
    output: super::Output,
}

pub fn verify(cli: &Cli, ui: &Ui, a: &VerifyArgs) -> Result<ExitCode> {
    let archive = open_archive_read_only(cli)?;
    let pb = ui.progress(Some(archive.counters().messages), "verifying");
    let r = archive.verify(|n| pb.set_position(n))?;
    pb.finish_and_clear();
    if a.chain {
        return verify_with_chain(&archive, &r, a);
    }
    if a.output.json() {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        print_verify(&r);
    }
    Ok(if r.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// Each problem, then `verified N messages, …: clean` (or how many problems).
fn print_verify(r: &mailvault::archive::VerifyReport) {
    for p in &r.problems {
        println!("{p}");
    }
    println!(
        "verified {} messages, {} parts, {} placements: {}",
        r.messages_checked,
        r.parts_checked,
        r.placements_checked,
        if r.is_clean() {
            "clean".to_string()
        } else {
            super::plural(r.problems.len() as u64, "problem", "problems")
        }
    );
}

/// `verify --chain`: the bytes, then the history; one report.
fn verify_with_chain(
    archive: &mailvault::archive::Archive,
    r: &mailvault::archive::VerifyReport,
    a: &VerifyArgs,
) -> Result<ExitCode> {
    let json = a.output.json();
    if !json {
        print_verify(r);
    }
    let chain = super::compliance::verify_chain(archive, a.against.as_deref(), json)?;
    let chain_clean = chain.problems.is_empty();
    if json {
        let mut with_chain = r.clone();
        with_chain.chain = Some(chain);
        println!("{}", serde_json::to_string(&with_chain)?);
    }
    Ok(if r.is_clean() && chain_clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// The legal holds that cover message `id`.
fn holds_of(archive: &mailvault::archive::Archive, id: &mailvault::model::MessageId, ui: &Ui) -> Result<Vec<String>> {
    if mailvault::retention::holds(archive)?.is_empty() {
        return Ok(Vec::new());
    }
    let mut idx = super::search::updated_index(archive, ui)?;
    super::search::with_holds_and_tags(&mut idx, archive, &[])?;
    Ok(idx.holds_of(id)?)
}
