//! Which format a document is: by its content first (magic bytes; for a ZIP, the
//! members that make it an office file), then by its declared type, then by the
//! extension of its name. Pure.

/// The formats we read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Pdf,
    Docx,
    Xlsx,
    Pptx,
    Odt,
    Ods,
    Odp,
    Rtf,
    Html,
    Text,
    Csv,
    /// `message/rfc822`: a forwarded message.
    Message,
    Zip,
}

impl Kind {
    /// The short name used in counts (`pdf`, `docx`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pdf => "pdf",
            Kind::Docx => "docx",
            Kind::Xlsx => "xlsx",
            Kind::Pptx => "pptx",
            Kind::Odt => "odt",
            Kind::Ods => "ods",
            Kind::Odp => "odp",
            Kind::Rtf => "rtf",
            Kind::Html => "html",
            Kind::Text => "text",
            Kind::Csv => "csv",
            Kind::Message => "message",
            Kind::Zip => "zip",
        }
    }
}

const BY_TYPE: &[(&str, Kind)] = &[
    ("application/pdf", Kind::Pdf),
    ("application/x-pdf", Kind::Pdf),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Kind::Docx,
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Kind::Xlsx,
    ),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        Kind::Pptx,
    ),
    ("application/vnd.oasis.opendocument.text", Kind::Odt),
    ("application/vnd.oasis.opendocument.spreadsheet", Kind::Ods),
    ("application/vnd.oasis.opendocument.presentation", Kind::Odp),
    ("application/rtf", Kind::Rtf),
    ("text/rtf", Kind::Rtf),
    ("text/html", Kind::Html),
    ("application/xhtml+xml", Kind::Html),
    ("text/csv", Kind::Csv),
    ("text/plain", Kind::Text),
    ("message/rfc822", Kind::Message),
    ("application/zip", Kind::Zip),
    ("application/x-zip-compressed", Kind::Zip),
    // Text under other names: patches, data and configuration files, bounces.
    ("application/x-patch", Kind::Text),
    ("application/x-diff", Kind::Text),
    ("application/json", Kind::Text),
    ("application/xml", Kind::Text),
    ("application/x-yaml", Kind::Text),
    ("application/yaml", Kind::Text),
    ("application/x-sh", Kind::Text),
    ("application/javascript", Kind::Text),
    ("message/delivery-status", Kind::Text),
];

const BY_EXTENSION: &[(&str, Kind)] = &[
    ("pdf", Kind::Pdf),
    ("docx", Kind::Docx),
    ("docm", Kind::Docx),
    ("xlsx", Kind::Xlsx),
    ("xlsm", Kind::Xlsx),
    ("pptx", Kind::Pptx),
    ("odt", Kind::Odt),
    ("ods", Kind::Ods),
    ("odp", Kind::Odp),
    ("rtf", Kind::Rtf),
    ("html", Kind::Html),
    ("htm", Kind::Html),
    ("txt", Kind::Text),
    ("text", Kind::Text),
    ("md", Kind::Text),
    ("log", Kind::Text),
    ("patch", Kind::Text),
    ("diff", Kind::Text),
    ("json", Kind::Text),
    ("xml", Kind::Text),
    ("yaml", Kind::Text),
    ("yml", Kind::Text),
    ("csv", Kind::Csv),
    ("eml", Kind::Message),
    ("zip", Kind::Zip),
];

/// The format of `bytes`, named `name` and declared `mime` (lower case); `None`
/// for a format we do not read.
pub fn kind(bytes: &[u8], name: &str, mime: &str) -> Option<Kind> {
    if bytes.starts_with(b"%PDF-") || (bytes.len() > 1024 && find(&bytes[..1024], b"%PDF-")) {
        return Some(Kind::Pdf);
    }
    if bytes.starts_with(b"{\\rtf") {
        return Some(Kind::Rtf);
    }
    let declared = BY_TYPE.iter().find(|(t, _)| *t == mime).map(|&(_, k)| k);
    let extension = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .and_then(|e| BY_EXTENSION.iter().find(|(x, _)| *x == e).map(|&(_, k)| k));
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return Some(zip_kind(bytes).or(declared.filter(|k| zipped(*k))).unwrap_or(Kind::Zip));
    }
    match declared.or(extension) {
        // Said to be a ZIP, PDF or office file but not one by its bytes: damaged
        // or mislabelled; its reader says which.
        Some(k) => Some(k),
        None if mime.starts_with("text/") || mime.ends_with("+xml") || mime.ends_with("+json") => Some(Kind::Text),
        None => None,
    }
}

