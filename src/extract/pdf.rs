//! PDF: the text that page content streams show (`Tj`, `TJ`, `'`, `"`),
//! decoded with each font's encoding (ToUnicode maps included), by lopdf.
//!
//! lopdf is used for the object model only; the walk is ours, so that it is
//! bounded: pages taken up to a count; content streams inflated by our own
//! bounded reader (never lopdf's, which inflates a 500 MB stream whole); time
//! checked between pages and operations. lopdf's parsers recurse once per
//! nesting level of arrays and dictionaries, so a file, an object stream or a
//! content stream nested deeper than [`MAX_NESTING`] is refused before lopdf
//! sees it (a stack overflow would abort the process; a panic we could catch).

use std::collections::BTreeMap;
use std::io::Read;

use lopdf::content::Content;
use lopdf::{Document, Encoding, Object};

use super::{find, Failure, Stop, Walk};

/// Deepest nesting of arrays and dictionaries accepted (real files nest a few
/// levels; lopdf overflows an 8 MiB stack near 100,000).
const MAX_NESTING: usize = 256;
/// Pages read at most.
const MAX_PAGES: usize = 5_000;
/// One content or object stream inflates to at most this.
const MAX_STREAM: u64 = 64 << 20;

fn corrupt(what: impl std::fmt::Display) -> Stop {
    Stop::Failed(Failure::Corrupt(format!("PDF: {what}")))
}

pub(crate) fn read(walk: &mut Walk<'_>, bytes: &[u8]) -> Result<(), Stop> {
    prescan(walk, bytes)?;
    walk.check_time()?;
    let doc = Document::load_mem(bytes).map_err(|e| match e {
        lopdf::Error::Decryption(_) => Stop::Failed(Failure::Encrypted),
        e => corrupt(e),
    })?;
    if doc.is_encrypted() {
        return Err(Stop::Failed(Failure::Encrypted));
    }
    for page in doc.page_iter().take(MAX_PAGES) {
        walk.check_time()?;
        page_text(walk, &doc, page)?;
        walk.push("\n")?;
    }
    Ok(())
}

fn page_text(walk: &mut Walk<'_>, doc: &Document, page: lopdf::ObjectId) -> Result<(), Stop> {
    let encodings: BTreeMap<Vec<u8>, Encoding> = doc
        .get_page_fonts(page)
        .map_err(corrupt)?
        .into_iter()
        .filter_map(|(name, font)| font.get_font_encoding(doc).ok().map(|e| (name, e)))
        .collect();
    let mut content = Vec::new();
    for id in doc.get_page_contents(page) {
        let Ok(Object::Stream(s)) = doc.get_object(id) else {
            continue;
        };
        content.extend(stream_data(walk, s)?);
        content.push(b'\n');
    }
    if nesting(&content) > MAX_NESTING {
        return Err(corrupt(format!(
            "a content stream nests deeper than {MAX_NESTING} levels"
        )));
    }
    let ops = Content::decode(&content).map_err(corrupt)?;
    let mut font: Option<&Encoding> = None;
    for (n, op) in ops.operations.iter().enumerate() {
        if n.is_multiple_of(1024) {
            walk.check_time()?;
        }
        match op.operator.as_str() {
            "Tf" => {
                font = op
                    .operands
                    .first()
                    .and_then(|o| o.as_name().ok())
                    .and_then(|f| encodings.get(f))
            }
            "Tj" | "TJ" => show(walk, font, &op.operands)?,
            // Move to the next line, then show.
            "'" => {
                walk.push("\n")?;
                show(walk, font, &op.operands)?;
            }
            "\"" => {
                walk.push("\n")?;
                show(walk, font, op.operands.get(2..).unwrap_or(&[]))?;
            }
            "T*" | "Td" | "TD" | "ET" => walk.space()?,
            _ => {}
        }
    }
    Ok(())
}

