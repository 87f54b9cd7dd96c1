//! Looking at the target: a mailbox's UIDVALIDITY, and which of its messages are
//! byte-for-byte a given message — how a pending intent (a crash between writing
//! it and recording the APPEND) is resolved without trusting anything but bytes.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;

use super::wire;
use crate::imap::connect::{timed, Connected};
use crate::imap::ImapError;
use crate::model::MessageId;
use crate::plan::mutf7;

/// Fetched per command when comparing candidates' bodies.
const BODIES_PER_FETCH: usize = 200;

/// An existing mailbox's UIDVALIDITY and UIDNEXT (STATUS; nothing selected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MailboxStatus {
    pub uidvalidity: u32,
    pub uidnext: u32,
}

pub async fn status(c: &mut Connected, server: &str, t: Duration, mailbox: &str) -> Result<MailboxStatus, ImapError> {
    let remote = mutf7::encode(mailbox);
    let what = format!("STATUS {mailbox}");
    let mb = timed(t, server, &what, async {
        c.session
            .status(&remote, "(UIDVALIDITY UIDNEXT)")
            .await
            .map_err(|e| ImapError::from_client(server, &what, e))
    })
    .await?;
    match (mb.uid_validity, mb.uid_next) {
        (Some(uidvalidity), Some(uidnext)) => Ok(MailboxStatus { uidvalidity, uidnext }),
        _ => Err(ImapError::Mailbox {
            server: server.into(),
            mailbox: mailbox.into(),
            detail: "STATUS gave no UIDVALIDITY or UIDNEXT".into(),
        }),
    }
}

/// Which of the `wanted` messages (id of the bytes as IMAP delivers them → their
/// size) are in the selected mailbox at UIDs from `from` on: sizes first, then the
/// bodies of the candidates of a wanted size, hashed. For intents recorded with
/// that UIDNEXT, this is every place the APPEND could have put them.
pub async fn find_since(
    c: &mut Connected,
    server: &str,
    t: Duration,
    mailbox: &str,
    from: u32,
    wanted: &HashMap<MessageId, u64>,
) -> Result<HashMap<MessageId, Vec<u32>>, ImapError> {
    let sizes: HashSet<u64> = wanted.values().copied().collect();
    let what = format!("UID FETCH {from}:* sizes in {mailbox}");
    let mut candidates = Vec::new();
    timed(t * 4, server, &what, async {
        let mut st = c
            .session
            .uid_fetch(format!("{}:*", from.max(1)), "(UID RFC822.SIZE)")
            .await
            .map_err(|e| ImapError::from_client(server, &what, e))?;
        while let Some(f) = st.next().await {
            let f = f.map_err(|e| ImapError::from_client(server, &what, e))?;
            // `n:*` past the last UID still names the last message: filter.
            if let (Some(uid), Some(size)) = (f.uid, f.size) {
                if uid >= from && sizes.contains(&u64::from(size)) {
                    candidates.push(uid);
                }
            }
        }
        Ok(())
    })
    .await?;
    candidates.sort_unstable();
    candidates.dedup();
    let mut found: HashMap<MessageId, Vec<u32>> = HashMap::new();
    for (id, uid) in hashed_bodies(c, server, t, mailbox, &candidates, |id| wanted.contains_key(id)).await? {
        found.entry(id).or_default().push(uid);
    }
    Ok(found)
}

/// Selects `mailbox` read-only for searching; returns its UIDVALIDITY.
pub async fn examine(c: &mut Connected, server: &str, t: Duration, mailbox: &str) -> Result<u32, ImapError> {
    let remote = mutf7::encode(mailbox);
    let what = format!("EXAMINE {mailbox}");
    let mb = timed(t, server, &what, async {
        c.session
            .examine(&remote)
            .await
            .map_err(|e| ImapError::from_client(server, &what, e))
    })
    .await?;
    mb.uid_validity.ok_or_else(|| ImapError::Mailbox {
        server: server.into(),
        mailbox: mailbox.into(),
        detail: "EXAMINE gave no UIDVALIDITY".into(),
    })
}

/// The UIDs, in the selected mailbox, of messages whose bytes are `raw`'s (as IMAP
/// delivers them: CRLF line ends): SEARCH by Message-ID and size, then FETCH the
/// candidates and compare BLAKE3 hashes. Every candidate is looked at (a SEARCH by
/// size alone can match thousands): bodies are fetched [`BODIES_PER_FETCH`] at a time
/// and only their hashes kept, so memory is bounded by a chunk, not by the count.
pub async fn find(
    c: &mut Connected,
    server: &str,
    t: Duration,
    mailbox: &str,
    raw: &[u8],
) -> Result<Vec<u32>, ImapError> {
    let wanted_bytes = wire::crlf(raw);
    let wanted = MessageId::of(&wanted_bytes);
    let criteria = wire::search_criteria(wire::message_id(raw).as_deref(), wanted_bytes.len() as u64);
    let what = format!("UID SEARCH in {mailbox}");
    let mut uids: Vec<u32> = timed(t, server, &what, async {
        c.session
            .uid_search(&criteria)
            .await
            .map_err(|e| ImapError::from_client(server, &what, e))
    })
    .await?
    .into_iter()
    .collect();
    uids.sort_unstable();
    Ok(hashed_bodies(c, server, t, mailbox, &uids, |id| *id == wanted)
        .await?
        .into_iter()
        .map(|(_, uid)| uid)
        .collect())
}

/// FETCHes the bodies of `uids` (in commands of [`BODIES_PER_FETCH`]) and returns
/// (BLAKE3 of the body, UID) for those `keep` accepts, in UID order, each UID once.
async fn hashed_bodies(
    c: &mut Connected,
    server: &str,
    t: Duration,
    mailbox: &str,
    uids: &[u32],
    keep: impl Fn(&MessageId) -> bool,
) -> Result<Vec<(MessageId, u32)>, ImapError> {
    let mut out = Vec::new();
    for chunk in uids.chunks(BODIES_PER_FETCH) {
        let set = chunk.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let what = format!("UID FETCH candidates in {mailbox}");
        timed(t * 4, server, &what, async {
            let mut st = c
                .session
                .uid_fetch(&set, "(UID BODY.PEEK[])")
                .await
                .map_err(|e| ImapError::from_client(server, &what, e))?;
            while let Some(f) = st.next().await {
                let f = f.map_err(|e| ImapError::from_client(server, &what, e))?;
                if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                    let id = MessageId::of(body);
                    if keep(&id) {
                        out.push((id, uid));
                    }
                }
            }
            Ok(())
        })
        .await?;
    }
    out.sort_unstable_by_key(|(_, uid)| *uid);
    out.dedup_by_key(|(_, uid)| *uid);
    Ok(out)
}
