//! The access log: who read what, when. Every read of message content or of
//! search results — the command line's `search`, `show`, `export` and `replay`,
//! and the web interface to come — appends one entry to `ARCHIVE/access.log`
//! before anything is shown, and a read whose entry cannot be written is refused.
//!
//! The file is the archive owner's alone (0600). Each line is `HASH JSON\n`: the
//! entry ([`AccessEntry`]) as JSON, and the hash chaining it to the line before
//! ([`crate::chain::link`] over the previous hash, the entry's sequence number
//! and the JSON's bytes), so a removed, altered, reordered or inserted line is
//! named by [`read`]. Appends from several processes are serialised by an
//! exclusive lock on the file; each is flushed to disk before the read goes on.
//! A user who may not write the archive at all (a read-only copy) cannot be
//! logged; the command line then reads with a warning ([`may_record`]).
//! It is a separate file, not metadata, because readers open the metadata
//! read-only.
//!
//! In an encrypted archive each entry's JSON is sealed with the access-log key
//! ([`crate::crypt`]) and stored as `sealed:` and its hex; the chain covers the
//! sealed bytes, and only the line count and lengths are in clear.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::chain::{self, ChainProblem, Stored};
use crate::crypt::{self, Key};
use crate::model::{Hash32, MessageId};

pub const ACCESS_LOG_FILE: &str = "access.log";
/// Ids recorded per entry; beyond them the entry says how many there were.
pub const MAX_IDS: usize = 1000;
/// The longest line [`read`] and the append accept.
const MAX_LINE: usize = 1 << 20;
/// What an entry sealed in an encrypted archive starts with.
const SEALED: &str = "sealed:";
const SEAL_AAD: &[u8] = b"mailvault access log entry v1";

#[derive(Debug, Error)]
pub enum AccessError {
    #[error("access log {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("access log {path}, line {line}: {what}")]
    Malformed { path: PathBuf, line: u64, what: String },
}

pub type Result<T, E = AccessError> = std::result::Result<T, E>;

/// What kind of read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Search,
    Show,
    Export,
    Replay,
}

/// One read, as logged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccessEntry {
    pub seq: u64,
    /// RFC 3339, UTC.
    pub at: String,
    /// The OS user, or the web interface's signed-in user.
    pub user: String,
    pub action: Action,
    /// The search query, when the read was by query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The messages read (their first [`MAX_IDS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    /// How many messages were read or matched.
    pub count: u64,
}