/// The strings of a text-showing operator; a big negative kerning in a `TJ`
/// array is a space between words.
fn show(walk: &mut Walk<'_>, font: Option<&Encoding>, operands: &[Object]) -> Result<(), Stop> {
    for o in operands {
        match o {
            Object::String(bytes, _) => {
                let s = match font {
                    Some(enc) => Document::decode_text(enc, bytes).unwrap_or_default(),
                    None => bytes.iter().map(|&b| b as char).collect(),
                };
                walk.push(&s)?;
            }
            Object::Array(items) => {
                for item in items {
                    match item {
                        Object::Integer(i) if *i < -200 => walk.push(" ")?,
                        Object::Real(r) if *r < -200.0 => walk.push(" ")?,
                        Object::String(..) => show(walk, font, std::slice::from_ref(item))?,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A stream's bytes, inflated within [`MAX_STREAM`] when it is Flate-encoded;
/// other filters (images, mostly) give nothing.
fn stream_data(walk: &mut Walk<'_>, s: &lopdf::Stream) -> Result<Vec<u8>, Stop> {
    let filters: Vec<Vec<u8>> = match s.dict.get(b"Filter") {
        Err(_) => Vec::new(),
        Ok(Object::Name(n)) => vec![n.clone()],
        Ok(Object::Array(a)) => a.iter().filter_map(|o| o.as_name().ok().map(<[u8]>::to_vec)).collect(),
        Ok(_) => return Ok(Vec::new()),
    };
    match filters.as_slice() {
        [] => Ok(s.content.clone()),
        [f] if f == b"FlateDecode" => {
            let data = inflate(&s.content)?;
            walk.inflate(data.len() as u64)?;
            Ok(data)
        }
        _ => Ok(Vec::new()),
    }
}

/// Inflates a zlib stream within [`MAX_STREAM`] (what it held up to a damaged
/// end is kept, as readers do).
fn inflate(data: &[u8]) -> Result<Vec<u8>, Stop> {
    let mut out = Vec::new();
    let mut z = flate2::read::ZlibDecoder::new(data).take(MAX_STREAM + 1);
    if let Err(e) = z.read_to_end(&mut out) {
        if out.is_empty() {
            return Err(corrupt(format!("a stream does not inflate: {e}")));
        }
    }
    if out.len() as u64 > MAX_STREAM {
        return Err(Stop::Failed(Failure::Inflated { limit: MAX_STREAM }));
    }
    Ok(out)
}

/// Refuses what would overflow lopdf's stack: the file, and every object stream
/// in it (which lopdf inflates and parses as it loads), nested too deep.
fn prescan(walk: &mut Walk<'_>, bytes: &[u8]) -> Result<(), Stop> {
    if nesting(bytes) > MAX_NESTING {
        return Err(corrupt(format!("objects nest deeper than {MAX_NESTING} levels")));
    }
    let mut at = 0;
    while let Some(found) = find(&bytes[at..], b"/ObjStm") {
        walk.check_time()?;
        let from = at + found;
        let Some(s) = find(&bytes[from..], b"stream") else {
            break;
        };
        let mut start = from + s + b"stream".len();
        while matches!(bytes.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        let data = inflate(&bytes[start..])?;
        walk.inflate(data.len() as u64)?;
        if nesting(&data) > MAX_NESTING {
            return Err(corrupt(format!(
                "an object stream nests deeper than {MAX_NESTING} levels"
            )));
        }
        at = start;
    }
    Ok(())
}

/// The deepest nesting of `[` and `<<` in PDF syntax, outside strings, comments
/// and stream data.
fn nesting(b: &[u8]) -> usize {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < b.len() {
        match b[i] {
            b'(' => i = skip_string(b, i),
            b'%' => {
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
            }
            b'[' => depth += 1,
            b'<' if b.get(i + 1) == Some(&b'<') => {
                depth += 1;
                i += 1;
            }
            b']' => depth = depth.saturating_sub(1),
            b'>' if b.get(i + 1) == Some(&b'>') => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            // The keyword `stream` (not the end of `endstream`, nor part of a name).
            b's' if b[i..].starts_with(b"stream")
                && !b[i..].starts_with(b"streams")
                && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) =>
            {
                i = find(&b[i..], b"endstream").map_or(b.len(), |e| i + e + b"endstream".len());
                continue;
            }
            _ => {}
        }
        deepest = deepest.max(depth);
        i += 1;
    }
    deepest
}

/// The index of the byte that closes the string opened at `i`.
fn skip_string(b: &[u8], mut i: usize) -> usize {
    let mut open = 0usize;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'(' => open += 1,
            b')' => {
                open -= 1;
                if open == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_counts_arrays_and_dictionaries_outside_strings_and_streams() {
        let cases: &[(&[u8], usize)] = &[
            (b"<< /A [1 [2]] >>", 3),
            (b"(a [[[ string) [x]", 1),
            (b"(nested (paren [[) still) <<>>", 1),
            (b"% [[[[ comment\n[1]", 1),
            (b"<< /Length 3 >>\nstream\n[[[[[\nendstream [", 1),
            (b"<hex> [<abc>]", 1),
            // A stray `endstream` does not hide what follows it.
            (b"endstream [[[[ ]]]] endstream", 4),
        ];
        for (pdf, want) in cases {
            assert_eq!(nesting(pdf), *want, "{}", String::from_utf8_lossy(pdf));
        }
    }
}
