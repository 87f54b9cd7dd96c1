//! IMAP namespaces (RFC 2342): the NAMESPACE answer parsed, and the translation
//! between a server's folder names and the archive's. Pure.
//!
//! ```text
//! 1. The archive names a personal folder relative to the personal namespace, with
//!    `/` between levels: the server's `INBOX.Work.2024` under prefix `INBOX.` and
//!    separator `.` is the archive's `Work/2024`. INBOX is `INBOX` everywhere.
//! 2. Going back (replay, migrate), an archive name is joined with the target's
//!    separator and put under the target's prefix — INBOX excepted.
//! 3. A folder belongs to the namespace with the longest prefix it starts with; one
//!    under another user's or a shared namespace keeps its whole name (with `/`),
//!    and is pulled only when that kind of namespace is asked for.
//! ```

use serde::Serialize;

use crate::plan::mutf7;

/// The three kinds of namespace a server may announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceKind {
    /// The user's own folders.
    Personal,
    /// Other users' folders shared with this one.
    Other,
    /// Folders shared by everyone (public folders).
    Shared,
}

impl std::fmt::Display for NamespaceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NamespaceKind::Personal => "personal",
            NamespaceKind::Other => "other",
            NamespaceKind::Shared => "shared",
        })
    }
}

/// One namespace: its prefix (decoded from modified UTF-7) and hierarchy separator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Namespace {
    pub prefix: String,
    /// `None` when the server has no hierarchy (NIL).
    pub separator: Option<char>,
}

impl Namespace {
    /// The namespace of a server that does not announce any: no prefix.
    pub fn root(separator: Option<char>) -> Namespace {
        Namespace {
            prefix: String::new(),
            separator,
        }
    }

    /// Whether `name` (decoded) lies in this namespace. An `INBOX` prefix matches in
    /// any case spelling, as INBOX itself does.
    pub fn contains(&self, name: &str) -> bool {
        self.strip(name).is_some()
    }

    fn strip<'a>(&self, name: &'a str) -> Option<&'a str> {
        let p = &self.prefix;
        if let Some(rest) = name.strip_prefix(p.as_str()) {
            return Some(rest);
        }
        let inbox_led = p.len() >= 5 && p.is_char_boundary(5) && p[..5].eq_ignore_ascii_case("INBOX");
        if inbox_led && name.len() >= p.len() && name.is_char_boundary(p.len()) {
            let (head, rest) = name.split_at(p.len());
            if head[..5].eq_ignore_ascii_case("INBOX") && head[5..] == p[5..] {
                return Some(rest);
            }
        }
        None
    }

    /// Step 1: a server name (decoded) as the archive names it. A name outside this
    /// namespace keeps all of it.
    pub fn to_archive(&self, name: &str) -> String {
        if name.eq_ignore_ascii_case("INBOX") {
            return "INBOX".into();
        }
        let rest = match self.strip(name) {
            // A folder named INBOX under the prefix (`INBOX.INBOX`, made as the
            // parent of `INBOX.INBOX.genie`) is not INBOX: it keeps its whole name.
            Some(rest) if rest.eq_ignore_ascii_case("INBOX") => name,
            Some("") | None => name,
            Some(rest) => rest,
        };
        let rest = match self.separator {
            Some(sep) if sep != '/' => rest.replace(sep, "/"),
            _ => rest.to_string(),
        };
        // INBOX as a parent is INBOX in any spelling.
        match rest.split_once('/') {
            Some((top, tail)) if top.eq_ignore_ascii_case("INBOX") => format!("INBOX/{tail}"),
            _ if rest.eq_ignore_ascii_case("INBOX") => "INBOX".into(),
            _ => rest,
        }
    }

    /// Step 2: `components` (an archive name split at `/`, each already free of the
    /// separator) joined as this namespace names the folder.
    pub fn to_server(&self, components: &[String]) -> String {
        let sep = self.separator.unwrap_or('/').to_string();
        let joined = components.join(&sep);
        if joined.eq_ignore_ascii_case("INBOX") {
            return "INBOX".into();
        }
        format!("{}{joined}", self.prefix)
    }
}

