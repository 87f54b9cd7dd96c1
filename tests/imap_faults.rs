//! Issue 4, item 5: a fault-injecting proxy between the puller and Dovecot cuts
//! connections at random byte offsets (mostly during FETCH); the pull reconnects
//! with backoff, resumes from the last committed batch, and completes with nothing
//! lost or doubled.

mod common;

use std::sync::atomic::Ordering;

use common::dovecot::{archive_view, assert_same, load_enron, pull_command, Dovecot, TEST_PASSWORD};
use common::fault_proxy::FaultProxy;

#[test]
fn pull_survives_connections_cut_mid_fetch() {
    let d = Dovecot::start();
    d.add_user("skilling", TEST_PASSWORD);
    load_enron(&d, "skilling");
    let server = d.server_view("skilling", TEST_PASSWORD);
    // Eight cuts somewhere in the first 64 kB .. 3 MB of a connection's server bytes.
    let proxy = FaultProxy::start(d.imaps, 8, 64 << 10, 3 << 20, "fault-proxy");
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a");
    let url = format!("imaps://skilling@127.0.0.1:{}", proxy.port);
    let out = pull_command(
        &ar,
        &url,
        &d,
        &["--json", "--account", "enron", "--connections", "3", "--retries", "10"],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pull failed: {stderr}");
    let cut = proxy.cut.load(Ordering::SeqCst);
    eprintln!("connections cut: {cut}");
    assert!(cut >= 4, "the proxy cut only {cut} connections");
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(s["total"]["retries"].as_u64().unwrap() >= 1, "{s}");
    // Exactly the server's content: nothing lost, nothing doubled.
    assert_same(&server, &archive_view(&ar, "enron"));
    let distinct: std::collections::HashSet<_> = server.values().map(|m| m.hash).collect();
    assert_eq!(common::stat_u64(&ar, "messages"), distinct.len() as u64);
    assert_eq!(common::stat_u64(&ar, "placements"), server.len() as u64);
    common::ok(&ar, &["verify"]);
}
