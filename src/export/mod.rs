//! Export: write archived messages out as `.eml` files, a Maildir++ tree or mboxrd
//! files, one entry per placement, bytes exactly as archived (each message is
//! rebuilt and hash-checked on the way out).
//!
//! Layout under `--out DIR`, per account:
//! - eml: `DIR/ACCOUNT/FOLDER/ID.eml` (`ID-2.eml`… for further identical copies)
//! - maildir: `DIR/ACCOUNT/` is a Maildir++ root: `INBOX` in `cur/`, folder `A/B` in
//!   `.A.B/cur/`; file names carry the flags, and the message's tags as keyword
//!   letters (`a`…`z`, named by the maildir's `dovecot-keywords` file, as Dovecot
//!   keeps keywords; at most 26 per maildir); mtime is the internal date
//! - mbox: `DIR/ACCOUNT/FOLDER.mbox` (mboxrd, see `source::mbox`)
//!
//! Below `DIR`, nothing is followed or overwritten that is not ours: a symbolic link
//! met as a directory or a file is refused (`O_NOFOLLOW`), and so is an existing file
//! that is not a regular file or has other hard links. New directories are 0700 and
//! files 0600.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use rayon::prelude::*;
use thiserror::Error;

use crate::archive::{Archive, ArchiveError, PlacementEntry, PlacementFilter};
use crate::keys::PlacementKeyParts;
use crate::model::SourceKey;
use crate::source::mbox;
use crate::tags::Tag;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Eml,
    Maildir,
    Mbox,
}

#[derive(Debug, Error)]
pub enum ExportError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing to write {path}: {why} (an export never writes through links or over files it did not make)")]
    NotOurs { path: PathBuf, why: &'static str },
}

#[derive(Debug, Default, serde::Serialize)]
pub struct ExportSummary {
    pub messages: u64,
    pub bytes: u64,
}

/// A folder or account name as a safe relative path (no `..`, no empty parts).
fn safe_components(name: &str) -> PathBuf {
    name.split('/')
        .map(|c| match c {
            "" => "_".to_string(),
            "." | ".." => format!("_{c}"),
            c => c.replace('\0', "_"),
        })
        .collect()
}

/// Maildir++ directory of a folder: `INBOX` is the root, `A/B` is `.A.B`.
fn maildir_dir(root: &Path, mailbox: &str) -> PathBuf {
    if mailbox.eq_ignore_ascii_case("INBOX") {
        return root.to_path_buf();
    }
    let parts: Vec<String> = mailbox
        .split('/')
        .map(|c| {
            if c.is_empty() {
                "_".into()
            } else {
                c.replace(['.', '\0'], "_")
            }
        })
        .collect();
    root.join(format!(".{}", parts.join(".")))
}

fn occurrence_suffix(key: &PlacementKeyParts) -> String {
    match &key.source {
        SourceKey::Local { occurrence: 0 } => String::new(),
        SourceKey::Local { occurrence } => format!("-{}", occurrence + 1),
        SourceKey::Imap { uidvalidity, uid } => format!("-{uidvalidity}-{uid}"),
        SourceKey::Pop3 { uidl } => format!("-{}", uidl.replace(['/', '\0'], "_")),
    }
}

struct Writer {
    out: PathBuf,
    format: ExportFormat,
    current_mbox: Option<(PathBuf, BufWriter<File>)>,
    created: HashSet<PathBuf>,
    counter: u64,
    /// Each maildir's keywords, in letter order (`a` first): the tags its
    /// messages carry, as Dovecot keeps keywords.
    keywords: HashMap<PathBuf, Vec<String>>,
    /// Tags left out because their maildir had 26 keywords already.
    keywords_left_out: u64,
}

