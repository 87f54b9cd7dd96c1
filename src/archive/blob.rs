//! Blob compression: zstd per blob, with the archive's trained dictionary when one
//! exists, and no compression at all for payloads that are already compressed.
//! Every blob records its codec and dictionary id, so blobs written before a
//! (re)training stay readable.

use std::collections::HashMap;
use std::sync::Arc;

use zstd::dict::{DecoderDictionary, EncoderDictionary};

use crate::records::{BlobHeader, Codec};

/// zstd level for new blobs. Measured on the main corpus (README): level 3 imports
/// at ~5,200 msg/s for an archive 1.21x the size of solid `zstd -19`; level 9 gave
/// 1.17x at ~3,300 msg/s, level 6 1.17x at ~3,400 msg/s.
pub const LEVEL: i32 = 3;
/// Size of a trained dictionary.
pub const DICT_SIZE: usize = 112 * 1024;
/// A message archive trains its dictionary once this many new messages are in one batch.
pub const DICT_MIN_SAMPLES: usize = 256;
/// Each training sample is at most this long (the start of a skeleton: headers).
pub const DICT_SAMPLE_MAX: usize = 8 * 1024;
/// At most this many samples are used (spread evenly over the batch): training time
/// grows with the sample size, and headers repeat quickly.
pub const DICT_MAX_SAMPLES: usize = 1000;
/// Payloads at least this large are checked for being already compressed.
const INCOMPRESSIBLE_CHECK_MIN: usize = 8 * 1024;
/// A blob can never claim more than this payload (guards allocations on corruption).
pub const MAX_PAYLOAD: u64 = 1 << 32;

/// A loaded dictionary, ready for both directions.
pub struct Dict {
    pub id: u32,
    /// Prepared for [`LEVEL`], the level of new mail.
    pub encoder: EncoderDictionary<'static>,
    pub decoder: DecoderDictionary<'static>,
    bytes: Vec<u8>,
}

impl Dict {
    pub fn new(id: u32, bytes: &[u8]) -> Self {
        Dict {
            id,
            encoder: EncoderDictionary::copy(bytes, LEVEL),
            decoder: DecoderDictionary::copy(bytes),
            bytes: bytes.to_vec(),
        }
    }

    /// The dictionary prepared for another compression level (compaction's).
    pub fn encoder_at(&self, level: i32) -> EncoderDictionary<'static> {
        EncoderDictionary::copy(&self.bytes, level)
    }
}

/// Runs `f` with this thread's zstd decompression context.
pub fn with_dctx<T>(f: impl FnOnce(&mut zstd::zstd_safe::DCtx<'static>) -> T) -> T {
    DCTX.with(|c| f(&mut c.borrow_mut()))
}

/// Every dictionary of the archive, and which one new blobs use.
#[derive(Default)]
pub struct Dicts {
    pub by_id: HashMap<u32, Arc<Dict>>,
    pub current: Option<Arc<Dict>>,
}

/// Trains a dictionary from message skeletons. `None` when zstd finds too little
/// material (tiny or uniform samples): the archive then keeps compressing without.
pub fn train(samples: &[&[u8]]) -> Option<Vec<u8>> {
    let step = samples.len().div_ceil(DICT_MAX_SAMPLES).max(1);
    let clipped: Vec<&[u8]> = samples
        .iter()
        .step_by(step)
        .map(|s| &s[..s.len().min(DICT_SAMPLE_MAX)])
        .collect();
    let total: usize = clipped.iter().map(|s| s.len()).sum();
    if clipped.len() < 8 || total < DICT_SIZE {
        return None;
    }
    zstd::dict::from_samples(&clipped, DICT_SIZE).ok()
}

/// Known magic numbers of compressed formats (JPEG, PNG, GIF, ZIP/Office, gzip,
/// bzip2, xz, zstd, 7z, RAR, MP4/M4A, MP3 with ID3, WebP/RIFF).
fn has_compressed_magic(p: &[u8]) -> bool {
    const MAGICS: [&[u8]; 12] = [
        b"\xFF\xD8\xFF",
        b"\x89PNG",
        b"GIF8",
        b"PK\x03\x04",
        b"\x1F\x8B",
        b"BZh",
        b"\xFD7zXZ",
        b"\x28\xB5\x2F\xFD",
        b"7z\xBC\xAF",
        b"Rar!",
        b"ID3",
        b"RIFF",
    ];
    MAGICS.iter().any(|m| p.starts_with(m)) || (p.len() > 12 && &p[4..8] == b"ftyp")
}

/// True when compressing `payload` would waste CPU: a known compressed format, or a
/// sample that zstd's fastest level cannot shrink by 5%.
pub fn looks_incompressible(payload: &[u8]) -> bool {
    if payload.len() < INCOMPRESSIBLE_CHECK_MIN {
        return false;
    }
    if has_compressed_magic(payload) {
        return true;
    }
    let sample = &payload[..payload.len().min(64 * 1024)];
    let mut out: Vec<u8> = Vec::with_capacity(zstd::zstd_safe::compress_bound(sample.len()));
    let r = PROBE_CCTX.with(|c| c.borrow_mut().compress(&mut out, sample, 1));
    match r {
        Ok(n) => n * 100 > sample.len() * 95,
        Err(_) => false,
    }
}

// One zstd context per thread for probes and decoding: creating a context costs
// more than decompressing a typical message header.
thread_local! {
    static PROBE_CCTX: std::cell::RefCell<zstd::zstd_safe::CCtx<'static>> =
        std::cell::RefCell::new(zstd::zstd_safe::CCtx::create());
    static DCTX: std::cell::RefCell<zstd::zstd_safe::DCtx<'static>> =
        std::cell::RefCell::new(zstd::zstd_safe::DCtx::create());
}

fn zstd_error(code: usize) -> DecodeFailure {
    format!("zstd: {}", zstd::zstd_safe::get_error_name(code))
}

/// Compresses payloads into complete `blobs` values (header + data), as formats 1
/// and 2 stored them (tests make such values; the archive only reads them now).
#[cfg(test)]
pub struct Encoder<'d> {
    zstd: zstd::bulk::Compressor<'d>,
    codec: Codec,
    dict_id: u32,
}

