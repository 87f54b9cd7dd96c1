//! RocksDB key layouts, one function per column family (declared in
//! `schemas/store-v3.toml`, checked by `tests/schema_store.rs`).
//!
//! Keys sort the way we scan them: integers are big-endian; account and mailbox
//! names are NUL-terminated (names containing NUL are refused by the caller), so a
//! prefix of `account\0` or `account\0mailbox\0` selects one account or folder.

use crate::model::{Hash32, SourceKey};
use crate::records::PayloadKind;

/// Column family names, in creation order (format version 1 had the first nine).
pub const CF_META: &str = "meta";
pub const CF_MESSAGES: &str = "messages";
pub const CF_PARTS: &str = "parts";
pub const CF_BLOBS: &str = "blobs";
pub const CF_PLACEMENTS: &str = "placements";
pub const CF_PLACEMENTS_BY_MESSAGE: &str = "placements_by_message";
pub const CF_CURSORS: &str = "cursors";
pub const CF_INGEST_LOG: &str = "ingest_log";
pub const CF_DICTIONARIES: &str = "dictionaries";
/// Format version 2: what replays into other servers did (issue 6).
pub const CF_REPLAY_LEDGER: &str = "replay_ledger";

/// Format version 3: the packs the archive references, and where each skeleton
/// and part payload is in them (the `blobs` column family is gone).
pub const CF_PACKS: &str = "packs";
pub const CF_PACK_INDEX: &str = "pack_index";

/// Format version 4: retention policies and legal holds, the hash-chained change
/// log and its signed checkpoints.
pub const CF_RULES: &str = "rules";
pub const CF_CHANGE_LOG: &str = "change_log";
pub const CF_CHECKPOINTS: &str = "checkpoints";
/// Format 5: user tags (module `crate::tags`), by message and by tag.
pub const CF_TAGS: &str = "tags";

/// The column families of format version 5, in creation order.
pub const ALL_CFS: [&str; 15] = [
    CF_META,
    CF_MESSAGES,
    CF_PARTS,
    CF_PLACEMENTS,
    CF_PLACEMENTS_BY_MESSAGE,
    CF_CURSORS,
    CF_INGEST_LOG,
    CF_DICTIONARIES,
    CF_REPLAY_LEDGER,
    CF_PACKS,
    CF_PACK_INDEX,
    CF_RULES,
    CF_CHANGE_LOG,
    CF_CHECKPOINTS,
    CF_TAGS,
];

/// The column families of format version 4: version 5's without the tags.
pub const V4_CFS: &[&str] = ALL_CFS.split_at(14).0;

/// The column families of format version 3: version 4's without the compliance
/// records.
pub const V3_CFS: &[&str] = ALL_CFS.split_at(11).0;

/// The column families of format version 2: version 1's and the replay ledger.
pub const V2_CFS: &[&str] = &[
    CF_META,
    CF_MESSAGES,
    CF_PARTS,
    CF_BLOBS,
    CF_PLACEMENTS,
    CF_PLACEMENTS_BY_MESSAGE,
    CF_CURSORS,
    CF_INGEST_LOG,
    CF_DICTIONARIES,
    CF_REPLAY_LEDGER,
];

/// The column families of format version 1 (version 2's without the ledger).
pub const V1_CFS: &[&str] = V2_CFS.split_at(9).0;

/// Every column family any readable version has.
pub fn is_known_cf(name: &str) -> bool {
    name == "default" || name == CF_BLOBS || ALL_CFS.contains(&name)
}

/// `rules`: the kind byte (`r` retention policy, `h` legal hold), then the name.
pub fn rule(kind: crate::evidence::RuleKind, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(kind.byte());
    k.extend_from_slice(name.as_bytes());
    k
}

/// `tags`, a message's tags: `m` and the message id.
pub fn tags_of(message: &Hash32) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(b'm');
    k.extend_from_slice(&message.0);
    k
}

/// `tags`, the messages with a tag: `t`, the tag, NUL, and the message id.
pub fn tagged(tag: &str, message: &Hash32) -> Vec<u8> {
    let mut k = tagged_prefix(tag);
    k.extend_from_slice(&message.0);
    k
}

/// The start of every [`tagged`] key of `tag`.
pub fn tagged_prefix(tag: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + tag.len() + 32);
    k.push(b't');
    k.extend_from_slice(tag.as_bytes());
    k.push(0);
    k
}

