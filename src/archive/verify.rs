//! `verify`: rebuild and rehash every message, rehash every part, check that every
//! placement points at a stored message, that every referenced pack is in the blob
//! store at its recorded size, and that the counters match. Each problem is
//! reported by id, a damaged message with the accounts and folders it is in;
//! nothing is modified.

use std::ops::ControlFlow;

use rayon::prelude::*;

use super::{Archive, ArchiveError, Result};
use crate::metastore::{MetaError, PlacementScope};
use crate::model::{Hash32, MessageId};
use crate::records::PayloadKind;

/// What `verify` found.
#[derive(Clone, Debug, Default, serde::Serialize, schemars::JsonSchema)]
pub struct VerifyReport {
    pub messages_checked: u64,
    pub parts_checked: u64,
    pub placements_checked: u64,
    /// Packs the archive references, each found in the blob store.
    pub packs_checked: u64,
    /// Packs in the blob store that the archive does not reference (left by a
    /// crash between a pack's upload and its batch; `compact` removes them). Not a
    /// problem: nothing is lost.
    pub unreferenced_packs: u64,
    pub problems: Vec<Problem>,
    /// `verify --chain`: what the proof of the archive's history found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<super::changelog::ChainSummary>,
}

/// What kind of thing is damaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A message cannot be rebuilt byte-exact (a piece unreadable or changed).
    DamagedMessage,
    /// A stored part cannot be read or does not hash to its id.
    DamagedPart,
    /// A placement record that cannot be decoded.
    DamagedPlacement,
    /// A placement of a message that is not stored.
    MissingMessage,
    /// A key of the wrong shape.
    DamagedKey,
    /// A pack the archive references is not in the blob store, or has another size.
    MissingPack,
    /// A counter disagrees with what was counted.
    Counter,
}

/// One problem: what, which message or part, where the message is filed, and the
/// error in words.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Problem {
    pub kind: ProblemKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
    /// The accounts and folders the message is in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub placements: Vec<Filed>,
    pub detail: String,
}

/// A message's account and folder.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Filed {
    pub account: String,
    pub folder: String,
}

impl Problem {
    fn of(kind: ProblemKind, detail: String) -> Problem {
        Problem {
            kind,
            message: None,
            part: None,
            placements: Vec::new(),
            detail,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            ProblemKind::DamagedMessage => "damaged message",
            ProblemKind::DamagedPart => "damaged part",
            ProblemKind::DamagedPlacement => "damaged placement",
            ProblemKind::MissingMessage => "placement of a missing message",
            ProblemKind::DamagedKey => "damaged key",
            ProblemKind::MissingPack => "missing pack",
            ProblemKind::Counter => "wrong counter",
        };
        write!(f, "{what}")?;
        if let Some(m) = &self.message {
            write!(f, " {m}")?;
        }
        if let Some(p) = &self.part {
            write!(f, " part {p}")?;
        }
        if !self.placements.is_empty() {
            let list: Vec<String> = self
                .placements
                .iter()
                .map(|p| format!("{}: {}", p.account, p.folder))
                .collect();
            write!(f, " (in {})", list.join(", "))?;
        }
        write!(f, ": {}", self.detail)
    }
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
        // In storage order: each frame is read and decoded once, not once per message.
        let ids = self.in_storage_order(PayloadKind::Skeleton, self.message_ids()?)?;
        for chunk in ids.chunks(CHUNK) {
            let problems: Vec<Problem> = chunk
                .par_iter()
                .filter_map(|id| {
                    let r = self
                        .message_record(id)
                        .and_then(|rec| rec.ok_or_else(|| ArchiveError::NotFound(id.to_hex())))
                        .and_then(|rec| self.rebuild(id, &rec));
                    r.err().map(|e| self.damaged_message(id, e))
                })
                .collect();
            report.problems.extend(problems);
            report.messages_checked += chunk.len() as u64;
            progress(report.messages_checked);
        }

