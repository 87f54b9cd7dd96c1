//! A message as a person reads it (`mailvault show`): the main header fields
//! decoded, the text body (HTML turned into text), and the list of attachments.
//! Pure: bytes in, text out. A message mail-parser cannot parse still shows its
//! header section as it is.

use mail_parser::{Address, MessageParser, MimeHeaders};

/// What `show` prints of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readable {
    /// `(field, decoded value)` for From, To, Cc, Date, Subject, in that order,
    /// each only when present.
    pub headers: Vec<(&'static str, String)>,
    /// The text bodies, joined by a blank line; HTML-only messages as text.
    pub text: String,
    pub attachments: Vec<Attachment>,
}

/// An attachment's name, type and decoded size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub size: usize,
}

fn addresses(a: Option<&Address<'_>>) -> Option<String> {
    let list: Vec<String> = a?
        .iter()
        .filter_map(|x| match (x.name(), x.address()) {
            (Some(n), Some(ad)) => Some(format!("{n} <{ad}>")),
            (None, Some(ad)) => Some(ad.to_string()),
            (Some(n), None) => Some(n.to_string()),
            (None, None) => None,
        })
        .collect();
    (!list.is_empty()).then(|| list.join(", "))
}

/// Reads `raw` for a person.
pub fn readable(raw: &[u8]) -> Readable {
    let Some(m) = MessageParser::default().parse(raw) else {
        let end = super::body_start(raw).unwrap_or(raw.len());
        return Readable {
            headers: Vec::new(),
            text: String::from_utf8_lossy(&raw[..end]).into_owned(),
            attachments: Vec::new(),
        };
    };
    let mut headers = Vec::new();
    for (name, value) in [
        ("From", addresses(m.from())),
        ("To", addresses(m.to())),
        ("Cc", addresses(m.cc())),
    ] {
        if let Some(v) = value {
            headers.push((name, v));
        }
    }
    if let Some(d) = m.date() {
        headers.push(("Date", d.to_rfc3339()));
    }
    if let Some(s) = m.subject() {
        headers.push(("Subject", s.to_string()));
    }
    let text = (0..m.text_body_count())
        .filter_map(|i| m.body_text(i))
        .map(|t| t.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n\n");
    let attachments = m.attachments().map(describe).collect();
    Readable {
        headers,
        text,
        attachments,
    }
}

/// The HTML body of `raw`, decoded, when it has a `text/html` part (a text-only
/// message has none: it is shown as text).
pub fn html_body(raw: &[u8]) -> Option<String> {
    let m = MessageParser::default().parse(raw)?;
    let part = m.html_body.iter().map(|&i| m.part(i)).find_map(|p| {
        let p = p?;
        let ct = p.content_type()?;
        let html = ct.ctype().eq_ignore_ascii_case("text") && ct.subtype()?.eq_ignore_ascii_case("html");
        html.then_some(p)
    })?;
    part.text_contents().map(str::to_string)
}

/// The `n`th attachment of `raw` (as [`Readable::attachments`] numbers them): its
/// description and decoded bytes.
pub fn attachment(raw: &[u8], n: usize) -> Option<(Attachment, Vec<u8>)> {
    let m = MessageParser::default().parse(raw)?;
    let a = m.attachments().nth(n)?;
    let bytes = a.contents().to_vec();
    Some((describe(a), bytes))
}

/// The Message-IDs that tie a message into its conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadIds {
    /// Its own Message-ID.
    pub own: Option<String>,
    /// In-Reply-To, then References, in order, without repeats.
    pub refs: Vec<String>,
}

impl ThreadIds {
    /// The conversation's first message as this one names it: the first of its
    /// References (RFC 5322 §3.6.4: the thread's root comes first), else what it
    /// replies to, else itself.
    pub fn root(&self) -> Option<&str> {
        self.refs.first().or(self.own.as_ref()).map(String::as_str)
    }
}

