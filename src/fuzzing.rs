//! The properties the fuzz targets check, one function per target, over raw bytes.
//! `fuzz/fuzz_targets/*.rs` (cargo-fuzz, run by `scripts/fuzz.sh`) call these; so does
//! `tests/fuzz_regressions.rs`, on every input kept under `fuzz/regressions/` and
//! `fuzz/seeds/`, in CI. Each function panics only when a property fails.

use std::io::Cursor;

use crate::mime;
use crate::net::guard::{Dropped, LiteralGuard};
use crate::pop3::proto;
use crate::source::mbox::{MboxFormat, MboxReader};

/// A target's property check.
pub type Check = fn(&[u8]);

/// The targets, by name (the names of `fuzz/fuzz_targets/*.rs` and of the input
/// directories).
pub const TARGETS: &[(&str, Check)] = &[
    ("imap_guard", imap_guard),
    ("imap_lines", imap_lines),
    ("pop3_proto", pop3_proto),
    ("mime_split", mime_split),
    ("local_sources", local_sources),
    ("query_parse", query_parse),
    ("job_file", job_file),
    ("extract_document", extract_document),
];

/// Bytes from a server through the literal guard and into the IMAP parser we use:
/// fed whole or in two pieces, the guard gives the same bytes and the same verdict;
/// whatever passes, the parser reads without panicking.
pub fn imap_guard(data: &[u8]) {
    let Some((&first, data)) = data.split_first() else {
        return;
    };
    let max = u64::from(first) * 4;
    let whole = guarded(max, &[data]);
    let at = usize::from(first) % (data.len() + 1);
    let split = guarded(max, &[&data[..at], &data[at..]]);
    assert_eq!(
        whole, split,
        "the guard depends on how the bytes arrive (split at {at})"
    );
    if let (Ok(out), _) = whole {
        let mut rest: &[u8] = &out;
        for _ in 0..10_000 {
            match async_imap::imap_proto::Response::parse(rest) {
                Ok((left, _)) if left.len() < rest.len() => rest = left,
                _ => break,
            }
        }
    }
}

type GuardRun = (Result<Vec<u8>, crate::net::guard::GuardError>, Vec<u64>);

fn guarded(max: u64, chunks: &[&[u8]]) -> GuardRun {
    let dropped = Dropped::default();
    let mut g = LiteralGuard::new(max, dropped.clone());
    let mut out = Vec::new();
    let mut r = Ok(());
    for c in chunks {
        r = g.feed(c, &mut out);
        if r.is_err() {
            break;
        }
    }
    let sizes = std::iter::from_fn(|| dropped.take()).collect();
    (r.map(|()| out), sizes)
}

/// IMAP text we read ourselves: the greeting, CAPABILITY atoms, folder names in
/// modified UTF-7, and server UID ranges intersected with what the archive holds.
pub fn imap_lines(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::imap::connect::check_greeting("fuzz", &text);
    let _ = crate::imap::caps::AppendCaps::from_atoms(text.split_ascii_whitespace());
    for name in text.lines() {
        if let Ok(decoded) = crate::plan::mutf7::decode(name) {
            assert!(!decoded.is_empty() || name.is_empty(), "{name:?} decoded to nothing");
        }
        let _ = crate::imap::folders::folder_from_list(name, Some("/"), &[], None);
    }
    // Pairs of u32 from the input: the archive's UIDs (sorted) and server ranges.
    let nums: Vec<u32> = data
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let (known, ranges) = nums.split_at(nums.len() / 2);
    let mut known = known.to_vec();
    known.sort_unstable();
    known.dedup();
    let ranges: Vec<std::ops::RangeInclusive<u32>> = ranges
        .chunks_exact(2)
        .map(|p| p[0].min(p[1])..=p[0].max(p[1]))
        .collect();
    let hit = crate::plan::imap_sync::known_in_ranges(&known, &ranges);
    for u in &hit {
        assert!(known.binary_search(u).is_ok() && ranges.iter().any(|r| r.contains(u)));
    }
    let expected = known.iter().filter(|u| ranges.iter().any(|r| r.contains(u))).count();
    let mut distinct = hit.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), expected, "every archived UID in a range, once");
}

