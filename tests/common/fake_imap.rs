//! A scripted IMAP server for hostile cases a real server will not produce
//! (PREAUTH, missing STARTTLS, bytes injected after the STARTTLS OK). Blocking std
//! I/O on a thread; it records every line the client sent.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Reads one line (without CRLF); `None` at end of stream.
pub fn read_line(s: &mut impl Read) -> Option<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        if b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Some(String::from_utf8_lossy(&line).into_owned())
}

/// Answers commands of an authenticated-state conversation until LOGOUT: LOGIN and
/// AUTHENTICATE succeed, CAPABILITY lists `caps`, LIST is empty.
pub fn serve_session(s: &mut (impl Read + Write), caps: &str, seen: &mut Vec<String>) {
    while let Some(line) = read_line(s) {
        seen.push(line.clone());
        let mut words = line.splitn(3, ' ');
        let tag = words.next().unwrap_or("*").to_string();
        let cmd = words.next().unwrap_or("").to_ascii_uppercase();
        let reply = match cmd.as_str() {
            "CAPABILITY" => format!("* CAPABILITY {caps}\r\n{tag} OK done\r\n"),
            "LOGOUT" => format!("* BYE bye\r\n{tag} OK bye\r\n"),
            _ => format!("{tag} OK done\r\n"),
        };
        if s.write_all(reply.as_bytes()).is_err() || cmd == "LOGOUT" {
            break;
        }
        let _ = s.flush();
    }
}

/// A plaintext server that greets with `greeting` and then answers like
/// [`serve_session`]; returns its port and the lines it will have received.
pub fn spawn_plain(greeting: &'static str, caps: &'static str) -> (u16, JoinHandle<Vec<String>>) {
    spawn_once(move |mut s| {
        let mut seen = Vec::new();
        s.write_all(greeting.as_bytes()).unwrap();
        serve_session(&mut s, caps, &mut seen);
        seen
    })
}

/// Runs `script` on the first connection to a fresh loopback port.
pub fn spawn_once<F>(script: F) -> (u16, JoinHandle<Vec<String>>)
where
    F: FnOnce(TcpStream) -> Vec<String> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        script(s)
    });
    (port, h)
}

/// A rustls server configuration from `cert.pem`/`key.pem` in `dir`.
pub fn tls_server_config(dir: &Path) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("cert.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Arc::new(cfg)
}

/// One message on [`FakeGmail`].
#[derive(Clone)]
pub struct GmailMessage {
    pub uid: u32,
    pub gm_msgid: u64,
    pub flags: &'static str,
    pub body: Vec<u8>,
}

/// A scripted server that talks like Gmail (X-GM-EXT-1, X-GM-MSGID in FETCH answers
/// as Gmail formats them): plaintext, any login accepted, read-only. Counts the
/// message bodies it sends.
pub struct FakeGmail {
    pub port: u16,
    pub bodies_sent: Arc<std::sync::atomic::AtomicU64>,
}

type Folders = Vec<(&'static str, &'static str, Vec<GmailMessage>)>;

impl FakeGmail {
    /// `folders`: (name, LIST attributes, messages). Serves connections until the
    /// test ends.
    pub fn start(folders: Folders) -> FakeGmail {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let bodies_sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (folders, sent) = (Arc::new(folders), bodies_sent.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(s) = conn else { continue };
                let (folders, sent) = (folders.clone(), sent.clone());
                std::thread::spawn(move || gmail_session(s, &folders, &sent));
            }
        });
        FakeGmail { port, bodies_sent }
    }
}

/// `a:b,c` with `*` = `max`: does it hold `uid`?
pub fn uid_set_contains(set: &str, uid: u32, max: u32) -> bool {
    set.split(',').any(|r| {
        let bound = |x: &str| if x == "*" { max } else { x.parse().unwrap_or(0) };
        match r.split_once(':') {
            Some((a, b)) => {
                let (a, b) = (bound(a), bound(b));
                (a.min(b)..=a.max(b)).contains(&uid)
            }
            None => bound(r) == uid,
        }
    })
}

