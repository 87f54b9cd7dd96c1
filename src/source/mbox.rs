//! mbox reading (mboxrd and mboxo) and writing (mboxrd), streaming one message at a
//! time.
//!
//! Our mboxrd, as written by `export --format mbox` and read back here:
//! `From SENDER DATE\n`, the message with every line matching `^>*From ` given one
//! more `>`, then one `\n`. The reader takes the bytes between two `From ` lines,
//! removes that one final line break and unquotes — so every message, even one
//! without a final newline, comes back byte-exact and keeps its id.
//!
//! mboxo and mboxrd read identically except for lines starting `>>From ` and
//! deeper, which only mboxrd unquotes. A file cannot tell which it is, so the
//! default is mboxrd (what Google Takeout, mutt and our export write);
//! `--mbox-format mboxo` reads the other.

use std::io::{BufRead, Write};

use chrono::NaiveDateTime;

/// Quoting convention of an mbox file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MboxFormat {
    #[default]
    Mboxrd,
    Mboxo,
}

/// One message read from an mbox.
#[derive(Debug, PartialEq, Eq)]
pub struct MboxMessage {
    /// The `From ` line without its line break.
    pub from_line: Vec<u8>,
    /// The message, unquoted.
    pub raw: Vec<u8>,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// True when `head` (the first bytes of a file) starts like an mbox.
pub fn sniff(head: &[u8]) -> bool {
    head.strip_prefix(BOM).unwrap_or(head).starts_with(b"From ")
}

/// Reads messages from an mbox stream, one at a time.
pub struct MboxReader<R> {
    input: R,
    format: MboxFormat,
    pending_from: Option<Vec<u8>>,
    line: Vec<u8>,
    started: bool,
    strip_at_eof: bool,
}

impl<R: BufRead> MboxReader<R> {
    pub fn new(input: R, format: MboxFormat) -> Self {
        MboxReader {
            input,
            format,
            pending_from: None,
            line: Vec::new(),
            started: false,
            strip_at_eof: true,
        }
    }

    /// For a single message behind an envelope line (a `.eml` file starting with
    /// `From `): the message runs to the end of the file, final line break included,
    /// as no mbox writer added it.
    pub fn keep_final_line_break(mut self) -> Self {
        self.strip_at_eof = false;
        self
    }

