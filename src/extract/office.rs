//! Office documents: OOXML (DOCX, XLSX, PPTX) and OpenDocument (ODT, ODS, ODP)
//! are ZIP archives of XML; their text is the character data of the parts that
//! hold the content, read with quick-xml as a stream (never a tree in memory),
//! each part inflated within the archive's bounds ([`super::zip::member`]).
//! Paragraphs, cells and breaks become white space; runs within a paragraph
//! join without one (a word split across formatting runs stays one word).

use quick_xml::events::Event;
use quick_xml::Reader;

use super::zip::{member, open};
use super::{Failure, Kind, Stop, Walk};

/// The parts holding a format's text, by name: an exact name or a prefix and
/// suffix (`ppt/slides/` + `.xml`).
fn wanted(kind: Kind, name: &str) -> bool {
    let under = |dir: &str| name.starts_with(dir) && name.ends_with(".xml") && !name[dir.len()..].contains('/');
    match kind {
        Kind::Docx => {
            name == "word/document.xml"
                || name == "word/footnotes.xml"
                || name == "word/endnotes.xml"
                || name == "word/comments.xml"
                || (under("word/") && (name.contains("/header") || name.contains("/footer")))
        }
        Kind::Xlsx => name == "xl/sharedStrings.xml" || under("xl/worksheets/"),
        Kind::Pptx => under("ppt/slides/") || under("ppt/notesSlides/"),
        _ => name == "content.xml",
    }
}

/// Elements after which a word ends (by local name, any namespace): paragraphs,
/// headings, line and tab breaks, spreadsheet cells and rows, table cells.
const BREAKS: &[&[u8]] = &[
    b"p",
    b"h",
    b"br",
    b"tab",
    b"s",
    b"si",
    b"c",
    b"row",
    b"tc",
    b"tr",
    b"table-cell",
    b"line-break",
    b"cr",
];

pub(crate) fn read(walk: &mut Walk<'_>, kind: Kind, bytes: &[u8]) -> Result<(), Stop> {
    let mut archive = open(bytes)?;
    let mut parts: Vec<(usize, String)> = (0..archive.len())
        .filter_map(|i| {
            archive
                .name_for_index(i)
                .and_then(|r| r.ok())
                .map(|n| (i, n.into_owned()))
        })
        .filter(|(_, n)| wanted(kind, n))
        .collect();
    if parts.is_empty() {
        return Err(Stop::Failed(Failure::Corrupt(format!(
            "no content part: not a {} file",
            kind.as_str()
        ))));
    }
    // Slides and sheets in their number order (slide2 before slide10).
    parts.sort_by_key(|(_, n)| part_order(n));
    for (i, _) in parts.into_iter().take(walk.budget.members) {
        walk.check_time()?;
        let (name, xml) = member(walk, &mut archive, i)?;
        xml_text(walk, &xml).map_err(|e| match e {
            Stop::Failed(Failure::Corrupt(why)) => Stop::Failed(Failure::Corrupt(format!("{name}: {why}"))),
            other => other,
        })?;
    }
    Ok(())
}

fn part_order(name: &str) -> (String, u64) {
    let stem = name.trim_end_matches(".xml");
    let digits = stem.len() - stem.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (head, number) = stem.split_at(stem.len() - digits);
    (head.to_string(), number.parse().unwrap_or(0))
}

/// The character data of one XML part.
fn xml_text(walk: &mut Walk<'_>, xml: &[u8]) -> Result<(), Stop> {
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().check_end_names = false;
    let mut buf = Vec::new();
    let mut events = 0u32;
    loop {
        events = events.wrapping_add(1);
        if events.is_multiple_of(4096) {
            walk.check_time()?;
        }
        let corrupt = |e: quick_xml::Error| Stop::Failed(Failure::Corrupt(format!("XML: {e}")));
        match reader.read_event_into(&mut buf).map_err(corrupt)? {
            Event::Text(t) => {
                let s = t
                    .decode()
                    .map_err(|e| Stop::Failed(Failure::Corrupt(format!("XML: {e}"))))?;
                walk.push(&s)?;
            }
            Event::CData(t) => walk.push(&String::from_utf8_lossy(&t))?,
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    _ => match &*r {
                        b"amp" => Some('&'),
                        b"lt" => Some('<'),
                        b"gt" => Some('>'),
                        b"quot" => Some('"'),
                        b"apos" => Some('\''),
                        _ => None,
                    },
                };
                if let Some(c) = c {
                    walk.push(c.encode_utf8(&mut [0; 4]))?;
                }
            }
            Event::End(e) if BREAKS.contains(&e.local_name().as_ref()) => walk.space()?,
            Event::Empty(e) if BREAKS.contains(&e.local_name().as_ref()) => walk.space()?,
            Event::Eof => return Ok(()),
            _ => {}
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_read_in_number_order() {
        let mut names = [
            "ppt/slides/slide10.xml",
            "ppt/slides/slide2.xml",
            "ppt/slides/slide1.xml",
        ];
        names.sort_by_key(|n| part_order(n));
        assert_eq!(
            names,
            [
                "ppt/slides/slide1.xml",
                "ppt/slides/slide2.xml",
                "ppt/slides/slide10.xml"
            ]
        );
    }

    #[test]
    fn only_content_parts_are_wanted() {
        assert!(wanted(Kind::Docx, "word/document.xml"));
        assert!(wanted(Kind::Docx, "word/header1.xml"));
        assert!(!wanted(Kind::Docx, "word/styles.xml"));
        assert!(wanted(Kind::Xlsx, "xl/worksheets/sheet1.xml"));
        assert!(!wanted(Kind::Xlsx, "xl/worksheets/_rels/sheet1.xml.rels"));
        assert!(wanted(Kind::Pptx, "ppt/slides/slide3.xml"));
        assert!(!wanted(Kind::Pptx, "ppt/slideLayouts/slideLayout1.xml"));
        assert!(wanted(Kind::Odt, "content.xml"));
        assert!(!wanted(Kind::Odt, "styles.xml"));
    }
}
