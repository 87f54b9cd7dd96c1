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
use crate::plan::folder_map::{map_folder, Mapping, Target};
use crate::plan::mutf7;
use crate::plan::namespace::NamespaceKind;
use crate::remote::ConnectOptions;

/// One folder of an account as read.
pub struct ReadFolder {
    /// The name as the server spells it, decoded.
    pub server_name: String,
    /// The name relative to the personal namespace, `/`-separated (the archive's).
    pub name: String,
    pub special_use: String,
    pub messages: Vec<Held>,
}

/// One account as read: its personal folders.
pub struct Account {
    /// The personal namespace and folders, as a replay into this account sees them.
    pub target: Target,
    pub folders: Vec<ReadFolder>,
}

impl Account {
    pub fn messages(&self) -> usize {
        self.folders.iter().map(|f| f.messages.len()).sum()
    }
}

/// Reads every selectable personal folder of the account `o` logs in to.
pub async fn read_account(o: &ConnectOptions) -> Result<Account, ImapError> {
    let server = o.endpoint.to_string();
    let t = o.io_timeout;
    let mut c = connect(o).await?;
    let listed = crate::imap::pull::list_all(&mut c, &server, t).await?;
    let target = target::of_listed(&mut c, &server, t, listed.clone()).await?;
    let mut folders = Vec::new();
    for f in listed.into_iter().filter(|f| f.namespace == NamespaceKind::Personal) {
        let server_name = mutf7::decode(&f.remote).unwrap_or_else(|_| f.remote.clone());
        let messages = read_folder(&mut c, &server, t, &f.remote, &server_name).await?;
        folders.push(ReadFolder {
            server_name,
            name: f.name,
            special_use: f.special_use,
            messages,
        });
    }
    let _ = tokio::time::timeout(t, c.session.logout()).await;
    Ok(Account { target, folders })
}

async fn read_folder(
    c: &mut Connected,
    server: &str,
    t: Duration,
    remote: &str,
    name: &str,
) -> Result<Vec<Held>, ImapError> {
    let what = format!("reading {name}");
    timed(t * 8, server, &what, async {
        let mb = c
            .session
            .examine(remote)
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

/// The differences between `a` and `b`, A's folders (named relative to A's personal
/// namespace) mapped as a replay from A to B maps them: rules, SPECIAL-USE roles
/// unless `how.roles` is off, INBOX, B's prefix and separator.
pub fn differences(a: &Account, b: &Account, how: &Mapping) -> Vec<Difference> {
    let mut wanted = Vec::new();
    for f in &a.folders {
        let to = map_folder(&f.name, &f.special_use, how, &b.target).name;
        wanted.extend(f.messages.iter().map(|h| Held {
            folder: to.clone(),
            ..h.clone()
        }));
    }
    let have: Vec<Held> = b.folders.iter().flat_map(|f| f.messages.iter().cloned()).collect();
    diff(&wanted, &have)
}
