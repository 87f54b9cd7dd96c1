//! Attachment text benchmark: index build rate, index size and search latency with
//! the text inside attachments extracted and without (`reindex
//! --no-attachment-text`), on the main set (16,276 messages, whose attachments are
//! mostly patches, logs and pictures) and on an attachment-heavy set: 2,400
//! messages each carrying one to three of the documents LibreOffice, pandoc,
//! Ghostscript and zip made for the tests (`tests/data/documents/`: PDF, DOCX,
//! XLSX, PPTX, ODT, ODS, ODP, RTF, HTML, text, CSV, ZIP), each message with its own
//! words so no two are alike. The main set must still index at ≥ 3,000 msg/s with
//! extraction on.
//!
//! `cargo bench --bench attachment_text`.

mod common;
#[path = "../tests/common/documents.rs"]
mod documents;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use common::{corpus_root, du, import_main_set, run_measured, search_latencies, QUERIES};

const HEAVY_MESSAGES: usize = 2_400;

/// Queries on the attachment-heavy set: words only in attachments, phrases in
/// them, and ordinary terms.
const HEAVY_QUERIES: &[&str] = &[
    "quillorbit",
    "att:marbletusk",
    "att:\"payable within thirty days\"",
    "fennelgrid OR tundrabell",
    "att:glacierpoppy",
    "att:ordinary",
    "subject:batch",
    "from:sender7",
    "has:attachment date:2021",
    "velvetcomet copperlynx",
];

/// Writes the attachment-heavy mbox; returns its path and size.
fn heavy_set(dir: &Path) -> (PathBuf, u64) {
    let docs = documents::dir();
    let bodies: Vec<(String, String, String)> = documents::DOCUMENTS
        .iter()
        .map(|(name, mime, _)| {
            let b = std::fs::read(docs.join(name)).unwrap();
            let mut wrapped = String::new();
            for chunk in base64::engine::general_purpose::STANDARD
                .encode(b)
                .as_bytes()
                .chunks(76)
            {
                wrapped.push_str(std::str::from_utf8(chunk).unwrap());
                wrapped.push_str("\r\n");
            }
            (name.to_string(), mime.to_string(), wrapped)
        })
        .collect();
    let mut out = String::new();
    for i in 0..HEAVY_MESSAGES {
        let day = 1 + i % 28;
        let _ = write!(
            out,
            "From sender{s}@example.org Mon Mar  1 09:00:00 2021\r\nFrom: Sender {s} <sender{s}@example.org>\r\n\
             To: team@example.org\r\nSubject: Batch {i} documents\r\nDate: Mon, {day} Mar 2021 09:00:00 +0000\r\n\
             Message-ID: <heavy-{i}@bench.mailvault.test>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\nContent-Type: text/plain\r\n\r\n\
             Batch {i}: the documents for item {i} are attached.\r\n",
            s = i % 50
        );
        for k in 0..1 + i % 3 {
            let (name, mime, b64) = &bodies[(i * 7 + k * 5) % bodies.len()];
            let _ = write!(
                out,
                "--b{i}\r\nContent-Type: {mime}; name=\"{name}\"\r\nContent-Disposition: attachment; \
                 filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}"
            );
        }
        let _ = write!(out, "--b{i}--\r\n\r\n");
    }
    let path = dir.join("heavy.mbox");
    std::fs::write(&path, &out).unwrap();
    (path, out.len() as u64)
}

struct Build {
    took: Duration,
    peak_rss: u64,
    index_bytes: u64,
}

fn build(archive: &Path, attachment_text: bool) -> Build {
    let mut args = vec!["-q", "reindex"];
    if !attachment_text {
        args.push("--no-attachment-text");
    }
    let (took, peak_rss, _) = run_measured(&args, archive);
    Build {
        took,
        peak_rss,
        index_bytes: du(&archive.join("index")),
    }
}

fn report(name: &str, archive: &Path, messages: u64, raw: u64, queries: &[&str]) -> (f64, f64) {
    println!(
        "\nattachment_text: {name}: {messages} messages, {:.1} MB raw",
        raw as f64 / 1e6
    );
    let mut rates = Vec::new();
    for on in [false, true] {
        let b = build(archive, on);
        let (p50, p99) = search_latencies(archive, queries);
        let rate = messages as f64 / b.took.as_secs_f64();
        rates.push(rate);
        println!(
            "  extraction {:<3}  index build {:.2} s  {:>6.0} msg/s  peak RSS {:>4.0} MB  index {:>6.1} MB  \
             search p50 {:.1} ms  p99 {:.1} ms ({} queries x 5, whole process)",
            if on { "on" } else { "off" },
            b.took.as_secs_f64(),
            rate,
            b.peak_rss as f64 / 1e6,
            b.index_bytes as f64 / 1e6,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            queries.len()
        );
    }
    println!("  extraction on / off: {:.2}x the build time", rates[0] / rates[1]);
    (rates[0], rates[1])
}

fn main() {
    let work = tempfile::tempdir().unwrap();
    let stats = |a: &Path| {
        let (_, _, out) = run_measured(&["stats", "--format", "json"], a);
        let v = common::json(&out);
        (v["messages"].as_u64().unwrap(), v["raw_bytes"].as_u64().unwrap(), v)
    };

    let heavy = work.path().join("heavy");
    let (mbox, _) = heavy_set(work.path());
    run_measured(
        &[
            "-q",
            "import",
            "--no-index",
            "--account",
            "heavy",
            mbox.to_str().unwrap(),
        ],
        &heavy,
    );
    let (n, raw, _) = stats(&heavy);
    report("attachment-heavy set", &heavy, n, raw, HEAVY_QUERIES);
    let (_, _, v) = stats(&heavy);
    println!("  extraction counts   {}", v["extraction"]);

    let Some(root) = corpus_root() else {
        println!("attachment_text: no corpus (../shared/corpus or MAILVAULT_CORPUS); main set skipped");
        return;
    };
    let main = work.path().join("main");
    import_main_set(&root, &main);
    let (n, raw, _) = stats(&main);
    let (_, on) = report("main set", &main, n, raw, &QUERIES);
    let (_, _, v) = stats(&main);
    println!("  extraction counts   {}", v["extraction"]);
    println!(
        "  main set with extraction: {on:.0} msg/s ({} the 3,000 msg/s floor)",
        if on >= 3000.0 { "above" } else { "BELOW" }
    );
}