/// A read about to happen.
#[derive(Clone, Debug)]
pub struct Access<'a> {
    pub user: &'a str,
    pub action: Action,
    pub query: Option<&'a str>,
    pub ids: &'a [MessageId],
    pub count: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AccessError + '_ {
    move |source| AccessError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The access log of the archive at `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(ACCESS_LOG_FILE)
}

/// Appends `access` to the log of the archive at `dir`, durably, and returns the
/// entry written. `key` is the access-log key of an encrypted archive.
pub fn record(dir: &Path, key: Option<&Key>, access: &Access<'_>) -> Result<AccessEntry> {
    let path = path(dir);
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .map_err(io(&path))?;
    lock(&file).map_err(io(&path))?;
    let (seq, prev) = match last_line(&mut file).map_err(io(&path))? {
        None => (0, chain::GENESIS),
        Some(line) => {
            let (hash, entry) = parse_line(&path, 0, &line, key)?;
            (entry.seq + 1, hash)
        }
    };
    let entry = AccessEntry {
        seq,
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        user: access.user.to_string(),
        action: access.action,
        query: access.query.map(str::to_string),
        ids: access.ids.iter().take(MAX_IDS).map(Hash32::to_hex).collect(),
        count: access.count,
    };
    let json = serde_json::to_string(&entry).expect("an access entry serialises");
    let body = match key {
        None => json,
        Some(k) => {
            let sealed = crypt::seal(k, SEAL_AAD, json.as_bytes()).map_err(|e| AccessError::Malformed {
                path: path.clone(),
                line: seq + 1,
                what: format!("sealing the entry: {e}"),
            })?;
            format!("{SEALED}{}", crate::model::bytes_to_hex(&sealed))
        }
    };
    let hash = chain::link(&prev, seq, body.as_bytes());
    file.write_all(format!("{} {body}\n", hash.to_hex()).as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(io(&path))?;
    Ok(entry)
}

/// Whether this process could append to the access log of the archive at `dir`:
/// the log is writable, or (when there is none yet) the directory is.
pub fn may_record(dir: &Path) -> bool {
    let log = path(dir);
    crate::private::may_write(if log.exists() { &log } else { dir })
}

/// Takes an exclusive lock on the whole file (released when it is closed).
fn lock(file: &File) -> std::io::Result<()> {
    // SAFETY: flock on a file descriptor we own; it only blocks or fails.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The last complete line of `file`, without its newline.
fn last_line(file: &mut File) -> std::io::Result<Option<Vec<u8>>> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(None);
    }
    let mut window = 4096u64;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::with_capacity((len - start) as usize);
        Read::by_ref(file).take(len - start).read_to_end(&mut buf)?;
        let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
        if let Some(nl) = body.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(body[nl + 1..].to_vec()));
        }
        if start == 0 || window as usize >= MAX_LINE {
            return Ok((start == 0).then(|| body.to_vec()));
        }
        window *= 4;
    }
}

fn parse_line(path: &Path, line_no: u64, line: &[u8], key: Option<&Key>) -> Result<(Hash32, AccessEntry)> {
    let bad = |what: String| AccessError::Malformed {
        path: path.to_path_buf(),
        line: line_no,
        what,
    };
    let text = std::str::from_utf8(line).map_err(|_| bad("not UTF-8".into()))?;
    let (hash, body) = text
        .split_once(' ')
        .ok_or_else(|| bad("no hash before the entry".into()))?;
    let hash = Hash32::from_hex(hash).ok_or_else(|| bad("the hash is not 64 hex digits".into()))?;
    let json = match (body.strip_prefix(SEALED), key) {
        (None, _) => body.as_bytes().to_vec(),
        (Some(_), None) => {
            return Err(bad(
                "the entry is sealed: the archive's secret is needed to read it".into()
            ))
        }
        (Some(h), Some(k)) => {
            let sealed = crate::model::hex_to_bytes(h).ok_or_else(|| bad("the sealed entry is not hex".into()))?;
            crypt::open(k, SEAL_AAD, &sealed, "the entry").map_err(|e| bad(e.to_string()))?
        }
    };
    let entry: AccessEntry = serde_json::from_slice(&json).map_err(|e| bad(format!("the entry: {e}")))?;
    Ok((hash, entry))
}

/// The log read back, with what its chain says.
#[derive(Clone, Debug, Default)]
pub struct AccessLog {
    pub entries: Vec<AccessEntry>,
    /// Broken, missing or out-of-order entries; lines that cannot be read.
    pub problems: Vec<String>,
}

/// Reads and checks the whole log of the archive at `dir` (empty when there is
/// none yet); `key` as for [`record`].
pub fn read(dir: &Path, key: Option<&Key>) -> Result<AccessLog> {
    let path = path(dir);
    let mut text = Vec::new();
    match File::open(&path) {
        Ok(mut f) => {
            f.read_to_end(&mut text).map_err(io(&path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AccessLog::default()),
        Err(e) => return Err(io(&path)(e)),
    }
    let mut log = AccessLog::default();
    let mut stored = Vec::new();
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match parse_line(&path, n as u64 + 1, line, key) {
            Ok((hash, entry)) => {
                let body = &line[65..];
                stored.push(Stored {
                    seq: entry.seq,
                    body: body.to_vec(),
                    hash,
                });
                log.entries.push(entry);
            }
            Err(e) => log.problems.push(e.to_string()),
        }
    }
    let report = chain::verify(stored, &[], |_| true);
    log.problems.extend(report.problems.iter().map(|p| {
        match p {
            ChainProblem::Broken { seq } => format!(
                "access log entry {seq} does not follow the entry before it (altered, or entries swapped or inserted)"
            ),
            other => format!("access log: {other}")
                .replace("records", "entries")
                .replace("record", "entry"),
        }
    }));
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn search(dir: &Path, q: &str) -> AccessEntry {
        record(
            dir,
            None,
            &Access {
                user: "alice",
                action: Action::Search,
                query: Some(q),
                ids: &[],
                count: 3,
            },
        )
        .unwrap()
    }

    #[test]
    fn entries_chain_read_back_and_the_file_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        for q in ["a", "b", "c"] {
            search(tmp.path(), q);
        }
        let shown = record(
            tmp.path(),
            None,
            &Access {
                user: "bob",
                action: Action::Show,
                query: None,
                ids: &[Hash32([7; 32])],
                count: 1,
            },
        )
        .unwrap();
        assert_eq!(shown.seq, 3);
        let log = read(tmp.path(), None).unwrap();
        assert!(log.problems.is_empty(), "{:?}", log.problems);
        assert_eq!(log.entries.len(), 4);
        assert_eq!(log.entries[3].ids, vec![Hash32([7; 32]).to_hex()]);
        let mode = std::fs::metadata(path(tmp.path())).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_removed_altered_or_swapped_entry_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        for q in ["one", "two", "three", "four"] {
            search(tmp.path(), q);
        }
        let p = path(tmp.path());
        let original = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = original.lines().collect();
        let cases: Vec<(Vec<String>, &str)> = vec![
            (
                vec![lines[0].into(), lines[2].into(), lines[3].into()],
                "entries 1 to 1 are missing",
            ),
            (
                vec![
                    lines[0].into(),
                    lines[1].replace("\"two\"", "\"TWO\""),
                    lines[2].into(),
                    lines[3].into(),
                ],
                "entry 1 does not follow",
            ),
            (
                vec![lines[0].into(), lines[2].into(), lines[1].into(), lines[3].into()],
                "out of order",
            ),
        ];
        for (content, expected) in cases {
            std::fs::write(&p, content.join("\n") + "\n").unwrap();
            let log = read(tmp.path(), None).unwrap();
            assert!(
                log.problems.iter().any(|x| x.contains(expected)),
                "{expected}: {:?}",
                log.problems
            );
        }
    }

    #[test]
    fn a_long_last_line_is_found() {
        let tmp = tempfile::tempdir().unwrap();
        let ids: Vec<MessageId> = (0..900u32).map(|i| Hash32::of(&i.to_be_bytes())).collect();
        record(
            tmp.path(),
            None,
            &Access {
                user: "u",
                action: Action::Export,
                query: None,
                ids: &ids,
                count: 900,
            },
        )
        .unwrap();
        assert_eq!(search(tmp.path(), "after").seq, 1);
        assert!(read(tmp.path(), None).unwrap().problems.is_empty());
    }

    #[test]
    fn sealed_entries_hide_their_content_and_need_the_key() {
        let tmp = tempfile::tempdir().unwrap();
        let key = Key::from_bytes([9; 32]);
        let access = Access {
            user: "carol",
            action: Action::Search,
            query: Some("subject:merger"),
            ids: &[],
            count: 2,
        };
        record(tmp.path(), Some(&key), &access).unwrap();
        let second = record(tmp.path(), Some(&key), &access).unwrap();
        assert_eq!(second.seq, 1);
        let text = std::fs::read_to_string(path(tmp.path())).unwrap();
        assert!(!text.contains("merger") && !text.contains("carol"), "{text}");
        let log = read(tmp.path(), Some(&key)).unwrap();
        assert!(log.problems.is_empty(), "{:?}", log.problems);
        assert_eq!(log.entries[1].query.as_deref(), Some("subject:merger"));
        let without = read(tmp.path(), None).unwrap();
        assert!(
            without.problems[0].contains("the archive's secret is needed"),
            "{:?}",
            without.problems
        );
        let wrong = read(tmp.path(), Some(&Key::from_bytes([8; 32]))).unwrap();
        assert!(
            wrong.entries.is_empty() && wrong.problems.len() >= 2,
            "{:?}",
            wrong.problems
        );
    }
}
