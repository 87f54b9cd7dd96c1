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
            Outcome::Permanent => c.runs_permanent += 1,
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

/// Serves `metrics` on `listener` until `stop`.
pub async fn serve(listener: TcpListener, metrics: std::sync::Arc<Metrics>, stop: Stop) {
    loop {
        let (mut sock, _) = tokio::select! {
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
            // Read the request head (bounded in size and time), answer, close.
            let mut head = Vec::with_capacity(512);
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
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
        });
    }
}
