//! MIME split for part-level single instance storage (pure, no I/O).
//!
//! [`split`] finds the large leaf bodies of a message (attachments, long text
//! bodies) as byte ranges of the raw message, *without decoding or rewriting
//! anything*. The archive stores the rest of the message as a skeleton and each
//! range once, by hash; [`splice`] puts them back together.
//!
//! Why our own boundary scanner and not mail-parser: we need exact byte offsets of
//! the encoded leaf bodies on every input, including broken ones, and nothing else.
//! A full parse decodes every part and charset (slow), and its notion of where a
//! malformed part ends is not ours to rely on. Correctness does not depend on this
//! scanner being right: the archive rebuilds every message from its pieces and
//! compares the BLAKE3 with the id before writing, and falls back to one whole blob
//! if they differ. A wrong split can only cost deduplication, never bytes.

pub mod base64;
mod header;
pub mod readable;

/// Offset of the first body byte (after the first empty line), if there is one.
pub fn body_start(raw: &[u8]) -> Option<usize> {
    find_body_start(raw)
}

pub use base64::B64Layout;
pub use header::header_value;
use header::{find_body_start, leaf_info, EntityInfo};
use thiserror::Error;

/// Leaf bodies shorter than this stay inside the skeleton.
pub const DEFAULT_MIN_PART: usize = 2048;
/// Multipart nesting deeper than this is left in the skeleton (hostile input).
const MAX_DEPTH: usize = 24;
/// At most this many parts are cut from one message.
const MAX_CUTS: usize = 4096;

/// How a stored part payload turns back into the bytes of the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    /// The payload is the encoded body itself.
    Identity,
    /// The payload is the decoded binary; re-encoding it with this layout gives back
    /// the exact body (checked when the cut is made).
    Base64(B64Layout),
}

/// One leaf body to store separately: `raw[start..end]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    pub start: usize,
    pub end: usize,
    pub transform: Transform,
    /// The decoded bytes of a base64 body (kept from detection, not decoded twice).
    decoded: Option<Vec<u8>>,
}

impl Cut {
    /// The canonical payload stored for this cut: the body bytes, or the decoded
    /// binary for a base64 body.
    pub fn payload(&self, raw: &[u8]) -> Vec<u8> {
        match &self.decoded {
            Some(d) => d.clone(),
            None => raw[self.start..self.end].to_vec(),
        }
    }

    /// Like [`Cut::payload`], without copying a decoded body.
    pub fn into_payload(self, raw: &[u8]) -> Vec<u8> {
        match self.decoded {
            Some(d) => d,
            None => raw[self.start..self.end].to_vec(),
        }
    }
}

/// Finds the leaf bodies of `raw` at least `min_part` bytes long, in order, without
/// overlaps. Never panics, on any input.
///
/// ```
/// use mailvault::mime::{split, skeleton, splice, splices};
/// let body = "All work and no play. ".repeat(200);
/// let raw = format!("Subject: hi\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
///                    --b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n--b--\r\n");
/// let cuts = split(raw.as_bytes(), 2048);
/// assert_eq!(cuts.len(), 1);
/// assert_eq!(&raw.as_bytes()[cuts[0].start..cuts[0].end], body.as_bytes());
/// // Skeleton + parts rebuild the message exactly.
/// let payloads: Vec<Vec<u8>> = cuts.iter().map(|c| c.payload(raw.as_bytes())).collect();
/// let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
/// let sk = skeleton(raw.as_bytes(), &cuts);
/// assert_eq!(splice(&sk, &splices(&cuts), &refs, raw.len() as u64).unwrap(), raw.as_bytes());
/// ```
pub fn split(raw: &[u8], min_part: usize) -> Vec<Cut> {
    let mut cuts = Vec::new();
    walk(raw, 0, raw.len(), 0, min_part.max(1), &mut cuts);
    cuts
}

fn walk(raw: &[u8], start: usize, end: usize, depth: usize, min_part: usize, cuts: &mut Vec<Cut>) {
    if depth > MAX_DEPTH || cuts.len() >= MAX_CUTS || end <= start {
        return;
    }
    let entity = &raw[start..end];
    let Some(body_rel) = find_body_start(entity) else {
        return; // headers only
    };
    let body_start = start + body_rel;
    match leaf_info(&entity[..body_rel]) {
        EntityInfo::Multipart { boundary } => {
            for (s, e) in multipart_parts(raw, body_start, end, &boundary) {
                walk(raw, s, e, depth + 1, min_part, cuts);
            }
        }
        EntityInfo::Message => walk(raw, body_start, end, depth + 1, min_part, cuts),
        EntityInfo::Leaf { base64 } => {
            if end - body_start < min_part {
                return;
            }
            if base64 {
                if let Some((len, layout, decoded)) = base64::detect(&raw[body_start..end]) {
                    if len >= min_part {
                        cuts.push(Cut {
                            start: body_start,
                            end: body_start + len,
                            transform: Transform::Base64(layout),
                            decoded: Some(decoded),
                        });
                        return;
                    }
                }
            }
            cuts.push(Cut {
                start: body_start,
                end,
                transform: Transform::Identity,
                decoded: None,
            });
        }
    }
}

