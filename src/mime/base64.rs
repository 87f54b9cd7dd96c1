//! Base64 body layouts: detect how a body was wrapped so that storing the decoded
//! binary and re-encoding it later gives back the very same bytes.
//!
//! Storing decoded attachments saves a quarter of their size before compression,
//! lets zstd see byte-aligned data (logs, pcaps, PDFs compress far better decoded),
//! and dedups one attachment sent by two mailers that wrap lines differently.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// How the base64 text of a body is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct B64Layout {
    /// Characters per line (every line but the last has exactly this many).
    pub line_len: u16,
    /// Lines end in CRLF (else LF).
    pub crlf: bool,
    /// The last line is followed by a line break.
    pub final_eol: bool,
}

/// If `body` starts with base64 text that re-encodes exactly, returns its length
/// (including the final line break, if any), its layout and the decoded bytes. Text
/// after it (blank lines, a signature a broken mailer appended) is left to the caller.
pub fn detect(body: &[u8]) -> Option<(usize, B64Layout, Vec<u8>)> {
    let Some(first_end) = memchr::memchr(b'\n', body) else {
        // One line without a line break.
        let layout = B64Layout {
            line_len: u16::try_from(body.len()).ok()?,
            crlf: false,
            final_eol: false,
        };
        let decoded = STANDARD.decode(body).ok()?;
        return (!body.is_empty() && reencodes_to(&decoded, layout, body)).then_some((body.len(), layout, decoded));
    };
    let crlf = first_end > 0 && body[first_end - 1] == b'\r';
    let eol_len = if crlf { 2 } else { 1 };
    let line_len = first_end + 1 - eol_len;
    if line_len == 0 || line_len > u16::MAX as usize {
        return None;
    }
    // Walk lines of exactly `line_len` base64 characters; the last may be shorter.
    let mut pos = 0;
    let mut final_eol = true;
    loop {
        let rest = &body[pos..];
        let n = rest.iter().take(line_len).take_while(|c| is_b64(**c)).count();
        if n == 0 {
            break;
        }
        let after = &rest[n..];
        let eol_ok = after.starts_with(if crlf { &b"\r\n"[..] } else { &b"\n"[..] });
        if n == line_len && eol_ok {
            pos += n + eol_len;
            continue;
        }
        // A last line: shorter, or full without a line break at the end of the body.
        if eol_ok {
            pos += n + eol_len;
        } else if after.is_empty() {
            pos += n;
            final_eol = false;
        } else {
            // Followed by something else on the same line: not a clean layout.
            return None;
        }
        break;
    }
    if pos == 0 {
        return None;
    }
    let layout = B64Layout {
        line_len: line_len as u16,
        crlf,
        final_eol,
    };
    let region = &body[..pos];
    let decoded = decode_lines(region)?;
    reencodes_to(&decoded, layout, region).then_some((pos, layout, decoded))
}

/// Does encoding `decoded` with `layout` give exactly `text`? Compares line by line
/// when lines hold whole base64 quanta, so no second copy of a large body is made.
fn reencodes_to(decoded: &[u8], layout: B64Layout, text: &[u8]) -> bool {
    let line_len = usize::from(layout.line_len);
    if line_len % 4 != 0 {
        let mut again = Vec::with_capacity(text.len());
        encode_into(decoded, layout, &mut again);
        return again == text;
    }
    let eol: &[u8] = if layout.crlf { b"\r\n" } else { b"\n" };
    let per_line = line_len / 4 * 3;
    let mut pos = 0;
    let mut buf = vec![0u8; line_len];
    let mut chunks = decoded.chunks(per_line).peekable();
    while let Some(chunk) = chunks.next() {
        let Ok(n) = STANDARD.encode_slice(chunk, &mut buf) else {
            return false;
        };
        if text.get(pos..pos + n) != Some(&buf[..n]) {
            return false;
        }
        pos += n;
        if chunks.peek().is_some() || layout.final_eol {
            if text.get(pos..pos + eol.len()) != Some(eol) {
                return false;
            }
            pos += eol.len();
        }
    }
    pos == text.len()
}

