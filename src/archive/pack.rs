//! Packs: many skeletons and parts in one immutable object, in frames that are
//! each one independently decodable zstd frame (with the archive's dictionary, the
//! window spanning the frame), so that reading one message decodes one frame.
//!
//! ```text
//! "MVPACK01"                      8 bytes: magic and pack format version
//! frame, frame, ...               zstd frames (with checksums) or stored bytes
//! trailer: n x entry              u8 kind, [32] id, u64 frame_offset, u32 frame_len,
//!                                 u8 codec, u32 dict_id, u64 offset, u64 len, u64 group
//! u32 n, u64 trailer_offset, "MVPKEND1"
//! ```
//!
//! The trailer makes a pack self-describing (what it holds can be read back without
//! the metadata); the archive's `pack_index` column family is the truth for reads.
//! Planning which items share a frame is pure ([`plan_frames`]); compression runs on
//! rayon's threads.

use rayon::prelude::*;

use super::blob::{self, Dict};
use crate::blobstore::PackName;
use crate::codec::{Dec, Enc};
use crate::model::Hash32;
use crate::records::{BlobLocation, Codec, PayloadKind};

pub const MAGIC: &[u8; 8] = b"MVPACK01";
pub const END_MAGIC: &[u8; 8] = b"MVPKEND1";
pub const ENTRY_LEN: usize = 1 + 32 + 8 + 4 + 1 + 4 + 8 + 8 + 8;
const FOOTER_LEN: usize = 4 + 8 + 8;

/// Frame size targets (uncompressed). New mail: small frames at a fast level, so
/// ingest stays fast; compaction: larger frames at a high level.
pub const INGEST_FRAME: usize = 128 << 10;
pub const COMPACT_FRAME: usize = 512 << 10;
/// A decoded frame may not claim more than this (guards allocations on corruption).
pub const MAX_FRAME: u64 = blob::MAX_PAYLOAD;

/// One payload to pack.
pub struct PackItem<'a> {
    pub kind: PayloadKind,
    pub id: Hash32,
    pub payload: &'a [u8],
    /// Check whether the payload is already compressed (parts; never skeletons).
    pub try_stored: bool,
    pub group: u64,
}

/// One payload's place in a pack (before the archive numbers the pack).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackEntry {
    pub kind: PayloadKind,
    pub id: Hash32,
    pub location: BlobLocation,
}

/// A pack ready to be stored.
pub struct BuiltPack {
    pub name: PackName,
    pub bytes: Vec<u8>,
    pub entries: Vec<PackEntry>,
}

/// A frame's items (index range) and whether it is stored uncompressed.
pub type PlannedFrame = (std::ops::Range<usize>, bool);

/// Which items share a frame: consecutive items up to `target` bytes; an item that
/// is large or already compressed gets a frame of its own. Returns index ranges.
pub fn plan_frames(lens_and_stored: &[(usize, bool)], target: usize) -> Vec<PlannedFrame> {
    let mut frames = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (i, &(len, stored)) in lens_and_stored.iter().enumerate() {
        let alone = stored || len >= target;
        if i > start && (alone || size + len > target) {
            frames.push((start..i, false));
            start = i;
            size = 0;
        }
        if alone {
            frames.push((i..i + 1, stored));
            start = i + 1;
            size = 0;
        } else {
            size += len;
        }
    }
    if start < lens_and_stored.len() {
        frames.push((start..lens_and_stored.len(), false));
    }
    frames
}

/// A dictionary prepared for one compression level.
#[derive(Clone, Copy)]
pub struct FrameDict<'d> {
    pub id: u32,
    pub encoder: &'d zstd::dict::EncoderDictionary<'static>,
}

/// A zstd compressor at `level`, with `dict` when there is one.
pub struct FrameEncoder<'d> {
    zstd: zstd::bulk::Compressor<'d>,
    codec: Codec,
    dict_id: u32,
}

