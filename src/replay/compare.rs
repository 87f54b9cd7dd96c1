//! `mailvault compare`: read two accounts over IMAP — every selectable folder,
//! every message's bytes (hashed), flags and INTERNALDATE — map A's folders the way
//! a replay would, and list the differences ([`crate::plan::compare`]).

use std::time::Duration;

use futures::StreamExt;

use super::target;
use crate::imap::connect::{connect, timed, Connected};
use crate::imap::ImapError;
use crate::model::Hash32;
use crate::plan::compare::{diff, Difference, Held};
use crate::plan::folder_map::{map_folder, Rule};
use crate::plan::mutf7;
use crate::remote::ConnectOptions;

/// One account as read.
pub struct Account {
    pub separator: char,
    /// (folder as the server names it, decoded, its SPECIAL-USE role, its messages).
    pub folders: Vec<(String, String, Vec<Held>)>,
}

impl Account {
    pub fn messages(&self) -> usize {
        self.folders.iter().map(|(_, _, m)| m.len()).sum()
    }
}

/// Reads every selectable folder of the account `o` logs in to.
pub async fn read_account(o: &ConnectOptions) -> Result<Account, ImapError> {
    let server = o.endpoint.to_string();
    let t = o.io_timeout;
    let mut c = connect(o).await?;
    let listed = target::list(&mut c, &server, t).await?;
    let mut folders = Vec::new();
    for f in &listed.folders {
        let held = read_folder(&mut c, &server, t, &f.name).await?;
        folders.push((f.name.clone(), f.special_use.clone(), held));
    }
    let _ = tokio::time::timeout(t, c.session.logout()).await;
    Ok(Account {
        separator: listed.separator,
        folders,
    })
}

async fn read_folder(c: &mut Connected, server: &str, t: Duration, name: &str) -> Result<Vec<Held>, ImapError> {
    let remote = mutf7::encode(name);
    let what = format!("reading {name}");
    timed(t * 8, server, &what, async {
        let mb = c
            .session
            .examine(&remote)
            .await
            .map_err(|e| ImapError::from_client(server, &what, e))?;
        let mut out = Vec::new();
        if mb.exists == 0 {
            return Ok(out);
        }
        let mut st = c
            .session
            .uid_fetch("1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
            .await
            .map_err(|e| ImapError::from_client(server, &what, e))?;
        while let Some(f) = st.next().await {
            let f = f.map_err(|e| ImapError::from_client(server, &what, e))?;
            let Some(body) = f.body() else { continue };
            let mut flags = crate::imap::sync::flags_of(&f).names();
            flags.sort();
            out.push(Held {
                folder: name.to_string(),
                message: Hash32::of(body),
                flags,
                internal_date: f.internal_date().map(|d| d.timestamp()),
            });
        }
        Ok(out)
    })
    .await
}

/// The differences between `a` and `b`, A's folders mapped with `rules` (and
/// SPECIAL-USE roles, INBOX, the separators) as a replay from A to B maps them.
pub fn differences(a: &Account, b: &Account, rules: &[Rule]) -> Vec<Difference> {
    let targets: Vec<crate::plan::folder_map::TargetFolder> = b
        .folders
        .iter()
        .map(|(name, role, _)| crate::plan::folder_map::TargetFolder {
            name: name.clone(),
            special_use: role.clone(),
        })
        .collect();
    let mut wanted = Vec::new();
    for (name, role, held) in &a.folders {
        // The archive's spelling: components joined by `/`.
        let slashed = name.replace(a.separator, "/");
        let to = map_folder(&slashed, role, rules, &targets, b.separator).name;
        wanted.extend(held.iter().map(|h| Held {
            folder: to.clone(),
            ..h.clone()
        }));
    }
    let have: Vec<Held> = b.folders.iter().flat_map(|(_, _, h)| h.iter().cloned()).collect();
    diff(&wanted, &have)
}
