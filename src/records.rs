//! Value records (declared in `schemas/store-v2.toml`; all but the replay ledger's
//! are unchanged since format version 1).
//!
//! Every record starts with a record-version byte so a later format can read old
//! values; decoding checks lengths and refuses unknown record versions.

use crate::codec::{Dec, DecodeError, Enc};
use crate::mime::{B64Layout, Splice, Transform};
use crate::model::{Flags, Hash32};

pub const RECORD_V1: u8 = 1;

fn check_version(d: &mut Dec<'_>) -> Result<(), DecodeError> {
    let v = d.u8()?;
    if v == RECORD_V1 {
        Ok(())
    } else {
        Err(d.err(format!("unknown record version {v}")))
    }
}

/// Blob codecs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// Stored as is (already-compressed payloads).
    Stored = 0,
    /// zstd frame, no dictionary.
    Zstd = 1,
    /// zstd frame with the archive dictionary `dict_id`.
    ZstdDict = 2,
}

impl Codec {
    fn decode(d: &mut Dec<'_>) -> Result<Codec, DecodeError> {
        match d.u8()? {
            0 => Ok(Codec::Stored),
            1 => Ok(Codec::Zstd),
            2 => Ok(Codec::ZstdDict),
            c => Err(d.err(format!("unknown codec {c}"))),
        }
    }
}

/// What a stored payload is: a message's skeleton or a (deduplicated) part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    Skeleton,
    Part,
}

impl PayloadKind {
    /// The byte that tags the kind in keys and pack trailers.
    pub fn byte(self) -> u8 {
        match self {
            PayloadKind::Skeleton => crate::keys::BLOB_SKELETON,
            PayloadKind::Part => crate::keys::BLOB_PART,
        }
    }

    pub fn from_byte(b: u8) -> Option<PayloadKind> {
        match b {
            crate::keys::BLOB_SKELETON => Some(PayloadKind::Skeleton),
            crate::keys::BLOB_PART => Some(PayloadKind::Part),
            _ => None,
        }
    }

    /// For messages: `skeleton` or `part`.
    pub fn name(self) -> &'static str {
        match self {
            PayloadKind::Skeleton => "skeleton",
            PayloadKind::Part => "part",
        }
    }
}

/// Where a skeleton or part payload is (format 3, `pack_index`): bytes
/// `offset..offset + len` of the decoded frame at `frame_offset..+frame_len` of pack
/// `pack`. `group` orders similar mail together when packs are rewritten.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: u64,
    pub frame_offset: u64,
    pub frame_len: u32,
    pub codec: Codec,
    pub dict_id: u32,
    pub offset: u64,
    pub len: u64,
    pub group: u64,
}

impl BlobLocation {
    pub const ENCODED_LEN: usize = 50;
    /// Bytes before the frame fields: the record version and the pack number.
    pub const FRAME_FIELDS_AT: usize = 9;

    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc(Vec::with_capacity(Self::ENCODED_LEN));
        e.u8(RECORD_V1)
            .u64(self.pack)
            .u64(self.frame_offset)
            .u32(self.frame_len)
            .u8(self.codec as u8)
            .u32(self.dict_id)
            .u64(self.offset)
            .u64(self.len)
            .u64(self.group);
        e.finish()
    }

    pub fn decode(v: &[u8]) -> Result<BlobLocation, DecodeError> {
        let mut d = Dec::new(v, "blob location");
        check_version(&mut d)?;
        let r = BlobLocation {
            pack: d.u64()?,
            frame_offset: d.u64()?,
            frame_len: d.u32()?,
            codec: Codec::decode(&mut d)?,
            dict_id: d.u32()?,
            offset: d.u64()?,
            len: d.u64()?,
            group: d.u64()?,
        };
        d.end()?;
        Ok(r)
    }

    /// The frame this location is in, as the frame cache names it.
    pub fn frame(&self) -> (u64, u64) {
        (self.pack, self.frame_offset)
    }
}

