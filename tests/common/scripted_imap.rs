//! A scripted IMAP server with one folder (INBOX) whose state a test changes between
//! runs, for what a real server will not do: hand out a UID below one already seen,
//! lower HIGHESTMODSEQ, answer `VANISHED (EARLIER) 1:4294967295`, or send a garbage
//! line of a megabyte. Plaintext, any login accepted, blocking std I/O on a thread
//! per connection; it records every command line it received.

use std::collections::HashMap;
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
    /// RFC822.SIZE given for these UIDs instead of the body's length.
    pub claimed: HashMap<u32, u64>,
    /// These UIDs' bodies are sent as a literal of this many bytes (a small header,
    /// then filler), written in chunks: the server never holds them.
    pub literal_len: HashMap<u32, u64>,
    /// A body fetch sends its literal's announcement and this many bytes of it, then
    /// stalls (for 60 s, without closing).
    pub stall_after: Option<u64>,
    /// Every `UID FETCH` with bodies also answers for UIDs 9001..=9003, never asked.
    pub unasked: bool,
    /// LIST answers these raw lines (without line ends) before INBOX.
    pub extra_list: Vec<Vec<u8>>,
    /// The first `UID` command is answered by a status line that never ends (up to
    /// 256 MB, or until the client hangs up).
    pub endless_line: bool,
    /// `IDLE` is answered with this many `* n EXISTS` lines before the server waits
    /// for DONE (`IDLE` is in CAPABILITY when set).
    pub exists_storm: Option<usize>,
    /// IDLE commands received, over all connections.
    pub idles: usize,
    /// EXAMINE's `[UIDNEXT n]` is followed by `€` without a space.
    pub utf8_after_code: bool,
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
            claimed: HashMap::new(),
            literal_len: HashMap::new(),
            stall_after: None,
            unasked: false,
            extra_list: Vec::new(),
            endless_line: false,
            exists_storm: None,
            idles: 0,
            utf8_after_code: false,
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
            "CAPABILITY" => {
                let mut caps: Vec<&str> = vec!["IMAP4rev1"];
                caps.extend(sc.caps.split_ascii_whitespace());
                if sc.exists_storm.is_some() {
                    caps.push("IDLE");
                }
                format!("* CAPABILITY {}\r\n{tag} OK done\r\n", caps.join(" ")).into_bytes()
            }
            "IDLE" => {
                script.lock().unwrap().idles += 1;
                if idle_storm(&sc, &tag, &mut r, &mut w).is_err() {
                    return;
                }
                Vec::new()
            }
            "LOGIN" => format!("{tag} OK logged in\r\n").into_bytes(),
            "ENABLE" => format!("* ENABLED {rest}\r\n{tag} OK enabled\r\n").into_bytes(),
            "LIST" => {
                let mut out = Vec::new();
                for l in &sc.extra_list {
                    out.extend_from_slice(l);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(
                    format!("* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n{tag} OK done\r\n").as_bytes(),
                );
                out
            }
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
                    _ if sc.endless_line && fetches == 1 => {
                        endless_line(&mut w);
                        return;
                    }
                    _ => {
                        if uid_command(&sc, &tag, &rest, &mut w).is_err() {
                            return;
                        }
                        Vec::new()
                    }
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
        "* FLAGS (\\Seen \\Deleted)\r\n* {} EXISTS\r\n* OK [UIDVALIDITY {}] ok\r\n* OK [UIDNEXT {}]{}\r\n",
        sc.messages.len(),
        sc.uidvalidity,
        sc.uidnext.unwrap_or(max + 1),
        if sc.utf8_after_code { "€ ok" } else { " ok" }
    );
    if sc.caps.contains("CONDSTORE") || sc.caps.contains("QRESYNC") {
        out.push_str(&format!("* OK [HIGHESTMODSEQ {}] ok\r\n", sc.modseq));
    }
    out.push_str(&format!("{tag} OK [READ-ONLY] done\r\n"));
    out
}

/// `+ idling`, then the storm of EXISTS, then waits for DONE (30 s at most).
fn idle_storm(sc: &Script, tag: &str, r: &mut BufReader<TcpStream>, w: &mut TcpStream) -> std::io::Result<()> {
    w.write_all(b"+ idling\r\n")?;
    let n = sc.exists_storm.unwrap_or(0);
    let count = sc.messages.len();
    let mut burst = Vec::new();
    for i in 0..n {
        burst.extend_from_slice(format!("* {} EXISTS\r\n", count + i % 7).as_bytes());
        if burst.len() > 64 * 1024 {
            w.write_all(&burst)?;
            burst.clear();
        }
    }
    w.write_all(&burst)?;
    let mut done = String::new();
    r.read_line(&mut done)?;
    w.write_all(format!("{tag} OK idle done\r\n").as_bytes())
}

