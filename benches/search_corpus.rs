//! Search benchmark: index build rate and size on the main set (16,276 messages) and
//! on a ~114k-message archive (the main set plus six copies whose headers differ so
//! they do not deduplicate), and whole-process `mailvault search` latency p50/p99
//! over a fixed list of realistic queries, warm cache. Where `notmuch` or `mu` is
//! installed, it indexes the same main-set files and answers the queries that have an
//! equivalent in its language, and the ratios are printed.
//!
//! `cargo bench --bench search_corpus`; `MAILVAULT_BENCH_COPIES` (default 6) sets the
//! number of copies; 0 skips the large archive.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{
    bench_copies, corpus_root, du, import_copies, import_main_set, percentile, run_measured, search_latencies,
    time_run, FOLDERS, QUERIES,
};

/// Our query and its notmuch equivalent (notmuch has no size:, list: or msgid: on
/// these terms; `to:` there also matches Cc, so it is left out).
/// Shards the sharded index is measured with.
const SHARDS: usize = 4;

const NOTMUCH_QUERIES: [(&str, &str); 28] = [
    ("from:sherri.sera@enron.com", "from:sherri.sera@enron.com"),
    ("from:skilling", "from:skilling"),
    ("subject:meeting", "subject:meeting"),
    ("subject:\"conference call\"", "subject:\"conference call\""),
    ("body:energy", "body:energy"),
    ("enron", "enron"),
    ("california power", "california AND power"),
    ("\"natural gas\"", "\"natural gas\""),
    ("usrp", "usrp"),
    ("b210", "b210"),
    ("uhd", "uhd"),
    ("rfnoc", "rfnoc"),
    ("fpga timing", "fpga AND timing"),
    ("linux", "linux"),
    ("rpm", "rpm"),
    ("spamassassin", "spamassassin"),
    ("\"free money\"", "\"free money\""),
    ("mortgage", "mortgage"),
    ("date:2001", "date:2001-01-01..2001-12-31"),
    ("date:2002-08", "date:2002-08-01..2002-08-31"),
    ("after:2020 before:2021", "date:2020-01-01..2020-12-31"),
    ("x310 OR n210", "x310 OR n210"),
    ("python", "python"),
    ("gnuradio", "gnuradio"),
    ("dpdk", "dpdk"),
    ("\"sample rate\"", "\"sample rate\""),
    ("ettus", "ettus"),
    ("kernel AND driver", "kernel AND driver"),
];

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.is_file())
}

/// Runs another mail indexer and times it; `ok` lists the exit codes meaning success.
fn time_tool(mut cmd: std::process::Command, ok: &[i32]) -> Duration {
    let t = Instant::now();
    let st = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the tool runs");
    assert!(st.code().is_some_and(|c| ok.contains(&c)), "{cmd:?}: {st}");
    t.elapsed()
}

fn notmuch(config: &Path, args: &[&str]) -> Duration {
    let mut cmd = std::process::Command::new("notmuch");
    cmd.env("NOTMUCH_CONFIG", config).args(args);
    time_tool(cmd, &[0])
}

/// Each (our query, their query) pair once to warm up, then five interleaved rounds:
/// (our latencies, theirs).
fn interleaved(
    archive: &Path,
    pairs: &[(&str, &str)],
    theirs: impl Fn(&str) -> Duration,
) -> (Vec<Duration>, Vec<Duration>) {
    let ours = |q: &str| time_run(archive, &["search", "-q", "--format", "ids", "--limit", "20", q]);
    for (q, tq) in pairs {
        ours(q);
        theirs(tq);
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        for (q, tq) in pairs {
            a.push(ours(q));
            b.push(theirs(tq));
        }
    }
    (a, b)
}