/// A pack the archive references (format 3, `packs`, keyed by pack number).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackRecord {
    /// The BLAKE3 of the pack's bytes: its name in the blob store.
    pub name: Hash32,
    pub size: u64,
    pub entries: u32,
    /// The zstd level its frames were written at (compaction raises it).
    pub level: u8,
    pub created: i64,
}

impl PackRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc(Vec::with_capacity(58));
        e.u8(RECORD_V1)
            .raw(&self.name.0)
            .u64(self.size)
            .u32(self.entries)
            .u8(self.level)
            .i64(self.created);
        e.finish()
    }

    pub fn decode(v: &[u8]) -> Result<PackRecord, DecodeError> {
        let mut d = Dec::new(v, "pack record");
        check_version(&mut d)?;
        let r = PackRecord {
            name: Hash32(d.hash()?),
            size: d.u64()?,
            entries: d.u32()?,
            level: d.u8()?,
            created: d.i64()?,
        };
        d.end()?;
        Ok(r)
    }
}

/// A `blobs` value: `u8 version, u8 codec, u32 dict_id, u64 payload_len, data…`.
#[derive(Debug, PartialEq, Eq)]
pub struct BlobHeader {
    pub codec: Codec,
    pub dict_id: u32,
    pub payload_len: u64,
}

pub const BLOB_HEADER_LEN: usize = 14;

impl BlobHeader {
    pub fn encode(&self, data: &[u8]) -> Vec<u8> {
        let mut e = Enc(Vec::with_capacity(BLOB_HEADER_LEN + data.len()));
        e.u8(RECORD_V1)
            .u8(self.codec as u8)
            .u32(self.dict_id)
            .u64(self.payload_len)
            .raw(data);
        e.finish()
    }

    /// Splits a stored blob into header and compressed data.
    pub fn decode(value: &[u8]) -> Result<(BlobHeader, &[u8]), DecodeError> {
        let mut d = Dec::new(value, "blob");
        check_version(&mut d)?;
        let codec = Codec::decode(&mut d)?;
        let dict_id = d.u32()?;
        let payload_len = d.u64()?;
        Ok((
            BlobHeader {
                codec,
                dict_id,
                payload_len,
            },
            d.rest(),
        ))
    }
}

/// One stored part of a message: where it goes and which part blob it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartRef {
    pub splice: Splice,
    pub part: Hash32,
}

/// A `messages` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRecord {
    pub raw_len: u64,
    /// Ingest sequence number at which the message was first stored.
    pub seq: u64,
    pub first_seen: i64,
    pub parts: Vec<PartRef>,
}

const TRANSFORM_IDENTITY: u8 = 0;
const TRANSFORM_BASE64: u8 = 1;

impl MessageRecord {
    /// `u8 version, u64 raw_len, u64 seq, i64 first_seen, u32 n, n × part ref`;
    /// part ref = `u64 offset, u64 len, [32] part id, u8 transform, u16 line_len,
    /// u8 eol bits (1 = CRLF, 2 = final line break)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc(Vec::with_capacity(29 + self.parts.len() * 52));
        e.u8(RECORD_V1)
            .u64(self.raw_len)
            .u64(self.seq)
            .i64(self.first_seen)
            .u32(self.parts.len() as u32);
        for p in &self.parts {
            e.u64(p.splice.offset).u64(p.splice.len).raw(&p.part.0);
            match p.splice.transform {
                Transform::Identity => e.u8(TRANSFORM_IDENTITY).u16(0).u8(0),
                Transform::Base64(l) => e
                    .u8(TRANSFORM_BASE64)
                    .u16(l.line_len)
                    .u8(u8::from(l.crlf) | (u8::from(l.final_eol) << 1)),
            };
        }
        e.finish()
    }

    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Dec::new(value, "message record");
        check_version(&mut d)?;
        let raw_len = d.u64()?;
        let seq = d.u64()?;
        let first_seen = d.i64()?;
        let n = d.u32()? as usize;
        if n > value.len() / 52 + 1 {
            return Err(d.err(format!("claims {n} parts in {} bytes", value.len())));
        }
        let mut parts = Vec::with_capacity(n);
        for _ in 0..n {
            let offset = d.u64()?;
            let len = d.u64()?;
            let part = Hash32(d.hash()?);
            let t = d.u8()?;
            let line_len = d.u16()?;
            let bits = d.u8()?;
            let transform = match t {
                TRANSFORM_IDENTITY => Transform::Identity,
                TRANSFORM_BASE64 => Transform::Base64(B64Layout {
                    line_len,
                    crlf: bits & 1 != 0,
                    final_eol: bits & 2 != 0,
                }),
                other => return Err(d.err(format!("unknown transform {other}"))),
            };
            parts.push(PartRef {
                splice: Splice { offset, len, transform },
                part,
            });
        }
        d.end()?;
        Ok(MessageRecord {
            raw_len,
            seq,
            first_seen,
            parts,
        })
    }
}

