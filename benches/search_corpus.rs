//! Search benchmark: index build rate and size on the main set (16,276 messages) and
//! on a ~114k-message archive (the main set plus six copies whose headers differ so
//! they do not deduplicate), and whole-process `mailvault search` latency p50/p99
//! over a fixed list of realistic queries, warm cache.
//!
//! `cargo bench --bench search_corpus`; `MAILVAULT_BENCH_COPIES` (default 6) sets the
//! number of copies; 0 skips the large archive.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{corpus_root, du, run_measured, time_run, FOLDERS};
use mailvault::source::{read_paths, Event, LocalOptions};

const QUERIES: [&str; 44] = [
    "from:sherri.sera@enron.com",
    "from:skilling",
    "to:jeff",
    "subject:meeting",
    "subject:\"conference call\"",
    "body:energy",
    "enron",
    "california power",
    "\"natural gas\"",
    "usrp",
    "b210",
    "uhd",
    "rfnoc",
    "fpga timing",
    "linux",
    "rpm",
    "spamassassin",
    "\"free money\"",
    "mortgage",
    "has:attachment",
    "filename:pdf",
    "mime:image/png",
    "date:2001",
    "date:2002-08",
    "after:2020 before:2021",
    "size:>1M",
    "size:<2k",
    "list:usrp-users",
    "list:ilug.linux.ie",
    "folder:inbox",
    "x310 OR n210",
    "(gps OR gpsdo) -spam",
    "subject:re from:enron.com",
    "python",
    "gnuradio",
    "dpdk",
    "\"sample rate\"",
    "ettus",
    "\"time source\"",
    "kernel AND driver",
    "NOT linux date:2002",
    "has:attachment date:2020",
    "subject:help",
    "overflow",
];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn latencies(archive: &Path) -> (Duration, Duration) {
    for q in QUERIES {
        time_run(archive, &["search", "-q", "--format", "ids", q]); // warm up
    }
    let mut times = Vec::new();
    for _ in 0..5 {
        for q in QUERIES {
            times.push(time_run(
                archive,
                &["search", "-q", "--format", "ids", "--limit", "20", q],
            ));
        }
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

fn report(name: &str, archive: &Path, messages: u64, raw: u64) {
    let (t, rss, _) = run_measured(&["reindex", "-q"], archive);
    let index = du(&archive.join("index"));
    let (p50, p99) = latencies(archive);
    println!("\nsearch_corpus: {name}");
    println!("  messages            {messages} ({:.1} MB raw)", raw as f64 / 1e6);
    println!(
        "  index build         {:.2} s  {:.0} msg/s  peak RSS {:.0} MB",
        t.as_secs_f64(),
        messages as f64 / t.as_secs_f64(),
        rss as f64 / 1e6
    );
    println!(
        "  index size          {:.1} MB = {:.1}% of raw",
        index as f64 / 1e6,
        index as f64 * 100.0 / raw as f64
    );
    println!(
        "  search latency      p50 {:.1} ms  p99 {:.1} ms  ({} queries x 5, whole process, warm)",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        QUERIES.len()
    );
}

/// Writes `copies` mbox files holding every main-set message with one added header
/// (`X-Bench-Copy: k`), so that each copy is new to the archive.
fn write_copies(root: &Path, dir: &Path, copies: usize) -> (u64, u64) {
    let paths: Vec<PathBuf> = FOLDERS.iter().map(|f| root.join(f)).collect();
    let mut msgs = Vec::new();
    read_paths(&paths, &LocalOptions::default(), &mut |ev| {
        if let Event::Message(m) = ev {
            msgs.push(m.raw);
        }
        Ok(())
    })
    .unwrap();
    let (mut n, mut bytes) = (0, 0);
    for k in 1..=copies {
        let mut f = std::io::BufWriter::new(fs::File::create(dir.join(format!("copy{k}.mbox"))).unwrap());
        for raw in &msgs {
            let mut m = format!("X-Bench-Copy: {k}\r\n").into_bytes();
            m.extend_from_slice(raw);
            mailvault::source::mbox::write_message(&mut f, &m, Some(1_600_000_000)).unwrap();
            n += 1;
            bytes += m.len() as u64;
        }
        f.flush().unwrap();
    }
    (n, bytes)
}

fn main() {
    let Some(root) = corpus_root() else {
        eprintln!("search_corpus: no corpus (set MAILVAULT_CORPUS or provide ../shared/corpus); nothing measured");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let mut args = vec!["import", "-q", "--no-index"];
    let folders: Vec<String> = FOLDERS
        .iter()
        .map(|f| root.join(f).to_string_lossy().into_owned())
        .collect();
    args.extend(folders.iter().map(String::as_str));
    run_measured(&args, &archive);
    let raw: u64 = FOLDERS.iter().map(|f| du(&root.join(f))).sum();
    let messages = common::json(&run_measured(&["stats", "--json"], &archive).2)["messages"]
        .as_u64()
        .unwrap();
    report("main set", &archive, messages, raw);

    let copies: usize = std::env::var("MAILVAULT_BENCH_COPIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    if copies > 0 {
        let dir = tmp.path().join("copies");
        fs::create_dir_all(&dir).unwrap();
        let t = Instant::now();
        let (n, bytes) = write_copies(&root, &dir, copies);
        eprintln!("wrote {n} copied messages in {:?}", t.elapsed());
        run_measured(
            &[
                "import",
                "-q",
                "--no-index",
                "--account",
                "copies",
                dir.to_str().unwrap(),
            ],
            &archive,
        );
        fs::remove_dir_all(&dir).ok();
        let messages = common::json(&run_measured(&["stats", "--json"], &archive).2)["messages"]
            .as_u64()
            .unwrap();
        report(
            &format!("main set + {copies} altered copies"),
            &archive,
            messages,
            raw + bytes,
        );
    }
}