impl<'d> FrameEncoder<'d> {
    pub fn new(dict: Option<FrameDict<'d>>, level: i32) -> std::io::Result<Self> {
        let (mut zstd, codec, dict_id) = match dict {
            Some(d) => (
                zstd::bulk::Compressor::with_prepared_dictionary(d.encoder)?,
                Codec::ZstdDict,
                d.id,
            ),
            None => (zstd::bulk::Compressor::new(level)?, Codec::Zstd, 0),
        };
        zstd.include_checksum(true)?;
        zstd.include_contentsize(true)?;
        Ok(FrameEncoder { zstd, codec, dict_id })
    }
}

/// A compressed frame (or a stored payload, borrowed) and how to decode it.
struct Frame<'a> {
    bytes: std::borrow::Cow<'a, [u8]>,
    codec: Codec,
    dict_id: u32,
}

fn compress_frame<'a>(
    enc: &mut std::io::Result<FrameEncoder<'_>>,
    items: &[PackItem<'a>],
    stored: bool,
) -> std::io::Result<Frame<'a>> {
    if stored {
        return Ok(Frame {
            bytes: std::borrow::Cow::Borrowed(items[0].payload),
            codec: Codec::Stored,
            dict_id: 0,
        });
    }
    let enc = enc.as_mut().map_err(|e| std::io::Error::new(e.kind(), e.to_string()))?;
    let mut raw = Vec::with_capacity(items.iter().map(|i| i.payload.len()).sum());
    for i in items {
        raw.extend_from_slice(i.payload);
    }
    Ok(Frame {
        bytes: std::borrow::Cow::Owned(enc.zstd.compress(&raw)?),
        codec: enc.codec,
        dict_id: enc.dict_id,
    })
}

/// How an encrypted archive seals a pack's frames: the content key, and the
/// pack's number (each seal is bound to it and the frame's offset).
#[derive(Clone, Copy)]
pub struct Seal<'k> {
    pub key: &'k crate::crypt::Key,
    pub pack: u64,
}

