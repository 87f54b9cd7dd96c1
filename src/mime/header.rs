//! Just enough header parsing for the split: where the body starts, and the
//! Content-Type / Content-Transfer-Encoding of an entity. Lenient by design.

/// What an entity's headers say about its body.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum EntityInfo {
    Multipart {
        boundary: Vec<u8>,
    },
    /// `message/rfc822` (or `message/global`) in an identity encoding.
    Message,
    Leaf {
        base64: bool,
    },
}

/// Offset of the first body byte: just after the first empty line. `None` when the
/// entity has no empty line (headers only, or not a message at all).
pub(super) fn find_body_start(entity: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let line_end = memchr::memchr(b'\n', &entity[pos..])? + pos;
        let line = &entity[pos..line_end];
        if line.is_empty() || line == b"\r" {
            return Some(line_end + 1);
        }
        pos = line_end + 1;
    }
}

/// Unfolded header fields as (name, value) byte slices joined into owned values.
fn fields(headers: &[u8]) -> Vec<(&[u8], Vec<u8>)> {
    let mut out: Vec<(&[u8], Vec<u8>)> = Vec::new();
    for line in headers.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if matches!(line[0], b' ' | b'\t') {
            if let Some((_, v)) = out.last_mut() {
                v.push(b' ');
                v.extend_from_slice(line.trim_ascii_start());
            }
            continue;
        }
        if let Some(colon) = memchr::memchr(b':', line) {
            let name = line[..colon].trim_ascii_end();
            out.push((name, line[colon + 1..].trim_ascii().to_vec()));
        }
    }
    out
}

/// The first value of header field `name` (unfolded, trimmed), looking only at the
/// header section of `raw`. Bytes that are not UTF-8 are replaced.
pub fn header_value(raw: &[u8], name: &str) -> Option<String> {
    let end = find_body_start(raw).unwrap_or(raw.len());
    fields(&raw[..end])
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
}

pub(super) fn leaf_info(headers: &[u8]) -> EntityInfo {
    let mut content_type: Option<Vec<u8>> = None;
    let mut cte: Option<Vec<u8>> = None;
    for (name, value) in fields(headers) {
        if name.eq_ignore_ascii_case(b"content-type") && content_type.is_none() {
            content_type = Some(value);
        } else if name.eq_ignore_ascii_case(b"content-transfer-encoding") && cte.is_none() {
            cte = Some(value);
        }
    }
    let cte = cte.map(|v| v.to_ascii_lowercase());
    let identity = cte
        .as_deref()
        .is_none_or(|c| matches!(c, b"7bit" | b"8bit" | b"binary" | b""));
    let base64 = cte.as_deref() == Some(b"base64");
    let Some(ct) = content_type else {
        return EntityInfo::Leaf { base64 };
    };
    let (mime_type, params) = match memchr::memchr(b';', &ct) {
        Some(i) => (&ct[..i], &ct[i + 1..]),
        None => (&ct[..], &b""[..]),
    };
    let mime_type = mime_type.trim_ascii().to_ascii_lowercase();
    if mime_type.starts_with(b"multipart/") && identity {
        if let Some(boundary) = param(params, b"boundary").filter(|b| !b.is_empty() && b.len() <= 200) {
            return EntityInfo::Multipart { boundary };
        }
    }
    if (mime_type == b"message/rfc822" || mime_type == b"message/global") && identity {
        return EntityInfo::Message;
    }
    EntityInfo::Leaf { base64 }
}

/// The value of parameter `name` (case-insensitive name; value verbatim, unquoted).
fn param(params: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let mut rest = params;
    loop {
        rest = rest.trim_ascii_start();
        if rest.is_empty() {
            return None;
        }
        let eq = memchr::memchr(b'=', rest)?;
        let key = rest[..eq].trim_ascii();
        let after = rest[eq + 1..].trim_ascii_start();
        let (value, next) = if after.first() == Some(&b'"') {
            let mut v = Vec::new();
            let mut i = 1;
            while i < after.len() && after[i] != b'"' {
                if after[i] == b'\\' && i + 1 < after.len() {
                    i += 1;
                }
                v.push(after[i]);
                i += 1;
            }
            let next = memchr::memchr(b';', &after[i.min(after.len())..]).map(|j| i + j + 1);
            (v, next)
        } else {
            let end = memchr::memchr(b';', after).unwrap_or(after.len());
            (
                after[..end].trim_ascii().to_vec(),
                (end < after.len()).then_some(end + 1),
            )
        };
        if key.eq_ignore_ascii_case(name) {
            return Some(value);
        }
        rest = &after[next?..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_start_table() {
        let cases: [(&[u8], Option<usize>); 6] = [
            (b"A: b\r\n\r\nbody", Some(8)),
            (b"A: b\n\nbody", Some(6)),
            (b"\nbody", Some(1)),
            (b"\r\nbody", Some(2)),
            (b"A: b\r\nno blank line", None),
            (b"", None),
        ];
        for (input, want) in cases {
            assert_eq!(find_body_start(input), want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn content_type_table() {
        let mp = |b: &str| EntityInfo::Multipart {
            boundary: b.as_bytes().to_vec(),
        };
        let cases: [(&str, EntityInfo); 9] = [
            ("Content-Type: multipart/mixed; boundary=abc\n", mp("abc")),
            (
                "Content-Type: Multipart/Alternative;\n\tboundary=\"a b;c\"\n",
                mp("a b;c"),
            ),
            ("content-type: multipart/mixed; charset=x; BOUNDARY=\"Q\"\n", mp("Q")),
            ("Content-Type: multipart/mixed\n", EntityInfo::Leaf { base64: false }),
            ("Content-Type: message/rfc822\n", EntityInfo::Message),
            (
                "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n",
                EntityInfo::Leaf { base64: true },
            ),
            (
                "Content-Type: image/png\nContent-Transfer-Encoding: BASE64\n",
                EntityInfo::Leaf { base64: true },
            ),
            ("Subject: x\n", EntityInfo::Leaf { base64: false }),
            (
                "Content-Type: multipart/mixed; boundary=\"unterminated\n",
                mp("unterminated"),
            ),
        ];
        for (h, want) in cases {
            assert_eq!(leaf_info(h.as_bytes()), want, "{h}");
        }
    }
}
