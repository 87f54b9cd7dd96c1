//! What an IMAP server may make us hold in memory, checked on the bytes as they
//! arrive, before the IMAP parser (async-imap) sees them.
//!
//! async-imap grows its buffer to whatever size a literal (`{N}` CRLF) announces,
//! before a byte of it has arrived, up to 512 MiB, and keeps a whole response in
//! memory. A server that announces RFC822.SIZE 1 and then a 400 MB literal would be
//! believed. This guard sits between the socket and the parser:
//!
//! 1. A literal announced larger than the maximum message size is never passed on:
//!    the announcement becomes `NIL` and the literal's bytes are read and dropped as
//!    they arrive. Its size is queued ([`Dropped`]) so the fetch can report the
//!    message as too large, by UID.
//! 2. A response (its lines and the literals passed on) is bounded by the maximum
//!    message size plus [`RESPONSE_SLACK`]; a status line (`* OK`, `tag NO`, `+`,
//!    which carry free text, with a literal only inside a leading `[code]`) by
//!    [`TEXT_LINE_LIMIT`]. Past either, reading fails with an error that says which.
//! 3. Status text (and a literal in its code) reaches the parser as ASCII: other
//!    bytes become `?`, since imap-proto 0.17 panics on a multi-byte character
//!    right after a `[code]`. To know which bytes are status text, the guard reads
//!    a line's first tokens as the parser does, however long its tag.
//!
//! The scanner is pure (bytes in, bytes out); [`super::Guarded`] runs it on a stream.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Bytes a response may hold beyond one literal of the maximum message size: its
/// other lines (a UID SEARCH of ten million UIDs is ~80 MB).
pub const RESPONSE_SLACK: u64 = 128 << 20;

/// The longest status line (free text) accepted.
pub const TEXT_LINE_LIMIT: u64 = 1 << 20;

/// The largest literal outside a FETCH response (a folder name, a string in a
/// STATUS or LIST answer); larger ones are dropped like an oversized body. Such
/// responses may also arrive unasked, and async-imap keeps up to 100 of those.
pub const NAME_LITERAL_LIMIT: u64 = 1 << 20;

/// The most digits a literal's length is read with (`u64::MAX` has 20).
const MAX_DIGITS: usize = 20;

/// Why the guard stopped a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("the server sent a status line of more than {limit} bytes without a line end")]
    TextLineTooLong { limit: u64 },
    #[error("the server sent a response of more than {limit} bytes (the maximum message size plus {} MiB)", RESPONSE_SLACK >> 20)]
    ResponseTooLarge { limit: u64 },
}

/// Sizes of literals the guard dropped, oldest first, shared between the stream and
/// the code that reads the parsed responses.
#[derive(Clone, Debug, Default)]
pub struct Dropped(Arc<Mutex<VecDeque<u64>>>);

impl Dropped {
    /// The size of the oldest dropped literal not yet accounted for.
    pub fn take(&self) -> Option<u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).pop_front()
    }
    /// Forgets every dropped literal not yet accounted for (before a new command).
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
    fn push(&self, n: u64) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push_back(n);
    }
}

/// What kind of line the scanner is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The first two tokens are not read yet.
    Undecided,
    /// `+ …`, `* OK|NO|BAD|BYE|PREAUTH …`, `tag OK|NO|BAD …`: free text, with a
    /// literal only inside a leading `[code]` (BADCHARSET's names are astrings).
    Text,
    /// `* n FETCH …`: a literal may be a message body.
    Fetch,
    /// Anything else: `{N}` CRLF announces a literal, of a name or a string.
    Structured,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Outside literals.
    Line,
    /// In `{digits`, `{digits}` or `{digits}\r` (the bytes are held back).
    Brace,
    /// In a literal passed on: this many bytes left.
    Literal(u64),
    /// In a literal dropped: this many bytes left.
    Swallow(u64),
}

/// Where a status line's text is relative to its optional leading `[code]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Code {
    /// At the text's first byte (after `+`, a space may come first).
    Before { after_plus: bool },
    /// Inside `[…`: a literal may come.
    Open,
    /// Past the code, or there is none: free text.
    Past,
}

/// The longest token kept to classify a line: the words compared are at most 7
/// bytes long; a tag may be any length, but only its being `*` matters.
const TOKEN_KEPT: usize = 8;