/// The body parts of a multipart entity `raw[start..end]` with `boundary`: each part
/// runs from after its delimiter line to before the line break that precedes the
/// next delimiter (RFC 2046 §5.1.1). Preamble and epilogue are not parts.
fn multipart_parts(raw: &[u8], start: usize, end: usize, boundary: &[u8]) -> Vec<(usize, usize)> {
    let mut delim = Vec::with_capacity(boundary.len() + 2);
    delim.extend_from_slice(b"--");
    delim.extend_from_slice(boundary);
    let finder = memchr::memmem::Finder::new(&delim);
    let body = &raw[start..end];
    let mut parts = Vec::new();
    let mut open: Option<usize> = None; // content start of the current part (relative)
    let mut pos = 0;
    while let Some(found) = finder.find(&body[pos..]) {
        let at = pos + found;
        pos = at + delim.len();
        if at > 0 && body[at - 1] != b'\n' {
            continue;
        }
        let after = &body[at + delim.len()..];
        let close = after.starts_with(b"--");
        let tail = if close { &after[2..] } else { after };
        // The delimiter must end the line (transport padding allowed).
        let line_end = memchr::memchr(b'\n', tail).unwrap_or(tail.len());
        if !tail[..line_end].iter().all(|c| matches!(c, b' ' | b'\t' | b'\r')) {
            continue;
        }
        if let Some(s) = open.take() {
            let mut e = at;
            if e > 0 && body[e - 1] == b'\n' {
                e -= 1;
                if e > 0 && body[e - 1] == b'\r' {
                    e -= 1;
                }
            }
            if e > s {
                parts.push((start + s, start + e));
            }
        }
        let next_line = at + delim.len() + (if close { 2 } else { 0 }) + line_end + 1;
        if close || next_line > body.len() {
            break;
        }
        open = Some(next_line);
        pos = next_line;
        if parts.len() >= MAX_CUTS {
            break;
        }
    }
    // An unterminated last part (no close delimiter) still counts.
    if let Some(s) = open {
        if body.len() > s {
            parts.push((start + s, end));
        }
    }
    parts
}

/// The skeleton: `raw` with every cut range removed.
pub fn skeleton(raw: &[u8], cuts: &[Cut]) -> Vec<u8> {
    let removed: usize = cuts.iter().map(|c| c.end - c.start).sum();
    let mut out = Vec::with_capacity(raw.len() - removed);
    let mut pos = 0;
    for c in cuts {
        out.extend_from_slice(&raw[pos..c.start]);
        pos = c.end;
    }
    out.extend_from_slice(&raw[pos..]);
    out
}

/// Where a stored part goes back into the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splice {
    /// Offset in the rebuilt message.
    pub offset: u64,
    /// Length of the encoded body in the rebuilt message.
    pub len: u64,
    pub transform: Transform,
}

/// A message could not be put back together from its stored pieces.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpliceError {
    #[error("part {index} does not fit: offset {offset} after position {pos}, or past the skeleton")]
    OutOfOrder { index: usize, offset: u64, pos: u64 },
    #[error("part {index} re-encodes to {got} bytes, expected {expected}")]
    LengthMismatch { index: usize, got: u64, expected: u64 },
    #[error("rebuilt length {got} differs from the recorded length {expected}")]
    TotalLength { got: u64, expected: u64 },
}

/// Puts a message back together: skeleton bytes with each part's encoded form
/// inserted at its offset. `payloads[i]` belongs to `splices[i]`.
pub fn splice(skeleton: &[u8], splices: &[Splice], payloads: &[&[u8]], raw_len: u64) -> Result<Vec<u8>, SpliceError> {
    let mut out = Vec::with_capacity(usize::try_from(raw_len).unwrap_or(0).min(1 << 31));
    splice_into(skeleton, splices, payloads, raw_len, &mut |b: &[u8]| {
        out.extend_from_slice(b)
    })?;
    Ok(out)
}

/// The hash (`hasher` finalised: plain or keyed BLAKE3) of the message [`splice`]
/// would build, without building it.
pub fn splice_hash(
    mut h: blake3::Hasher,
    skeleton: &[u8],
    splices: &[Splice],
    payloads: &[&[u8]],
    raw_len: u64,
) -> Result<[u8; 32], SpliceError> {
    splice_into(skeleton, splices, payloads, raw_len, &mut |b: &[u8]| {
        h.update(b);
    })?;
    Ok(*h.finalize().as_bytes())
}

/// The splice itself, feeding the pieces of the message in order to `sink`.
fn splice_into(
    skeleton: &[u8],
    splices: &[Splice],
    payloads: &[&[u8]],
    raw_len: u64,
    sink: &mut dyn FnMut(&[u8]),
) -> Result<(), SpliceError> {
    let mut written = 0u64;
    let mut sk = 0usize;
    let mut buf = Vec::new();
    for (index, (s, payload)) in splices.iter().zip(payloads).enumerate() {
        let gap = s
            .offset
            .checked_sub(written)
            .and_then(|g| usize::try_from(g).ok())
            .filter(|g| sk + g <= skeleton.len())
            .ok_or(SpliceError::OutOfOrder {
                index,
                offset: s.offset,
                pos: written,
            })?;
        sink(&skeleton[sk..sk + gap]);
        sk += gap;
        written += gap as u64;
        let piece: &[u8] = match s.transform {
            Transform::Identity => payload,
            Transform::Base64(layout) => {
                buf.clear();
                base64::encode_into(payload, layout, &mut buf);
                &buf
            }
        };
        if piece.len() as u64 != s.len {
            return Err(SpliceError::LengthMismatch {
                index,
                got: piece.len() as u64,
                expected: s.len,
            });
        }
        sink(piece);
        written += s.len;
    }
    sink(&skeleton[sk..]);
    written += (skeleton.len() - sk) as u64;
    if written != raw_len {
        return Err(SpliceError::TotalLength {
            got: written,
            expected: raw_len,
        });
    }
    Ok(())
}

/// The splice list for `cuts` (offsets in raw coordinates).
pub fn splices(cuts: &[Cut]) -> Vec<Splice> {
    cuts.iter()
        .map(|c| Splice {
            offset: c.start as u64,
            len: (c.end - c.start) as u64,
            transform: c.transform,
        })
        .collect()
}

#[cfg(test)]
mod tests;