/// A `parts` value: `u8 version, u64 payload_len, i64 first_seen`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartRecord {
    pub payload_len: u64,
    pub first_seen: i64,
}

impl PartRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        e.u8(RECORD_V1).u64(self.payload_len).i64(self.first_seen);
        e.finish()
    }
    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Dec::new(value, "part record");
        check_version(&mut d)?;
        let r = PartRecord {
            payload_len: d.u64()?,
            first_seen: d.i64()?,
        };
        d.end()?;
        Ok(r)
    }
}

/// A `placements` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementRecord {
    pub message: Hash32,
    pub flags: Flags,
    pub internal_date: Option<i64>,
    pub first_seen: i64,
    pub last_seen: i64,
    /// When the source no longer had it (expunged, deleted on the server); the
    /// archive keeps the message regardless.
    pub deleted_at: Option<i64>,
}

impl PlacementRecord {
    /// `u8 version, [32] message, u8 system flags, u32 n, n × str keyword,
    /// u8 has_date, i64 internal_date, i64 first_seen, i64 last_seen, u8 deleted,
    /// i64 deleted_at`.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        e.u8(RECORD_V1)
            .raw(&self.message.0)
            .u8(self.flags.system)
            .u32(self.flags.keywords.len() as u32);
        for k in &self.flags.keywords {
            e.str(k);
        }
        e.u8(u8::from(self.internal_date.is_some()))
            .i64(self.internal_date.unwrap_or(0))
            .i64(self.first_seen)
            .i64(self.last_seen)
            .u8(u8::from(self.deleted_at.is_some()))
            .i64(self.deleted_at.unwrap_or(0));
        e.finish()
    }

    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Dec::new(value, "placement record");
        check_version(&mut d)?;
        let message = Hash32(d.hash()?);
        let system = d.u8()?;
        let n = d.u32()? as usize;
        if n > value.len() {
            return Err(d.err(format!("claims {n} keywords")));
        }
        let mut keywords = Vec::with_capacity(n);
        for _ in 0..n {
            keywords.push(d.string()?);
        }
        let has_date = d.u8()? != 0;
        let date = d.i64()?;
        let first_seen = d.i64()?;
        let last_seen = d.i64()?;
        let deleted = d.u8()? != 0;
        let deleted_at = d.i64()?;
        d.end()?;
        Ok(PlacementRecord {
            message,
            flags: Flags { system, keywords },
            internal_date: has_date.then_some(date),
            first_seen,
            last_seen,
            deleted_at: deleted.then_some(deleted_at),
        })
    }
}

/// A `cursors` value: how far a source folder has been archived.
/// `u8 version, u32 uidvalidity, u32 highest_uid, u64 highest_modseq, i64 updated_at,
/// str remote_name, str special_use`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CursorRecord {
    pub uidvalidity: u32,
    pub highest_uid: u32,
    pub highest_modseq: u64,
    pub updated_at: i64,
    /// The folder's name on the server, as the server spells it (modified UTF-7).
    pub remote_name: String,
    /// Its SPECIAL-USE role (`\Sent`, `\Trash`, …), empty when it has none.
    pub special_use: String,
}