impl Writer {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
        move |source| ExportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Creates `dir` (under `out`) one component at a time, refusing a component that
    /// is a symbolic link or not a directory.
    fn mkdir(&mut self, dir: &Path) -> Result<(), ExportError> {
        if self.created.contains(dir) {
            return Ok(());
        }
        crate::private::create_dir_all(&self.out).map_err(Self::io(&self.out))?;
        let below = dir.strip_prefix(&self.out).expect("export paths are under --out");
        let mut at = self.out.clone();
        for part in below.components() {
            at.push(part);
            match fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(not_ours(&at, "it is a symbolic link"));
                }
                Ok(m) if !m.is_dir() => return Err(not_ours(&at, "it is not a directory")),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    use std::os::unix::fs::DirBuilderExt;
                    fs::DirBuilder::new().mode(0o700).create(&at).map_err(Self::io(&at))?;
                }
                Err(e) => return Err(Self::io(&at)(e)),
            }
        }
        self.created.insert(dir.to_path_buf());
        Ok(())
    }

    fn write_file(&mut self, path: &Path, raw: &[u8], date: Option<i64>) -> Result<(), ExportError> {
        let mut f = open_ours(path, true)?;
        f.write_all(raw).map_err(Self::io(path))?;
        if let Some(t) = date.and_then(|t| u64::try_from(t).ok()) {
            f.set_modified(UNIX_EPOCH + Duration::from_secs(t))
                .map_err(Self::io(path))?;
        }
        Ok(())
    }

    /// The info letters of `tags` in maildir `dir` (a new tag takes the next free
    /// letter; past `z` it is left out and counted).
    fn keyword_letters(&mut self, dir: &Path, tags: &BTreeSet<Tag>) -> String {
        let table = self.keywords.entry(dir.to_path_buf()).or_default();
        let mut letters = String::new();
        for t in tags {
            let n = match table.iter().position(|k| k == t.as_str()) {
                Some(n) => n,
                None if table.len() < 26 => {
                    table.push(t.as_str().to_string());
                    table.len() - 1
                }
                None => {
                    self.keywords_left_out += 1;
                    continue;
                }
            };
            letters.push(char::from(b'a' + n as u8));
        }
        let mut sorted: Vec<char> = letters.chars().collect();
        sorted.sort_unstable();
        sorted.into_iter().collect()
    }

    /// Writes each maildir's keyword file.
    fn finish_keywords(&mut self) -> Result<(), ExportError> {
        for (dir, keywords) in std::mem::take(&mut self.keywords) {
            if keywords.is_empty() {
                continue;
            }
            let path = dir.join(crate::source::maildir::KEYWORDS_FILE);
            let mut f = open_ours(&path, true)?;
            f.write_all(crate::source::maildir::keywords_file(&keywords).as_bytes())
                .map_err(Self::io(&path))?;
        }
        if self.keywords_left_out > 0 {
            tracing::warn!(
                left_out = self.keywords_left_out,
                "a maildir holds at most 26 keywords: some messages' tags were left out of the export"
            );
        }
        Ok(())
    }

    fn put(&mut self, p: &PlacementEntry, raw: &[u8], tags: &BTreeSet<Tag>) -> Result<(), ExportError> {
        let account_dir = self.out.join(safe_components(&p.key.account));
        let id = p.record.message.to_hex();
        let date = p.record.internal_date;
        match self.format {
            ExportFormat::Eml => {
                let dir = account_dir.join(safe_components(&p.key.mailbox));
                self.mkdir(&dir)?;
                let path = dir.join(format!("{id}{}.eml", occurrence_suffix(&p.key)));
                self.write_file(&path, raw, date)
            }
            ExportFormat::Maildir => {
                let dir = maildir_dir(&account_dir, &p.key.mailbox);
                for sub in ["cur", "new", "tmp"] {
                    self.mkdir(&dir.join(sub))?;
                }
                self.counter += 1;
                // Upper-case flag letters, then lower-case keywords: ASCII order.
                let letters = format!(
                    "{}{}",
                    p.record.flags.to_maildir_letters(),
                    self.keyword_letters(&dir, tags)
                );
                let name = format!(
                    "{}.M{}P{}.mailvault,S={}:2,{letters}",
                    date.unwrap_or(0),
                    self.counter,
                    &id[..16],
                    raw.len(),
                );
                let tmp = dir.join("tmp").join(&name);
                self.write_file(&tmp, raw, date)?;
                let dest = dir.join("cur").join(&name);
                fs::rename(&tmp, &dest).map_err(Self::io(&dest))
            }
            ExportFormat::Mbox => {
                let mut path = account_dir.join(safe_components(&p.key.mailbox));
                path.as_mut_os_string().push(".mbox");
                if self.current_mbox.as_ref().map(|(p, _)| p) != Some(&path) {
                    self.finish_mbox()?;
                    if let Some(parent) = path.parent() {
                        self.mkdir(parent)?;
                    }
                    // First time this run: start the file afresh; later: append.
                    let fresh = self.created.insert(path.clone());
                    let f = open_ours(&path, fresh)?;
                    self.current_mbox = Some((path.clone(), BufWriter::with_capacity(1 << 20, f)));
                }
                let (_, w) = self.current_mbox.as_mut().expect("opened above");
                mbox::write_message(w, raw, date).map_err(Self::io(&path))
            }
        }
    }

    fn finish_mbox(&mut self) -> Result<(), ExportError> {
        if let Some((path, mut w)) = self.current_mbox.take() {
            w.flush().map_err(Self::io(&path))?;
        }
        Ok(())
    }
}

