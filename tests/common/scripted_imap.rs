//! A scripted IMAP server with one folder (INBOX) whose state a test changes between
//! runs, for what a real server will not do: hand out a UID below one already seen,
//! lower HIGHESTMODSEQ, answer `VANISHED (EARLIER) 1:4294967295`, or send a garbage
//! line of a megabyte. Plaintext, any login accepted, blocking std I/O on a thread
//! per connection; it records every command line it received.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::fake_imap::uid_set_contains;

/// The folder and how the server misbehaves; tests change it between runs.
#[derive(Clone, Debug)]
pub struct Script {
    /// CAPABILITY words after login (`IMAP4rev1` is always there).
    pub caps: String,
    pub uidvalidity: u32,
    /// UIDNEXT reported by EXAMINE (`None`: highest UID + 1).
    pub uidnext: Option<u32>,
    /// HIGHESTMODSEQ reported by EXAMINE when CONDSTORE is offered.
    pub modseq: u64,
    /// (UID, body), in UID order as the server keeps them.
    pub messages: Vec<(u32, Vec<u8>)>,
    /// Sent before the tagged OK of a `UID FETCH … VANISHED` command.
    pub vanished: Option<String>,
    /// When set, the first `UID FETCH` is answered by one untagged line of this many
    /// bytes that no parser accepts.
    pub garbage_line: Option<usize>,
}

impl Script {
    /// INBOX with `n` small messages at UIDs 1..=n.
    pub fn with_messages(n: u32, caps: &str) -> Script {
        Script {
            caps: caps.into(),
            uidvalidity: 77,
            uidnext: None,
            modseq: 10,
            messages: (1..=n).map(|u| (u, message(u))).collect(),
            vanished: None,
            garbage_line: None,
        }
    }
}

/// A small message naming `n` in its subject.
pub fn message(n: u32) -> Vec<u8> {
    format!("From: a@example.com\r\nSubject: scripted {n}\r\nMessage-ID: <s{n}@example.com>\r\n\r\nbody {n}\r\n")
        .into_bytes()
}

pub struct ScriptedImap {
    pub port: u16,
    pub script: Arc<Mutex<Script>>,
    /// Every command line received, over all connections.
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl ScriptedImap {
    /// Serves connections until the test process ends.
    pub fn start(script: Script) -> ScriptedImap {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let script = Arc::new(Mutex::new(script));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (sc, ln) = (script.clone(), lines.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(s) = conn else { continue };
                let (sc, ln) = (sc.clone(), ln.clone());
                std::thread::spawn(move || session(s, &sc, &ln));
            }
        });
        ScriptedImap { port, script, lines }
    }

    pub fn url(&self, user: &str) -> String {
        format!("imap://{user}@127.0.0.1:{}", self.port)
    }
}

fn session(s: TcpStream, script: &Mutex<Script>, lines: &Mutex<Vec<String>>) {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let _ = w.write_all(b"* OK scripted IMAP ready\r\n");
    let mut fetches = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let cmdline = line.trim_end().to_string();
        lines.lock().unwrap().push(cmdline.clone());
        let mut words = cmdline.splitn(3, ' ');
        let tag = words.next().unwrap_or("*").to_string();
        let cmd = words.next().unwrap_or("").to_ascii_uppercase();
        let rest = words.next().unwrap_or("").to_string();
        let sc = script.lock().unwrap().clone();
        let out = match cmd.as_str() {
            "CAPABILITY" => format!("* CAPABILITY IMAP4rev1 {}\r\n{tag} OK done\r\n", sc.caps).into_bytes(),
            "LOGIN" => format!("{tag} OK logged in\r\n").into_bytes(),
            "ENABLE" => format!("* ENABLED {rest}\r\n{tag} OK enabled\r\n").into_bytes(),
            "LIST" => format!("* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n{tag} OK done\r\n").into_bytes(),
            "EXAMINE" | "SELECT" => examine(&sc, &tag).into_bytes(),
            "UID" => {
                fetches += 1;
                match sc.garbage_line {
                    Some(len) if fetches == 1 => {
                        let mut g = b"* 1 FETCH (UID 1 BODY[] ".to_vec();
                        g.resize(len, b'#');
                        g.extend_from_slice(b"\r\n");
                        g
                    }
                    _ => uid_command(&sc, &tag, &rest),
                }
            }
            "LOGOUT" => {
                let _ = w.write_all(format!("* BYE bye\r\n{tag} OK bye\r\n").as_bytes());
                return;
            }
            _ => format!("{tag} OK done\r\n").into_bytes(),
        };
        if w.write_all(&out).is_err() {
            return;
        }
    }
}

fn examine(sc: &Script, tag: &str) -> String {
    let max = sc.messages.iter().map(|m| m.0).max().unwrap_or(0);
    let mut out = format!(
        "* FLAGS (\\Seen \\Deleted)\r\n* {} EXISTS\r\n* OK [UIDVALIDITY {}] ok\r\n* OK [UIDNEXT {}] ok\r\n",
        sc.messages.len(),
        sc.uidvalidity,
        sc.uidnext.unwrap_or(max + 1)
    );
    if sc.caps.contains("CONDSTORE") || sc.caps.contains("QRESYNC") {
        out.push_str(&format!("* OK [HIGHESTMODSEQ {}] ok\r\n", sc.modseq));
    }
    out.push_str(&format!("{tag} OK [READ-ONLY] done\r\n"));
    out
}

fn uid_command(sc: &Script, tag: &str, rest: &str) -> Vec<u8> {
    let mut parts = rest.splitn(3, ' ');
    let sub = parts.next().unwrap_or("").to_ascii_uppercase();
    let mut set = parts.next().unwrap_or("").to_string();
    let items = parts.next().unwrap_or("").to_ascii_uppercase();
    let max = sc.messages.iter().map(|m| m.0).max().unwrap_or(0);
    let mut out = Vec::new();
    if sub == "SEARCH" {
        // `UID SEARCH UID a:b`
        if set.eq_ignore_ascii_case("UID") {
            set = items.clone();
        }
        let uids: Vec<String> = sc
            .messages
            .iter()
            .filter(|m| uid_set_contains(&set, m.0, max))
            .map(|m| m.0.to_string())
            .collect();
        out.extend_from_slice(format!("* SEARCH {}\r\n", uids.join(" ")).as_bytes());
    } else if sub == "FETCH" {
        if items.contains("VANISHED") {
            if let Some(v) = &sc.vanished {
                out.extend_from_slice(format!("{v}\r\n").as_bytes());
            }
        }
        for (seq, (uid, body)) in sc.messages.iter().enumerate() {
            if !uid_set_contains(&set, *uid, max) {
                continue;
            }
            let mut f = format!("* {} FETCH (UID {uid}", seq + 1);
            if items.contains("RFC822.SIZE") {
                f.push_str(&format!(" RFC822.SIZE {}", body.len()));
            }
            if items.contains("FLAGS") {
                f.push_str(" FLAGS ()");
            }
            if items.contains("INTERNALDATE") {
                f.push_str(" INTERNALDATE \"17-Jul-2021 02:44:25 +0000\"");
            }
            out.extend_from_slice(f.as_bytes());
            if items.contains("BODY.PEEK[]") {
                out.extend_from_slice(format!(" BODY[] {{{}}}\r\n", body.len()).as_bytes());
                out.extend_from_slice(body);
            }
            out.extend_from_slice(b")\r\n");
        }
    }
    out.extend_from_slice(format!("{tag} OK done\r\n").as_bytes());
    out
}