impl CursorRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        e.u8(RECORD_V1)
            .u32(self.uidvalidity)
            .u32(self.highest_uid)
            .u64(self.highest_modseq)
            .i64(self.updated_at)
            .str(&self.remote_name)
            .str(&self.special_use);
        e.finish()
    }
    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Dec::new(value, "cursor record");
        check_version(&mut d)?;
        let r = CursorRecord {
            uidvalidity: d.u32()?,
            highest_uid: d.u32()?,
            highest_modseq: d.u64()?,
            updated_at: d.i64()?,
            remote_name: d.string()?,
            special_use: d.string()?,
        };
        d.end()?;
        Ok(r)
    }
}

/// A too-large record in `cursors` (see [`crate::keys::too_large`]): `u8 version,
/// u64 bytes, u8 seen (0 announced, 1 received), i64 at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLargeRecord {
    pub bytes: u64,
    /// The size was what the server sent, not what it announced.
    pub received: bool,
    pub at: i64,
}

impl TooLargeRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        e.u8(RECORD_V1).u64(self.bytes).u8(u8::from(self.received)).i64(self.at);
        e.finish()
    }
    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Dec::new(value, "too-large record");
        check_version(&mut d)?;
        let r = TooLargeRecord {
            bytes: d.u64()?,
            received: d.u8()? != 0,
            at: d.i64()?,
        };
        d.end()?;
        Ok(r)
    }
}

/// A `replay_ledger` value: what was done for one message copy in one target
/// mailbox. `u8 version, u8 state (0 intent, 1 appended, 2 present),
/// u32 uidvalidity, u8 has_uid, u32 uid (an intent: the UIDNEXT before), i64 at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedgerRecord {
    pub state: crate::plan::replay::Ledger,
    /// When this state was written (Unix seconds).
    pub at: i64,
}

impl LedgerRecord {
    pub fn encode(&self) -> Vec<u8> {
        use crate::plan::replay::Ledger;
        let (state, uidvalidity, uid) = match self.state {
            Ledger::Intent { uidvalidity, uidnext } => (0, uidvalidity, Some(uidnext)),
            Ledger::Appended { uidvalidity, uid } => (1, uidvalidity, uid),
            Ledger::Present { uidvalidity, uid } => (2, uidvalidity, uid),
        };
        let mut e = Enc::default();
        e.u8(RECORD_V1)
            .u8(state)
            .u32(uidvalidity)
            .u8(u8::from(uid.is_some()))
            .u32(uid.unwrap_or(0))
            .i64(self.at);
        e.finish()
    }

    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        use crate::plan::replay::Ledger;
        let mut d = Dec::new(value, "replay ledger record");
        check_version(&mut d)?;
        let state = d.u8()?;
        let uidvalidity = d.u32()?;
        let has_uid = d.u8()? != 0;
        let uid = d.u32()?;
        let at = d.i64()?;
        d.end()?;
        let uid = has_uid.then_some(uid);
        let state = match state {
            0 => Ledger::Intent {
                uidvalidity,
                uidnext: uid.unwrap_or(1),
            },
            1 => Ledger::Appended { uidvalidity, uid },
            2 => Ledger::Present { uidvalidity, uid },
            other => return Err(d.err(format!("unknown ledger state {other}"))),
        };
        Ok(LedgerRecord { state, at })
    }
}

/// What an ingest-log entry announces (the index re-reads that message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestKind {
    /// A message was stored for the first time.
    Message = 1,
    /// A placement of the message was added or changed (flags, deletion).
    Placement = 2,
    /// The message was removed (`purge`): the index forgets it.
    Removed = 3,
}

/// An `ingest_log` value: `u8 kind, [32] message id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestEntry {
    pub kind: IngestKind,
    pub message: Hash32,
}

impl IngestEntry {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        e.u8(self.kind as u8).raw(&self.message.0);
        e.finish()
    }
    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Dec::new(value, "ingest log entry");
        let kind = match d.u8()? {
            1 => IngestKind::Message,
            2 => IngestKind::Placement,
            3 => IngestKind::Removed,
            k => return Err(d.err(format!("unknown kind {k}"))),
        };
        let message = Hash32(d.hash()?);
        d.end()?;
        Ok(IngestEntry { kind, message })
    }
}