/// Base64 alphabet and padding, as a table (the line walk is a hot loop).
static IS_B64: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=';
        c += 1;
    }
    t
};

fn is_b64(c: u8) -> bool {
    IS_B64[c as usize]
}

/// Decodes base64 text, ignoring line breaks. `None` if it is not canonical base64.
pub fn decode_lines(text: &[u8]) -> Option<Vec<u8>> {
    let mut joined = Vec::with_capacity(text.len());
    joined.extend(text.iter().copied().filter(|c| !matches!(c, b'\r' | b'\n')));
    STANDARD.decode(joined).ok()
}

/// Encodes `data` as base64 with `layout`, appending to `out`.
pub fn encode_into(data: &[u8], layout: B64Layout, out: &mut Vec<u8>) {
    let text = STANDARD.encode(data);
    let line_len = usize::from(layout.line_len.max(1));
    let eol: &[u8] = if layout.crlf { b"\r\n" } else { b"\n" };
    let mut chunks = text.as_bytes().chunks(line_len).peekable();
    while let Some(chunk) = chunks.next() {
        out.extend_from_slice(chunk);
        if chunks.peek().is_some() || layout.final_eol {
            out.extend_from_slice(eol);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn wrap(data: &[u8], layout: B64Layout) -> Vec<u8> {
        let mut v = Vec::new();
        encode_into(data, layout, &mut v);
        v
    }

    #[test]
    fn detect_table() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for (line_len, crlf, final_eol) in [
            (76, true, true),
            (76, false, true),
            (72, true, false),
            (64, false, false),
        ] {
            let layout = B64Layout {
                line_len,
                crlf,
                final_eol,
            };
            let mut body = wrap(&data, layout);
            let len = body.len();
            assert_eq!(detect(&body), Some((len, layout, data.clone())), "{layout:?}");
            if final_eol {
                body.extend_from_slice(b"\r\n\r\n"); // trailing blank lines stay outside
                assert_eq!(
                    detect(&body),
                    Some((len, layout, data.clone())),
                    "{layout:?} + blank lines"
                );
            }
        }
        assert_eq!(
            detect(b"QUJD"),
            Some((
                4,
                B64Layout {
                    line_len: 4,
                    crlf: false,
                    final_eol: false
                },
                b"ABC".to_vec()
            ))
        );
    }

    #[test]
    fn rejects_non_canonical() {
        // Bad padding bits, mixed line lengths, a stray character.
        assert_eq!(detect(b"QUJDRA==\nQQ\n"), None);
        assert_eq!(detect(b"QUJD\nQUJDRA==\nQQ==\n"), None);
        assert_eq!(detect(b"QUJD RA==\n"), None);
        assert_eq!(detect(b"QR==\n"), None);
        assert_eq!(detect(b""), None);
    }

    proptest! {
        #[test]
        fn any_layout_roundtrips(data in proptest::collection::vec(any::<u8>(), 1..3000),
                                 line_len in 4u16..120, crlf: bool, final_eol: bool) {
            let layout = B64Layout { line_len: line_len / 4 * 4, crlf, final_eol };
            let body = wrap(&data, layout);
            let (len, got, decoded) = detect(&body).expect("wrapped base64 is detected");
            prop_assert_eq!(len, body.len());
            prop_assert_eq!(&decoded, &data);
            prop_assert_eq!(decode_lines(&body[..len]).unwrap(), data);
            prop_assert_eq!(wrap(&decode_lines(&body).unwrap(), got), body);
        }

        #[test]
        fn detect_is_exact_or_none(body in proptest::collection::vec(prop_oneof![Just(b'A'), Just(b'='), Just(b'\n'), Just(b'\r'), Just(b'Q'), Just(b'/')], 0..300)) {
            if let Some((len, layout, decoded)) = detect(&body) {
                prop_assert_eq!(wrap(&decoded, layout), body[..len].to_vec());
            }
        }
    }
}