fn not_ours(path: &Path, why: &'static str) -> ExportError {
    ExportError::NotOurs {
        path: path.to_path_buf(),
        why,
    }
}

/// Opens `path` for writing at its end (emptied first when `truncate`), creating it
/// 0600, without following a symbolic link, and only if it is a regular file with no
/// other hard link (one an earlier export made).
fn open_ours(path: &Path, truncate: bool) -> Result<File, ExportError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        // Non-blocking: a FIFO planted at the path fails instead of hanging the export.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => not_ours(path, "it is a symbolic link"),
            _ => Writer::io(path)(e),
        })?;
    let m = f.metadata().map_err(Writer::io(path))?;
    if !m.is_file() {
        return Err(not_ours(path, "it is not a regular file"));
    }
    if m.nlink() > 1 {
        return Err(not_ours(path, "it has other hard links"));
    }
    if truncate {
        f.set_len(0).map_err(Writer::io(path))?;
    }
    Ok(f)
}

/// Exports every placement matching `filter` (or only `ids`, when given) to `out`.
pub fn export(
    archive: &Archive,
    filter: &PlacementFilter,
    format: ExportFormat,
    out: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportSummary, ExportError> {
    let placements = archive.placements(filter)?;
    let mut w = Writer {
        out: out.to_path_buf(),
        format,
        current_mbox: None,
        created: HashSet::new(),
        counter: 0,
        keywords: HashMap::new(),
        keywords_left_out: 0,
    };
    let mut summary = ExportSummary::default();
    for chunk in placements.chunks(256) {
        let raws: Vec<Result<Vec<u8>, ArchiveError>> =
            chunk.par_iter().map(|p| archive.get_raw(&p.record.message)).collect();
        // Tags travel as maildir keywords; the other formats have no place for them.
        let tags = if format == ExportFormat::Maildir {
            let ids: Vec<_> = chunk.iter().map(|p| p.record.message).collect();
            archive.tags_of_many(&ids)?
        } else {
            vec![BTreeSet::new(); chunk.len()]
        };
        for ((p, raw), tags) in chunk.iter().zip(raws).zip(&tags) {
            let raw = raw?;
            w.put(p, &raw, tags)?;
            summary.messages += 1;
            summary.bytes += raw.len() as u64;
        }
        progress(summary.messages);
    }
    w.finish_mbox()?;
    w.finish_keywords()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_escape_the_output() {
        assert_eq!(safe_components("../../etc"), PathBuf::from("_../_../etc"));
        assert_eq!(safe_components("a//b"), PathBuf::from("a/_/b"));
        assert_eq!(maildir_dir(Path::new("/o"), "INBOX"), PathBuf::from("/o"));
        assert_eq!(
            maildir_dir(Path::new("/o"), "Sent/2020.1"),
            PathBuf::from("/o/.Sent.2020_1")
        );
    }
}