fn zipped(k: Kind) -> bool {
    matches!(
        k,
        Kind::Docx | Kind::Xlsx | Kind::Pptx | Kind::Odt | Kind::Ods | Kind::Odp | Kind::Zip
    )
}

/// An office file by its members' names, found in the ZIP's central directory
/// (or, for OpenDocument, its first member `mimetype`, stored uncompressed).
fn zip_kind(bytes: &[u8]) -> Option<Kind> {
    const ODF: &[(&[u8], Kind)] = &[
        (b"application/vnd.oasis.opendocument.text", Kind::Odt),
        (b"application/vnd.oasis.opendocument.spreadsheet", Kind::Ods),
        (b"application/vnd.oasis.opendocument.presentation", Kind::Odp),
    ];
    let head = &bytes[..bytes.len().min(256)];
    if find(head, b"mimetype") {
        for (t, k) in ODF {
            if find(head, t) {
                return Some(*k);
            }
        }
    }
    // The central directory is at the end; member names appear there.
    let tail = &bytes[bytes.len().saturating_sub(64 << 10)..];
    if find(tail, b"[Content_Types].xml") {
        for (dir, k) in [
            (&b"word/document.xml"[..], Kind::Docx),
            (b"xl/workbook.xml", Kind::Xlsx),
            (b"ppt/presentation.xml", Kind::Pptx),
        ] {
            if find(tail, dir) {
                return Some(k);
            }
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    super::find(hay, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_content_then_type_then_name() {
        let cases: &[(&[u8], &str, &str, Option<Kind>)] = &[
            (b"%PDF-1.4 ...", "x.bin", "application/octet-stream", Some(Kind::Pdf)),
            (b"{\\rtf1 hello}", "x", "", Some(Kind::Rtf)),
            (b"PK\x03\x04 no members", "x.docx", "", Some(Kind::Zip)),
            (
                b"PK\x03\x04 ....",
                "x",
                "application/vnd.oasis.opendocument.text",
                Some(Kind::Odt),
            ),
            (b"hello", "notes.txt", "application/octet-stream", Some(Kind::Text)),
            (b"a,b", "x", "text/csv", Some(Kind::Csv)),
            (b"<p>x</p>", "x", "text/html", Some(Kind::Html)),
            (b"<p>x</p>", "x", "text/x-unheard-of", Some(Kind::Text)),
            (b"\x89PNG\r\n", "x.png", "image/png", None),
            (b"\x00\x01", "x.bin", "application/octet-stream", None),
            (b"not a pdf", "x.pdf", "application/pdf", Some(Kind::Pdf)),
            (b"From: a\r\n\r\nb", "x", "message/rfc822", Some(Kind::Message)),
            (b"--- a\n+++ b\n", "fix", "application/x-patch", Some(Kind::Text)),
            (
                b"--- a\n+++ b\n",
                "fix.patch",
                "application/octet-stream",
                Some(Kind::Text),
            ),
            (
                b"<flow_graph/>",
                "radio.grc",
                "application/gnuradio-grc+xml",
                Some(Kind::Text),
            ),
            (
                b"Reporting-MTA: dns; x",
                "",
                "message/delivery-status",
                Some(Kind::Text),
            ),
        ];
        for (bytes, name, mime, want) in cases {
            assert_eq!(kind(bytes, name, mime), *want, "{name} {mime}");
        }
    }
}