fn p50_p99(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

/// notmuch on the same main-set files: index time, then the shared queries.
fn compare_notmuch(root: &Path, work: &Path, archive: &Path, messages: u64) {
    if which("notmuch").is_none() {
        println!("\nnotmuch not installed: no comparison (apt-get install notmuch)");
        return;
    }
    let mail = work.join("notmuch-mail");
    fs::create_dir_all(&mail).unwrap();
    for f in FOLDERS {
        let st = std::process::Command::new("cp")
            .arg("-r")
            .arg(root.join(f))
            .arg(&mail)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let config = work.join("notmuch-config");
    fs::write(
        &config,
        format!(
            "[database]\npath={}\n[new]\ntags=inbox\nignore=ORIGIN.txt;stats.txt\n[search]\nexclude_tags=\n[maildir]\nsynchronize_flags=false\n",
            mail.display()
        ),
    )
    .unwrap();
    let t_new = notmuch(&config, &["new", "--quiet"]);
    // Ours: reindex of the same messages (measured again here, same conditions).
    let (t_ours, _, _) = run_measured(&["reindex", "-q"], archive);
    let (ours, theirs) = interleaved(archive, &NOTMUCH_QUERIES, |nq| {
        notmuch(&config, &["search", "--output=messages", "--limit=20", nq])
    });
    let size = du(&mail.join(".notmuch"));
    print_comparison(
        "notmuch",
        messages,
        NOTMUCH_QUERIES.len(),
        (t_ours, t_new),
        (ours, theirs),
        size,
    );
    fs::remove_dir_all(&mail).ok();
}

/// Prints one comparison: index times, latency percentiles, the other tool's index size.
fn print_comparison(
    tool: &str,
    messages: u64,
    queries: usize,
    (t_ours, t_theirs): (Duration, Duration),
    (ours, theirs): (Vec<Duration>, Vec<Duration>),
    their_index_bytes: u64,
) {
    let (o50, o99) = p50_p99(ours);
    let (n50, n99) = p50_p99(theirs);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let rate = |t: Duration| messages as f64 / t.as_secs_f64();
    println!("\n{tool} comparison (main set, {messages} messages, {queries} shared queries x 5):");
    println!(
        "  index build         mailvault {:.1} s ({:.0} msg/s)   {tool} {:.1} s ({:.0} msg/s)   ratio {:.1}x",
        t_ours.as_secs_f64(),
        rate(t_ours),
        t_theirs.as_secs_f64(),
        rate(t_theirs),
        t_theirs.as_secs_f64() / t_ours.as_secs_f64()
    );
    println!(
        "  search p50 / p99    mailvault {:.1} / {:.1} ms   {tool} {:.1} / {:.1} ms   p50 ratio {:.1}x",
        ms(o50),
        ms(o99),
        ms(n50),
        ms(n99),
        ms(n50) / ms(o50)
    );
    println!("  {tool} index size {:.1} MB", their_index_bytes as f64 / 1e6);
}

/// Our query and its mu 1.8 equivalent (words, fields and dates that mu reads the same).
const MU_QUERIES: [(&str, &str); 20] = [
    ("from:sherri.sera@enron.com", "from:sherri.sera@enron.com"),
    ("from:skilling", "from:skilling"),
    ("subject:meeting", "subject:meeting"),
    ("body:energy", "body:energy"),
    ("enron", "enron"),
    ("california power", "california AND power"),
    ("usrp", "usrp"),
    ("b210", "b210"),
    ("uhd", "uhd"),
    ("rfnoc", "rfnoc"),
    ("linux", "linux"),
    ("rpm", "rpm"),
    ("mortgage", "mortgage"),
    ("date:2001", "date:20010101..20011231"),
    ("x310 OR n210", "x310 OR n210"),
    ("python", "python"),
    ("gnuradio", "gnuradio"),
    ("dpdk", "dpdk"),
    ("ettus", "ettus"),
    ("kernel AND driver", "kernel AND driver"),
];

fn mu(home: &Path, args: &[&str]) -> Duration {
    let mut cmd = std::process::Command::new("mu");
    cmd.args(args).arg(format!("--muhome={}", home.display()));
    time_tool(cmd, &[0, 4]) // mu find exits 4 when nothing matches
}

/// mu on the same main-set files (copied into one maildir, which mu requires).
fn compare_mu(root: &Path, work: &Path, archive: &Path, messages: u64) {
    if which("mu").is_none() {
        println!("\nmu not installed: no comparison (apt-get install maildir-utils)");
        return;
    }
    let md = work.join("mu-mail");
    for d in ["cur", "new", "tmp"] {
        fs::create_dir_all(md.join(d)).unwrap();
    }
    let mut n = 0;
    for f in FOLDERS {
        let files = walkdir::WalkDir::new(root.join(f)).into_iter().filter_map(|e| e.ok());
        for e in files.filter(|e| e.file_type().is_file()) {
            let name = e.file_name().to_string_lossy();
            if name == "ORIGIN.txt" || name == "stats.txt" {
                continue;
            }
            n += 1;
            fs::copy(e.path(), md.join("cur").join(format!("{n}.bench:2,S"))).unwrap();
        }
    }
    let home = work.join("mu-home");
    let md_arg = format!("--maildir={}", md.display());
    mu(&home, &["init", &md_arg]);
    let t_index = mu(&home, &["index", "--quiet"]);
    let (t_ours, _, _) = run_measured(&["reindex", "-q"], archive);
    let (ours, theirs) = interleaved(archive, &MU_QUERIES, |mq| {
        mu(&home, &["find", "--fields=i", "--maxnum=20", mq])
    });
    print_comparison(
        "mu",
        messages,
        MU_QUERIES.len(),
        (t_ours, t_index),
        (ours, theirs),
        du(&home),
    );
    fs::remove_dir_all(&md).ok();
}

fn report(name: &str, archive: &Path, messages: u64, raw: u64) {
    let (t, rss, _) = run_measured(&["reindex", "-q"], archive);
    let index = du(&archive.join("index"));
    let (p50, p99) = search_latencies(archive, &QUERIES);
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
    report_shards(archive, messages, p50, p99);
}

/// The same archive's index in [`SHARDS`] shards: build time and latency, and
/// the latency against one index's (measured just before).
fn report_shards(archive: &Path, messages: u64, p50_one: Duration, p99_one: Duration) {
    let shards = SHARDS.to_string();
    let (t, rss, _) = run_measured(&["reindex", "-q", "--shards", &shards], archive);
    let (p50, p99) = search_latencies(archive, &QUERIES);
    println!(
        "  {SHARDS} shards: build   {:.2} s  {:.0} msg/s  peak RSS {:.0} MB",
        t.as_secs_f64(),
        messages as f64 / t.as_secs_f64(),
        rss as f64 / 1e6
    );
    println!(
        "  {SHARDS} shards: search  p50 {:.1} ms  p99 {:.1} ms  = {:.2}x / {:.2}x one index's",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        p50.as_secs_f64() / p50_one.as_secs_f64(),
        p99.as_secs_f64() / p99_one.as_secs_f64()
    );
    run_measured(&["reindex", "-q", "--shards", "1"], archive);
}

fn main() {
    let Some(root) = corpus_root() else {
        eprintln!("search_corpus: no corpus (set MAILVAULT_CORPUS or provide ../shared/corpus); nothing measured");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    import_main_set(&root, &archive);
    let raw: u64 = FOLDERS.iter().map(|f| du(&root.join(f))).sum();
    let messages = common::json(&run_measured(&["stats", "--json"], &archive).2)["messages"]
        .as_u64()
        .unwrap();
    report("main set", &archive, messages, raw);
    compare_notmuch(&root, tmp.path(), &archive, messages);
    compare_mu(&root, tmp.path(), &archive, messages);

    let copies = bench_copies();
    if copies > 0 {
        let (_, bytes) = import_copies(&root, tmp.path(), &archive, copies);
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
