//! One message → one index document: addresses, subject, decoded body text (HTML
//! turned into text by mail-parser, every charset it knows decoded), attachment
//! names and types, the text inside attachments ([`crate::extract`]) and what
//! became of each, dates, size, ids, list, and its placements' folders, accounts
//! and flags.

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders};
use tantivy::schema::Facet;
use tantivy::TantivyDocument;

use super::schema::Fields;
use crate::archive::PlacementEntry;
use crate::extract::Budget;
use crate::model::MessageId;
use crate::thread::Headers;

/// A message's place in its thread, as the document records it.
#[derive(Clone, Debug)]
pub struct Threaded {
    /// What threading read of the message.
    pub headers: Headers,
    /// Its thread's key ([`crate::thread::key`]).
    pub key: String,
}

/// Body text beyond this many bytes is not indexed (bounds time and index size on
/// huge text parts such as logs pasted into a message).
pub const BODY_LIMIT: usize = 256 * 1024;

fn addresses(a: Option<&Address<'_>>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .map(|x| match (&x.name, &x.address) {
                (Some(n), Some(ad)) => format!("{n} <{ad}>"),
                (None, Some(ad)) => ad.to_string(),
                (Some(n), None) => n.to_string(),
                (None, None) => String::new(),
            })
            .filter(|s| !s.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

/// The domains of the addresses in `a`, lower-cased.
fn domains(a: Option<&Address<'_>>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address.as_deref())
            .filter_map(|ad| ad.rsplit_once('@').map(|(_, d)| d.trim().to_lowercase()))
            .filter(|d| !d.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

/// The facets of a message (module [`super::facets`] counts them): where it is
/// filed, its year, its senders' domains, whether it has attachments.
fn add_facets(
    f: &Fields,
    doc: &mut TantivyDocument,
    date: i64,
    senders: &[String],
    attachments: bool,
    placements: &[PlacementEntry],
) {
    let mut seen = std::collections::HashSet::new();
    for p in placements {
        if seen.insert((p.key.account.as_str(), p.key.mailbox.as_str())) {
            doc.add_facet(f.facet, super::facets::place(&p.key.account, &p.key.mailbox));
        }
    }
    if let Some(y) = chrono::DateTime::from_timestamp(date, 0).map(|d| chrono::Datelike::year(&d)) {
        doc.add_facet(
            f.facet,
            Facet::from_path([super::facets::YEAR.to_string(), y.to_string()]),
        );
    }
    let mut domains: Vec<&String> = senders.iter().collect();
    domains.sort();
    domains.dedup();
    for d in domains {
        doc.add_facet(f.facet, Facet::from_path([super::facets::DOMAIN, d.as_str()]));
    }
    if attachments {
        doc.add_facet(f.facet, Facet::from_path([super::facets::HAS, "attachment"]));
    }
}

fn id_list(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// The text inside `m`'s attachments, and a facet per part for what became of
/// it: `/extraction/extracted/pdf`, `/extraction/skipped/image-png`,
/// `/extraction/failed/corrupt`.
fn add_attachment_text(f: &Fields, doc: &mut TantivyDocument, m: &mail_parser::Message<'_>, budget: &Budget) {
    let e = crate::extract::message(m, budget);
    if !e.text.is_empty() {
        doc.add_text(f.attachment, e.text);
    }
    for p in &e.parts {
        doc.add_facet(f.facet, super::facets::extraction(p));
    }
}

/// The date a message is indexed and threaded under: its `Date:` header, else
/// the earliest internal date of its placements, else 0.
fn date_of(parsed: Option<&mail_parser::Message<'_>>, placements: &[PlacementEntry]) -> i64 {
    parsed
        .and_then(|m| m.date())
        .map(|d| d.to_timestamp())
        .or_else(|| placements.iter().filter_map(|p| p.record.internal_date).min())
        .unwrap_or(0)
}

/// What threading needs of message `id`, read from its header section alone.
pub fn thread_headers(id: &MessageId, raw: &[u8], placements: &[PlacementEntry]) -> Headers {
    let parsed = MessageParser::default().parse_headers(raw);
    let m = parsed.as_ref();
    Headers {
        message_id: m.and_then(|m| m.message_id()).map(str::to_string),
        in_reply_to: m.map(|m| id_list(m.in_reply_to())).unwrap_or_default(),
        references: m.map(|m| id_list(m.references())).unwrap_or_default(),
        subject: m.and_then(|m| m.subject()).unwrap_or_default().to_string(),
        date: date_of(m, placements),
        fallback: id.to_hex(),
    }
}

/// The thread fields: the key, the ancestry (stored, in order) and, for a
/// message without reference headers, the subject threading compares.
fn add_thread(f: &Fields, doc: &mut TantivyDocument, t: &Threaded) {
    doc.add_text(f.thread, &t.key);
    let ancestry = t.headers.ancestry();
    if ancestry.is_empty() {
        doc.add_text(f.base_subject, crate::thread::base_subject(&t.headers.subject));
    }
    for a in ancestry {
        doc.add_text(f.ancestry, a);
    }
}

/// Builds the document of message `id` from its raw bytes and placements, in
/// the thread `thread`; attachments' text is extracted within `extraction`
/// (not at all when `None`).
pub fn build(
    f: &Fields,
    id: &MessageId,
    raw: &[u8],
    placements: &[PlacementEntry],
    thread: &Threaded,
    extraction: Option<&Budget>,
) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_text(f.id, id.to_hex());
    doc.add_u64(f.order, super::schema::order_key(id));
    doc.add_u64(f.size, raw.len() as u64);
    let parsed = MessageParser::default().parse(raw);
    let mut attachments = 0;
    let mut senders = Vec::new();
    if let Some(m) = &parsed {
        senders = domains(m.from());
        for (field, list) in [(f.from, m.from()), (f.to, m.to()), (f.cc, m.cc()), (f.bcc, m.bcc())] {
            for a in addresses(list) {
                doc.add_text(field, a);
            }
        }
        if let Some(s) = m.subject() {
            doc.add_text(f.subject, s);
        }
        let mut body = String::new();
        for i in 0..m.text_body_count() {
            if let Some(t) = m.body_text(i) {
                if body.len() + t.len() > BODY_LIMIT {
                    let mut cut = BODY_LIMIT.saturating_sub(body.len());
                    while cut > 0 && !t.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    body.push_str(&t[..cut]);
                    break;
                }
                body.push_str(&t);
                body.push('\n');
            }
        }
        doc.add_text(f.body, body);
        for part in m.attachments() {
            if let Some(name) = part.attachment_name() {
                doc.add_text(f.filename, name);
                attachments += 1;
            }
            if let Some(t) = crate::mime::readable::content_type(part) {
                doc.add_text(f.mime, t);
            }
        }
        if let Some(budget) = extraction {
            add_attachment_text(f, &mut doc, m, budget);
        }
        if let Some(mid) = m.message_id() {
            doc.add_text(f.msgid, mid);
        }
        for r in id_list(m.in_reply_to()).into_iter().chain(id_list(m.references())) {
            doc.add_text(f.refs, r);
        }
        // Raw text: mail-parser reads List-Id as an address, which drops the name.
        if let Some(l) = m.header_raw("List-Id") {
            doc.add_text(f.list, l.trim());
        }
    }
    if attachments > 0 {
        doc.add_text(f.has, "attachment");
    }
    add_thread(f, &mut doc, thread);
    let date = date_of(parsed.as_ref(), placements);
    doc.add_i64(f.date, date);
    add_facets(f, &mut doc, date, &senders, attachments > 0, placements);
    let mut seen = std::collections::HashSet::new();
    for p in placements {
        let placed = format!(
            "{}{}{}",
            p.key.account,
            super::schema::PLACEMENT_SEPARATOR,
            p.key.mailbox
        );
        if seen.insert(("p", placed.clone())) {
            doc.add_text(f.placement, placed);
        }
        if seen.insert(("f", p.key.mailbox.clone())) {
            doc.add_text(f.folder, &p.key.mailbox);
        }
        if seen.insert(("a", p.key.account.clone())) {
            doc.add_text(f.account, &p.key.account);
        }
        for flag in p.record.flags.names() {
            let flag = flag.trim_start_matches('\\').to_lowercase();
            if seen.insert(("g", flag.clone())) {
                doc.add_text(f.flag, flag);
            }
        }
    }
    doc
}