#[cfg(test)]
impl<'d> Encoder<'d> {
    pub fn new(dict: Option<&'d Dict>) -> std::io::Result<Self> {
        let (mut zstd, codec, dict_id) = match dict {
            Some(d) => (
                zstd::bulk::Compressor::with_prepared_dictionary(&d.encoder)?,
                Codec::ZstdDict,
                d.id,
            ),
            None => (zstd::bulk::Compressor::new(LEVEL)?, Codec::Zstd, 0),
        };
        zstd.include_checksum(true)?;
        Ok(Encoder { zstd, codec, dict_id })
    }

    /// One blob value. With `try_stored`, payloads that are already compressed are
    /// kept as they are.
    pub fn encode(&mut self, payload: &[u8], try_stored: bool) -> std::io::Result<Vec<u8>> {
        let stored = try_stored && looks_incompressible(payload);
        let (data, codec, dict_id) = if stored {
            (None, Codec::Stored, 0)
        } else {
            (Some(self.zstd.compress(payload)?), self.codec, self.dict_id)
        };
        let h = BlobHeader {
            codec,
            dict_id,
            payload_len: payload.len() as u64,
        };
        Ok(h.encode(data.as_deref().unwrap_or(payload)))
    }
}

/// Compresses one payload with a fresh context (tests).
#[cfg(test)]
pub fn encode(payload: &[u8], dict: Option<&Dict>, try_stored: bool) -> std::io::Result<Vec<u8>> {
    Encoder::new(dict)?.encode(payload, try_stored)
}

/// Why a stored blob could not be decoded.
pub type DecodeFailure = String;

/// Decodes a `blobs` value back into its payload, checking codec, dictionary and length.
pub fn decode(value: &[u8], dicts: &Dicts) -> Result<Vec<u8>, DecodeFailure> {
    let (h, data) = BlobHeader::decode(value).map_err(|e| e.to_string())?;
    if h.payload_len > MAX_PAYLOAD {
        return Err(format!("blob claims an impossible payload of {} bytes", h.payload_len));
    }
    let cap = h.payload_len as usize;
    let out = match h.codec {
        Codec::Stored => data.to_vec(),
        Codec::Zstd => {
            let mut out = Vec::with_capacity(cap);
            DCTX.with(|c| c.borrow_mut().decompress(&mut out, data))
                .map_err(zstd_error)?;
            out
        }
        Codec::ZstdDict => {
            let d = dicts
                .by_id
                .get(&h.dict_id)
                .ok_or_else(|| format!("blob needs dictionary {} which the archive lacks", h.dict_id))?;
            let mut out = Vec::with_capacity(cap);
            DCTX.with(|c| {
                c.borrow_mut()
                    .decompress_using_ddict(&mut out, data, d.decoder.as_ddict())
            })
            .map_err(zstd_error)?;
            out
        }
    };
    if out.len() as u64 != h.payload_len {
        return Err(format!("payload is {} bytes, header says {}", out.len(), h.payload_len));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_each_codec() {
        let text = b"Received: from a by b\r\nSubject: hello\r\n\r\n".repeat(500);
        let random: Vec<u8> = (0..20000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let mut jpeg = b"\xFF\xD8\xFF\xE0".to_vec();
        jpeg.extend_from_slice(&random);
        let samples: Vec<Vec<u8>> = (0..300)
            .map(|i| {
                format!(
                    "Subject: message {i}\r\nFrom: a{i}@example.com\r\nX-Mailer: test {}\r\n\r\n",
                    i * 7
                )
                .into_bytes()
                .repeat(8)
            })
            .collect();
        let refs: Vec<&[u8]> = samples.iter().map(Vec::as_slice).collect();
        let dict_bytes = train(&refs).expect("enough samples train");
        let dict = Arc::new(Dict::new(1, &dict_bytes));
        let mut dicts = Dicts::default();
        dicts.by_id.insert(1, dict.clone());
        for (payload, d, want) in [
            (&text[..], None, Codec::Zstd),
            (&text[..], Some(&*dict), Codec::ZstdDict),
            (&jpeg[..], None, Codec::Stored),
        ] {
            let v = encode(payload, d, true).unwrap();
            assert_eq!(BlobHeader::decode(&v).unwrap().0.codec, want);
            assert_eq!(decode(&v, &dicts).unwrap(), payload);
        }
        // A missing dictionary and a flipped byte are errors, not panics.
        let v = encode(&text, Some(&dict), false).unwrap();
        assert!(decode(&v, &Dicts::default()).unwrap_err().contains("dictionary 1"));
        let mut bad = v.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x40;
        assert!(decode(&bad, &dicts).is_err() || decode(&bad, &dicts).unwrap() != text);
    }
}
