//! Finding messages under the paths a user names: maildirs (with Maildir++
//! subfolders), mbox files, and files holding one message each, recursively.
//!
//! Folder names: a maildir's root is `INBOX`, its `.A.B` subfolder `A/B`; a file
//! found under a directory takes the path of its directory relative to the one named
//! (files directly in it take that directory's name); an mbox file is a folder named
//! after the file without extension; Google Takeout's `X-Gmail-Labels` become one
//! placement per label. `--folder` overrides all of these.
//!
//! In a directory, files that do not look like mail (LICENSE, README, CSV…) are
//! skipped and reported. A file named on the command line is imported when it has
//! a mail extension or looks like mail; otherwise (a binary, `Cargo.toml`) it is
//! refused unless [`LocalOptions::force`] is set.
//!
//! Symbolic links: a path named by the user is followed. Inside it, links (to files
//! or directories, in maildirs too) are skipped and reported unless
//! [`LocalOptions::follow_symlinks`] is set; then they are followed and loops are
//! reported. Only regular files are read: a FIFO or a device (`/dev/zero`) is
//! skipped and reported, never read without end.

use std::collections::HashMap;
use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::maildir::{flags_from_name, is_maildir, subfolder_name};
use super::mbox::{from_line_date, sniff, MboxReader};
use super::{Event, LocalOptions, SourceError, Stop};
use crate::mime::header_value;
use crate::model::{Flags, MessageId, PlacementSpec, RawMessage, SourceKey};

/// Why a symbolic link inside a named directory was not read.
const LINK_NOT_FOLLOWED: &str = "symbolic link not followed (--follow-symlinks follows them)";
/// Why a FIFO, socket or device was not read.
const NOT_REGULAR: &str = "not a regular file";

/// File extensions always treated as mail inside directories.
const MAIL_EXTENSIONS: [&str; 6] = ["eml", "msg", "mbox", "mbx", "mail", "raw"];

type Sink<'a> = dyn FnMut(Event) -> Result<(), Stop> + 'a;

struct Reader<'a, 's> {
    opts: &'a LocalOptions,
    sink: &'a mut Sink<'s>,
    /// (mailbox, id) → copies seen so far, for stable `Local` occurrence numbers.
    occurrences: HashMap<(String, MessageId), u32>,
}

/// Reads every message under `paths`, in a stable order, into `sink`.
pub fn read_paths(paths: &[PathBuf], opts: &LocalOptions, sink: &mut Sink<'_>) -> Result<(), SourceError> {
    let mut r = Reader {
        opts,
        sink,
        occurrences: HashMap::new(),
    };
    for path in paths {
        let _span = tracing::info_span!("source", path = %path.display(), account = %opts.account).entered();
        let meta = fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SourceError::Missing { path: path.clone() },
            _ => SourceError::Io {
                path: path.clone(),
                source: e,
            },
        })?;
        if meta.is_dir() {
            if is_maildir(path) {
                r.maildir(path, None)?;
            } else {
                r.directory(path)?;
            }
        } else {
            r.file(path, "INBOX", true)?;
        }
    }
    Ok(())
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn mtime(path: &Path) -> Option<i64> {
    let t = fs::metadata(path).ok()?.modified().ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64)
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

/// Header fields that mark a file as mail (at least one must be present).
const MAIL_FIELDS: [&str; 16] = [
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "received",
    "return-path",
    "mime-version",
    "content-type",
    "delivered-to",
    "reply-to",
    "sender",
    "in-reply-to",
    "references",
    "x-from",
];

