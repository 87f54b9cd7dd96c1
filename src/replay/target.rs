//! The replay target's folders over IMAP: LIST read into [`TargetFolder`]s (names
//! decoded from modified UTF-7, in the target's own hierarchy separator, with their
//! SPECIAL-USE roles), and CREATE + SUBSCRIBE of the folders a mapping says are
//! missing.

use futures::StreamExt;

use crate::imap::connect::{timed, Connected};
use crate::imap::folders::folder_from_list;
use crate::imap::ImapError;
use crate::plan::folder_map::TargetFolder;
use crate::plan::mutf7;

/// What the target has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetFolders {
    /// The hierarchy separator (`/` when the server reports none).
    pub separator: char,
    pub folders: Vec<TargetFolder>,
}

/// Lists the target's selectable folders.
pub async fn list(c: &mut Connected, server: &str, t: std::time::Duration) -> Result<TargetFolders, ImapError> {
    let what = "LIST";
    timed(t, server, what, async {
        let mut st = c
            .session
            .list(Some(""), Some("*"))
            .await
            .map_err(|e| ImapError::from_client(server, what, e))?;
        let mut separator = None;
        let mut folders = Vec::new();
        while let Some(n) = st.next().await {
            let n = n.map_err(|e| ImapError::from_client(server, what, e))?;
            if separator.is_none() {
                separator = n.delimiter().and_then(|d| d.chars().next());
            }
            if let Some(f) = folder_from_list(n.name(), n.delimiter(), n.attributes()) {
                folders.push(TargetFolder {
                    name: mutf7::decode(&f.remote).unwrap_or(f.remote),
                    special_use: f.special_use,
                });
            }
        }
        Ok(TargetFolders {
            separator: separator.unwrap_or('/'),
            folders,
        })
    })
    .await
}

/// Creates `name` (decoded, in the target's separator) and subscribes to it. A folder
/// that already exists is not an error (another run, or a parent created implicitly).
pub async fn create(c: &mut Connected, server: &str, t: std::time::Duration, name: &str) -> Result<(), ImapError> {
    let remote = mutf7::encode(name);
    let what = format!("CREATE {name}");
    timed(t, server, &what, async {
        if let Err(e) = c.session.create(&remote).await {
            let text = e.to_string();
            if !text.contains("ALREADYEXISTS") && !text.to_ascii_lowercase().contains("already exists") {
                return Err(ImapError::from_client(server, &what, e));
            }
        }
        c.session
            .subscribe(&remote)
            .await
            .map_err(|e| ImapError::from_client(server, &format!("SUBSCRIBE {name}"), e))
    })
    .await
}
