//! RTF: the text of the document's groups, without its control words and the
//! destinations that hold no text (font and colour tables, style sheets, document
//! information, pictures, `\*` extensions). `\'hh` bytes are Windows-1252, `\uN`
//! a Unicode code point (its fallback characters skipped). Hand-written: the
//! format is small, and no parser library read our test documents better.

use super::{Stop, Walk};

/// Destinations whose contents are not text.
const SKIPPED: &[&str] = &[
    "fonttbl",
    "colortbl",
    "stylesheet",
    "info",
    "pict",
    "object",
    "header",
    "footer",
    "listtable",
    "listoverridetable",
    "rsidtbl",
    "generator",
    "xmlnstbl",
    "themedata",
    "datastore",
    "latentstyles",
];

/// Groups nested deeper than this are read as flat text (a hostile file cannot
/// make the group stack grow without bound).
const MAX_DEPTH: usize = 256;

pub(crate) fn read(walk: &mut Walk<'_>, bytes: &[u8]) -> Result<(), Stop> {
    let mut out = String::new();
    // For each open group: is its text skipped; the `\ucN` count in force.
    let mut groups: Vec<(bool, usize)> = vec![(false, 1)];
    let mut skip_fallback = 0usize;
    let mut i = 0;
    let mut steps = 0u32;
    while i < bytes.len() {
        steps = steps.wrapping_add(1);
        if steps.is_multiple_of(65_536) {
            walk.check_time()?;
        }
        let (skipping, uc) = *groups.last().unwrap_or(&(false, 1));
        let b = bytes[i];
        match b {
            b'{' => {
                if groups.len() < MAX_DEPTH {
                    groups.push((skipping, uc));
                }
                i += 1;
            }
            b'}' => {
                if groups.len() > 1 {
                    groups.pop();
                }
                i += 1;
            }
            b'\\' => {
                let (word, param, next) = control(bytes, i + 1);
                i = next;
                let emit = |out: &mut String, c: char, skip_fallback: &mut usize| {
                    if *skip_fallback > 0 {
                        *skip_fallback -= 1;
                    } else if !skipping {
                        out.push(c);
                    }
                };
                match word.as_str() {
                    "'" => {
                        let hex = bytes.get(i..i + 2).and_then(|h| std::str::from_utf8(h).ok());
                        if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                            emit(&mut out, cp1252(v), &mut skip_fallback);
                            i += 2;
                        }
                    }
                    "u" => {
                        let v = param.unwrap_or(0);
                        let v = if v < 0 { v + 65_536 } else { v };
                        if let Some(c) = char::from_u32(v as u32) {
                            if !skipping {
                                out.push(c);
                            }
                        }
                        skip_fallback = uc;
                    }
                    "uc" => {
                        if let Some(top) = groups.last_mut() {
                            top.1 = param.unwrap_or(1).clamp(0, 16) as usize;
                        }
                    }
                    "*" => set_skipped(&mut groups),
                    "par" | "line" | "sect" | "page" | "row" => emit(&mut out, '\n', &mut 0),
                    "tab" | "cell" => emit(&mut out, ' ', &mut 0),
                    "\\" | "{" | "}" => emit(&mut out, word.chars().next().unwrap_or(' '), &mut skip_fallback),
                    "~" => emit(&mut out, ' ', &mut skip_fallback),
                    w if SKIPPED.contains(&w) => set_skipped(&mut groups),
                    _ => {}
                }
            }
            b'\r' | b'\n' => i += 1,
            _ => {
                if skip_fallback > 0 {
                    skip_fallback -= 1;
                } else if !skipping {
                    out.push(cp1252(b));
                }
                i += 1;
            }
        }
        if out.len() >= 64 << 10 {
            walk.push(&out)?;
            out.clear();
        }
    }
    walk.push(&out)
}

fn set_skipped(groups: &mut [(bool, usize)]) {
    if let Some(top) = groups.last_mut() {
        top.0 = true;
    }
}

/// The control word at `i` (after its backslash): its name, numeric parameter,
/// and where the text after it starts (one delimiting space is part of it).
fn control(bytes: &[u8], mut i: usize) -> (String, Option<i64>, usize) {
    let Some(&first) = bytes.get(i) else {
        return (String::new(), None, i);
    };
    if !first.is_ascii_alphabetic() {
        return ((first as char).to_string(), None, i + 1);
    }
    let start = i;
    while i < bytes.len() && bytes[i].is_ascii_alphabetic() && i - start < 32 {
        i += 1;
    }
    let word = String::from_utf8_lossy(&bytes[start..i]).into_owned();
    let num_start = i;
    if bytes.get(i) == Some(&b'-') {
        i += 1;
    }
    while i < bytes.len() && bytes[i].is_ascii_digit() && i - num_start < 10 {
        i += 1;
    }
    let param = std::str::from_utf8(&bytes[num_start..i])
        .ok()
        .and_then(|s| s.parse().ok());
    if bytes.get(i) == Some(&b' ') {
        i += 1;
    }
    (word, param, i)
}

/// A Windows-1252 byte as a character (the RTF default code page).
fn cp1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}', '\u{90}', '‘',
        '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9f => HIGH[(b - 0x80) as usize],
        _ => b as char,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{document, Budget};

    fn text(rtf: &str) -> String {
        document(rtf.as_bytes(), "x.rtf", "application/rtf", &Budget::default())
            .text
            .trim()
            .to_string()
    }

    #[test]
    fn rtf_text_keeps_words_and_drops_tables_and_controls() {
        let cases = [
            (
                r"{\rtf1\ansi{\fonttbl{\f0 Times;}}\f0 Hello \b world\b0\par}",
                "Hello world",
            ),
            (r"{\rtf1 caf\'e9 \u8364? euro}", "café € euro"),
            (r"{\rtf1{\*\generator pandoc;}{\info{\title secret}}visible}", "visible"),
            (r"{\rtf1 a\{b\}c\\d}", "a{b}c\\d"),
            (r"{\rtf1\uc2 x\u8212--y}", "x—y"),
            ("{\\rtf1 unclosed {{{{", "unclosed"),
        ];
        for (rtf, want) in cases {
            assert_eq!(text(rtf), want, "{rtf}");
        }
    }
}