/// Does the start of a file look like a message? Either a `From ` line, or a header
/// section: every line up to the first empty one (or the end of `head`) is a header
/// field (`name:`, obsolete `name :`) or a folded continuation, and at least one
/// field is a common mail field.
pub fn looks_like_mail(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    if head.starts_with(b"From ") {
        return true;
    }
    let mut known = false;
    let mut lines = head.split(|&c| c == b'\n').peekable();
    let mut first = true;
    while let Some(line) = lines.next() {
        if lines.peek().is_none() && !head.ends_with(b"\n") {
            break; // a partial last line of the sample
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if matches!(line[0], b' ' | b'\t') {
            if first {
                return false;
            }
            continue;
        }
        first = false;
        let name_len = line
            .iter()
            .take_while(|&&c| (b'!'..=b'~').contains(&c) && c != b':')
            .count();
        if name_len == 0 || line[name_len..].iter().find(|&&c| c != b' ' && c != b'\t') != Some(&b':') {
            return false;
        }
        let name = String::from_utf8_lossy(&line[..name_len]).to_ascii_lowercase();
        known |= MAIL_FIELDS.contains(&name.as_str());
    }
    known
}

impl Reader<'_, '_> {
    fn folder(&self, derived: &str) -> String {
        self.opts.folder.clone().unwrap_or_else(|| derived.to_string())
    }

    fn emit(&mut self, raw: Vec<u8>, mailboxes: Vec<String>, flags: Flags, date: Option<i64>) -> Result<(), Stop> {
        let id = self.opts.ids.id(&raw);
        let placements = mailboxes
            .into_iter()
            .map(|mailbox| {
                let n = self.occurrences.entry((mailbox.clone(), id)).or_insert(0);
                let occurrence = *n;
                *n += 1;
                PlacementSpec {
                    account: self.opts.account.clone(),
                    mailbox,
                    source: SourceKey::Local { occurrence },
                    flags: flags.clone(),
                    internal_date: date,
                }
            })
            .collect();
        (self.sink)(Event::Message(RawMessage { id, raw, placements }))
    }

    fn skip(&mut self, path: &Path, reason: &str) -> Result<(), Stop> {
        (self.sink)(Event::Skipped {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        })
    }

    fn directory(&mut self, root: &Path) -> Result<(), SourceError> {
        let root_name = root
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "INBOX".into());
        let mut it = walkdir::WalkDir::new(root)
            .follow_links(self.opts.follow_symlinks)
            .sort_by_file_name()
            .min_depth(1)
            .into_iter()
            .filter_entry(|e| !is_hidden(e.file_name()));
        while let Some(entry) = it.next() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let path = e.path().unwrap_or(root).to_path_buf();
                    self.skip(&path, &format!("unreadable: {e}"))?;
                    continue;
                }
            };
            let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
            let rel_dir = rel
                .parent()
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            if entry.file_type().is_symlink() {
                // Only seen when links are not followed.
                self.skip(entry.path(), LINK_NOT_FOLLOWED)?;
                continue;
            }
            if entry.file_type().is_dir() {
                if is_maildir(entry.path()) {
                    self.maildir(entry.path(), Some(&rel.to_string_lossy()))?;
                    it.skip_current_dir();
                }
                continue;
            }
            if !entry.file_type().is_file() {
                self.skip(entry.path(), NOT_REGULAR)?;
                continue;
            }
            let folder = if rel_dir.is_empty() { root_name.clone() } else { rel_dir };
            self.file(entry.path(), &folder, false)?;
        }
        Ok(())
    }

    /// One file: an mbox, or a single message. `explicit`: named by the user.
    fn file(&mut self, path: &Path, folder: &str, explicit: bool) -> Result<(), SourceError> {
        let mut f = fs::File::open(path).map_err(io_err(path))?;
        let mut head = Vec::with_capacity(4096);
        (&mut f).take(4096).read_to_end(&mut head).map_err(io_err(path))?;
        if head.is_empty() {
            self.skip(path, "empty file")?;
            return Ok(());
        }
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if sniff(&head) {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mbox_folder = match (explicit, ext == "mbox" || ext == "mbx") {
                (_, false) => folder.to_string(),
                (true, true) => stem,
                (false, true) => format!("{folder}/{stem}"),
            };
            drop(f);
            // A `.eml`-style file with an envelope line holds one message whose
            // final line break is its own; a real mbox's last one is a separator.
            let single = MAIL_EXTENSIONS.contains(&ext.as_str()) && ext != "mbox" && ext != "mbx";
            return self.mbox(path, &mbox_folder, single);
        }
        if !MAIL_EXTENSIONS.contains(&ext.as_str()) && !looks_like_mail(&head) {
            if !explicit {
                self.skip(
                    path,
                    "does not look like mail (name it with --force to import it anyway)",
                )?;
                return Ok(());
            }
            if !self.opts.force {
                (self.sink)(Event::Refused {
                    path: path.to_path_buf(),
                    reason: "does not look like mail: it has no header section (--force imports it as it is)".into(),
                })?;
                return Ok(());
            }
        }
        let mut raw = head;
        let len = f.metadata().map(|m| m.len() as usize).unwrap_or(0);
        raw.reserve_exact(len.saturating_sub(raw.len()));
        f.read_to_end(&mut raw).map_err(io_err(path))?;
        let folder = self.folder(folder);
        self.emit(raw, vec![folder], Flags::default(), mtime(path))?;
        Ok(())
    }

    fn mbox(&mut self, path: &Path, folder: &str, single: bool) -> Result<(), SourceError> {
        let f = fs::File::open(path).map_err(io_err(path))?;
        let mut reader = MboxReader::new(BufReader::with_capacity(256 * 1024, f), self.opts.mbox_format);
        if single {
            reader = reader.keep_final_line_break();
        }
        let default_folder = self.folder(folder);
        while let Some(m) = reader.next_message().map_err(io_err(path))? {
            if m.from_line.is_empty() {
                (self.sink)(Event::Warning {
                    path: path.to_path_buf(),
                    message: "text before the first `From ` line imported as a message of its own".into(),
                })?;
            }
            let (mailboxes, flags) = match header_value(&m.raw, "X-Gmail-Labels") {
                Some(labels) if self.opts.folder.is_none() => gmail_labels(&labels, &default_folder),
                _ => (vec![default_folder.clone()], Flags::default()),
            };
            let date = from_line_date(&m.from_line);
            self.emit(m.raw, mailboxes, flags, date)?;
        }
        Ok(())
    }

    /// Why a maildir entry is not read: a link not to be followed, or not (linking
    /// to) a regular file. `None`: read it.
    fn unreadable_entry(&self, e: &fs::DirEntry) -> Option<&'static str> {
        let t = e.file_type().ok()?;
        if t.is_symlink() {
            if !self.opts.follow_symlinks {
                return Some(LINK_NOT_FOLLOWED);
            }
            return (!e.path().is_file()).then_some(NOT_REGULAR);
        }
        (!t.is_file()).then_some(NOT_REGULAR)
    }

    fn maildir(&mut self, dir: &Path, base: Option<&str>) -> Result<(), SourceError> {
        let root_folder = base.map(str::to_string).unwrap_or_else(|| "INBOX".into());
        let mut folders = vec![(dir.to_path_buf(), root_folder.clone())];
        let mut children: Vec<_> = fs::read_dir(dir).map_err(io_err(dir))?.filter_map(|e| e.ok()).collect();
        children.sort_by_key(|e| e.file_name());
        for child in children {
            let name = child.file_name().to_string_lossy().into_owned();
            if let Some(sub) = subfolder_name(&name) {
                if !self.opts.follow_symlinks && child.file_type().is_ok_and(|t| t.is_symlink()) {
                    self.skip(&child.path(), LINK_NOT_FOLLOWED)?;
                    continue;
                }
                if is_maildir(&child.path()) {
                    let folder = match base {
                        Some(b) => format!("{b}/{sub}"),
                        None => sub,
                    };
                    folders.push((child.path(), folder));
                }
            }
        }
        for (path, folder) in folders {
            let folder = self.folder(&folder);
            let keywords = read_keywords(&path.join(super::maildir::KEYWORDS_FILE));
            for sub in ["cur", "new"] {
                let d = path.join(sub);
                let mut files: Vec<_> = fs::read_dir(&d).map_err(io_err(&d))?.filter_map(|e| e.ok()).collect();
                files.sort_by_key(|e| e.file_name());
                for f in files {
                    let p = f.path();
                    if is_hidden(&f.file_name()) {
                        continue;
                    }
                    if let Some(why) = self.unreadable_entry(&f) {
                        self.skip(&p, why)?;
                        continue;
                    }
                    let raw = fs::read(&p).map_err(io_err(&p))?;
                    if raw.is_empty() {
                        self.skip(&p, "empty file")?;
                        continue;
                    }
                    let flags = flags_from_name(&f.file_name().to_string_lossy(), sub == "new", &keywords);
                    self.emit(raw, vec![folder.clone()], flags, mtime(&p))?;
                }
            }
        }
        Ok(())
    }
}