fn ids_of(v: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    match v {
        mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
        mail_parser::HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// The Message-IDs of `raw`'s header.
pub fn thread_ids(raw: &[u8]) -> ThreadIds {
    let Some(m) = MessageParser::default().parse_headers(raw) else {
        return ThreadIds::default();
    };
    let mut refs: Vec<String> = Vec::new();
    // References first (its first entry is the root), then In-Reply-To.
    for id in ids_of(m.references()).into_iter().chain(ids_of(m.in_reply_to())) {
        if !refs.contains(&id) {
            refs.push(id);
        }
    }
    ThreadIds {
        own: m.message_id().map(str::to_string),
        refs,
    }
}

/// A part's declared `type/subtype` as written (`None`: no Content-Type).
pub fn content_type(part: &mail_parser::MessagePart<'_>) -> Option<String> {
    part.content_type().map(|c| match c.subtype() {
        Some(sub) => format!("{}/{sub}", c.ctype()),
        None => c.ctype().to_string(),
    })
}

fn describe(a: &mail_parser::MessagePart<'_>) -> Attachment {
    Attachment {
        name: a.attachment_name().unwrap_or("(no name)").to_string(),
        content_type: content_type(a).unwrap_or_else(|| "application/octet-stream".into()),
        size: a.contents().len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_html_body_is_found_only_in_an_html_part() {
        let alt = b"Content-Type: multipart/alternative; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n\
--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>rich</p>\r\n--b--\r\n";
        assert_eq!(html_body(alt).as_deref().map(str::trim), Some("<p>rich</p>"));
        assert_eq!(html_body(b"Content-Type: text/plain\r\n\r\nplain\r\n"), None);
    }

    #[test]
    fn a_reply_names_its_root_first() {
        let t = thread_ids(b"Message-ID: <c@x>\r\nIn-Reply-To: <b@x>\r\nReferences: <a@x> <b@x>\r\n\r\nbody\r\n");
        assert_eq!(t.own.as_deref(), Some("c@x"));
        assert_eq!(t.refs, vec!["a@x".to_string(), "b@x".to_string()]);
        assert_eq!(t.root(), Some("a@x"));
        let only_reply = thread_ids(b"Message-ID: <c@x>\r\nIn-Reply-To: <b@x>\r\n\r\n");
        assert_eq!(only_reply.root(), Some("b@x"));
        let first = thread_ids(b"Message-ID: <a@x>\r\n\r\n");
        assert_eq!(first.root(), Some("a@x"));
        assert_eq!(thread_ids(b"Subject: none\r\n\r\n").root(), None);
    }

    #[test]
    fn an_attachment_is_found_by_its_number() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n\
--b\r\nContent-Type: image/png; name=a.png\r\nContent-Disposition: attachment; filename=a.png\r\n\
Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b--\r\n";
        let (a, bytes) = attachment(raw, 0).expect("the first attachment");
        assert_eq!((a.name.as_str(), a.content_type.as_str()), ("a.png", "image/png"));
        assert_eq!(bytes, b"hello");
        assert!(attachment(raw, 1).is_none());
    }

    #[test]
    fn encoded_words_are_decoded_and_attachments_listed() {
        let raw = b"From: =?UTF-8?B?w4VzYQ==?= <asa@example.org>\r\n\
To: bo@example.org\r\n\
Subject: =?ISO-8859-1?Q?caf=E9?=\r\n\
Date: Tue, 1 Mar 2022 10:00:00 +0100\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello there\r\n\
--b\r\nContent-Type: application/pdf; name=report.pdf\r\n\
Content-Disposition: attachment; filename=report.pdf\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n";
        let r = readable(raw);
        assert_eq!(
            r.headers,
            vec![
                ("From", "Åsa <asa@example.org>".to_string()),
                ("To", "bo@example.org".to_string()),
                ("Date", "2022-03-01T10:00:00+01:00".to_string()),
                ("Subject", "café".to_string()),
            ]
        );
        assert_eq!(r.text, "Hello there");
        assert_eq!(
            r.attachments,
            vec![Attachment {
                name: "report.pdf".into(),
                content_type: "application/pdf".into(),
                size: 9,
            }]
        );
    }

    #[test]
    fn html_only_messages_show_as_text() {
        let raw = b"From: a@example.org\r\nContent-Type: text/html\r\n\r\n<p>Hi <b>you</b></p>\r\n";
        let r = readable(raw);
        assert!(
            r.text.contains("Hi") && r.text.contains("you") && !r.text.contains("<b>"),
            "{:?}",
            r.text
        );
    }
}
