//! End-to-end POP3 pull benchmark (issue 5, item 6): the SpamAssassin corpus (6,046
//! messages, 32.5 MB) is loaded into one Dovecot INBOX on loopback; `mailvault pull
//! pop3s://…` is timed with PIPELINING (the default) and with `--no-pipelining`, and
//! where `getmail6` or `fetchmail` (Debian) are installed they fetch the same account
//! over the same POP3S port in the same run (getmail into a maildir, fetchmail
//! into a BSMTP file, both keeping mail on the server) and the ratio is printed.
//!
//! `cargo bench --bench pop3_pull`. After one untimed warm-up pull,
//! `MAILVAULT_BENCH_RUNS` (default 3) runs of each; medians are reported.

#[path = "../tests/common/mod.rs"]
mod tc;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use tc::dovecot::{pull_command, Dovecot, TEST_PASSWORD};

const USER: &str = "mail";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn installed(names: &[&str]) -> Option<String> {
    names
        .iter()
        .flat_map(|n| [format!("/usr/bin/{n}"), format!("/usr/local/bin/{n}")])
        .find(|p| Path::new(p).exists())
}

/// A tool's run: `None` when it is not installed, `Some(Err)` when it failed.
type Run = Option<Result<f64, String>>;

/// getmail6 into a fresh maildir, mail kept on the server; seconds.
fn getmail(d: &Dovecot, dir: &Path, expect: usize) -> Run {
    let bin = installed(&["getmail"])?;
    let maildir = dir.join("Maildir");
    for sub in ["", "cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
        // getmail refuses to deliver as root: it delivers as `nobody`.
        std::fs::set_permissions(maildir.join(sub), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let as_user = if unsafe { libc::geteuid() } == 0 {
        "user = nobody\n"
    } else {
        ""
    };
    let rc = dir.join("getmailrc");
    std::fs::write(
        &rc,
        format!(
            "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = localhost\nport = {port}\n\
             username = {USER}\npassword = {pw}\nca_certs = {ca}\n\n\
             [destination]\ntype = Maildir\npath = {md}/\n{as_user}\n\
             [options]\nverbose = 0\nread_all = true\ndelete = false\nmessage_log_syslog = false\n",
            port = d.pop3s,
            pw = TEST_PASSWORD,
            ca = d.ca_pem().display(),
            md = maildir.display()
        ),
    )
    .unwrap();
    let t = Instant::now();
    let out = Command::new(bin)
        .arg("--getmaildir")
        .arg(dir)
        .arg("--rcfile")
        .arg(&rc)
        .output()
        .unwrap();
    let took = t.elapsed().as_secs_f64();
    let n = std::fs::read_dir(maildir.join("new")).unwrap().count();
    if !out.status.success() || n != expect {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or_default();
        return Some(Err(format!("getmail delivered {n} messages, then: {last}")));
    }
    Some(Ok(took))
}

/// fetchmail, every message appended to a BSMTP file, mail kept on the server;
/// seconds.
fn fetchmail(d: &Dovecot, dir: &Path, expect: usize) -> Run {
    let bin = installed(&["fetchmail"])?;
    std::fs::create_dir_all(dir).unwrap();
    let rc = dir.join("fetchmailrc");
    let out_file = dir.join("mail.bsmtp");
    std::fs::write(
        &rc,
        format!(
            "set no syslog\npoll localhost protocol POP3 port {port} user \"{USER}\" password \"{pw}\" \
             ssl sslcertck sslcertfile \"{ca}\" keep fetchall bsmtp \"{out}\"\n",
            port = d.pop3s,
            pw = TEST_PASSWORD,
            ca = d.ca_pem().display(),
            out = out_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    let t = Instant::now();
    let out = Command::new(bin)
        .arg("-f")
        .arg(&rc)
        .arg("--idfile")
        .arg(dir.join("fetchids"))
        .arg("--pidfile")
        .arg(dir.join("pid"))
        .arg("--silent")
        .env("HOME", dir)
        .env("FETCHMAILHOME", dir)
        .output()
        .unwrap();
    let took = t.elapsed().as_secs_f64();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Some(Err(format!("fetchmail: {}", err.lines().last().unwrap_or_default())));
    }
    // One BSMTP transaction per message, its data dot-stuffed: a line holding only a
    // dot ends each message.
    let bsmtp = std::fs::read(&out_file).unwrap_or_default();
    let n = bsmtp
        .split(|b| *b == b'\n')
        .filter(|l| l.trim_ascii_end() == b".")
        .count();
    if n != expect {
        return Some(Err(format!("fetchmail wrote {n} messages, not {expect}")));
    }
    Some(Ok(took))
}

/// `runs` runs of a tool: the times of those that succeeded (failures are printed);
/// `None` when the tool is not installed.
fn timed(runs: usize, mut f: impl FnMut(usize) -> Run) -> Option<Vec<f64>> {
    let mut times = Vec::new();
    for i in 0..runs {
        match f(i)? {
            Ok(t) => times.push(t),
            Err(e) => eprintln!("run {i} failed and is not counted: {e}"),
        }
    }
    Some(times)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs: usize = std::env::var("MAILVAULT_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    if tc::shared_corpus("spamassassin-public-corpus").is_none() {
        eprintln!("no corpus: set MAILVAULT_CORPUS or provide ../shared/corpus");
        return;
    }
    let d = Dovecot::start();
    d.add_user(USER, TEST_PASSWORD);
    let folders = ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"];
    let loaded = tc::dovecot::load_spamassassin(&d, USER, &folders);
    d.doveadm(&["mailbox", "status", "-u", USER, "messages", "INBOX"]);
    eprintln!("loaded {loaded} messages into one Dovecot INBOX");

    let tmp = tempfile::tempdir().unwrap();
    let url = format!("pop3s://{USER}@127.0.0.1:{}", d.pop3s);
    let pull = |name: String, extra: &[&str]| -> (f64, u64, u64) {
        let mut args = vec!["--json", "-q"];
        args.extend_from_slice(extra);
        let t = Instant::now();
        let out = pull_command(&tmp.path().join(name), &url, &d, &args).output().unwrap();
        let took = t.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "pull failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            took,
            s["total"]["fetched"].as_u64().unwrap(),
            s["total"]["fetched_bytes"].as_u64().unwrap(),
        )
    };
    pull("warm-up".into(), &["--no-index"]);
    let report = |label: &str, extra: &[&str]| -> f64 {
        let mut times = Vec::new();
        let (mut n, mut bytes) = (0, 0);
        for i in 0..runs {
            let (t, f, b) = pull(format!("{label}-{i}"), extra);
            (n, bytes) = (f, b);
            times.push(t);
        }
        assert_eq!(n as usize, loaded);
        eprintln!("{label}: {times:.2?} s");
        let m = median(times);
        println!(
            "  {label:<34} {m:>6.2} s = {:>5.0} msg/s, {:>5.1} MB/s",
            n as f64 / m,
            bytes as f64 / 1e6 / m
        );
        m
    };
    println!("POP3S pull of {loaded} messages from a local Dovecot, median of {runs}:");
    let piped = report("mailvault, pipelined (index incl.)", &[]);
    let piped_ni = report("mailvault, pipelined, --no-index", &["--no-index"]);
    let serial_ni = report(
        "mailvault, --no-pipelining --no-index",
        &["--no-index", "--no-pipelining"],
    );
    println!("  pipelining gain (store only): {:.2}x", serial_ni / piped_ni);
    for (tool, times) in [
        (
            "getmail6 -> maildir",
            timed(runs, |i| getmail(&d, &tmp.path().join(format!("getmail{i}")), loaded)),
        ),
        (
            "fetchmail -> BSMTP file",
            timed(runs, |i| {
                fetchmail(&d, &tmp.path().join(format!("fetchmail{i}")), loaded)
            }),
        ),
    ] {
        match times {
            Some(t) if t.is_empty() => println!("  {tool}: every run failed (see above)"),
            Some(t) => {
                eprintln!("{tool}: {t:.2?} s");
                let m = median(t);
                println!(
                    "  {tool:<34} {m:>6.2} s = {:>5.0} msg/s; mailvault (index incl.) is {:.2}x faster, {:.2}x without the index",
                    loaded as f64 / m,
                    m / piped,
                    m / piped_ni
                );
            }
            None => println!("  {tool}: not installed (apt-get install getmail6 fetchmail): no comparison"),
        }
    }
}
