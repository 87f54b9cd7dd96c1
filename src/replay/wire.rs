//! The bytes a replay sends and the answers it reads, free of I/O: APPEND commands
//! (single or MULTIAPPEND, synchronizing or LITERAL+ literals), flag lists,
//! INTERNALDATE, quoted mailbox names, APPENDUID sets, and the SEARCH that looks for
//! a message on the target when resolving a pending intent.

use async_imap::imap_proto::rfc4315::UidSetMember;

use crate::imap::caps::AppendCaps;
use crate::model::Flags;

/// One message of an APPEND.
#[derive(Clone, Copy, Debug)]
pub struct AppendItem<'a> {
    pub flags: &'a Flags,
    /// Seconds since the Unix epoch; `None` lets the server use the time of arrival.
    pub internal_date: Option<i64>,
    pub raw: &'a [u8],
}

/// A command as pieces to write: after each piece but the last the client waits for
/// the server's `+` (a synchronizing literal follows), unless it was sent LITERAL+.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Command {
    pub pieces: Vec<Vec<u8>>,
}

/// An IMAP quoted string (or a literal-free astring) for a mailbox name already in
/// modified UTF-7.
pub fn quoted(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// `(\Seen \Flagged $Forwarded)`: the flags an APPEND may set. `\Recent` can't be set
/// by a client; keywords that are not IMAP atoms are left out (a server would refuse
/// the whole APPEND over them).
pub fn flag_list(f: &Flags) -> String {
    let names: Vec<String> = f
        .names()
        .into_iter()
        .filter(|n| !n.eq_ignore_ascii_case("\\Recent") && (n.starts_with('\\') || is_atom(n)))
        .collect();
    format!("({})", names.join(" "))
}

fn is_atom(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b))
}

/// `"17-Jul-1996 02:44:25 +0000"` (RFC 3501 date-time, in UTC).
pub fn internal_date(secs: i64) -> Option<String> {
    let t = chrono::DateTime::from_timestamp(secs, 0)?;
    Some(t.format("\"%d-%b-%Y %H:%M:%S +0000\"").to_string())
}

/// Builds one APPEND of `items` (more than one needs MULTIAPPEND) into `mailbox`
/// (modified UTF-7) tagged `tag`.
pub fn append(tag: &str, mailbox: &str, items: &[AppendItem<'_>], caps: &AppendCaps) -> Command {
    let mut cmd = Command::default();
    let mut cur = format!("{tag} APPEND {}", quoted(mailbox)).into_bytes();
    for it in items {
        cur.push(b' ');
        cur.extend_from_slice(flag_list(it.flags).as_bytes());
        if let Some(d) = it.internal_date.and_then(internal_date) {
            cur.push(b' ');
            cur.extend_from_slice(d.as_bytes());
        }
        let len = it.raw.len();
        if caps.non_sync(len) {
            cur.extend_from_slice(format!(" {{{len}+}}\r\n").as_bytes());
        } else {
            cur.extend_from_slice(format!(" {{{len}}}\r\n").as_bytes());
            cmd.pieces.push(std::mem::take(&mut cur));
        }
        cur.extend_from_slice(it.raw);
    }
    cur.extend_from_slice(b"\r\n");
    cmd.pieces.push(cur);
    cmd
}

/// The UIDs of an APPENDUID set, in order (`4:6,9` → 4, 5, 6, 9). `None` when the set
/// is implausibly large (a hostile server), or holds 0.
pub fn expand_uid_set(set: &[UidSetMember], at_most: usize) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for m in set {
        match m {
            UidSetMember::Uid(u) => out.push(*u),
            UidSetMember::UidRange(r) => {
                let (a, b) = (*r.start().min(r.end()), *r.start().max(r.end()));
                if (b - a) as usize >= at_most {
                    return None;
                }
                out.extend(a..=b);
            }
        }
        if out.len() > at_most {
            return None;
        }
    }
    (!out.contains(&0)).then_some(out)
}

/// The bytes as IMAP delivers them: every line ending CRLF. Servers store and
/// return messages this way whatever line endings were appended, so this is what
/// a message on the target is compared with (and its RFC822.SIZE).
pub fn crlf(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if bare_line_feeds(raw).next().is_none() {
        std::borrow::Cow::Borrowed(raw)
    } else {
        std::borrow::Cow::Owned(with_cr(raw))
    }
}

/// [`crlf`] of an owned message: no copy when its line ends are CRLF already.
pub fn into_crlf(raw: Vec<u8>) -> Vec<u8> {
    if bare_line_feeds(&raw).next().is_none() {
        raw
    } else {
        with_cr(&raw)
    }
}

/// Positions of line feeds without a carriage return before them.
fn bare_line_feeds(raw: &[u8]) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr_iter(b'\n', raw).filter(move |&i| i == 0 || raw[i - 1] != b'\r')
}

fn with_cr(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    let mut from = 0;
    for i in bare_line_feeds(raw) {
        out.extend_from_slice(&raw[from..i]);
        out.push(b'\r');
        from = i;
    }
    out.extend_from_slice(&raw[from..]);
    out
}

/// The Message-ID header's value (unfolded, trimmed), if there is one usable in a
/// SEARCH: ASCII graphic characters only.
pub fn message_id(raw: &[u8]) -> Option<String> {
    let end = memchr::memmem::find(raw, b"\r\n\r\n")
        .or_else(|| memchr::memmem::find(raw, b"\n\n"))
        .unwrap_or(raw.len());
    let head = &raw[..end];
    let mut value: Option<Vec<u8>> = None;
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(v) = value.as_mut() {
            if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                v.extend_from_slice(line);
                continue;
            }
            break;
        }
        if line.len() >= 11 && line[..11].eq_ignore_ascii_case(b"message-id:") {
            value = Some(line[11..].to_vec());
        }
    }
    let v = String::from_utf8(value?).ok()?;
    let v = v.trim();
    (!v.is_empty() && v.len() <= 900 && v.bytes().all(|b| b.is_ascii_graphic())).then(|| v.to_string())
}