/// `* OK aaaa…` without a line end, until the client hangs up (at most 256 MB).
fn endless_line(w: &mut TcpStream) {
    let chunk = vec![b'a'; 64 * 1024];
    if w.write_all(b"* OK ").is_err() {
        return;
    }
    for _ in 0..4096 {
        if w.write_all(&chunk).is_err() {
            return;
        }
    }
}

/// Answers `UID SEARCH` / `UID FETCH`, writing as it goes (literals of
/// `literal_len` are never held).
fn uid_command(sc: &Script, tag: &str, rest: &str, w: &mut TcpStream) -> std::io::Result<()> {
    let mut parts = rest.splitn(3, ' ');
    let sub = parts.next().unwrap_or("").to_ascii_uppercase();
    let mut set = parts.next().unwrap_or("").to_string();
    let items = parts.next().unwrap_or("").to_ascii_uppercase();
    let max = sc.messages.iter().map(|m| m.0).max().unwrap_or(0);
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
        w.write_all(format!("* SEARCH {}\r\n", uids.join(" ")).as_bytes())?;
    } else if sub == "FETCH" {
        if items.contains("VANISHED") {
            if let Some(v) = &sc.vanished {
                w.write_all(format!("{v}\r\n").as_bytes())?;
            }
        }
        let bodies = items.contains("BODY.PEEK[]");
        let unasked: Vec<(u32, Vec<u8>)> = if sc.unasked && bodies {
            (9001..=9003).map(|u| (u, message(u))).collect()
        } else {
            Vec::new()
        };
        for (seq, (uid, body)) in sc.messages.iter().enumerate() {
            if !uid_set_contains(&set, *uid, max) {
                continue;
            }
            fetch_response(sc, seq + 1, *uid, body, &items, w)?;
            if let Some((u, b)) = unasked.get(seq) {
                fetch_response(sc, seq + 1, *u, b, &items, w)?;
            }
        }
    }
    w.write_all(format!("{tag} OK done\r\n").as_bytes())
}

fn fetch_response(
    sc: &Script,
    seq: usize,
    uid: u32,
    body: &[u8],
    items: &str,
    w: &mut TcpStream,
) -> std::io::Result<()> {
    let len = sc.literal_len.get(&uid).copied().unwrap_or(body.len() as u64);
    let mut f = format!("* {seq} FETCH (UID {uid}");
    if items.contains("RFC822.SIZE") {
        f.push_str(&format!(
            " RFC822.SIZE {}",
            sc.claimed.get(&uid).copied().unwrap_or(len)
        ));
    }
    if items.contains("FLAGS") {
        f.push_str(" FLAGS ()");
    }
    if items.contains("INTERNALDATE") {
        f.push_str(" INTERNALDATE \"17-Jul-2021 02:44:25 +0000\"");
    }
    w.write_all(f.as_bytes())?;
    if items.contains("BODY.PEEK[]") {
        w.write_all(format!(" BODY[] {{{len}}}\r\n").as_bytes())?;
        if let Some(n) = sc.stall_after {
            w.write_all(&body[..(n as usize).min(body.len())])?;
            w.flush()?;
            std::thread::sleep(Duration::from_secs(60));
            return Err(std::io::Error::other("stalled"));
        }
        if sc.literal_len.contains_key(&uid) {
            write_filler(uid, len, w)?;
        } else {
            w.write_all(body)?;
        }
    }
    w.write_all(b")\r\n")
}

/// A message of exactly `len` bytes (a header naming `uid`, then lines of `x`),
/// written in chunks.
fn write_filler(uid: u32, len: u64, w: &mut TcpStream) -> std::io::Result<()> {
    let head = format!("From: a@example.com\r\nSubject: big {uid}\r\n\r\n");
    let head = &head.as_bytes()[..head.len().min(len as usize)];
    w.write_all(head)?;
    let mut line = vec![b'x'; 78];
    line.extend_from_slice(b"\r\n");
    let chunk = line.repeat(800);
    let mut left = len - head.len() as u64;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        w.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    Ok(())
}
