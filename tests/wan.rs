//! A pull over a long round trip: through the harness's shaping proxy (50 ms) a
//! pull measures the round trip on its first session and opens 8 sessions instead
//! of 4, so more folders' round trips overlap; what it archives is what the server
//! has, byte for byte. On loopback the same pull opens 4. `--connections` is taken
//! as given on either.

mod common;

use std::time::{Duration, SystemTime};

use common::dovecot::{archive_view, assert_same, sample_messages, Dovecot, TEST_PASSWORD};
use common::shaping_proxy::ShapingProxy;

/// Pulls `ann` from `port` into a fresh archive `name`; the logins it made.
fn pull_counting_logins(d: &Dovecot, port: u16, archive: &std::path::Path, extra: &[&str]) -> usize {
    let before = d.log().matches("Login: user=<ann>").count();
    let url = format!("imaps://ann@127.0.0.1:{port}");
    let ca = d.ca_pem();
    let mut args = vec![
        "pull",
        &url,
        "--tls-ca",
        ca.to_str().unwrap(),
        "--password-env",
        "MV_TEST_PW",
        "--account",
        "ann",
        "--no-index",
    ];
    args.extend_from_slice(extra);
    let out = common::cmd(archive, &args)
        .env("MV_TEST_PW", TEST_PASSWORD)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Dovecot's log process writes the lines a moment later: counted once they
    // stop changing (bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut last = usize::MAX;
    loop {
        let n = d.log().matches("Login: user=<ann>").count() - before;
        if n == last || std::time::Instant::now() > deadline {
            return n;
        }
        last = n;
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_pull_over_a_long_round_trip_opens_more_sessions_and_archives_the_same() {
    let d = Dovecot::start();
    d.add_user("ann", TEST_PASSWORD);
    let now = SystemTime::now();
    let mail: Vec<_> = sample_messages(120).into_iter().map(|m| (m, "S", now)).collect();
    for (i, chunk) in mail.chunks(10).enumerate() {
        d.load("ann", &format!("Folder{i:02}"), chunk);
    }
    let server = d.server_view("ann", TEST_PASSWORD);
    let tmp = tempfile::tempdir().unwrap();

    let near = tmp.path().join("near");
    assert_eq!(pull_counting_logins(&d, d.imaps, &near, &[]), 4, "{}", d.log());
    assert_same(&server, &archive_view(&near, "ann"));

    let proxy = ShapingProxy::start(d.imaps, Duration::from_millis(50), 100_000_000);
    let far = tmp.path().join("far");
    assert_eq!(pull_counting_logins(&d, proxy.port, &far, &[]), 8, "{}", d.log());
    assert_same(&server, &archive_view(&far, "ann"));

    let told = tmp.path().join("told");
    assert_eq!(
        pull_counting_logins(&d, proxy.port, &told, &["--connections", "3"]),
        3,
        "{}",
        d.log()
    );
    assert_same(&server, &archive_view(&told, "ann"));
}