/// `change_log`: the record's sequence number (u64 BE, from 0); `checkpoints`: the
/// number of records a checkpoint covers (u64 BE).
pub fn log_seq(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// `packs`: the pack number (u64 BE), in the order packs were written.
pub fn pack(number: u64) -> [u8; 8] {
    number.to_be_bytes()
}

/// `meta` keys.
pub const META_FORMAT_VERSION: &[u8] = b"format_version";
pub const META_COUNTERS: &[u8] = b"counters";
/// Format 3: the number the next pack gets (u64 BE).
pub const META_NEXT_PACK: &[u8] = b"next_pack";
/// Format 4: the Ed25519 public key that signs the change log's checkpoints.
pub const META_SIGNING_KEY: &[u8] = b"signing_public_key";

/// Blob kinds: the first byte of a `blobs` key.
pub const BLOB_SKELETON: u8 = b's';
pub const BLOB_PART: u8 = b'p';

/// `blobs` (formats 1 and 2) and `pack_index` (format 3): kind byte + 32-byte hash
/// (message id for skeletons, part id for parts).
pub fn blob(kind: PayloadKind, id: &Hash32) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(kind.byte());
    k.extend_from_slice(&id.0);
    k
}

/// `messages` and `parts`: the 32-byte hash itself.
pub fn by_hash(id: &Hash32) -> Vec<u8> {
    id.0.to_vec()
}

/// Prefix of every placement of one account (and optionally one mailbox).
pub fn placement_prefix(account: &str, mailbox: Option<&str>) -> Vec<u8> {
    let mut k = Vec::with_capacity(account.len() + 2 + mailbox.map_or(0, str::len));
    k.extend_from_slice(account.as_bytes());
    k.push(0);
    if let Some(m) = mailbox {
        k.extend_from_slice(m.as_bytes());
        k.push(0);
    }
    k
}

/// Source-kind tag bytes inside a placement key.
pub const SRC_LOCAL: u8 = b'L';
pub const SRC_IMAP: u8 = b'I';
pub const SRC_POP3: u8 = b'P';

/// `placements`: `account\0mailbox\0` + source tag + identity:
/// `L` message id (32) + occurrence (u32 BE); `I` uidvalidity (u32 BE) + uid (u32 BE);
/// `P` UIDL bytes.
pub fn placement(account: &str, mailbox: &str, source: &SourceKey, id: &Hash32) -> Vec<u8> {
    let mut k = placement_prefix(account, Some(mailbox));
    push_source(&mut k, source, id);
    k
}

/// Appends a source's tag and identity, as a placement key spells them.
fn push_source(k: &mut Vec<u8>, source: &SourceKey, id: &Hash32) {
    match source {
        SourceKey::Local { occurrence } => {
            k.push(SRC_LOCAL);
            k.extend_from_slice(&id.0);
            k.extend_from_slice(&occurrence.to_be_bytes());
        }
        SourceKey::Imap { uidvalidity, uid } => {
            k.push(SRC_IMAP);
            k.extend_from_slice(&uidvalidity.to_be_bytes());
            k.extend_from_slice(&uid.to_be_bytes());
        }
        SourceKey::Pop3 { uidl } => {
            k.push(SRC_POP3);
            k.extend_from_slice(uidl.as_bytes());
        }
    }
}

/// A source's tag and identity read back (`None` if malformed).
fn parse_source(src: &[u8]) -> Option<SourceKey> {
    let (&tag, body) = src.split_first()?;
    Some(match tag {
        SRC_LOCAL if body.len() == 36 => SourceKey::Local {
            occurrence: u32::from_be_bytes(body[32..36].try_into().ok()?),
        },
        SRC_IMAP if body.len() == 8 => SourceKey::Imap {
            uidvalidity: u32::from_be_bytes(body[0..4].try_into().ok()?),
            uid: u32::from_be_bytes(body[4..8].try_into().ok()?),
        },
        SRC_POP3 => SourceKey::Pop3 {
            uidl: std::str::from_utf8(body).ok()?.to_string(),
        },
        _ => return None,
    })
}

/// A placement key split back into its parts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PlacementKeyParts {
    pub account: String,
    pub mailbox: String,
    pub source: SourceKey,
}

/// Parses a `placements` key; `None` if it is not of the v1 layout.
pub fn parse_placement(key: &[u8]) -> Option<PlacementKeyParts> {
    let a_end = memchr::memchr(0, key)?;
    let rest = &key[a_end + 1..];
    let m_end = memchr::memchr(0, rest)?;
    let account = std::str::from_utf8(&key[..a_end]).ok()?.to_string();
    let mailbox = std::str::from_utf8(&rest[..m_end]).ok()?.to_string();
    let source = parse_source(&rest[m_end + 1..])?;
    Some(PlacementKeyParts {
        account,
        mailbox,
        source,
    })
}

/// `placements_by_message`: message id (32) + the full placement key.
pub fn placement_by_message(id: &Hash32, placement_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(32 + placement_key.len());
    k.extend_from_slice(&id.0);
    k.extend_from_slice(placement_key);
    k
}

/// `cursors`: `account\0mailbox\0` (same prefix shape as placements).
pub fn cursor(account: &str, mailbox: &str) -> Vec<u8> {
    placement_prefix(account, Some(mailbox))
}

