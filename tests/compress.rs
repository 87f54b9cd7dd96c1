//! IMAP COMPRESS=DEFLATE (RFC 4978) against a Dovecot with `imap_zlib`: a pull
//! with it archives exactly what the server has, byte for byte, with far fewer
//! bytes on the wire than `--no-compress` (counted by a proxy in between); a replay
//! with it (APPENDs deflated) puts every message on the target intact.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use common::dovecot::{archive_view, assert_same, sample_messages, Dovecot, TEST_PASSWORD};
use common::fault_proxy::CountProxy;

const ZLIB: &str = "protocol imap {\n  mail_plugins = $mail_plugins imap_zlib\n}\n";

/// (folder, message hash) → how many, for comparing two accounts' contents.
fn contents(view: &BTreeMap<(String, u32, u32), common::dovecot::ServerMessage>) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for ((folder, _, _), m) in view {
        *out.entry((folder.clone(), format!("{:?}", m.hash))).or_insert(0) += 1;
    }
    out
}

#[test]
fn compressed_pulls_and_replays_move_the_same_bytes_in_far_fewer() {
    let d = Dovecot::start_with(ZLIB);
    d.add_users(&["ann", "bob"], TEST_PASSWORD);
    let now = SystemTime::now();
    let mail: Vec<_> = sample_messages(300).into_iter().map(|m| (m, "S", now)).collect();
    d.load("ann", "INBOX", &mail[..200]);
    d.load("ann", "Work", &mail[200..]);
    let server = d.server_view("ann", TEST_PASSWORD);
    let tmp = tempfile::tempdir().unwrap();
    let ca = d.ca_pem();

    let mut down = Vec::new();
    for (name, extra) in [("compressed", &[][..]), ("plain", &["--no-compress"][..])] {
        let proxy = CountProxy::start(d.imaps);
        let archive = tmp.path().join(name);
        let url = format!("imaps://ann@127.0.0.1:{}", proxy.port);
        let mut args = vec![
            "pull",
            &url,
            "--tls-ca",
            ca.to_str().unwrap(),
            "--password-env",
            "MV_TEST_PW",
        ];
        args.extend_from_slice(extra);
        args.extend(["--account", "ann"]);
        let out = common::cmd(&archive, &args)
            .env("MV_TEST_PW", TEST_PASSWORD)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        assert_same(&server, &archive_view(&archive, "ann"));
        down.push(proxy.bytes_down.load(Ordering::SeqCst));
    }
    let (compressed, plain) = (down[0], down[1]);
    eprintln!("bytes from the server: {compressed} with COMPRESS=DEFLATE, {plain} without");
    assert!(
        compressed * 10 < plain * 7,
        "compressed {compressed} bytes against {plain} uncompressed"
    );

    // A replay whose APPENDs are deflated: bob gets every message intact.
    let proxy = CountProxy::start(d.imaps);
    let to = format!("imaps://bob@127.0.0.1:{}", proxy.port);
    let out = common::cmd(
        &tmp.path().join("compressed"),
        &[
            "replay",
            "--to",
            &to,
            "--tls-ca",
            ca.to_str().unwrap(),
            "--password-env",
            "MV_TEST_PW",
        ],
    )
    .env("MV_TEST_PW", TEST_PASSWORD)
    .output()
    .unwrap();
    assert!(out.status.success(), "replay: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(contents(&d.server_view("bob", TEST_PASSWORD)), contents(&server));
}