/// Packs `items` in their order: plans frames of about `frame_target` bytes,
/// compresses them in parallel at `level` (with `dict`), seals each (with
/// `seal`), and lays out the pack.
pub fn build(
    items: &[PackItem<'_>],
    dict: Option<FrameDict<'_>>,
    level: i32,
    frame_target: usize,
    seal: Option<Seal<'_>>,
) -> std::io::Result<BuiltPack> {
    let lens: Vec<(usize, bool)> = items
        .par_iter()
        .map(|i| (i.payload.len(), i.try_stored && blob::looks_incompressible(i.payload)))
        .collect();
    let plan = plan_frames(&lens, frame_target);
    let frames: Vec<std::io::Result<Frame>> = plan
        .par_iter()
        .map_init(
            || FrameEncoder::new(dict, level),
            |enc, (range, stored)| compress_frame(enc, &items[range.clone()], *stored),
        )
        .collect();
    let mut bytes = Vec::with_capacity(MAGIC.len() + frames.iter().flatten().map(|f| f.bytes.len()).sum::<usize>());
    bytes.extend_from_slice(MAGIC);
    let mut entries = Vec::with_capacity(items.len());
    for ((range, _), frame) in plan.into_iter().zip(frames) {
        let mut frame = frame?;
        let frame_offset = bytes.len() as u64;
        if let Some(s) = seal {
            let aad = crate::archive::sealing::frame_aad(s.pack, frame_offset);
            let sealed = crate::crypt::seal(s.key, &aad, &frame.bytes).map_err(std::io::Error::other)?;
            frame.bytes = std::borrow::Cow::Owned(sealed);
        }
        let mut offset = 0u64;
        for item in &items[range] {
            entries.push(PackEntry {
                kind: item.kind,
                id: item.id,
                location: BlobLocation {
                    pack: 0,
                    frame_offset,
                    frame_len: frame.bytes.len() as u32,
                    codec: frame.codec,
                    dict_id: frame.dict_id,
                    offset,
                    len: item.payload.len() as u64,
                    group: item.group,
                },
            });
            offset += item.payload.len() as u64;
        }
        bytes.extend_from_slice(&frame.bytes);
    }
    write_trailer(&mut bytes, &entries);
    Ok(BuiltPack {
        name: PackName::of(&bytes),
        bytes,
        entries,
    })
}

fn write_trailer(bytes: &mut Vec<u8>, entries: &[PackEntry]) {
    let trailer_offset = bytes.len() as u64;
    let mut e = Enc(Vec::with_capacity(entries.len() * ENTRY_LEN + FOOTER_LEN));
    // An entry is the kind, the id, then a `pack_index` value's frame fields.
    for x in entries {
        e.u8(x.kind.byte())
            .raw(&x.id.0)
            .raw(&x.location.encode()[BlobLocation::FRAME_FIELDS_AT..]);
    }
    e.u32(entries.len() as u32).u64(trailer_offset).raw(END_MAGIC);
    bytes.extend_from_slice(&e.finish());
}

/// Reads a whole pack's trailer back (verification and recovery): its entries, with
/// `pack` as their pack number.
pub fn read_trailer(bytes: &[u8], pack: u64) -> Result<Vec<PackEntry>, String> {
    if bytes.len() < MAGIC.len() + FOOTER_LEN || &bytes[..8] != MAGIC {
        return Err("not a mailvault pack (bad magic)".into());
    }
    let footer = &bytes[bytes.len() - FOOTER_LEN..];
    if &footer[12..] != END_MAGIC {
        return Err("the pack's end marker is missing (truncated?)".into());
    }
    let mut d = Dec::new(footer, "pack footer");
    let n = d.u32().map_err(|e| e.to_string())? as usize;
    let at = d.u64().map_err(|e| e.to_string())? as usize;
    let end = bytes.len() - FOOTER_LEN;
    if at > end || (end - at) != n.saturating_mul(ENTRY_LEN) {
        return Err(format!(
            "the trailer claims {n} entries at {at}, which does not fit the pack"
        ));
    }
    let mut d = Dec::new(&bytes[at..end], "pack trailer");
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let byte = d.u8().map_err(|e| e.to_string())?;
        let kind = PayloadKind::from_byte(byte).ok_or_else(|| format!("unknown payload kind {byte} in the trailer"))?;
        let id = Hash32(d.hash().map_err(|e| e.to_string())?);
        let mut rec = Enc::default();
        rec.u8(crate::records::RECORD_V1)
            .u64(pack)
            .raw(d.take(8 + 4 + 1 + 4 + 8 + 8 + 8).map_err(|e| e.to_string())?);
        let location = BlobLocation::decode(&rec.finish()).map_err(|e| e.to_string())?;
        out.push(PackEntry { kind, id, location });
    }
    Ok(out)
}

/// Decodes one frame read from a pack, checking the zstd checksum and size bounds.
pub fn decode_frame(frame: &[u8], codec: Codec, dict: Option<&Dict>) -> Result<Vec<u8>, String> {
    match codec {
        Codec::Stored => Ok(frame.to_vec()),
        Codec::Zstd | Codec::ZstdDict => {
            let size = zstd::zstd_safe::get_frame_content_size(frame)
                .map_err(|_| "the frame is not zstd data".to_string())?
                .ok_or("the frame does not say its size")?;
            if size > MAX_FRAME {
                return Err(format!("the frame claims an impossible {size} bytes"));
            }
            let mut out = Vec::with_capacity(size as usize);
            let r = match (codec, dict) {
                (Codec::ZstdDict, Some(d)) => {
                    blob::with_dctx(|c| c.decompress_using_ddict(&mut out, frame, d.decoder.as_ddict()))
                }
                (Codec::ZstdDict, None) => return Err("the frame needs a dictionary the archive lacks".into()),
                _ => blob::with_dctx(|c| c.decompress(&mut out, frame)),
            };
            r.map_err(|code| format!("zstd: {}", zstd::zstd_safe::get_error_name(code)))?;
            if out.len() as u64 != size {
                return Err(format!("the frame decoded to {} bytes, it says {size}", out.len()));
            }
            Ok(out)
        }
    }
}

