//! Pipelined APPEND over an authenticated session: commands are written without
//! waiting for earlier ones to complete (up to a window), LITERAL+ literals without
//! waiting for `+`, several messages per command with MULTIAPPEND. Each message gets
//! its own outcome — appended (with its APPENDUID when the server has UIDPLUS) or
//! refused with the server's words — and a MULTIAPPEND the server refuses as a whole
//! is retried one message at a time, so one bad message can't sink its neighbours.
//!
//! The commands go straight to the session's stream and the answers are read back
//! with async-imap's parser, whose own APPEND waits for each command to finish and
//! does not return APPENDUID.

use std::collections::HashMap;
use std::time::Duration;

use async_imap::imap_proto::{Response, ResponseCode, Status};
use tokio::io::AsyncWriteExt;

use super::wire::{self, AppendItem};
use crate::imap::caps::AppendCaps;
use crate::imap::connect::{timed, Connected};
use crate::imap::ImapError;
use crate::plan::mutf7;

/// What became of one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The server took it; APPENDUID when it said (UIDPLUS).
    Appended { uidvalidity: Option<u32>, uid: Option<u32> },
    /// The server refused it (or it is larger than the server takes).
    Refused(String),
}

/// How much to put on the wire at once.
#[derive(Clone, Copy, Debug)]
pub struct Pipeline {
    /// Messages per APPEND command when the server has MULTIAPPEND (1 = never).
    pub per_command: usize,
    /// Bytes per MULTIAPPEND command.
    pub command_bytes: usize,
    /// Commands written but not yet answered.
    pub window: usize,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            per_command: 50,
            command_bytes: 8 << 20,
            window: 16,
        }
    }
}

/// Appends `items` to `mailbox` (decoded name, target separator); one outcome per
/// item, in order. An `Err` means the connection failed: items without an outcome
/// then may or may not be on the server (the ledger's intents cover them).
pub async fn append(
    c: &mut Connected,
    server: &str,
    t: Duration,
    mailbox: &str,
    items: &[AppendItem<'_>],
    pipeline: Pipeline,
) -> Result<Vec<AppendOutcome>, ImapError> {
    let caps = c.caps.append;
    let remote = mutf7::encode(mailbox);
    let mut outcomes: Vec<Option<AppendOutcome>> = vec![None; items.len()];
    let mut eligible = Vec::with_capacity(items.len());
    for (i, it) in items.iter().enumerate() {
        match caps.append_limit {
            Some(limit) if it.raw.len() as u64 > limit => {
                outcomes[i] = Some(AppendOutcome::Refused(format!(
                    "{} bytes is more than the server's APPENDLIMIT of {limit}",
                    it.raw.len()
                )))
            }
            _ => eligible.push(i),
        }
    }
    let per_command = if caps.multiappend {
        pipeline.per_command.max(1)
    } else {
        1
    };
    let mut groups = group(&eligible, items, per_command, pipeline.command_bytes);
    let mut run = Run {
        c,
        server,
        t,
        mailbox,
        remote: &remote,
        caps,
        items,
        outcomes: &mut outcomes,
        inflight: HashMap::new(),
        next_tag: 0,
    };
    // A refused MULTIAPPEND appended nothing (it is atomic): its messages go again,
    // one per command, so each gets its own answer.
    for _round in 0..2 {
        let retry = run.send_all(&groups, pipeline.window.max(1)).await?;
        if retry.is_empty() {
            break;
        }
        groups = retry.into_iter().map(|i| vec![i]).collect();
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| AppendOutcome::Refused("no answer from the server".into())))
        .collect())
}

