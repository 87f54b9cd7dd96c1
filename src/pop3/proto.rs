//! POP3 wire format (RFC 1939, 2449), free of I/O: status lines, CAPA, UIDL and LIST
//! answers with validation, and a streaming decoder for dot-stuffed multi-line
//! answers (RETR, TOP) that never needs a whole message in one buffer.

use std::fmt;

use crate::plan::pop3_sync::uidl_problem;

/// The longest line accepted from a server (RFC 2449 allows 512 octets for responses;
/// message lines may be longer and are not bounded here).
pub const MAX_STATUS_LINE: usize = 4096;

/// A single-line answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Ok(String),
    Err(String),
}

/// Why a server line could not be understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("server line is not +OK or -ERR: {0:?}")]
    NotStatus(String),
    #[error("server line longer than {MAX_STATUS_LINE} bytes")]
    TooLong,
    #[error("malformed {what} line {line:?}")]
    Malformed { what: &'static str, line: String },
    #[error("invalid UIDL {uidl:?} for message {msg}: {why}")]
    BadUidl { msg: u32, uidl: String, why: &'static str },
}

/// Parses a status line (without its CRLF).
pub fn parse_status(line: &[u8]) -> Result<Status, ProtoError> {
    if line.len() > MAX_STATUS_LINE {
        return Err(ProtoError::TooLong);
    }
    let text = String::from_utf8_lossy(line);
    if let Some(rest) = text.strip_prefix("+OK") {
        if rest.is_empty() || rest.starts_with(' ') {
            return Ok(Status::Ok(rest.trim_start().to_string()));
        }
    }
    if let Some(rest) = text.strip_prefix("-ERR") {
        if rest.is_empty() || rest.starts_with(' ') {
            return Ok(Status::Err(rest.trim_start().to_string()));
        }
    }
    Err(ProtoError::NotStatus(text.chars().take(200).collect()))
}

/// CAPA answer lines → capability names (upper-cased) with their arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub stls: bool,
    pub uidl: bool,
    pub top: bool,
    pub pipelining: bool,
    pub user: bool,
    pub sasl: Vec<String>,
    /// Whether the server answered CAPA at all (RFC 1939 servers may not): only then
    /// does a missing capability mean the server lacks it.
    pub answered: bool,
}

impl Capabilities {
    pub fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> Capabilities {
        let mut c = Capabilities {
            answered: true,
            ..Default::default()
        };
        for l in lines {
            let mut words = l.split_ascii_whitespace();
            let Some(name) = words.next() else { continue };
            match name.to_ascii_uppercase().as_str() {
                "STLS" => c.stls = true,
                "UIDL" => c.uidl = true,
                "TOP" => c.top = true,
                "PIPELINING" => c.pipelining = true,
                "USER" => c.user = true,
                "SASL" => c.sasl.extend(words.map(|w| w.to_ascii_uppercase())),
                _ => {}
            }
        }
        c
    }
}

/// Checks a UIDL against RFC 1939 §7 ([`uidl_problem`]), naming the message.
pub fn validate_uidl(msg: u32, uidl: &str) -> Result<(), ProtoError> {
    match uidl_problem(uidl) {
        None => Ok(()),
        Some(why) => Err(ProtoError::BadUidl {
            msg,
            uidl: uidl.chars().take(100).collect(),
            why,
        }),
    }
}

/// One line of a multi-line UIDL answer: `msg uidl`.
pub fn parse_uidl_line(line: &str) -> Result<(u32, String), ProtoError> {
    let malformed = || ProtoError::Malformed {
        what: "UIDL",
        line: line.chars().take(200).collect(),
    };
    let mut w = line.split(' ');
    let msg: u32 = w
        .next()
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .ok_or_else(malformed)?;
    let uidl = w.next().ok_or_else(malformed)?;
    if w.next().is_some_and(|x| !x.is_empty()) {
        return Err(malformed());
    }
    validate_uidl(msg, uidl)?;
    Ok((msg, uidl.to_string()))
}

/// One line of a multi-line LIST answer: `msg octets`.
pub fn parse_list_line(line: &str) -> Result<(u32, u64), ProtoError> {
    let malformed = || ProtoError::Malformed {
        what: "LIST",
        line: line.chars().take(200).collect(),
    };
    let mut w = line.split_ascii_whitespace();
    let msg: u32 = w
        .next()
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .ok_or_else(malformed)?;
    let size: u64 = w.next().and_then(|n| n.parse().ok()).ok_or_else(malformed)?;
    Ok((msg, size))
}