/// POP3 answers: status, UIDL, LIST and CAPA lines, the APOP timestamp; a
/// multi-line body decodes the same whole or in two pieces, and what we dot-stuff
/// decodes back to itself.
pub fn pop3_proto(data: &[u8]) {
    let _ = proto::parse_status(data);
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let _ = proto::parse_uidl_line(line);
        if let Ok((n, _)) = proto::parse_list_line(line) {
            assert!(n > 0, "message number 0 accepted: {line:?}");
        }
    }
    let _ = proto::Capabilities::parse(text.lines());
    let _ = proto::apop_timestamp(&text);
    let whole = dot_decode(&[data]);
    let at = data.first().map_or(0, |&b| usize::from(b) % (data.len() + 1));
    assert_eq!(whole, dot_decode(&[&data[..at], &data[at..]]), "split at {at}");
    let stuffed = proto::dot_stuff(data);
    let (back, consumed) = dot_decode(&[&stuffed]);
    assert_eq!(consumed, Some(stuffed.len()), "the terminator ends the answer");
    let expect = if data.is_empty() || data.ends_with(b"\n") {
        data.to_vec()
    } else {
        [data, b"\r\n"].concat()
    };
    assert_eq!(back, expect, "dot-stuffed bytes decode back");
}

/// (decoded bytes, input consumed when the answer ended).
fn dot_decode(chunks: &[&[u8]]) -> (Vec<u8>, Option<usize>) {
    let mut d = proto::DotDecoder::new();
    let mut out = Vec::new();
    let mut offset = 0;
    for c in chunks {
        if let proto::Fed::End(n) = d.feed(c, &mut out) {
            return (out, Some(offset + n));
        }
        offset += c.len();
    }
    (out, None)
}

/// MIME split: the skeleton and the parts rebuild the message byte for byte.
pub fn mime_split(data: &[u8]) {
    for min in [1, 64, 2048] {
        let cuts = mime::split(data, min);
        let payloads: Vec<Vec<u8>> = cuts.iter().map(|c| c.payload(data)).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        let sk = mime::skeleton(data, &cuts);
        let back = mime::splice(&sk, &mime::splices(&cuts), &refs, data.len() as u64).expect("splice");
        assert!(back == data, "rebuild differs (min part {min})");
    }
}

/// mbox (both formats): every byte of the input lands in some message; maildir file
/// and folder names parse.
pub fn local_sources(data: &[u8]) {
    for format in [MboxFormat::Mboxrd, MboxFormat::Mboxo] {
        let mut r = MboxReader::new(Cursor::new(data), format);
        let mut total = 0usize;
        for _ in 0..=data.len() + 1 {
            match r.next_message() {
                Ok(Some(m)) => total += m.raw.len() + m.from_line.len(),
                Ok(None) => break,
                Err(e) => panic!("reading from memory failed: {e}"),
            }
        }
        // Unescaping `>From ` lines may only shorten; line ends at the end may go.
        assert!(total <= data.len() + 2, "{total} bytes out of {}", data.len());
    }
    let text = String::from_utf8_lossy(data);
    for name in text.lines() {
        let _ = crate::source::maildir::flags_from_name(name, false, &[]);
        let _ = crate::source::maildir::subfolder_name(name);
    }
}

/// The search query parser: any text is a query or a clear error, never a panic or
/// a stack overflow.
pub fn query_parse(data: &[u8]) {
    let _ = crate::query::parse(&String::from_utf8_lossy(data));
}

/// Attachment text extraction: any bytes, read as each format we know, give text
/// within the budget and a report of every part, never an escaped panic (a
/// parser library's panic is caught and reported; under the fuzzer, whose panic
/// hook aborts, it is found).
pub fn extract_document(data: &[u8]) {
    use crate::extract::{document, Budget};
    let budget = Budget {
        text_bytes: 64 << 10,
        time: std::time::Duration::from_millis(500),
        inflated_bytes: 8 << 20,
        ..Budget::default()
    };
    for name in [
        "a.pdf", "a.docx", "a.xlsx", "a.pptx", "a.odt", "a.rtf", "a.html", "a.zip", "a.eml",
    ] {
        let e = document(data, name, "", &budget);
        assert!(
            e.text.len() <= budget.text_bytes,
            "{name}: {} bytes of text",
            e.text.len()
        );
        assert!(!e.parts.is_empty(), "{name}: no report");
    }
}

/// Job files: any text is a job or an error naming where.
pub fn job_file(data: &[u8]) {
    let _ = crate::job::parse(std::path::Path::new("fuzz.toml"), &String::from_utf8_lossy(data));
}