/// What a server announced, or what is assumed without NAMESPACE.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Namespaces {
    /// The first personal namespace is the one folders are named relative to.
    pub personal: Vec<Namespace>,
    pub other: Vec<Namespace>,
    pub shared: Vec<Namespace>,
}

impl Namespaces {
    /// A server without NAMESPACE: one personal namespace without prefix.
    pub fn without_namespace(separator: Option<char>) -> Namespaces {
        Namespaces {
            personal: vec![Namespace::root(separator)],
            other: Vec::new(),
            shared: Vec::new(),
        }
    }

    /// The personal namespace folders are named relative to.
    pub fn personal(&self) -> Namespace {
        self.personal.first().cloned().unwrap_or(Namespace::root(None))
    }

    /// Step 3: the kind and namespace of a folder — the longest prefix that holds
    /// it; INBOX is always personal.
    pub fn of(&self, name: &str) -> (NamespaceKind, Namespace) {
        let personal = self.personal();
        if name.eq_ignore_ascii_case("INBOX") {
            return (NamespaceKind::Personal, personal);
        }
        let all = [
            (NamespaceKind::Personal, &self.personal),
            (NamespaceKind::Other, &self.other),
            (NamespaceKind::Shared, &self.shared),
        ];
        all.iter()
            .flat_map(|(k, list)| list.iter().map(move |n| (*k, n)))
            .filter(|(_, n)| n.contains(name))
            .max_by_key(|(k, n)| (n.prefix.len(), *k == NamespaceKind::Personal))
            .map(|(k, n)| (k, n.clone()))
            .unwrap_or((NamespaceKind::Personal, personal))
    }
}

/// Why a NAMESPACE answer could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unreadable NAMESPACE answer: {why}")]
pub struct NamespaceError {
    pub why: String,
}

/// The most nested lists and items one answer may have (real ones have 3 and a few).
const MAX_DEPTH: usize = 6;
const MAX_ITEMS: usize = 1000;

#[derive(Debug, PartialEq, Eq)]
enum Item {
    Nil,
    Str(Vec<u8>),
    List(Vec<Item>),
}

/// Parses the text of an untagged NAMESPACE answer after `* NAMESPACE `, literals
/// inline (`{N}` CRLF and N bytes), up to the line end.
pub fn parse(text: &[u8]) -> Result<Namespaces, NamespaceError> {
    let err = |why: &str| NamespaceError { why: why.into() };
    let mut p = Parser {
        s: text,
        at: 0,
        items: 0,
    };
    let mut kinds = Vec::new();
    for _ in 0..3 {
        p.space();
        let item = p.item(0)?;
        kinds.push(namespaces_of(item)?);
    }
    // Extensions after the third list are allowed (and ignored); nothing else
    // before the line end.
    let rest = &text[p.at..];
    if !rest.iter().all(|b| matches!(b, b' ' | b'\r' | b'\n')) {
        return Err(err("text after the shared namespaces"));
    }
    let mut kinds = kinds.into_iter();
    let mut next = || kinds.next().unwrap_or_default();
    Ok(Namespaces {
        personal: next(),
        other: next(),
        shared: next(),
    })
}

