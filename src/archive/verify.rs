//! `verify`: rebuild and rehash every message, rehash every part, check that every
//! placement points at a stored message and that the counters match. Each problem is
//! reported by id; nothing is modified.

use rayon::prelude::*;
use rocksdb::IteratorMode;

use super::{Archive, ArchiveError, Result};
use crate::keys;
use crate::model::Hash32;
use crate::records::PlacementRecord;

/// What `verify` found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    pub messages_checked: u64,
    pub parts_checked: u64,
    pub placements_checked: u64,
    /// One line per problem, naming the message, part or placement.
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

const CHUNK: usize = 512;

impl Archive {
    /// Checks everything; `progress` is called with the number of messages done.
    pub fn verify(&self, mut progress: impl FnMut(u64)) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let ids = self.message_ids()?;
        for chunk in ids.chunks(CHUNK) {
            let problems: Vec<String> = chunk
                .par_iter()
                .filter_map(|id| {
                    let r = self
                        .message_record(id)
                        .and_then(|rec| rec.ok_or_else(|| ArchiveError::NotFound(id.to_hex())))
                        .and_then(|rec| self.rebuild(id, &rec));
                    r.err().map(|e| format!("damaged: {e}"))
                })
                .collect();
            report.problems.extend(problems);
            report.messages_checked += chunk.len() as u64;
            progress(report.messages_checked);
        }

        let mut part_ids = Vec::new();
        for item in self.db.iterator_cf(self.cf(keys::CF_PARTS), IteratorMode::Start) {
            let (k, _) = item.map_err(|e| self.db_error(e))?;
            match <[u8; 32]>::try_from(&k[..]) {
                Ok(a) => part_ids.push(Hash32(a)),
                Err(_) => report.problems.push(format!("damaged: parts key of {} bytes", k.len())),
            }
        }
        let part_problems: Vec<String> = part_ids
            .par_iter()
            .filter_map(|p| self.part_payload(p, p).err().map(|e| format!("damaged part {p}: {e}")))
            .collect();
        report.parts_checked = part_ids.len() as u64;
        report.problems.extend(part_problems);

        let mcf = self.cf(keys::CF_MESSAGES);
        for item in self.db.iterator_cf(self.cf(keys::CF_PLACEMENTS), IteratorMode::Start) {
            let (k, v) = item.map_err(|e| self.db_error(e))?;
            report.placements_checked += 1;
            let name = keys::parse_placement(&k)
                .map(|p| format!("{}/{} {:?}", p.account, p.mailbox, p.source))
                .unwrap_or_else(|| format!("{:?}", String::from_utf8_lossy(&k)));
            match PlacementRecord::decode(&v) {
                Ok(rec) => {
                    if self
                        .db
                        .get_pinned_cf(mcf, rec.message.0)
                        .map_err(|e| self.db_error(e))?
                        .is_none()
                    {
                        report
                            .problems
                            .push(format!("placement {name} points at missing message {}", rec.message));
                    }
                }
                Err(e) => report.problems.push(format!("placement {name}: {e}")),
            }
        }

        let c = self.counters();
        for (what, counted, recorded) in [
            ("messages", report.messages_checked, c.messages),
            ("parts", report.parts_checked, c.parts),
            ("placements", report.placements_checked, c.placements),
        ] {
            if counted != recorded {
                report
                    .problems
                    .push(format!("counter {what} says {recorded}, found {counted}"));
            }
        }
        Ok(report)
    }
}
