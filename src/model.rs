//! Plain data shared by every layer: message ids, flags, where a message was found.
//!
//! Pure: no I/O. A message *is* its raw bytes; its id is BLAKE3 of those bytes
//! (keyed BLAKE3 in an encrypted archive: [`IdHasher`]).

use std::fmt;

/// BLAKE3 of a message's raw bytes (or of a part's canonical payload).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash32(pub [u8; 32]);

/// The id of a message: BLAKE3 of its raw bytes exactly as received.
pub type MessageId = Hash32;
/// The id of a stored MIME leaf body: BLAKE3 of its canonical payload.
pub type PartId = Hash32;

impl Hash32 {
    /// BLAKE3 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Hash32(*blake3::hash(bytes).as_bytes())
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        bytes_to_hex(&self.0)
    }

    /// The first `n` hex characters (for tables and `show`).
    pub fn short(&self, n: usize) -> String {
        let mut s = self.to_hex();
        s.truncate(n.min(64));
        s
    }

    /// Parses a full 64-character hex id.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = hex_to_bytes(s)?;
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(Hash32(arr))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// How an archive makes message and part ids: plain BLAKE3, or BLAKE3 keyed with
/// the id key of an encrypted archive (so that ids and dedup reveal nothing about
/// content to someone without the key). Every id the archive stores or compares is
/// made by the archive's own `IdHasher`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct IdHasher {
    key: Option<[u8; 32]>,
}

impl std::fmt::Debug for IdHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.key.is_some() {
            "IdHasher::Keyed(…)"
        } else {
            "IdHasher::Plain"
        })
    }
}

impl IdHasher {
    /// Plain BLAKE3 (an archive without encryption).
    pub fn plain() -> IdHasher {
        IdHasher { key: None }
    }

    /// BLAKE3 keyed with `key`.
    pub fn keyed(key: [u8; 32]) -> IdHasher {
        IdHasher { key: Some(key) }
    }

    pub fn is_keyed(&self) -> bool {
        self.key.is_some()
    }

    /// The id of `bytes`.
    pub fn id(&self, bytes: &[u8]) -> Hash32 {
        match &self.key {
            None => Hash32::of(bytes),
            Some(k) => Hash32(*blake3::keyed_hash(k, bytes).as_bytes()),
        }
    }

    /// A streaming hasher that finishes to the same id as [`IdHasher::id`].
    pub fn hasher(&self) -> blake3::Hasher {
        match &self.key {
            None => blake3::Hasher::new(),
            Some(k) => blake3::Hasher::new_keyed(k),
        }
    }

    /// A message as a source delivers it, with its id made by this hasher.
    pub fn message(&self, raw: Vec<u8>, placements: Vec<PlacementSpec>) -> RawMessage {
        RawMessage {
            id: self.id(&raw),
            raw,
            placements,
        }
    }
}

/// Lower-case hex of `bytes`.
pub fn bytes_to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(HEX[(b >> 4) as usize]));
        s.push(char::from(HEX[(b & 15) as usize]));
    }
    s
}

/// Decodes an even-length hex string (either case).
pub fn hex_to_bytes(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", self.short(16))
    }
}

/// IMAP system flags as a bit set, plus keywords (`$Forwarded`, `Junk`, …).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub system: u8,
    pub keywords: Vec<String>,
}

impl Flags {
    pub const SEEN: u8 = 1;
    pub const ANSWERED: u8 = 2;
    pub const FLAGGED: u8 = 4;
    pub const DELETED: u8 = 8;
    pub const DRAFT: u8 = 16;