/// Also in `cursors`: `account\0\0gm` + X-GM-MSGID (u64 BE) → message id (32 bytes):
/// Gmail messages already archived, so another label's folder need not download them
/// again. The empty mailbox part keeps these apart from folder cursors.
pub fn gmail_message(account: &str, gm_msgid: u64) -> Vec<u8> {
    let mut k = placement_prefix(account, None);
    k.extend_from_slice(b"\0gm");
    k.extend_from_slice(&gm_msgid.to_be_bytes());
    k
}

/// Also in `cursors`: `account\0\0big` + mailbox + `\0` + source (as in a
/// placement key: `I` uidvalidity + uid, `P` UIDL) → [`crate::records::TooLargeRecord`]:
/// a message left unarchived for being over the maximum message size, so it is not
/// fetched again (nor taken for one the server hid below the cursor).
pub fn too_large(account: &str, mailbox: &str, source: &SourceKey) -> Vec<u8> {
    let mut k = too_large_prefix(account, mailbox);
    // Network sources only: a local message has no identity but its bytes.
    push_source(&mut k, source, &Hash32([0; 32]));
    k
}

/// Prefix of the too-large records of one mailbox.
pub fn too_large_prefix(account: &str, mailbox: &str) -> Vec<u8> {
    let mut k = placement_prefix(account, None);
    k.extend_from_slice(b"\0big");
    k.extend_from_slice(mailbox.as_bytes());
    k.push(0);
    k
}

/// The source of a too-large key, after its prefix.
pub fn parse_too_large_source(rest: &[u8]) -> Option<SourceKey> {
    parse_source(rest)
}

/// `ingest_log`: sequence number, u64 big-endian.
pub fn ingest_seq(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// `dictionaries`: dictionary id, u32 big-endian.
pub fn dictionary(id: u32) -> [u8; 4] {
    id.to_be_bytes()
}

/// Prefix of one target mailbox's ledger: `target\0mailbox\0`. `target` names the
/// account replayed into (`user@host:port`).
pub fn ledger_prefix(target: &str, mailbox: &str) -> Vec<u8> {
    placement_prefix(target, Some(mailbox))
}

/// `replay_ledger`: `target\0mailbox\0` + message id (32) + copy (u32 BE).
pub fn ledger(target: &str, mailbox: &str, id: &Hash32, copy: u32) -> Vec<u8> {
    let mut k = ledger_prefix(target, mailbox);
    k.extend_from_slice(&id.0);
    k.extend_from_slice(&copy.to_be_bytes());
    k
}

/// The message id and copy of a ledger key under `prefix`.
pub fn parse_ledger(prefix: &[u8], key: &[u8]) -> Option<(Hash32, u32)> {
    let rest = key.strip_prefix(prefix)?;
    if rest.len() != 36 {
        return None;
    }
    let id = Hash32(rest[..32].try_into().ok()?);
    Some((id, u32::from_be_bytes(rest[32..].try_into().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn placement_key_roundtrip(account in "[^\0]{0,20}", mailbox in "[^\0]{0,20}",
                                   uv in any::<u32>(), uid in any::<u32>(), occ in any::<u32>(),
                                   uidl in "[!-~]{1,70}") {
            let id = Hash32::of(b"x");
            for source in [SourceKey::Imap { uidvalidity: uv, uid }, SourceKey::Local { occurrence: occ }, SourceKey::Pop3 { uidl: uidl.clone() }] {
                let k = placement(&account, &mailbox, &source, &id);
                let p = parse_placement(&k).unwrap();
                prop_assert_eq!(&p.account, &account);
                prop_assert_eq!(&p.mailbox, &mailbox);
                prop_assert_eq!(p.source, source);
                prop_assert!(k.starts_with(&placement_prefix(&account, Some(&mailbox))));
            }
        }

        #[test]
        fn ledger_key_roundtrip(target in "[^\0]{1,20}", mailbox in "[^\0]{1,20}", copy in any::<u32>()) {
            let id = Hash32::of(target.as_bytes());
            let k = ledger(&target, &mailbox, &id, copy);
            prop_assert_eq!(parse_ledger(&ledger_prefix(&target, &mailbox), &k), Some((id, copy)));
        }

        #[test]
        fn parse_placement_never_panics(key in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse_placement(&key);
        }
    }

    #[test]
    fn imap_keys_sort_by_uid() {
        let id = Hash32::of(b"x");
        let a = placement("a", "INBOX", &SourceKey::Imap { uidvalidity: 1, uid: 9 }, &id);
        let b = placement(
            "a",
            "INBOX",
            &SourceKey::Imap {
                uidvalidity: 1,
                uid: 10,
            },
            &id,
        );
        assert!(a < b);
    }
}