/// A maildir's keyword file, when it is a regular file (not a link) of at most
/// 64 KiB (26 keywords need far less); otherwise no keywords.
fn read_keywords(path: &Path) -> Vec<Option<String>> {
    const MAX: u64 = 64 << 10;
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() && m.len() <= MAX => fs::read(path)
            .map(|b| super::maildir::parse_keywords(&String::from_utf8_lossy(&b)))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Google Takeout labels → folders and flags. `Opened`/`Unread` and `Starred` are
/// flags, `Category …` tabs are dropped, `Inbox` is `INBOX`.
fn gmail_labels(header: &str, fallback: &str) -> (Vec<String>, Flags) {
    let mut folders = Vec::new();
    let mut flags = Flags::default();
    let mut labels = Vec::new();
    let (mut cur, mut quoted) = (String::new(), false);
    for c in header.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => labels.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    labels.push(cur);
    for l in labels.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
        match l {
            "Opened" => flags.system |= Flags::SEEN,
            "Unread" => {}
            "Starred" => flags.system |= Flags::FLAGGED,
            "Inbox" => folders.push("INBOX".to_string()),
            l if l.starts_with("Category ") => {}
            l => folders.push(l.replace('\0', "")),
        }
    }
    if folders.is_empty() {
        folders.push(fallback.to_string());
    }
    folders.dedup();
    (folders, flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_label_table() {
        let (f, fl) = gmail_labels("Inbox,Important,Opened,Category Personal,\"Work, 2020\"", "x");
        assert_eq!(f, vec!["INBOX", "Important", "Work, 2020"]);
        assert_eq!(fl.system, Flags::SEEN);
        assert_eq!(gmail_labels("Unread,Category Updates", "All").0, vec!["All"]);
    }

    #[test]
    fn looks_like_mail_table() {
        for (head, want) in [
            (&b"Return-Path: <a@b>\n"[..], true),
            (b"From a@b Tue Aug  6 12:39:49 2002\n", true),
            (b"Subject :obsolete\n", true),
            (b"\xEF\xBB\xBFFrom: x\n", true),
            (b"The MIT License (MIT)\n", false),
            (b"phish_id,url\n", false),
            (b"# README\n", false),
            (b"HELO example.com\r\n", false),
            (b"Origin: GitHub x\nUnderlying data: y\n", false),
            (b"messages: 6046\nfiles: 6046\nbytes(on disk): 1\n", false),
            (b"Message-ID: <1@x>\r\nDate: Mon\r\nX-Folder: \\a\\b\r\n\r\nbody", true),
            (b"X-Custom: a\n\tfolded\nSubject: s\n\nbody", true),
        ] {
            assert_eq!(looks_like_mail(head), want, "{:?}", String::from_utf8_lossy(head));
        }
    }
}