        let mut part_ids = Vec::new();
        self.meta.scan_ids(PayloadKind::Part, &[], &mut |item| {
            match item {
                Ok(id) => part_ids.push(id),
                Err(e) => report
                    .problems
                    .push(Problem::of(ProblemKind::DamagedKey, e.to_string())),
            }
            ControlFlow::Continue(())
        })?;
        let part_ids = self.in_storage_order(PayloadKind::Part, part_ids)?;
        let part_problems: Vec<Problem> = part_ids
            .par_iter()
            .filter_map(|p| {
                self.part_payload(p, p).err().map(|e| Problem {
                    part: Some(p.to_string()),
                    ..Problem::of(ProblemKind::DamagedPart, e.to_string())
                })
            })
            .collect();
        report.parts_checked = part_ids.len() as u64;
        report.problems.extend(part_problems);

        self.verify_packs(&mut report)?;
        self.verify_placements(&mut report)?;

        let c = self.counters();
        for (what, counted, recorded) in [
            ("messages", report.messages_checked, c.messages),
            ("parts", report.parts_checked, c.parts),
            ("placements", report.placements_checked, c.placements),
        ] {
            if counted != recorded {
                report.problems.push(Problem::of(
                    ProblemKind::Counter,
                    format!("counter {what} says {recorded}, found {counted}"),
                ));
            }
        }
        Ok(report)
    }

    /// Every placement is readable and points at a stored message.
    fn verify_placements(&self, report: &mut VerifyReport) -> Result<()> {
        let mut readable = Vec::new();
        self.meta.scan_placements(PlacementScope::default(), &mut |item| {
            report.placements_checked += 1;
            match item {
                Ok(e) => readable.push(e),
                Err(e) => report.problems.push(damaged_placement(e)),
            }
            ControlFlow::Continue(())
        })?;
        for chunk in readable.chunks(4096) {
            let ids: Vec<MessageId> = chunk.iter().map(|e| e.record.message).collect();
            for (e, held) in chunk.iter().zip(self.meta.have(PayloadKind::Skeleton, &ids)?) {
                if !held {
                    report.problems.push(Problem {
                        message: Some(e.record.message.to_string()),
                        placements: vec![Filed {
                            account: e.key.account.clone(),
                            folder: e.key.mailbox.clone(),
                        }],
                        ..Problem::of(ProblemKind::MissingMessage, format!("placement {:?}", e.key.source))
                    });
                }
            }
        }
        Ok(())
    }

    /// Every referenced pack is in the store at its size; counts the unreferenced.
    fn verify_packs(&self, report: &mut VerifyReport) -> Result<()> {
        let records = self.pack_records();
        if records.is_empty() && self.format_version < 3 {
            return Ok(());
        }
        let listed: std::collections::HashMap<Hash32, u64> =
            self.blobs.list()?.into_iter().map(|p| (p.name.0, p.size)).collect();
        for (number, r) in &records {
            let found = listed.get(&r.name);
            if found != Some(&r.size) {
                let detail = match found {
                    None => format!("pack {number} ({}) is not in {}", r.name, self.blobs.describe()),
                    Some(size) => format!("pack {number} ({}) is {size} bytes, {} recorded", r.name, r.size),
                };
                report.problems.push(Problem::of(ProblemKind::MissingPack, detail));
            }
        }
        report.packs_checked = records.len() as u64;
        let referenced: std::collections::HashSet<Hash32> = records.iter().map(|(_, r)| r.name).collect();
        report.unreferenced_packs = listed.keys().filter(|n| !referenced.contains(n)).count() as u64;
        Ok(())
    }

    /// The problem of a message that cannot be rebuilt, with where it is filed (as
    /// far as the placements can still be read).
    fn damaged_message(&self, id: &MessageId, e: ArchiveError) -> Problem {
        let placements = self
            .placements_of(id)
            .map(|ps| {
                ps.into_iter()
                    .map(|p| Filed {
                        account: p.key.account,
                        folder: p.key.mailbox,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Problem {
            message: Some(id.to_hex()),
            placements,
            ..Problem::of(ProblemKind::DamagedMessage, e.to_string())
        }
    }
}

/// The problem of a placement that cannot be read (its key or its record).
fn damaged_placement(e: MetaError) -> Problem {
    let kind = match &e {
        MetaError::Decode { .. } => ProblemKind::DamagedPlacement,
        _ => ProblemKind::DamagedKey,
    };
    Problem::of(kind, e.to_string())
}
