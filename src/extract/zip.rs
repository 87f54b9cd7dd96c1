//! ZIP archives: each member's name, and the text of the members we can read,
//! archives inside archives up to the depth limit. Every member is read through
//! a bound: what the whole archive may inflate to, and the ratio a big member
//! may inflate by (a zip bomb stops at whichever it meets first). Also the
//! shared member reader of the office formats.

use std::io::{Cursor, Read};

use ::zip::ZipArchive;

use super::{Failure, Stop, Walk};

/// Opens `bytes` as a ZIP archive.
pub(crate) fn open(bytes: &[u8]) -> Result<ZipArchive<Cursor<&[u8]>>, Stop> {
    ZipArchive::new(Cursor::new(bytes)).map_err(|e| Stop::Failed(zip_failure(e)))
}

pub(crate) fn zip_failure(e: ::zip::result::ZipError) -> Failure {
    match e {
        ::zip::result::ZipError::UnsupportedArchive(m) if m.contains("assword") || m.contains("ncrypt") => {
            Failure::Encrypted
        }
        e => Failure::Corrupt(format!("ZIP: {e}")),
    }
}

/// Member `i` inflated into memory, within the archive's budget and the ratio.
pub(crate) fn member(
    walk: &mut Walk<'_>,
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    i: usize,
) -> Result<(String, Vec<u8>), Stop> {
    let mut m = archive.by_index(i).map_err(|e| Stop::Failed(zip_failure(e)))?;
    if m.encrypted() {
        return Err(Stop::Failed(Failure::Encrypted));
    }
    let name = m
        .name()
        .map(|n| n.into_owned())
        .unwrap_or_else(|_| format!("member {i}"));
    let room = walk.budget.inflated_bytes.saturating_sub(walk.inflated);
    let by_ratio = m
        .compressed_size()
        .max(1)
        .saturating_mul(walk.budget.ratio)
        .max(super::RATIO_FLOOR);
    // Read one byte past each bound, to tell "at the bound" from "past it"; the
    // declared size is not trusted.
    let bound = room.min(by_ratio).saturating_add(1);
    let mut out = Vec::with_capacity(m.size().min(bound).min(16 << 20) as usize);
    (&mut m)
        .take(bound)
        .read_to_end(&mut out)
        .map_err(|e| Stop::Failed(Failure::Corrupt(format!("ZIP member {name:?}: {e}"))))?;
    let n = out.len() as u64;
    if n > by_ratio {
        return Err(Stop::Failed(Failure::Ratio {
            member: name,
            ratio: walk.budget.ratio,
        }));
    }
    walk.inflate(n)?;
    Ok((name, out))
}

/// A plain ZIP archive: member names, and each member as a document of its own.
pub(crate) fn read(walk: &mut Walk<'_>, bytes: &[u8], path: &str, depth: u32) -> Result<(), Stop> {
    let mut archive = open(bytes)?;
    let count = archive.len();
    for i in 0..count.min(walk.budget.members) {
        walk.check_time()?;
        let (name, data) = member(walk, &mut archive, i)?;
        if name.ends_with('/') {
            continue;
        }
        walk.space()?;
        walk.push(&name)?;
        walk.push("\n")?;
        if let Some(spent) = walk.document(&data, &format!("{path}/{name}"), "", depth + 1) {
            return Err(Stop::Failed(spent));
        }
        if walk.full() {
            return Err(Stop::Full);
        }
    }
    if count > walk.budget.members {
        return Err(Stop::Failed(Failure::Members {
            limit: walk.budget.members,
        }));
    }
    Ok(())
}