/// The first tokens of a line, read byte by byte to decide its [`Kind`].
#[derive(Clone, Debug, Default)]
struct Head {
    /// Tokens ended so far (by a space).
    ended: usize,
    /// The current token's first bytes.
    token: Vec<u8>,
    /// The current token has more than [`TOKEN_KEPT`] bytes.
    long: bool,
    /// The first token is `*`.
    star: bool,
    /// The second token is a number (`* 12 FETCH`).
    number: bool,
}

impl Head {
    fn clear(&mut self) {
        *self = Head::default();
    }

    fn is(&self, words: &[&[u8]]) -> bool {
        !self.long && words.iter().any(|w| self.token.eq_ignore_ascii_case(w))
    }

    /// The line's kind once `b` (the next byte outside literals) is read, or
    /// `None` while the first tokens are not all read.
    fn read(&mut self, b: u8) -> Option<Kind> {
        if self.ended == 0 && self.token.is_empty() && !self.long && b == b'+' {
            return Some(Kind::Text);
        }
        if !matches!(b, b' ' | b'\r' | b'\n') {
            if self.token.len() < TOKEN_KEPT {
                self.token.push(b);
            } else {
                self.long = true;
            }
            return None;
        }
        let line_ends = b != b' ';
        let kind = match self.ended {
            0 if line_ends => Some(Kind::Structured),
            0 => {
                self.star = !self.long && self.token == b"*";
                None
            }
            1 if self.is(&[b"OK", b"NO", b"BAD", b"BYE", b"PREAUTH"]) => Some(Kind::Text),
            1 => {
                self.number = self.star && !self.token.is_empty() && self.token.iter().all(u8::is_ascii_digit);
                (!self.number || line_ends).then_some(Kind::Structured)
            }
            _ if self.is(&[b"FETCH"]) => Some(Kind::Fetch),
            _ => Some(Kind::Structured),
        };
        self.ended += 1;
        self.token.clear();
        self.long = false;
        kind
    }
}

/// The scanner; see the module documentation.
#[derive(Debug)]
pub struct LiteralGuard {
    max_literal: u64,
    state: State,
    kind: Kind,
    /// The current line's first tokens (to decide its kind).
    head: Head,
    /// In a status line: where its `[code]` is.
    code: Code,
    /// Bytes of the current line outside literals.
    line: u64,
    /// Bytes of the current response passed on.
    response: u64,
    /// `{digits}` CR held back until we know whether it announces a literal.
    held: Vec<u8>,
    dropped: Dropped,
}

impl LiteralGuard {
    pub fn new(max_literal: u64, dropped: Dropped) -> LiteralGuard {
        LiteralGuard {
            max_literal,
            state: State::Line,
            kind: Kind::Undecided,
            head: Head::default(),
            code: Code::Past,
            line: 0,
            response: 0,
            held: Vec::new(),
            dropped,
        }
    }

    fn response_limit(&self) -> u64 {
        self.literal_limit().saturating_add(RESPONSE_SLACK)
    }

    /// The largest literal passed on in the current line.
    fn literal_limit(&self) -> u64 {
        match self.kind {
            Kind::Fetch => self.max_literal,
            _ => self.max_literal.min(NAME_LITERAL_LIMIT),
        }
    }

