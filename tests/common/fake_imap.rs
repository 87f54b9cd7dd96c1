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
