//! Per-account counters in the Prometheus text format, served on `GET /metrics` by
//! a small HTTP/1.1 responder (bound to 127.0.0.1 unless told otherwise).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::account::AccountRun;
use crate::control::Stop;
use crate::job::Outcome;

#[derive(Clone, Debug, Default)]
struct Counters {
    runs_ok: u64,
    runs_temporary: u64,
    runs_permanent: u64,
    new_messages: u64,
    fetched: u64,
    fetched_bytes: u64,
    errors: u64,
    last_run_end: i64,
    consecutive_failures: u32,
}

/// The counters of every account a service runs, keyed by (job, account).
#[derive(Debug, Default)]
pub struct Metrics(Mutex<BTreeMap<(String, String), Counters>>);

impl Metrics {
    pub fn record(&self, run: &AccountRun, consecutive_failures: u32) {
        let mut m = self.0.lock().expect("metrics");
        let c = m.entry((run.job.clone(), run.account.clone())).or_default();
        match run.outcome {
            Outcome::Ok => c.runs_ok += 1,
            Outcome::Temporary => c.runs_temporary += 1,
            Outcome::Permanent | Outcome::NeedsLogin => c.runs_permanent += 1,
        }
        c.new_messages += run.new_messages;
        c.fetched += run.fetched;
        c.fetched_bytes += run.fetched_bytes;
        c.errors += run.errors.len() as u64;
        c.last_run_end = run.ended.timestamp();
        c.consecutive_failures = consecutive_failures;
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let m = self.0.lock().expect("metrics");
        let mut out = String::new();
        let series: [Series; 8] = [
            (
                "mailvault_messages_new_total",
                "counter",
                "Messages stored that the archive did not have",
                |c| c.new_messages.to_string(),
            ),
            (
                "mailvault_messages_fetched_total",
                "counter",
                "Messages downloaded",
                |c| c.fetched.to_string(),
            ),
            ("mailvault_fetched_bytes_total", "counter", "Bytes downloaded", |c| {
                c.fetched_bytes.to_string()
            }),
            (
                "mailvault_errors_total",
                "counter",
                "Errors reported by runs (folders or whole runs)",
                |c| c.errors.to_string(),
            ),
            (
                "mailvault_last_run_end_timestamp_seconds",
                "gauge",
                "When the last run ended",
                |c| c.last_run_end.to_string(),
            ),
            (
                "mailvault_consecutive_failures",
                "gauge",
                "Failed runs since the last good one",
                |c| c.consecutive_failures.to_string(),
            ),
            ("mailvault_runs_ok_total", "counter", "Runs that succeeded", |c| {
                c.runs_ok.to_string()
            }),
            ("mailvault_runs_failed_total", "counter", "Runs that failed", |c| {
                (c.runs_temporary + c.runs_permanent).to_string()
            }),
        ];
        for (name, kind, help, value) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((job, account), c) in m.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{job=\"{}\",account=\"{}\"}} {}",
                    escape(job),
                    escape(account),
                    value(c)
                );
            }
        }
        out
    }
}

/// Name, type, help, and the value of one account.
type Series = (&'static str, &'static str, &'static str, fn(&Counters) -> String);

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Connections answered at once; more wait in the kernel's backlog. Bounds the
/// endpoint's file descriptors and tasks whatever clients do.
pub const MAX_CONNECTIONS: usize = 64;
/// A whole exchange (request in, reply out) must fit in this time: a client that
/// never sends or never reads is dropped.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `metrics` on `listener` until `stop`: at most [`MAX_CONNECTIONS`] at once,
/// each within [`EXCHANGE_TIMEOUT`].
pub async fn serve(listener: TcpListener, metrics: std::sync::Arc<Metrics>, stop: Stop) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        // A free slot first, then the next connection: past the limit, clients wait
        // unaccepted instead of holding our descriptors.
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s.expect("never closed"),
            _ = stop.wait() => return,
        };
        let (sock, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.wait() => return,
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, answer(sock, &metrics)).await;
            drop(slot);
        });
    }
}

/// Reads the request head (at most 8 kB), answers, closes.
async fn answer(mut sock: tokio::net::TcpStream, metrics: &Metrics) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let first = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let (status, body) = if first.starts_with(b"GET /metrics ") || first.starts_with(b"GET / ") {
        ("200 OK", metrics.render())
    } else {
        ("404 Not Found", "GET /metrics\n".to_string())
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(reply.as_bytes()).await;
    let _ = sock.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Established connections to `port` that a process has accepted (the kernel's
    /// `/proc/net/tcp` lists those still in the backlog with inode 0).
    fn accepted_connections(port: u16) -> usize {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        table
            .lines()
            .skip(1)
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let local_port = f[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
                local_port == Some(port) && f[3] == "01" && f[9] != "0"
            })
            .count()
    }

    /// Starts the endpoint on a free loopback port over `accounts` accounts.
    async fn endpoint(accounts: usize) -> (std::net::SocketAddr, Stop) {
        let metrics = Arc::new(Metrics::default());
        {
            let mut m = metrics.0.lock().unwrap();
            for i in 0..accounts {
                m.insert(
                    ("job".into(), format!("account-{i:08}@example.com")),
                    Counters::default(),
                );
            }
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Stop::default();
        tokio::spawn(serve(listener, metrics, stop.clone()));
        (addr, stop)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_clients_hold_a_bounded_number_of_connections() {
        let (addr, stop) = endpoint(1).await;
        let mut idle = Vec::new();
        for _ in 0..(3 * MAX_CONNECTIONS) {
            idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let held = accepted_connections(addr.port());
        assert!(
            (1..=MAX_CONNECTIONS).contains(&held),
            "the endpoint holds {held} connections"
        );
        // They are dropped after the exchange timeout, and the endpoint answers again.
        tokio::time::sleep(EXCHANGE_TIMEOUT + Duration::from_secs(1)).await;
        drop(idle);
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await.unwrap();
        let mut reply = String::new();
        tokio::time::timeout(EXCHANGE_TIMEOUT * 3, c.read_to_string(&mut reply))
            .await
            .expect("answered once the idle clients are gone")
            .unwrap();
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
        stop.request();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_never_reads_is_dropped_after_the_timeout() {
        // Megabytes of metrics: more than the sockets' buffers hold.
        let (addr, stop) = endpoint(40_000).await;
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await.unwrap();
        tokio::time::sleep(EXCHANGE_TIMEOUT + Duration::from_secs(1)).await;
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut got)).await;
        let text = String::from_utf8_lossy(&got);
        let announced: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|n| n.trim().parse().ok())
            .expect("a reply head");
        assert!(
            got.len() < announced,
            "the endpoint kept writing to a client that did not read ({} of {announced} bytes)",
            got.len()
        );
        stop.request();
    }
}
