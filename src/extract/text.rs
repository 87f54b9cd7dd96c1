//! Plain text, CSV and HTML attachments. Text is read as UTF-8 when it is, else
//! as Latin-1 (mail-parser has already decoded a declared charset for parts
//! it knows are text); HTML through mail-parser's HTML-to-text conversion.

use super::{Stop, Walk};

pub(crate) fn plain(walk: &mut Walk<'_>, bytes: &[u8]) -> Result<(), Stop> {
    walk.push(&decode(bytes))
}

pub(crate) fn html(walk: &mut Walk<'_>, bytes: &[u8]) -> Result<(), Stop> {
    walk.push(&mail_parser::decoders::html::html_to_text(&decode(bytes)))
}

fn decode(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.into(),
        Err(_) => bytes.iter().map(|&b| b as char).collect::<String>().into(),
    }
}