    /// Scans `input`, appending to `out` what the parser may see.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), GuardError> {
        while !input.is_empty() {
            match self.state {
                State::Literal(left) => {
                    let n = left.min(input.len() as u64) as usize;
                    if self.kind == Kind::Text {
                        out.extend(input[..n].iter().map(|&b| ascii_or_question_mark(b)));
                    } else {
                        out.extend_from_slice(&input[..n]);
                    }
                    input = &input[n..];
                    self.state = if left == n as u64 {
                        State::Line
                    } else {
                        State::Literal(left - n as u64)
                    };
                }
                State::Swallow(left) => {
                    let n = left.min(input.len() as u64) as usize;
                    input = &input[n..];
                    self.state = if left == n as u64 {
                        State::Line
                    } else {
                        State::Swallow(left - n as u64)
                    };
                }
                State::Line | State::Brace => {
                    let b = input[0];
                    input = &input[1..];
                    self.byte(b, out)?;
                }
            }
        }
        Ok(())
    }

    /// One byte outside literals.
    fn byte(&mut self, b: u8, out: &mut Vec<u8>) -> Result<(), GuardError> {
        self.line += 1;
        self.response += 1;
        if self.kind == Kind::Undecided {
            if let Some(kind) = self.head.read(b) {
                self.kind = kind;
                self.code = Code::Before { after_plus: b == b'+' };
                if b == b'+' {
                    return self.pass(b, out);
                }
            }
        } else if self.kind == Kind::Text && self.state == State::Line {
            self.code = match (self.code, b) {
                (Code::Before { after_plus: true }, b' ') => Code::Before { after_plus: false },
                (Code::Before { .. }, b'[') => Code::Open,
                (Code::Open, b']') | (Code::Before { .. }, _) => Code::Past,
                (code, _) => code,
            };
        }
        if self.kind == Kind::Text && self.line > TEXT_LINE_LIMIT {
            return Err(GuardError::TextLineTooLong { limit: TEXT_LINE_LIMIT });
        }
        if self.response > self.response_limit() {
            return Err(GuardError::ResponseTooLarge {
                limit: self.response_limit(),
            });
        }
        if self.state == State::Brace {
            return self.brace_byte(b, out);
        }
        let literal_may_come = match self.kind {
            Kind::Structured | Kind::Fetch => true,
            Kind::Text => self.code == Code::Open,
            Kind::Undecided => false,
        };
        if b == b'{' && literal_may_come {
            self.held.push(b);
            self.state = State::Brace;
            return Ok(());
        }
        self.pass(b, out)
    }

    /// Passes on one byte outside literals and braces.
    fn pass(&mut self, b: u8, out: &mut Vec<u8>) -> Result<(), GuardError> {
        // imap-proto 0.17 slices the text after a `[code]` one byte in, assuming a
        // space: a multi-byte character there panics the parser (found by fuzzing).
        // Status text is for people; its non-ASCII bytes become `?`.
        let b = if self.kind == Kind::Text {
            ascii_or_question_mark(b)
        } else {
            b
        };
        out.push(b);
        if b == b'\n' {
            self.end_line();
        }
        Ok(())
    }

    /// A byte after `{`: digits, then `}`, CR, LF make a literal; anything else
    /// means the held bytes were ordinary text.
    fn brace_byte(&mut self, b: u8, out: &mut Vec<u8>) -> Result<(), GuardError> {
        let digits = self.held.len() - 1;
        let closed = self.held.last() == Some(&b'}');
        let cr = self.held.last() == Some(&b'\r');
        let fits = match b {
            b'0'..=b'9' => !closed && !cr && digits < MAX_DIGITS,
            b'}' => !closed && !cr && digits >= 1,
            b'\r' => closed,
            b'\n' => cr,
            _ => false,
        };
        if !fits {
            out.append(&mut self.held);
            self.state = State::Line;
            // The byte itself may start a new brace or end the line.
            self.line -= 1;
            self.response -= 1;
            return self.byte(b, out);
        }
        if b != b'\n' {
            self.held.push(b);
            return Ok(());
        }
        let n = self.held[1..self.held.len() - 2]
            .iter()
            .try_fold(0u64, |n, d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
            .unwrap_or(u64::MAX);
        self.held.clear();
        // The line goes on after the literal: its kind stays, its length restarts.
        self.line = 0;
        if n > self.literal_limit() {
            out.extend_from_slice(b"NIL");
            self.dropped.push(n);
            self.state = if n == 0 { State::Line } else { State::Swallow(n) };
            return Ok(());
        }
        out.extend_from_slice(b"{");
        out.extend_from_slice(n.to_string().as_bytes());
        out.extend_from_slice(b"}\r\n");
        self.response = self.response.saturating_add(n);
        if self.response > self.response_limit() {
            return Err(GuardError::ResponseTooLarge {
                limit: self.response_limit(),
            });
        }
        self.state = if n == 0 { State::Line } else { State::Literal(n) };
        Ok(())
    }

    /// A line end outside literals: the response ends here.
    fn end_line(&mut self) {
        self.kind = Kind::Undecided;
        self.head.clear();
        self.code = Code::Past;
        self.line = 0;
        self.response = 0;
    }
}