/// `UID SEARCH` criteria for a message of `size` bytes (as the target counts them)
/// with this Message-ID: candidates, to be fetched and compared byte for byte.
pub fn search_criteria(message_id: Option<&str>, size: u64) -> String {
    let mut c = String::new();
    if let Some(id) = message_id {
        c.push_str(&format!("HEADER Message-ID {} ", quoted(id)));
    }
    c.push_str(&format!("LARGER {} SMALLER {}", size.saturating_sub(1), size + 1));
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn flags(system: u8, keywords: &[&str]) -> Flags {
        Flags {
            system,
            keywords: keywords.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn caps_from_atoms() {
        let c = AppendCaps::from_atoms(["IMAP4rev1", "literal+", "MULTIAPPEND", "UIDPLUS", "APPENDLIMIT=1000"]);
        assert_eq!(
            c,
            AppendCaps {
                literal_plus: true,
                literal_minus: false,
                multiappend: true,
                uidplus: true,
                append_limit: Some(1000)
            }
        );
        let m = AppendCaps::from_atoms(["LITERAL-"]);
        assert!(m.non_sync(4096) && !m.non_sync(4097));
        assert!(!AppendCaps::default().non_sync(1));
    }

    #[test]
    fn append_commands() {
        let f = flags(Flags::SEEN | Flags::FLAGGED, &["$Forwarded", "bad\"kw", "\\Recent"]);
        let item = AppendItem {
            flags: &f,
            internal_date: Some(837_571_465),
            raw: b"a\r\n",
        };
        let plus = AppendCaps {
            literal_plus: true,
            ..Default::default()
        };
        assert_eq!(
            append("R1", "Sent", &[item], &plus).pieces,
            vec![
                b"R1 APPEND \"Sent\" (\\Seen \\Flagged $Forwarded) \"17-Jul-1996 02:44:25 +0000\" {3+}\r\na\r\n\r\n"
                    .to_vec()
            ]
        );
        let none = Flags::default();
        let bare = AppendItem {
            flags: &none,
            internal_date: None,
            raw: b"xy",
        };
        // Synchronizing: the command is cut after each literal's announcement.
        assert_eq!(
            append("R2", "a\"b", &[bare, bare], &AppendCaps::default()).pieces,
            vec![
                b"R2 APPEND \"a\\\"b\" () {2}\r\n".to_vec(),
                b"xy () {2}\r\n".to_vec(),
                b"xy\r\n".to_vec()
            ]
        );
    }

    #[test]
    fn uid_sets() {
        let set = [UidSetMember::UidRange(4..=6), UidSetMember::Uid(9)];
        assert_eq!(expand_uid_set(&set, 10), Some(vec![4, 5, 6, 9]));
        assert_eq!(expand_uid_set(&set, 3), None, "more than expected");
        assert_eq!(expand_uid_set(&[UidSetMember::UidRange(1..=u32::MAX)], 10), None);
        assert_eq!(expand_uid_set(&[UidSetMember::Uid(0)], 10), None);
    }

    #[test]
    fn message_ids_and_criteria() {
        assert_eq!(
            message_id(b"Subject: x\r\nMessage-ID:\r\n <a@b>\r\n\r\nMessage-ID: <body@x>\r\n").as_deref(),
            Some("<a@b>")
        );
        assert_eq!(message_id(b"message-id: <c@d>\n\nbody").as_deref(), Some("<c@d>"));
        assert_eq!(message_id(b"Subject: none\r\n\r\nMessage-ID: <body@x>\r\n"), None);
        assert_eq!(message_id("Message-ID: <ü@x>\r\n\r\n".as_bytes()), None);
        assert_eq!(
            search_criteria(Some("<a@b>"), 100),
            "HEADER Message-ID \"<a@b>\" LARGER 99 SMALLER 101"
        );
        assert_eq!(search_criteria(None, 5), "LARGER 4 SMALLER 6");
    }

    #[test]
    fn crlf_normalises_bare_line_feeds_only() {
        assert_eq!(&*crlf(b"a\r\nb\nc\n"), b"a\r\nb\r\nc\r\n");
        assert!(matches!(crlf(b"a\r\nb\r\n"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(&*crlf(b"\n"), b"\r\n");
        assert_eq!(into_crlf(b"a\nb".to_vec()), b"a\r\nb");
        assert_eq!(into_crlf(b"a\r\n".to_vec()), b"a\r\n");
    }

    proptest! {
        #[test]
        fn crlf_is_idempotent_and_only_adds_cr(raw in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a')], 0..40)) {
            let once = crlf(&raw).into_owned();
            prop_assert_eq!(&*crlf(&once), &once[..]);
            let without_cr: Vec<u8> = once.iter().copied().filter(|&b| b != b'\r').collect();
            let orig_without_cr: Vec<u8> = raw.iter().copied().filter(|&b| b != b'\r').collect();
            prop_assert_eq!(without_cr, orig_without_cr);
        }

        #[test]
        fn quoted_round_trips(s in "[ -~]{0,30}") {
            let q = quoted(&s);
            let inner = &q[1..q.len() - 1];
            let mut un = String::new();
            let mut esc = false;
            for c in inner.chars() {
                if !esc && c == '\\' { esc = true; continue; }
                esc = false;
                un.push(c);
            }
            prop_assert_eq!(un, s);
        }
    }
}