/// The `meta/counters` value: running totals kept exact by updating them in the
/// same write batch as the data they count. `u8 version` then the fields as u64 LE
/// in declaration order.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub messages: u64,
    pub placements: u64,
    pub parts: u64,
    /// Sum of the raw sizes of distinct messages.
    pub raw_bytes: u64,
    /// Sum of the raw sizes over every placement (what a naive copy would keep).
    pub placement_raw_bytes: u64,
    /// Skeleton bytes plus distinct part payload bytes, before compression.
    pub unique_bytes: u64,
    /// Encoded bytes of message parts found already stored (part-level dedup).
    pub part_dedup_bytes: u64,
    /// Bytes of the packs the archive references (before format 3: of every stored
    /// blob value, compressed, with headers).
    pub stored_bytes: u64,
    /// The next ingest-log sequence number.
    pub next_seq: u64,
    /// Dictionaries trained so far (the newest is used for new blobs).
    pub dictionaries: u64,
}

impl Counters {
    /// Raw bytes a copy-everything archive would hold but this one does not, because
    /// a message or a part was already stored: whole-message duplicates (placements
    /// beyond the first) plus parts shared between messages.
    pub fn dedup_saved_bytes(&self) -> u64 {
        self.placement_raw_bytes.saturating_sub(self.raw_bytes) + self.part_dedup_bytes
    }
}

impl Counters {
    fn fields_mut(&mut self) -> [&mut u64; 10] {
        [
            &mut self.messages,
            &mut self.placements,
            &mut self.parts,
            &mut self.raw_bytes,
            &mut self.placement_raw_bytes,
            &mut self.unique_bytes,
            &mut self.part_dedup_bytes,
            &mut self.stored_bytes,
            &mut self.next_seq,
            &mut self.dictionaries,
        ]
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut c = self.clone();
        let mut e = Enc::default();
        e.u8(RECORD_V1);
        for f in c.fields_mut() {
            e.u64(*f);
        }
        e.finish()
    }

    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Dec::new(value, "counters");
        check_version(&mut d)?;
        let mut c = Counters::default();
        for f in c.fields_mut() {
            *f = d.u64()?;
        }
        d.end()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decoders_never_panic(v in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = MessageRecord::decode(&v);
            let _ = PlacementRecord::decode(&v);
            let _ = PartRecord::decode(&v);
            let _ = CursorRecord::decode(&v);
            let _ = IngestEntry::decode(&v);
            let _ = Counters::decode(&v);
            let _ = BlobHeader::decode(&v);
        }

        #[test]
        fn placement_roundtrip(sys in any::<u8>(), kw in proptest::collection::vec("[a-zA-Z$]{1,10}", 0..4),
                               date in proptest::option::of(any::<i64>()), del in proptest::option::of(any::<i64>())) {
            let r = PlacementRecord { message: Hash32::of(b"m"), flags: Flags { system: sys, keywords: kw },
                internal_date: date, first_seen: 1, last_seen: 2, deleted_at: del };
            prop_assert_eq!(PlacementRecord::decode(&r.encode()).unwrap(), r);
        }
    }

    #[test]
    fn message_record_roundtrip() {
        let r = MessageRecord {
            raw_len: 10_000,
            seq: 7,
            first_seen: 1_700_000_000,
            parts: vec![
                PartRef {
                    splice: Splice {
                        offset: 100,
                        len: 4000,
                        transform: Transform::Identity,
                    },
                    part: Hash32::of(b"a"),
                },
                PartRef {
                    splice: Splice {
                        offset: 4200,
                        len: 5000,
                        transform: Transform::Base64(B64Layout {
                            line_len: 76,
                            crlf: true,
                            final_eol: false,
                        }),
                    },
                    part: Hash32::of(b"b"),
                },
            ],
        };
        assert_eq!(MessageRecord::decode(&r.encode()).unwrap(), r);
        let mut bad = r.encode();
        bad[0] = 9;
        assert!(MessageRecord::decode(&bad)
            .unwrap_err()
            .to_string()
            .contains("unknown record version 9"));
    }
}