/// Splits `indices` into commands of at most `per_command` messages and about
/// `max_bytes` (a larger message goes alone).
fn group(indices: &[usize], items: &[AppendItem<'_>], per_command: usize, max_bytes: usize) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    let mut bytes = 0;
    for &i in indices {
        let len = items[i].raw.len();
        if !cur.is_empty() && (cur.len() >= per_command || bytes + len > max_bytes) {
            groups.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        cur.push(i);
        bytes += len;
    }
    if !cur.is_empty() {
        groups.push(cur);
    }
    groups
}

struct Run<'a, 'b> {
    c: &'a mut Connected,
    server: &'a str,
    t: Duration,
    mailbox: &'a str,
    remote: &'a str,
    caps: AppendCaps,
    items: &'a [AppendItem<'b>],
    outcomes: &'a mut [Option<AppendOutcome>],
    /// Tag → the items of that command.
    inflight: HashMap<String, Vec<usize>>,
    next_tag: u32,
}

/// What reading one response found.
enum Read {
    Continue,
    Done(String),
    Other,
}

impl Run<'_, '_> {
    fn what(&self) -> String {
        format!("APPEND to {}", self.mailbox)
    }

    /// Sends every group, pipelined; returns the items of refused multi-message
    /// commands.
    async fn send_all(&mut self, groups: &[Vec<usize>], window: usize) -> Result<Vec<usize>, ImapError> {
        let mut retry = Vec::new();
        for g in groups {
            while self.inflight.len() >= window {
                self.read_one(&mut retry).await?;
            }
            self.next_tag += 1;
            let tag = format!("R{}", self.next_tag);
            let items: Vec<AppendItem<'_>> = g.iter().map(|&i| self.items[i]).collect();
            let cmd = wire::append(&tag, self.remote, &items, &self.caps);
            self.inflight.insert(tag.clone(), g.clone());
            let last = cmd.pieces.len() - 1;
            for (n, piece) in cmd.pieces.iter().enumerate() {
                self.write(piece, n == last).await?;
                if n < last && !self.wait_continue(&tag, &mut retry).await? {
                    // Refused before its literal was sent: the command is over.
                    break;
                }
            }
        }
        while !self.inflight.is_empty() {
            self.read_one(&mut retry).await?;
        }
        Ok(retry)
    }

    async fn write(&mut self, bytes: &[u8], flush: bool) -> Result<(), ImapError> {
        let what = self.what();
        let (server, t) = (self.server, self.t);
        let stream = self.c.session.get_mut();
        let r = tokio::time::timeout(t.max(Duration::from_secs(1)) * 4, async {
            stream.write_all(bytes).await?;
            if flush {
                stream.flush().await?;
            }
            Ok::<_, std::io::Error>(())
        })
        .await;
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ImapError::Lost {
                server: server.into(),
                what,
                detail: e.to_string(),
            }),
            Err(_) => Err(ImapError::Timeout {
                server: server.into(),
                what,
                seconds: t.as_secs() * 4,
            }),
        }
    }

    /// Reads until the server's `+` for `tag`'s literal (`true`), or `tag` completes
    /// without it (`false`: refused).
    async fn wait_continue(&mut self, tag: &str, retry: &mut Vec<usize>) -> Result<bool, ImapError> {
        // Bounded: each pass consumes one response line, and the server owes us
        // at most one completion per command in flight before the `+`.
        for _ in 0..1_000_000 {
            match self.read_one(retry).await? {
                Read::Continue => return Ok(true),
                Read::Done(t) if t == tag => return Ok(false),
                _ => {}
            }
        }
        Err(ImapError::Protocol {
            server: self.server.into(),
            what: self.what(),
            detail: "no continuation after a million responses".into(),
        })
    }

    /// Reads one response and records what it completes.
    async fn read_one(&mut self, retry: &mut Vec<usize>) -> Result<Read, ImapError> {
        let what = self.what();
        let server = self.server;
        let resp = timed(self.t, server, &what, async {
            self.c.session.read_response().await.map_err(|e| ImapError::Lost {
                server: server.into(),
                what: what.clone(),
                detail: e.to_string(),
            })
        })
        .await?
        .ok_or_else(|| ImapError::Lost {
            server: server.into(),
            what: self.what(),
            detail: "the server closed the connection".into(),
        })?;
        match resp.parsed() {
            Response::Continue(_) => Ok(Read::Continue),
            Response::Done { tag, status, outcome } => {
                let Some(group) = self.inflight.remove(&tag.0) else {
                    // Not ours (a tag async-imap used earlier): nothing to record.
                    return Ok(Read::Other);
                };
                if *status == Status::Ok {
                    let uids = match (&outcome.code, self.caps.uidplus) {
                        (Some(ResponseCode::AppendUid(v, set)), true) => {
                            wire::expand_uid_set(set, group.len()).map(|u| (*v, u))
                        }
                        _ => None,
                    };
                    for (n, &i) in group.iter().enumerate() {
                        let (uidvalidity, uid) = match &uids {
                            Some((v, u)) if u.len() == group.len() => (Some(*v), Some(u[n])),
                            Some((v, _)) => (Some(*v), None),
                            None => (None, None),
                        };
                        self.outcomes[i] = Some(AppendOutcome::Appended { uidvalidity, uid });
                    }
                } else if group.len() > 1 {
                    retry.extend(group);
                } else {
                    let words = outcome.information.as_deref().unwrap_or("").trim();
                    let code = outcome.code.as_ref().map(|c| format!("[{c:?}] ")).unwrap_or_default();
                    let status = format!("{status:?}").to_ascii_uppercase();
                    self.outcomes[group[0]] = Some(AppendOutcome::Refused(format!("{status} {code}{words}")));
                }
                Ok(Read::Done(tag.0.clone()))
            }
            Response::Data {
                status: Status::Bye,
                outcome,
            } => Err(ImapError::Lost {
                server: server.into(),
                what: self.what(),
                detail: format!("the server said BYE: {}", outcome.information.as_deref().unwrap_or("")),
            }),
            _ => Ok(Read::Other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Flags;

    /// APPENDs in flight cover the bandwidth-delay product of 1 Gbit/s at 100 ms
    /// (12.5 MB) with messages of 16 KB (the main corpus's mean), so the link does
    /// not wait for answers.
    #[test]
    fn the_append_window_covers_the_bandwidth_delay_product_of_a_fast_wan() {
        let p = Pipeline::default();
        let bdp = 1_000_000_000 / 8 / 10;
        assert!(p.window * p.per_command * 16_000 >= bdp, "{p:?}");
        assert!(p.window * p.command_bytes >= 2 * bdp, "{p:?}");
    }

    #[test]
    fn grouping_respects_count_and_bytes() {
        let f = Flags::default();
        let sizes = [10usize, 10, 10, 100, 10, 10];
        let raws: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![b'x'; n]).collect();
        let items: Vec<AppendItem<'_>> = raws
            .iter()
            .map(|r| AppendItem {
                flags: &f,
                internal_date: None,
                raw: r,
            })
            .collect();
        let all: Vec<usize> = (0..items.len()).collect();
        assert_eq!(group(&all, &items, 2, 1000), vec![vec![0, 1], vec![2, 3], vec![4, 5]]);
        assert_eq!(group(&all, &items, 10, 50), vec![vec![0, 1, 2], vec![3], vec![4, 5]]);
        assert_eq!(group(&all, &items, 1, 50).len(), 6);
        assert!(group(&[], &items, 3, 50).is_empty());
    }
}
