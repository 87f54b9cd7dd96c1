//! User tags on messages (pure): what a tag may be, the `+tag -tag` changes of
//! `mailvault tag`, and how a message's tags are stored.
//!
//! A tag is kept in the archive's metadata, never in the message's bytes. So
//! that it can also travel as an IMAP keyword (`replay --tags-as-keywords`) and a
//! maildir keyword (`export --format maildir`), a tag is an IMAP atom: 1 to 64
//! ASCII letters, digits and `- _ . : / @ +` (not starting with `+` or `-`,
//! which say add or remove), compared and kept in lower case.

use std::collections::BTreeSet;

use thiserror::Error;

use crate::codec::{Dec, DecodeError, Enc};

/// Longest tag, in bytes.
pub const MAX_LEN: usize = 64;
/// Most tags one message may carry.
pub const MAX_PER_MESSAGE: usize = 100;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TagError {
    #[error("{0:?} is not a tag: 1 to {MAX_LEN} letters, digits and - _ . : / @ + (not starting with + or -)")]
    Invalid(String),
    #[error("{0:?} says neither +TAG (add) nor -TAG (remove)")]
    NoSign(String),
    #[error("a message may carry at most {MAX_PER_MESSAGE} tags")]
    TooMany,
}

/// A valid tag, lower-cased.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(String);

impl Tag {
    pub fn parse(s: &str) -> Result<Tag, TagError> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || "-_.:/@+".contains(c);
        let valid = !s.is_empty() && s.len() <= MAX_LEN && s.chars().all(ok_char) && !s.starts_with(['+', '-']);
        if valid {
            Ok(Tag(s.to_ascii_lowercase()))
        } else {
            Err(TagError::Invalid(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One change `mailvault tag` makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Add(Tag),
    Remove(Tag),
}

/// Reads `+a -b …`.
pub fn parse_changes<S: AsRef<str>>(args: &[S]) -> Result<Vec<Change>, TagError> {
    args.iter()
        .map(|a| {
            let a = a.as_ref();
            match (a.strip_prefix('+'), a.strip_prefix('-')) {
                (Some(t), _) => Tag::parse(t).map(Change::Add),
                (_, Some(t)) => Tag::parse(t).map(Change::Remove),
                _ => Err(TagError::NoSign(a.to_string())),
            }
        })
        .collect()
}

/// `current` after `changes`, in order (a later change to the same tag wins).
pub fn apply(current: &BTreeSet<Tag>, changes: &[Change]) -> Result<BTreeSet<Tag>, TagError> {
    let mut tags = current.clone();
    for c in changes {
        match c {
            Change::Add(t) => tags.insert(t.clone()),
            Change::Remove(t) => tags.remove(t),
        };
    }
    if tags.len() > MAX_PER_MESSAGE {
        return Err(TagError::TooMany);
    }
    Ok(tags)
}

const RECORD_V1: u8 = 1;

/// A message's tags as stored (`tags` column family): `u8 version, u16 LE n, n x
/// (u32 LE length, UTF-8)`.
pub fn encode(tags: &BTreeSet<Tag>) -> Vec<u8> {
    let mut e = Enc::default();
    e.u8(RECORD_V1).u16(tags.len() as u16);
    for t in tags {
        e.str(t.as_str());
    }
    e.finish()
}

pub fn decode(value: &[u8]) -> Result<BTreeSet<Tag>, DecodeError> {
    let mut d = Dec::new(value, "tags record");
    let v = d.u8()?;
    if v != RECORD_V1 {
        return Err(d.err(format!("unknown version {v}")));
    }
    let n = d.u16()?;
    let mut tags = BTreeSet::new();
    for _ in 0..n {
        let s = d.string()?;
        tags.insert(Tag::parse(&s).map_err(|e| d.err(e.to_string()))?);
    }
    d.end()?;
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_atoms_in_lower_case() {
        for (s, ok) in [
            ("case-42", Some("case-42")),
            ("Todo", Some("todo")),
            ("project/alpha", Some("project/alpha")),
            ("a.b_c:d@e+f", Some("a.b_c:d@e+f")),
            ("", None),
            ("two words", None),
            ("-x", None),
            ("+x", None),
            ("\\Seen", None),
            ("quo\"te", None),
            ("brace{", None),
            ("star*", None),
            ("é", None),
            (&"x".repeat(65), None),
        ] {
            assert_eq!(Tag::parse(s).ok().map(|t| t.0), ok.map(str::to_string), "{s:?}");
        }
        assert!(Tag::parse(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn changes_apply_in_order() {
        let c = parse_changes(&["+case-42", "-todo", "+Todo", "-gone"]).unwrap();
        let t = |s: &str| Tag::parse(s).unwrap();
        assert_eq!(c[0], Change::Add(t("case-42")));
        let now: BTreeSet<Tag> = [t("todo"), t("gone"), t("keep")].into();
        let after = apply(&now, &c).unwrap();
        assert_eq!(after, [t("case-42"), t("todo"), t("keep")].into());
        assert_eq!(parse_changes(&["case"]), Err(TagError::NoSign("case".into())));
        assert!(matches!(parse_changes(&["+a b"]), Err(TagError::Invalid(_))));
        let many: Vec<Change> = (0..=MAX_PER_MESSAGE)
            .map(|i| Change::Add(t(&format!("t{i}"))))
            .collect();
        assert_eq!(apply(&BTreeSet::new(), &many), Err(TagError::TooMany));
    }

    #[test]
    fn records_round_trip_and_reject_damage() {
        let tags: BTreeSet<Tag> = [Tag::parse("a").unwrap(), Tag::parse("case-42").unwrap()].into();
        let bytes = encode(&tags);
        assert_eq!(decode(&bytes).unwrap(), tags);
        assert!(decode(&[2, 0, 0]).is_err());
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        let mut bad = encode(&BTreeSet::new());
        bad[1] = 1;
        bad.extend_from_slice(&[3, 0, 0, 0]);
        bad.extend_from_slice(b"a b");
        assert!(decode(&bad).is_err());
    }
}