    const NAMES: [(u8, &'static str); 5] = [
        (Self::SEEN, "\\Seen"),
        (Self::ANSWERED, "\\Answered"),
        (Self::FLAGGED, "\\Flagged"),
        (Self::DELETED, "\\Deleted"),
        (Self::DRAFT, "\\Draft"),
    ];

    /// Flags from a maildir info suffix (`2,FRS`): D F P R S T; unknown letters ignored.
    pub fn from_maildir_info(info: &str) -> Flags {
        let mut f = Flags::default();
        let Some(letters) = info.strip_prefix("2,") else {
            return f;
        };
        for c in letters.chars() {
            match c {
                'D' => f.system |= Self::DRAFT,
                'F' => f.system |= Self::FLAGGED,
                'R' => f.system |= Self::ANSWERED,
                'S' => f.system |= Self::SEEN,
                'T' => f.system |= Self::DELETED,
                'P' => f.add_keyword("$Forwarded"),
                _ => {}
            }
        }
        f
    }

    /// The maildir info letters for these flags, in the required ASCII order.
    pub fn to_maildir_letters(&self) -> String {
        let mut s = String::new();
        if self.system & Self::DRAFT != 0 {
            s.push('D');
        }
        if self.system & Self::FLAGGED != 0 {
            s.push('F');
        }
        if self.keywords.iter().any(|k| k.eq_ignore_ascii_case("$Forwarded")) {
            s.push('P');
        }
        if self.system & Self::ANSWERED != 0 {
            s.push('R');
        }
        if self.system & Self::SEEN != 0 {
            s.push('S');
        }
        if self.system & Self::DELETED != 0 {
            s.push('T');
        }
        s
    }

    /// Adds a keyword once (case-insensitive, as IMAP compares them).
    pub fn add_keyword(&mut self, k: &str) {
        if !self.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
            self.keywords.push(k.to_string());
        }
    }

    /// IMAP spelling of every flag, system flags first.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = Self::NAMES
            .iter()
            .filter(|(bit, _)| self.system & bit != 0)
            .map(|(_, n)| (*n).to_string())
            .collect();
        v.extend(self.keywords.iter().cloned());
        v
    }
}

/// Where a message was found, unique within one (account, mailbox).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SourceKey {
    /// A local import: the message's id and its occurrence number among identical
    /// messages in the same folder (so re-importing adds nothing, and two identical
    /// copies in one folder stay two placements).
    Local { occurrence: u32 },
    /// IMAP: the folder's UIDVALIDITY and the message UID.
    Imap { uidvalidity: u32, uid: u32 },
    /// POP3: the server's UIDL.
    Pop3 { uidl: String },
}

/// One place a message lives: account, mailbox, identity there, flags and dates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementSpec {
    pub account: String,
    pub mailbox: String,
    pub source: SourceKey,
    pub flags: Flags,
    /// Seconds since the Unix epoch (IMAP INTERNALDATE, mbox `From ` date, file mtime).
    pub internal_date: Option<i64>,
}

/// A message as a source delivers it: raw bytes plus where it was found.
#[derive(Clone, Debug)]
pub struct RawMessage {
    pub id: MessageId,
    pub raw: Vec<u8>,
    pub placements: Vec<PlacementSpec>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_ids_differ_from_plain_and_by_key_and_stream_to_the_same_value() {
        let plain = IdHasher::plain();
        let a = IdHasher::keyed([1; 32]);
        let b = IdHasher::keyed([2; 32]);
        assert_eq!(plain.id(b"m"), Hash32::of(b"m"));
        assert_ne!(a.id(b"m"), plain.id(b"m"));
        assert_ne!(a.id(b"m"), b.id(b"m"));
        let mut h = a.hasher();
        h.update(b"m");
        assert_eq!(Hash32(*h.finalize().as_bytes()), a.id(b"m"));
        assert_eq!(format!("{a:?}"), "IdHasher::Keyed(…)", "the key is never printed");
    }

    #[test]
    fn hex_roundtrip() {
        let h = Hash32::of(b"abc");
        assert_eq!(Hash32::from_hex(&h.to_hex()), Some(h));
        assert_eq!(
            h.to_hex(),
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
        assert_eq!(Hash32::from_hex("zz"), None);
    }

    #[test]
    fn maildir_flags_roundtrip() {
        for (info, letters) in [("2,FRS", "FRS"), ("2,", ""), ("2,DFPRST", "DFPRST"), ("1,xyz", "")] {
            assert_eq!(Flags::from_maildir_info(info).to_maildir_letters(), letters);
        }
        let f = Flags::from_maildir_info("2,SP");
        assert_eq!(f.names(), vec!["\\Seen".to_string(), "$Forwarded".to_string()]);
    }
}