fn namespaces_of(item: Item) -> Result<Vec<Namespace>, NamespaceError> {
    let err = |why: &str| NamespaceError { why: why.into() };
    let list = match item {
        Item::Nil => return Ok(Vec::new()),
        Item::List(l) => l,
        Item::Str(_) => return Err(err("a string where a list of namespaces belongs")),
    };
    list.into_iter()
        .map(|ns| {
            let Item::List(parts) = ns else {
                return Err(err("a namespace that is not a list"));
            };
            let mut parts = parts.into_iter();
            let prefix = match parts.next() {
                Some(Item::Str(s)) => String::from_utf8(s).map_err(|_| err("a prefix that is not UTF-8"))?,
                _ => return Err(err("a namespace without its prefix")),
            };
            let separator = match parts.next() {
                Some(Item::Nil) => None,
                Some(Item::Str(s)) => match std::str::from_utf8(&s).ok().map(|s| s.chars().collect::<Vec<_>>()) {
                    Some(c) if c.len() == 1 => Some(c[0]),
                    _ => return Err(err("a separator that is not one character")),
                },
                _ => return Err(err("a namespace without its separator")),
            };
            Ok(Namespace {
                prefix: mutf7::decode(&prefix).unwrap_or(prefix),
                separator,
            })
        })
        .collect()
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    items: usize,
}