/// Undoes dot-stuffing of a multi-line answer as bytes arrive, and finds its end
/// (`CRLF . CRLF`). Bytes after the terminator are returned untouched (the next
/// pipelined answer). A lone LF is accepted as a line end, as some servers send.
#[derive(Clone, Debug, Default)]
pub struct DotDecoder {
    /// At the start of a line (the answer's first byte counts as one).
    line_start: bool,
    /// Saw `.` at a line start; waiting to know whether it is stuffing or the end.
    dot: bool,
    /// Saw `.` `\r` at a line start.
    dot_cr: bool,
    started: bool,
    done: bool,
}

/// What [`DotDecoder::feed`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Fed {
    /// All input consumed; the answer continues.
    More,
    /// The answer ended; this many input bytes were consumed (the rest belongs to
    /// what follows).
    End(usize),
}

impl DotDecoder {
    pub fn new() -> DotDecoder {
        DotDecoder::default()
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Decodes `input`, appending the unstuffed bytes to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Fed {
        if !self.started {
            self.started = true;
            self.line_start = true;
        }
        for (i, &b) in input.iter().enumerate() {
            if self.done {
                return Fed::End(i);
            }
            if self.dot_cr {
                self.dot_cr = false;
                if b == b'\n' {
                    self.done = true;
                    return Fed::End(i + 1);
                }
                // `.\r` followed by something else: a stuffed line starting "\r".
                out.push(b'\r');
                self.push(b, out);
                continue;
            }
            if self.dot {
                self.dot = false;
                match b {
                    b'\r' => {
                        self.dot_cr = true;
                        continue;
                    }
                    b'\n' => {
                        self.done = true;
                        return Fed::End(i + 1);
                    }
                    // `..` → `.`; any other byte after a leading dot is kept as is.
                    b'.' => {
                        out.push(b'.');
                        self.line_start = false;
                        continue;
                    }
                    _ => {
                        self.push(b, out);
                        continue;
                    }
                }
            }
            if self.line_start && b == b'.' {
                self.dot = true;
                self.line_start = false;
                continue;
            }
            self.push(b, out);
        }
        if self.done {
            Fed::End(input.len())
        } else {
            Fed::More
        }
    }

    fn push(&mut self, b: u8, out: &mut Vec<u8>) {
        out.push(b);
        self.line_start = b == b'\n';
    }
}

/// The APOP timestamp of a greeting (RFC 1939 §7): the `<…@…>` part, brackets
/// included, if the server offers APOP.
pub fn apop_timestamp(greeting: &str) -> Option<&str> {
    let start = greeting.find('<')?;
    let end = start + greeting[start..].find('>')?;
    let ts = &greeting[start..=end];
    (ts.contains('@') && ts.bytes().all(|b| (0x21..=0x7e).contains(&b))).then_some(ts)
}

/// The APOP digest: lower-case hex MD5 of timestamp + password.
pub fn apop_digest(timestamp: &str, password: &str) -> String {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    h.update(timestamp.as_bytes());
    h.update(password.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// For a server without UIDL: a stand-in id from what `TOP n 0` returned (the
/// header) and the size LIST gave. It is used only to skip messages already
/// archived; the placement recorded for a message also carries its content hash
/// ([`no_uidl_placement`]), so two messages that share header and size are both
/// kept.
pub fn no_uidl_id(ids: &crate::model::IdHasher, header: &[u8], size: u64) -> String {
    let h = ids.id(header).to_hex();
    format!("hdr:{}:{size}", &h[..32])
}

/// The placement key of a message pulled from a server without UIDL.
pub fn no_uidl_placement(id: &str, content: &crate::model::Hash32) -> String {
    format!("{id}:{}", content.to_hex())
}

/// The stand-in id a [`no_uidl_placement`] key was made from, if it is one.
pub fn no_uidl_id_of(placement: &str) -> Option<&str> {
    if !placement.starts_with("hdr:") {
        return None;
    }
    placement
        .rfind(':')
        .map(|i| &placement[..i])
        .filter(|id| id.matches(':').count() == 2)
}

/// A message without a final line break cannot end a POP3 multi-line answer: the
/// server adds CRLF before the terminating dot. When the decoded bytes are exactly
/// that CRLF longer than the size LIST announced, the CRLF is the server's and is
/// removed, so the archive holds the message as the server stores it (the same
/// bytes IMAP's BODY[] gives).
pub fn strip_added_crlf(mut raw: Vec<u8>, listed_size: u64) -> Vec<u8> {
    if raw.len() as u64 == listed_size.saturating_add(2) && raw.ends_with(b"\r\n") {
        raw.truncate(raw.len() - 2);
    }
    raw
}

/// Dot-stuffs `data` and appends the terminator, as a server sends it (tests and the
/// fake server).
pub fn dot_stuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    let mut line_start = true;
    for &b in data {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    if !data.is_empty() && !data.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Ok(t) => write!(f, "+OK {t}"),
            Status::Err(t) => write!(f, "-ERR {t}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn apop() {
        // RFC 1939 §7's example.
        let g = "POP3 server ready <1896.697170952@dbc.mtview.ca.us>";
        let ts = apop_timestamp(g).unwrap();
        assert_eq!(ts, "<1896.697170952@dbc.mtview.ca.us>");
        assert_eq!(apop_digest(ts, "tanstaaf"), "c4c9334bac560ecc979e58001b3e22fb");
        assert_eq!(apop_timestamp("Dovecot ready."), None);
        assert_eq!(apop_timestamp("ready <no-at-sign>"), None);
        assert_eq!(apop_timestamp("ready <a b@c>"), None);
        assert_eq!(apop_timestamp("ready <a@b"), None);
    }

    #[test]
    fn no_uidl_ids() {
        let plain = crate::model::IdHasher::plain();
        let id = no_uidl_id(&plain, b"Subject: x\r\n\r\n", 120);
        assert!(id.starts_with("hdr:") && id.ends_with(":120") && id.len() <= 70, "{id}");
        assert!(validate_uidl(1, &id).is_ok());
        assert_ne!(id, no_uidl_id(&plain, b"Subject: y\r\n\r\n", 120));
        assert_ne!(id, no_uidl_id(&plain, b"Subject: x\r\n\r\n", 121));
        let content = crate::model::Hash32::of(b"whole message");
        let key = no_uidl_placement(&id, &content);
        assert_eq!(no_uidl_id_of(&key), Some(id.as_str()));
        assert_eq!(no_uidl_id_of(&id), None);
        assert_eq!(no_uidl_id_of("1234abcd"), None);
        assert_eq!(no_uidl_id_of("blake3:00ff"), None);
    }

    #[test]
    fn status_lines() {
        let cases: Vec<(&[u8], Result<Status, ()>)> = vec![
            (b"+OK", Ok(Status::Ok(String::new()))),
            (
                b"+OK 2 messages (320 octets)",
                Ok(Status::Ok("2 messages (320 octets)".into())),
            ),
            (b"-ERR no such message", Ok(Status::Err("no such message".into()))),
            (b"-ERR", Ok(Status::Err(String::new()))),
            (b"+OKAY", Err(())),
            (b"* OK imap", Err(())),
            (b"", Err(())),
        ];
        for (line, want) in cases {
            assert_eq!(
                parse_status(line).map_err(|_| ()),
                want,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        assert_eq!(parse_status(&vec![b'+'; MAX_STATUS_LINE + 1]), Err(ProtoError::TooLong));
    }

    #[test]
    fn capa() {
        let c = Capabilities::parse([
            "TOP",
            "USER",
            "SASL PLAIN xoauth2",
            "RESP-CODES",
            "PIPELINING",
            "UIDL",
            "STLS",
        ]);
        assert!(c.stls && c.uidl && c.top && c.pipelining && c.user);
        assert_eq!(c.sasl, vec!["PLAIN".to_string(), "XOAUTH2".to_string()]);
        // An empty answer: the server has none of them, and says so.
        let none = Capabilities::parse([""]);
        assert!(none.answered && !none.uidl && !none.top && none.sasl.is_empty());
        // No answer at all (CAPA refused): nothing is known.
        assert!(!Capabilities::default().answered);
    }

    #[test]
    fn uidl_lines() {
        assert_eq!(
            parse_uidl_line("1 whqtswO00WBw418f9t5JxYwZ"),
            Ok((1, "whqtswO00WBw418f9t5JxYwZ".into()))
        );
        assert_eq!(parse_uidl_line("12 00000001.testhost").map(|x| x.0), Ok(12));
        let bad = ["", "x abc", "0 abc", "1", "1 a b", "-1 abc"];
        for l in bad {
            assert!(matches!(parse_uidl_line(l), Err(ProtoError::Malformed { .. })), "{l:?}");
        }
        let long = format!("3 {}", "a".repeat(71));
        assert!(matches!(
            parse_uidl_line(&long),
            Err(ProtoError::BadUidl { msg: 3, .. })
        ));
        assert!(matches!(
            parse_uidl_line("4 caf\u{e9}"),
            Err(ProtoError::BadUidl { msg: 4, .. })
        ));
        assert!(validate_uidl(1, &"~".repeat(70)).is_ok());
    }

    #[test]
    fn added_crlf() {
        assert_eq!(strip_added_crlf(b"a\r\nb\r\n".to_vec(), 4), b"a\r\nb".to_vec());
        assert_eq!(strip_added_crlf(b"a\r\nb\r\n".to_vec(), 6), b"a\r\nb\r\n".to_vec());
        assert_eq!(strip_added_crlf(b"ab".to_vec(), 0), b"ab".to_vec());
        // A size the server made up at the top of the range: no overflow.
        assert_eq!(strip_added_crlf(b"ab".to_vec(), u64::MAX), b"ab".to_vec());
        assert_eq!(parse_list_line("1 18446744073709551615"), Ok((1, u64::MAX)));
    }

    #[test]
    fn list_lines() {
        assert_eq!(parse_list_line("1 120"), Ok((1, 120)));
        assert!(parse_list_line("one 120").is_err());
        assert!(parse_list_line("1").is_err());
    }

    #[test]
    fn dot_decoding_table() {
        let cases: Vec<(&[u8], &[u8], usize)> = vec![
            (b".\r\n", b"", 3),
            (b"a\r\n.\r\n", b"a\r\n", 6),
            (b"..x\r\n.\r\n", b".x\r\n", 8),
            (b"a\r\n..\r\n.\r\nNEXT", b"a\r\n.\r\n", 10),
            (b"a\n.\n", b"a\n", 4),
            (b"a.b\r\n.\r\n", b"a.b\r\n", 8),
            (b".x\r\n.\r\n", b"x\r\n", 7),
        ];
        for (input, want, consumed) in cases {
            let mut d = DotDecoder::new();
            let mut out = Vec::new();
            assert_eq!(
                d.feed(input, &mut out),
                Fed::End(consumed),
                "{:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(out, want, "{:?}", String::from_utf8_lossy(input));
        }
        let mut d = DotDecoder::new();
        let mut out = Vec::new();
        assert_eq!(d.feed(b"no end\r\n", &mut out), Fed::More);
        assert!(!d.is_done());
    }

    proptest! {
        /// Whatever the message and however the bytes are split into reads, stuffing
        /// then decoding gives the message back (with a final CRLF added when it had
        /// no final line break) and stops exactly at the terminator.
        #[test]
        fn stuff_then_decode_is_identity(
            data in proptest::collection::vec(prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), any::<u8>()], 0..400),
            cuts in proptest::collection::vec(1usize..50, 0..20),
        ) {
            let mut data = data;
            // A message's bytes as a server sends them end lines with CRLF.
            data.retain(|&b| b != b'\r');
            let mut crlf = Vec::new();
            for &b in &data { if b == b'\n' { crlf.extend_from_slice(b"\r\n"); } else { crlf.push(b); } }
            let mut wire = dot_stuff(&crlf);
            wire.extend_from_slice(b"+OK next");
            let mut d = DotDecoder::new();
            let mut out = Vec::new();
            let mut pos = 0;
            let mut ended = None;
            for c in cuts.iter().chain(std::iter::repeat(&7)) {
                if pos >= wire.len() { break; }
                let end = (pos + c).min(wire.len());
                match d.feed(&wire[pos..end], &mut out) {
                    Fed::More => pos = end,
                    Fed::End(n) => { ended = Some(pos + n); break; }
                }
            }
            let mut want = crlf.clone();
            if !want.is_empty() && !want.ends_with(b"\n") { want.extend_from_slice(b"\r\n"); }
            prop_assert_eq!(out, want);
            prop_assert_eq!(ended, Some(wire.len() - b"+OK next".len()));
        }

        #[test]
        fn parsers_never_panic(s in ".{0,120}", b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_status(&b);
            let _ = parse_uidl_line(&s);
            let _ = parse_list_line(&s);
            let mut d = DotDecoder::new();
            let mut out = Vec::new();
            let _ = d.feed(&b, &mut out);
        }
    }
}