/// Status text is for people: a byte outside ASCII becomes `?`.
fn ascii_or_question_mark(b: u8) -> u8 {
    if b.is_ascii() {
        b
    } else {
        b'?'
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(max: u64, chunks: &[&[u8]]) -> (Result<Vec<u8>, GuardError>, Vec<u64>) {
        let dropped = Dropped::default();
        let mut g = LiteralGuard::new(max, dropped.clone());
        let mut out = Vec::new();
        for c in chunks {
            if let Err(e) = g.feed(c, &mut out) {
                return (Err(e), std::iter::from_fn(|| dropped.take()).collect());
            }
        }
        (Ok(out), std::iter::from_fn(|| dropped.take()).collect())
    }

    #[test]
    fn small_literals_and_plain_lines_pass_unchanged() {
        let input: &[u8] =
            b"* OK ready {99999999999}\r\n* 1 FETCH (UID 5 BODY[] {5}\r\nab{3}\r\n FLAGS (\\Seen))\r\nA1 OK done\r\n";
        for split in 0..input.len() {
            let (out, dropped) = run(100, &[&input[..split], &input[split..]]);
            assert_eq!(out.unwrap(), input, "split at {split}");
            assert!(dropped.is_empty());
        }
    }

    #[test]
    fn a_literal_over_the_maximum_becomes_nil_and_its_bytes_are_dropped() {
        let body = vec![b'x'; 1000];
        let mut input = b"* 1 FETCH (UID 7 BODY[] {1000}\r\n".to_vec();
        input.extend_from_slice(&body);
        input.extend_from_slice(b")\r\nA1 OK done\r\n");
        for split in [0, 20, 28, 29, 30, 31, 500, input.len()] {
            let (out, dropped) = run(999, &[&input[..split], &input[split..]]);
            assert_eq!(
                out.unwrap(),
                b"* 1 FETCH (UID 7 BODY[] NIL)\r\nA1 OK done\r\n",
                "split at {split}"
            );
            assert_eq!(dropped, vec![1000]);
        }
    }

    #[test]
    fn a_length_past_u64_is_dropped_as_the_largest() {
        let (out, dropped) = run(10, &[b"* 1 FETCH (BODY[] {99999999999999999999}\r\nxyz"]);
        assert_eq!(out.unwrap(), b"* 1 FETCH (BODY[] NIL");
        assert_eq!(dropped, vec![u64::MAX]);
        // 21 digits: not a literal the parser could read either; passed on as text.
        let (out, _) = run(10, &[b"* 1 FETCH (BODY[] {999999999999999999999}\r\n"]);
        assert_eq!(out.unwrap(), b"* 1 FETCH (BODY[] {999999999999999999999}\r\n");
    }

    #[test]
    fn braces_that_are_not_literals_pass_unchanged() {
        for input in [
            &b"* 1 FETCH (X {12)\r\n"[..],
            b"* 1 FETCH (X {}\r\n",
            b"* 1 FETCH (X {1}x\r\n",
            b"* 1 FETCH (X {{5}\r\nhello)\r\n",
            b"+ {999999}\r\n",
            b"A7 NO {999999}\r\n",
        ] {
            let (out, dropped) = run(100, &[input]);
            assert_eq!(out.unwrap(), input);
            assert!(dropped.is_empty());
        }
    }

    #[test]
    fn a_literal_outside_fetch_is_bounded_as_a_name() {
        let big = NAME_LITERAL_LIMIT + 1;
        let input = format!("* LIST () \"/\" {{{big}}}\r\n");
        let (out, dropped) = run(1 << 30, &[input.as_bytes()]);
        assert_eq!(out.unwrap(), b"* LIST () \"/\" NIL");
        assert_eq!(dropped, vec![big]);
        let input = format!("* 3 FETCH (BODY[] {{{big}}}\r\n");
        let (out, dropped) = run(1 << 30, &[input.as_bytes()]);
        assert_eq!(out.unwrap(), input.as_bytes(), "a body may be larger");
        assert!(dropped.is_empty());
    }

    #[test]
    fn non_ascii_status_text_becomes_question_marks() {
        // Found by fuzzing: imap-proto panics on `[code]` followed by non-ASCII.
        let input: &[u8] = b"* OK [ALERT]\xe2\x82\xac down\r\n+\xff\r\n* 1 FETCH (X \"\xc3\xa9\")\r\n";
        let (out, _) = run(100, &[input]);
        assert_eq!(
            out.unwrap(),
            b"* OK [ALERT]??? down\r\n+?\r\n* 1 FETCH (X \"\xc3\xa9\")\r\n"
        );
    }

    #[test]
    fn a_status_line_with_a_long_tag_is_still_status_text() {
        // Found by fuzzing: a tag longer than the bytes once kept to classify a line
        // made its status text pass unchanged.
        let tag = "T".repeat(200);
        let input = format!("{tag} OK [ALERT]\u{e9} done\r\n");
        let (out, _) = run(100, &[input.as_bytes()]);
        assert_eq!(out.unwrap(), format!("{tag} OK [ALERT]?? done\r\n").as_bytes());
    }

    #[test]
    fn a_literal_inside_a_status_code_is_read_as_one() {
        // BADCHARSET's names are astrings: imap-proto reads `{N}` CRLF there as a
        // literal, so the line goes on after it and its text is still status text.
        let input: &[u8] = b"A1 NO [BADCHARSET ({3}\r\n\xffab)]\xe2\x82\xac {7}\r\n* 1 FETCH (X \"\xc3\xa9\")\r\n";
        for split in 0..input.len() {
            let (out, dropped) = run(100, &[&input[..split], &input[split..]]);
            assert_eq!(
                out.unwrap(),
                b"A1 NO [BADCHARSET ({3}\r\n?ab)]??? {7}\r\n* 1 FETCH (X \"\xc3\xa9\")\r\n",
                "split at {split}"
            );
            assert!(dropped.is_empty());
        }
        let (out, dropped) = run(1 << 30, &[b"+ [X {2000000}\r\n"]);
        assert_eq!(out.unwrap(), b"+ [X NIL", "bounded as a name");
        assert_eq!(dropped, vec![2_000_000]);
        let (out, _) = run(100, &[b"* OK ready [X {3}\r\n"]);
        assert_eq!(out.unwrap(), b"* OK ready [X {3}\r\n", "a code only leads the text");
    }

    #[test]
    fn a_literal_inside_a_literal_is_content() {
        let input: &[u8] = b"* 1 FETCH (BODY[] {16}\r\n{99999999}\r\nabcd)\r\n";
        let (out, dropped) = run(100, &[input]);
        assert_eq!(out.unwrap(), input);
        assert!(dropped.is_empty());
    }

    #[test]
    fn an_endless_status_line_is_stopped() {
        let chunk = vec![b'a'; 64 * 1024];
        let dropped = Dropped::default();
        let mut g = LiteralGuard::new(1 << 30, dropped);
        let mut out = Vec::new();
        g.feed(b"* OK ", &mut out).unwrap();
        let mut err = None;
        for _ in 0..100 {
            out.clear();
            if let Err(e) = g.feed(&chunk, &mut out) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(GuardError::TextLineTooLong { limit: TEXT_LINE_LIMIT }));
    }

    #[test]
    fn a_response_past_the_maximum_plus_slack_is_stopped() {
        let max = 1000;
        let dropped = Dropped::default();
        let mut g = LiteralGuard::new(max, dropped);
        let mut out = Vec::new();
        g.feed(b"* SEARCH", &mut out).unwrap();
        let chunk = b" 12345678".repeat(1 << 16);
        let mut err = None;
        for _ in 0..1000 {
            out.clear();
            if let Err(e) = g.feed(&chunk, &mut out) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(
            err,
            Some(GuardError::ResponseTooLarge {
                limit: max + RESPONSE_SLACK
            })
        );
    }

    #[test]
    fn many_literals_in_one_response_count_together() {
        let max = RESPONSE_SLACK;
        let dropped = Dropped::default();
        let mut g = LiteralGuard::new(max, dropped);
        let mut out = Vec::new();
        let mut err = None;
        g.feed(b"* 1 FETCH (", &mut out).unwrap();
        for _ in 0..3 {
            let announce = format!("X {{{max}}}\r\n");
            if let Err(e) = g.feed(announce.as_bytes(), &mut out) {
                err = Some(e);
                break;
            }
            let mut left = max;
            while left > 0 {
                let n = left.min(1 << 20);
                out.clear();
                g.feed(&vec![b'y'; n as usize], &mut out).unwrap();
                left -= n;
            }
        }
        assert!(matches!(err, Some(GuardError::ResponseTooLarge { .. })));
    }
}