fn gmail_session(mut s: TcpStream, folders: &Folders, sent: &std::sync::atomic::AtomicU64) {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(b"* OK Gimap ready for requests from 127.0.0.1\r\n");
    let mut selected: Option<usize> = None;
    while let Some(line) = read_line(&mut s) {
        let mut words = line.splitn(3, ' ');
        let tag = words.next().unwrap_or("*").to_string();
        let cmd = words.next().unwrap_or("").to_ascii_uppercase();
        let rest = words.next().unwrap_or("").to_string();
        let mut out: Vec<u8> = Vec::new();
        match cmd.as_str() {
            "CAPABILITY" => out.extend_from_slice(
                format!("* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 UIDPLUS SPECIAL-USE AUTH=PLAIN\r\n{tag} OK Thats all she wrote!\r\n").as_bytes(),
            ),
            "NAMESPACE" => out.extend_from_slice(format!("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n{tag} OK Success\r\n").as_bytes()),
            "LIST" => {
                for (name, attrs, _) in folders {
                    out.extend_from_slice(format!("* LIST ({attrs}) \"/\" \"{name}\"\r\n").as_bytes());
                }
                out.extend_from_slice(format!("{tag} OK Success\r\n").as_bytes());
            }
            "EXAMINE" | "SELECT" => {
                let name = rest.trim_matches('"');
                selected = folders.iter().position(|f| f.0 == name);
                let Some(i) = selected else {
                    out.extend_from_slice(format!("{tag} NO Unknown Mailbox\r\n").as_bytes());
                    let _ = s.write_all(&out);
                    continue;
                };
                let msgs = &folders[i].2;
                let next = msgs.iter().map(|m| m.uid).max().unwrap_or(0) + 1;
                out.extend_from_slice(
                    format!(
                        "* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing)\r\n\
                         * OK [PERMANENTFLAGS ()] Flags permitted.\r\n* OK [UIDVALIDITY {}] UIDs valid.\r\n\
                         * {} EXISTS\r\n* 0 RECENT\r\n* OK [UIDNEXT {next}] Predicted next UID.\r\n\
                         {tag} OK [READ-ONLY] {name} selected. (Success)\r\n",
                        600 + i,
                        msgs.len()
                    )
                    .as_bytes(),
                );
            }
            "UID" => {
                let mut parts = rest.splitn(3, ' ');
                let sub = parts.next().unwrap_or("").to_ascii_uppercase();
                let set = parts.next().unwrap_or("").to_string();
                let items = parts.next().unwrap_or("").to_ascii_uppercase();
                let msgs = selected.map(|i| &folders[i].2[..]).unwrap_or(&[]);
                let max = msgs.iter().map(|m| m.uid).max().unwrap_or(0);
                if sub == "SEARCH" {
                    let uids: Vec<String> = msgs.iter().map(|m| m.uid.to_string()).collect();
                    out.extend_from_slice(format!("* SEARCH {}\r\n", uids.join(" ")).as_bytes());
                } else {
                    for (seq, m) in msgs.iter().enumerate() {
                        if !uid_set_contains(&set, m.uid, max) {
                            continue;
                        }
                        let mut f = format!("* {} FETCH (X-GM-MSGID {} UID {}", seq + 1, m.gm_msgid, m.uid);
                        if items.contains("RFC822.SIZE") {
                            f.push_str(&format!(" RFC822.SIZE {}", m.body.len()));
                        }
                        if items.contains("FLAGS") {
                            f.push_str(&format!(" FLAGS ({})", m.flags));
                        }
                        if items.contains("INTERNALDATE") {
                            f.push_str(" INTERNALDATE \"17-Jul-2021 02:44:25 +0000\"");
                        }
                        out.extend_from_slice(f.as_bytes());
                        if items.contains("BODY.PEEK[]") {
                            out.extend_from_slice(format!(" BODY[] {{{}}}\r\n", m.body.len()).as_bytes());
                            out.extend_from_slice(&m.body);
                            sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        out.extend_from_slice(b")\r\n");
                    }
                }
                out.extend_from_slice(format!("{tag} OK Success\r\n").as_bytes());
            }
            "LOGOUT" => {
                let _ = s.write_all(format!("* BYE LOGOUT Requested\r\n{tag} OK 73 good day (Success)\r\n").as_bytes());
                return;
            }
            _ => out.extend_from_slice(format!("{tag} OK Success\r\n").as_bytes()),
        }
        if s.write_all(&out).is_err() {
            return;
        }
    }
}
