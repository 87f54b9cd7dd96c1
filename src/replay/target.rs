//! The replay target's folders over IMAP: LIST read into a [`Target`] (its personal
//! namespace — prefix and separator, from NAMESPACE or else `LIST "" ""` — and the folders
//! there, names decoded from modified UTF-7, with their SPECIAL-USE roles), and
//! CREATE + SUBSCRIBE of the folders a mapping says are missing.

use crate::imap::connect::{timed, Connected};
use crate::imap::folders::Folder;
use crate::imap::pull::list_all;
use crate::imap::ImapError;
use crate::plan::folder_map::{Target, TargetFolder};
use crate::plan::mutf7;
use crate::plan::namespace::{Namespace, NamespaceKind};

/// Lists the target's selectable personal folders.
pub async fn list(c: &mut Connected, server: &str, t: std::time::Duration) -> Result<Target, ImapError> {
    let listed = list_all(c, server, t).await?;
    of_listed(c, server, t, listed).await
}

/// The target made of folders already listed ([`list_all`]); the separator is
/// NAMESPACE's, else `LIST "" ""`'s.
pub async fn of_listed(
    c: &mut Connected,
    server: &str,
    t: std::time::Duration,
    listed: Vec<Folder>,
) -> Result<Target, ImapError> {
    let mut namespace = c
        .namespaces(server, t)
        .await?
        .map_or(Namespace::root(None), |n| n.personal());
    if namespace.separator.is_none() {
        namespace.separator = Some(list_separator(c, server, t).await?);
    }
    let folders = listed
        .into_iter()
        .filter(|f| f.namespace == NamespaceKind::Personal)
        .map(|f| TargetFolder {
            name: mutf7::decode(&f.remote).unwrap_or(f.remote),
            special_use: f.special_use,
        })
        .collect();
    Ok(Target { namespace, folders })
}

/// The hierarchy separator, from `LIST "" ""` (`/` when the server has none).
async fn list_separator(c: &mut Connected, server: &str, t: std::time::Duration) -> Result<char, ImapError> {
    use futures::StreamExt;
    let what = "LIST \"\" \"\"";
    timed(t, server, what, async {
        let mut st = c
            .session
            .list(Some(""), Some(""))
            .await
            .map_err(|e| ImapError::from_client(server, what, e))?;
        let mut sep = None;
        while let Some(n) = st.next().await {
            let n = n.map_err(|e| ImapError::from_client(server, what, e))?;
            sep = sep.or_else(|| n.delimiter().and_then(|d| d.chars().next()));
        }
        Ok(sep.unwrap_or('/'))
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