    /// The next message, or `None` at the end. Text before the first `From ` line (a
    /// file that is not an mbox at its start) comes back as a message of its own with
    /// an empty `from_line`, so nothing is lost.
    pub fn next_message(&mut self) -> std::io::Result<Option<MboxMessage>> {
        let mut raw = Vec::new();
        let mut from_line = match self.pending_from.take() {
            Some(f) => Some(f),
            None if self.started => return Ok(None),
            None => None,
        };
        let mut eol_crlf = from_line.as_ref().is_some_and(|f| f.ends_with(b"\r"));
        let mut at_eof = false;
        loop {
            self.line.clear();
            let n = self.input.read_until(b'\n', &mut self.line)?;
            if n == 0 {
                self.started = true;
                at_eof = true;
                if from_line.is_none() && raw.is_empty() {
                    return Ok(None);
                }
                break;
            }
            let mut line: &[u8] = &self.line;
            if !self.started {
                self.started = true;
                line = line.strip_prefix(BOM).unwrap_or(line);
                if line.starts_with(b"From ") {
                    let l = trim_eol(line);
                    eol_crlf = l.ends_with(b"\r");
                    from_line = Some(l.strip_suffix(b"\r").unwrap_or(l).to_vec());
                    continue;
                }
            }
            if line.starts_with(b"From ") {
                let l = trim_eol(line);
                self.pending_from = Some(l.to_vec());
                break;
            }
            raw.extend_from_slice(unquote(line, self.format));
        }
        // Remove the one line break the writer added after the message.
        if at_eof && !self.strip_at_eof {
            // kept: see `keep_final_line_break`
        } else if eol_crlf && raw.ends_with(b"\r\n") {
            raw.truncate(raw.len() - 2);
        } else if raw.ends_with(b"\n") {
            raw.truncate(raw.len() - 1);
        }
        let from_line = from_line.unwrap_or_default();
        Ok(Some(MboxMessage {
            from_line: from_line.strip_suffix(b"\r").unwrap_or(&from_line).to_vec(),
            raw,
        }))
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// Removes one level of `>From ` quoting from a line.
fn unquote(line: &[u8], format: MboxFormat) -> &[u8] {
    let gts = line.iter().take_while(|&&c| c == b'>').count();
    let quoted = gts > 0 && line[gts..].starts_with(b"From ");
    match format {
        MboxFormat::Mboxrd if quoted => &line[1..],
        MboxFormat::Mboxo if quoted && gts == 1 => &line[1..],
        _ => line,
    }
}

/// The date of a `From ` line (`From sender Tue Aug  6 12:39:49 2002`, optionally with
/// a numeric zone before the year), as Unix seconds.
pub fn from_line_date(from_line: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(from_line).ok()?;
    let mut words = text.split_whitespace();
    if words.next()? != "From" {
        return None;
    }
    words.next()?; // sender
    let rest: Vec<&str> = words.collect();
    if rest.len() < 5 {
        return None;
    }
    let tail = &rest[rest.len() - 5..];
    let with_zone = if rest.len() >= 6 {
        Some(&rest[rest.len() - 6..])
    } else {
        None
    };
    if let Some(z) = with_zone {
        if z[4].starts_with(['+', '-']) {
            let s = z.join(" ");
            if let Ok(dt) = chrono::DateTime::parse_from_str(&s, "%a %b %d %H:%M:%S %z %Y") {
                return Some(dt.timestamp());
            }
        }
    }
    let s = tail.join(" ");
    NaiveDateTime::parse_from_str(&s, "%a %b %d %H:%M:%S %Y")
        .ok()
        .map(|dt| dt.and_utc().timestamp())
}

/// Writes one message in our mboxrd form.
pub fn write_message(out: &mut impl Write, raw: &[u8], internal_date: Option<i64>) -> std::io::Result<()> {
    let date = internal_date
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .unwrap_or_default()
        .format("%a %b %e %H:%M:%S %Y");
    writeln!(out, "From MAILER-DAEMON {date}")?;
    for line in raw.split_inclusive(|&c| c == b'\n') {
        let gts = line.iter().take_while(|&&c| c == b'>').count();
        if line[gts..].starts_with(b"From ") {
            out.write_all(b">")?;
        }
        out.write_all(line)?;
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all(bytes: &[u8], format: MboxFormat) -> Vec<MboxMessage> {
        let mut r = MboxReader::new(bytes, format);
        let mut v = Vec::new();
        while let Some(m) = r.next_message().unwrap() {
            v.push(m);
        }
        v
    }

    #[test]
    fn reads_classic_mbox() {
        let mbox = b"From a@b Tue Aug  6 12:39:49 2002\nSubject: one\n\nbody\n>From here\n>>From there\n\nFrom c@d Wed Aug  7 01:00:00 2002\nSubject: two\n\nx\n";
        let rd = read_all(mbox, MboxFormat::Mboxrd);
        assert_eq!(rd.len(), 2);
        assert_eq!(rd[0].raw, b"Subject: one\n\nbody\nFrom here\n>From there\n");
        assert_eq!(rd[1].raw, b"Subject: two\n\nx");
        let o = read_all(mbox, MboxFormat::Mboxo);
        assert_eq!(o[0].raw, b"Subject: one\n\nbody\nFrom here\n>>From there\n");
        assert_eq!(from_line_date(&rd[0].from_line), Some(1028637589));
    }

    #[test]
    fn date_forms() {
        for (line, want) in [
            ("From MAILER-DAEMON Fri Jul  8 12:08:34 2011", Some(1310126914)),
            ("From 123@xxx Sat Jan 01 00:00:00 +0100 2011", Some(1293836400)),
            ("From nobody", None),
            ("From x Mon Feb 30 99:99:99 2011", None),
        ] {
            assert_eq!(from_line_date(line.as_bytes()), want, "{line}");
        }
    }

    #[test]
    fn leading_text_and_bom_are_kept_or_skipped() {
        let with_bom = b"\xEF\xBB\xBFFrom - x\nA: b\n\nc\n";
        let m = read_all(with_bom, MboxFormat::Mboxrd);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].raw, b"A: b\n\nc");
        let junk = b"junk line\nFrom x y\nA: b\n";
        let m = read_all(junk, MboxFormat::Mboxrd);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].raw, b"junk line");
        assert!(read_all(b"", MboxFormat::Mboxrd).is_empty());
        let envelope = b"From a@b Tue Aug  6 12:39:49 2002\nSubject: x\n\nbody\n";
        let mut r = MboxReader::new(&envelope[..], MboxFormat::Mboxrd).keep_final_line_break();
        assert_eq!(r.next_message().unwrap().unwrap().raw, b"Subject: x\n\nbody\n");
    }

    proptest! {
        #[test]
        fn write_then_read_is_exact(msgs in proptest::collection::vec(
            proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'>'), Just(b'F'), Just(b'r'), Just(b'o'), Just(b'm'), Just(b' '), Just(b'x')], 0..200), 1..5)) {
            let mut out = Vec::new();
            for m in &msgs {
                write_message(&mut out, m, Some(0)).unwrap();
            }
            let back = read_all(&out, MboxFormat::Mboxrd);
            let raws: Vec<Vec<u8>> = back.into_iter().map(|m| m.raw).collect();
            prop_assert_eq!(raws, msgs);
        }
    }
}