/// The group of a message: its folder in the high half, its list (or else its
/// sender) in the low half, so that sorting by group puts similar mail together.
/// Hashed with the archive's id maker, so that in an encrypted archive the stored
/// group says nothing about the sender without the key.
pub fn group_of(ids: &crate::model::IdHasher, account: &str, mailbox: &str, skeleton: &[u8]) -> u64 {
    let folder = ids.id(format!("{account}\0{mailbox}").as_bytes());
    let who = crate::mime::header_value(skeleton, "List-Id")
        .or_else(|| crate::mime::header_value(skeleton, "From"))
        .unwrap_or_default();
    let who = ids.id(who.to_ascii_lowercase().as_bytes());
    let half = |h: &crate::model::Hash32| u32::from_be_bytes([h.0[0], h.0[1], h.0[2], h.0[3]]) as u64;
    (half(&folder) << 32) | half(&who)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_group_small_items_and_isolate_large_or_stored_ones() {
        type Case<'a> = (&'a [(usize, bool)], Vec<PlannedFrame>);
        let table: [Case<'_>; 5] = [
            (&[], vec![]),
            (&[(10, false), (10, false), (10, false)], vec![(0..3, false)]),
            (
                &[(60, false), (60, false), (60, false)],
                vec![(0..1, false), (1..2, false), (2..3, false)],
            ),
            (
                &[(10, false), (500, false), (10, false)],
                vec![(0..1, false), (1..2, false), (2..3, false)],
            ),
            (
                &[(10, false), (20, true), (10, false), (10, false)],
                vec![(0..1, false), (1..2, true), (2..4, false)],
            ),
        ];
        for (input, want) in table {
            assert_eq!(plan_frames(input, 100), want, "{input:?}");
        }
    }

    #[test]
    fn a_pack_reads_back_by_frame_and_by_trailer() {
        let a = b"Subject: one\r\n\r\nhello".repeat(50);
        let b = b"Subject: two\r\n\r\nworld".repeat(50);
        let mut jpeg = b"\xFF\xD8\xFF\xE0".to_vec();
        jpeg.extend((0..20000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
        let items = [
            PackItem {
                kind: PayloadKind::Skeleton,
                id: Hash32::of(&a),
                payload: &a,
                try_stored: false,
                group: 1,
            },
            PackItem {
                kind: PayloadKind::Part,
                id: Hash32::of(&jpeg),
                payload: &jpeg,
                try_stored: true,
                group: 1,
            },
            PackItem {
                kind: PayloadKind::Skeleton,
                id: Hash32::of(&b),
                payload: &b,
                try_stored: false,
                group: 2,
            },
        ];
        let built = build(&items, None, 3, 1 << 20, None).unwrap();
        assert_eq!(built.name, PackName::of(&built.bytes));
        assert_eq!(built.entries.len(), 3);
        assert_eq!(built.entries[1].location.codec, Codec::Stored);
        for (e, item) in built.entries.iter().zip(&items) {
            let l = &e.location;
            let frame = &built.bytes[l.frame_offset as usize..][..l.frame_len as usize];
            let decoded = decode_frame(frame, l.codec, None).unwrap();
            assert_eq!(&decoded[l.offset as usize..][..l.len as usize], item.payload);
        }
        assert_eq!(read_trailer(&built.bytes, 0).unwrap(), built.entries);
        let cut = &built.bytes[..built.bytes.len() - 3];
        assert!(read_trailer(cut, 0).unwrap_err().contains("end marker"));
        let l = &built.entries[0].location;
        let mut frame = built.bytes[l.frame_offset as usize..][..l.frame_len as usize].to_vec();
        let mid = frame.len() / 2;
        frame[mid] ^= 0x20;
        assert!(
            decode_frame(&frame, l.codec, None).is_err(),
            "a flipped bit fails the checksum"
        );
    }
}
