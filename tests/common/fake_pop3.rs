//! A scripted plaintext POP3 server for hostile cases a real server will not
//! produce. It greets, then answers each command (upper-cased) with what the test's
//! closure returns, and records every line the client sent.

use std::io::Write;
use std::path::Path;
use std::process::Output;
use std::thread::JoinHandle;

use super::fake_imap::{read_line, spawn_once};

/// What the server does with one command.
pub enum Reply {
    /// Send these bytes and read the next command.
    Send(Vec<u8>),
    /// Send these bytes and hang up.
    Last(Vec<u8>),
}

/// `+OK` with no text.
pub fn ok() -> Reply {
    Reply::Send(b"+OK\r\n".to_vec())
}

/// A multi-line `+OK` answer with these lines.
pub fn lines(ls: &[&str]) -> Reply {
    let mut r = b"+OK\r\n".to_vec();
    for l in ls {
        r.extend_from_slice(l.as_bytes());
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b".\r\n");
    Reply::Send(r)
}

/// A RETR answer carrying `body`, dot-stuffed and terminated as a server sends it.
pub fn retr(body: &[u8]) -> Reply {
    let mut r = format!("+OK {} octets\r\n", body.len()).into_bytes();
    r.extend_from_slice(&mailvault::pop3::proto::dot_stuff(body));
    Reply::Send(r)
}

/// Starts the server on a free loopback port; the handle gives the lines received.
pub fn spawn_pop3(mut answer: impl FnMut(&str) -> Reply + Send + 'static) -> (u16, JoinHandle<Vec<String>>) {
    spawn_once(move |mut s| {
        let mut seen = Vec::new();
        s.write_all(b"+OK POP3 ready\r\n").unwrap();
        while let Some(l) = read_line(&mut s) {
            seen.push(l.clone());
            let up = l.to_ascii_uppercase();
            let (bytes, last) = match answer(&up) {
                Reply::Send(b) => (b, up == "QUIT"),
                Reply::Last(b) => (b, true),
            };
            if s.write_all(&bytes).is_err() || last {
                break;
            }
        }
        seen
    })
}

/// `mailvault pull pop3://eve@127.0.0.1:PORT --password-env P` plus `extra`.
pub fn pull(archive: &Path, port: u16, extra: &[&str]) -> Output {
    let url = format!("pop3://eve@127.0.0.1:{port}");
    let mut args = vec!["pull", url.as_str(), "--password-env", "P"];
    args.extend_from_slice(extra);
    super::cmd(archive, &args)
        .env("P", super::dovecot::TEST_PASSWORD)
        .output()
        .unwrap()
}