impl Parser<'_> {
    fn err(&self, why: &str) -> NamespaceError {
        NamespaceError {
            why: format!("{why} at byte {}", self.at),
        }
    }

    fn space(&mut self) {
        while self.s.get(self.at) == Some(&b' ') {
            self.at += 1;
        }
    }

    fn item(&mut self, depth: usize) -> Result<Item, NamespaceError> {
        self.items += 1;
        if depth > MAX_DEPTH || self.items > MAX_ITEMS {
            return Err(self.err("too deeply nested or too long"));
        }
        match self.s.get(self.at) {
            Some(b'(') => {
                self.at += 1;
                let mut out = Vec::new();
                loop {
                    self.space();
                    if self.s.get(self.at) == Some(&b')') {
                        self.at += 1;
                        return Ok(Item::List(out));
                    }
                    out.push(self.item(depth + 1)?);
                }
            }
            Some(b'"') => self.quoted().map(Item::Str),
            Some(b'{') => self.literal().map(Item::Str),
            Some(b'N' | b'n')
                if self.s.len() >= self.at + 3 && self.s[self.at..self.at + 3].eq_ignore_ascii_case(b"NIL") =>
            {
                self.at += 3;
                Ok(Item::Nil)
            }
            Some(_) => Err(self.err("unexpected byte")),
            None => Err(self.err("the answer ends early")),
        }
    }

    fn quoted(&mut self) -> Result<Vec<u8>, NamespaceError> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let Some(&c) = self.s.get(self.at + 1) else {
                        return Err(self.err("the answer ends inside a string"));
                    };
                    out.push(c);
                    self.at += 2;
                }
                Some(b'\r' | b'\n') | None => return Err(self.err("a string without its closing quote")),
                Some(&c) => {
                    out.push(c);
                    self.at += 1;
                }
            }
        }
    }

    fn literal(&mut self) -> Result<Vec<u8>, NamespaceError> {
        let close = self.s[self.at..]
            .iter()
            .position(|&b| b == b'}')
            .ok_or_else(|| self.err("a literal without '}'"))?;
        let digits = &self.s[self.at + 1..self.at + close];
        let n: usize = std::str::from_utf8(digits)
            .ok()
            .filter(|d| !d.is_empty() && d.len() <= 9 && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| self.err("a literal's length is not a number"))?;
        let start = self.at + close + 1;
        if self.s.get(start..start + 2) != Some(b"\r\n") {
            return Err(self.err("a literal's length is not followed by CRLF"));
        }
        let body = self
            .s
            .get(start + 2..start + 2 + n)
            .ok_or_else(|| self.err("the answer ends inside a literal"))?;
        self.at = start + 2 + n;
        Ok(body.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(prefix: &str, sep: char) -> Namespace {
        Namespace {
            prefix: prefix.into(),
            separator: Some(sep),
        }
    }

    #[test]
    fn answers_of_real_servers_parse() {
        let cases: &[(&[u8], Namespaces)] = &[
            (b"((\"\" \"/\")) NIL NIL", Namespaces::without_namespace(Some('/'))),
            (
                b"((\"INBOX.\" \".\")) NIL NIL\r\n",
                Namespaces {
                    personal: vec![ns("INBOX.", '.')],
                    other: vec![],
                    shared: vec![],
                },
            ),
            (
                b"((\"\" \"/\")) ((\"~\" \"/\")) ((\"#shared/\" \"/\")(\"#public/\" \"/\" \"X-PARAM\" (\"A\" \"B\")))",
                Namespaces {
                    personal: vec![ns("", '/')],
                    other: vec![ns("~", '/')],
                    shared: vec![ns("#shared/", '/'), ns("#public/", '/')],
                },
            ),
            (
                b"(({6}\r\nINBOX. \".\")) NIL ((\"Gemeinsam&AOQ-.\" \".\"))",
                Namespaces {
                    personal: vec![ns("INBOX.", '.')],
                    other: vec![],
                    shared: vec![ns("Gemeinsamä.", '.')],
                },
            ),
            (
                b"((\"\" NIL)) nil NIL",
                Namespaces {
                    personal: vec![Namespace::root(None)],
                    other: vec![],
                    shared: vec![],
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(&parse(text).unwrap(), want, "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn broken_answers_are_errors() {
        for text in [
            &b""[..],
            b"((\"\" \"/\"))",
            b"((\"\" \"//\")) NIL NIL",
            b"(\"\" \"/\") NIL NIL",
            b"((\"\")) NIL NIL",
            b"((\"\" \"/\")) NIL NIL junk",
            b"(({99}\r\nab \"/\")) NIL NIL",
            b"((\"abc",
            b"(((((((((((\"\" \"/\"))))))))))) NIL NIL",
        ] {
            assert!(parse(text).is_err(), "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn names_between_server_and_archive() {
        let courier = ns("INBOX.", '.');
        let cases = [
            ("INBOX", "INBOX"),
            ("inbox", "INBOX"),
            ("INBOX.Work.2024", "Work/2024"),
            ("Inbox.Sent", "Sent"),
            ("INBOX.INBOX.genie", "INBOX/genie"),
            ("INBOX.INBOX", "INBOX/INBOX"),
            ("Other", "Other"),
        ];
        for (server, archive) in cases {
            assert_eq!(courier.to_archive(server), archive, "{server}");
        }
        let parts = |s: &str| s.split('/').map(String::from).collect::<Vec<_>>();
        assert_eq!(courier.to_server(&parts("Work/2024")), "INBOX.Work.2024");
        assert_eq!(courier.to_server(&parts("INBOX")), "INBOX");
        assert_eq!(courier.to_server(&parts("INBOX/genie")), "INBOX.INBOX.genie");
        let plain = ns("", '/');
        assert_eq!(plain.to_archive("inbox/genie"), "INBOX/genie");
        assert_eq!(plain.to_server(&parts("Work/2024")), "Work/2024");
        // Every archive name comes back as itself.
        for name in ["Work/2024", "INBOX/genie", "Sent", "a b/c"] {
            for n in [&courier, &plain, &ns("", '.')] {
                assert_eq!(n.to_archive(&n.to_server(&parts(name))), name, "{name} via {n:?}");
            }
        }
    }

    #[test]
    fn a_folder_belongs_to_the_longest_prefix() {
        let all = parse(b"((\"\" \"/\")) ((\"Other Users/\" \"/\")) ((\"Shared/\" \"/\"))").unwrap();
        assert_eq!(all.of("Work").0, NamespaceKind::Personal);
        assert_eq!(all.of("INBOX").0, NamespaceKind::Personal);
        assert_eq!(all.of("Other Users/bob/INBOX").0, NamespaceKind::Other);
        assert_eq!(all.of("Shared/news").0, NamespaceKind::Shared);
        assert_eq!(all.of("Shared").0, NamespaceKind::Personal);
        let courier = parse(b"((\"INBOX.\" \".\")) NIL ((\"#shared.\" \".\"))").unwrap();
        assert_eq!(courier.of("INBOX.Work").0, NamespaceKind::Personal);
        assert_eq!(courier.of("#shared.x").0, NamespaceKind::Shared);
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse(&text);
        }
    }
}
