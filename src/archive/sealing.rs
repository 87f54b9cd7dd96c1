//! Encryption at rest inside the archive: the master key unwrapped at open (from
//! `keys/archive.key`, with the passphrase or key file the caller gives), and the
//! sealing of pack frames and zstd dictionaries under the content key
//! ([`crate::crypt`]). A frame's seal is bound to its pack number and offset, a
//! dictionary's to its id, so sealed bytes moved elsewhere do not open. What else
//! an encrypted archive keeps in clear is listed in the README.
//!
//! The other keys derived here serve the rest of the archive: keyed message and
//! part ids ([`crate::model::IdHasher`]), the search index's sealed blocks
//! ([`crate::index::sealed`]) and the access log's sealed entries
//! ([`crate::access`]).

use std::path::Path;
use std::sync::Arc;

use super::error::{ArchiveError, Result};
use super::layout;
use crate::crypt::{self, ArchiveKeys, CryptError, KdfCost, Key, Secret};

/// What unwraps an encrypted archive's key.
#[derive(Clone)]
pub enum ArchiveSecret {
    Passphrase(Vec<u8>),
    /// The bytes of a key file.
    KeyFile(Vec<u8>),
    /// The keys already unwrapped by [`unlock`] for one archive, so that a command
    /// that opens the archive more than once (the index, then the metadata) pays
    /// for Argon2id once.
    Unlocked(Unlocked),
}

/// Keys [`unlock`] unwrapped, and the archive they are for.
#[derive(Clone)]
pub struct Unlocked {
    dir: std::path::PathBuf,
    keys: Arc<ArchiveKeys>,
}

impl Unlocked {
    pub fn keys(&self) -> &Arc<ArchiveKeys> {
        &self.keys
    }
}

impl std::fmt::Debug for ArchiveSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ArchiveSecret::Passphrase(_) => "Passphrase(…)",
            ArchiveSecret::KeyFile(_) => "KeyFile(…)",
            ArchiveSecret::Unlocked(_) => "Unlocked(…)",
        })
    }
}

impl ArchiveSecret {
    /// What wraps or unwraps the master key (not unlocked keys: they cannot).
    fn as_secret(&self, dir: &Path) -> Result<Secret<'_>> {
        match self {
            ArchiveSecret::Passphrase(p) => Ok(Secret::Passphrase(p)),
            ArchiveSecret::KeyFile(b) => Ok(Secret::KeyFile(b)),
            ArchiveSecret::Unlocked(_) => Err(ArchiveError::Encryption {
                path: dir.to_path_buf(),
                what: "a passphrase or key file is needed here, not keys already unlocked".into(),
            }),
        }
    }
}

/// The keys of the encrypted archive at `dir`, unwrapped with `secret` (refused,
/// with nothing opened, when it is not the archive's).
pub fn unlock(dir: &Path, secret: &ArchiveSecret) -> Result<Unlocked> {
    let keys = open_keys(dir, true, Some(secret))?.expect("an encrypted archive's keys");
    Ok(Unlocked {
        dir: canonical(dir),
        keys,
    })
}

fn canonical(dir: &Path) -> std::path::PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

fn crypt_error(dir: &Path, e: CryptError) -> ArchiveError {
    match e {
        CryptError::WrongSecret => ArchiveError::WrongSecret {
            path: dir.to_path_buf(),
        },
        other => ArchiveError::Encryption {
            path: dir.to_path_buf(),
            what: other.to_string(),
        },
    }
}

/// Makes a new archive's master key, wraps it with `secret` and writes
/// `keys/archive.key` (0600, durable). Returns the derived keys.
pub fn create_keys(dir: &Path, secret: &ArchiveSecret, cost: KdfCost) -> Result<ArchiveKeys> {
    let master = Key::random().map_err(|e| crypt_error(dir, e))?;
    let wrapped = crypt::wrap(&master, &secret.as_secret(dir)?, cost).map_err(|e| crypt_error(dir, e))?;
    write_key_file(dir, &crypt::key_file_text(&wrapped))?;
    Ok(ArchiveKeys::derive(&master))
}

fn write_key_file(dir: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = layout::archive_key_path(dir);
    let io = |source| ArchiveError::Io {
        path: path.clone(),
        source,
    };
    let folder = path.parent().expect("the key file is in keys/");
    crate::private::create_dir_all(folder).map_err(io)?;
    let tmp = path.with_extension("key.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    std::fs::File::open(folder).and_then(|d| d.sync_all()).map_err(io)
}

/// The keys of the archive at `dir` (encrypted when its marker says so), checked
/// before anything else is opened: a wrong or missing secret writes nothing.
pub fn open_keys(dir: &Path, encrypted: bool, secret: Option<&ArchiveSecret>) -> Result<Option<Arc<ArchiveKeys>>> {
    match (encrypted, secret) {
        (false, None) => Ok(None),
        (false, Some(_)) => Err(ArchiveError::Encryption {
            path: dir.to_path_buf(),
            what: "a passphrase or key file was given, but this archive is not encrypted".into(),
        }),
        (true, None) => Err(ArchiveError::SecretNeeded {
            path: dir.to_path_buf(),
        }),
        (true, Some(ArchiveSecret::Unlocked(u))) if u.dir == canonical(dir) => Ok(Some(u.keys.clone())),
        (true, Some(secret)) => {
            let wrapped = read_wrapped(dir)?;
            let master = crypt::unwrap(&wrapped, &secret.as_secret(dir)?).map_err(|e| crypt_error(dir, e))?;
            Ok(Some(Arc::new(ArchiveKeys::derive(&master))))
        }
    }
}

/// `rekey`: the archive's master key wrapped with `new` instead of `old`; the data
/// is not touched. The old secret no longer opens the archive.
pub fn rekey(dir: &Path, old: &ArchiveSecret, new: &ArchiveSecret, cost: KdfCost) -> Result<()> {
    let wrapped = read_wrapped(dir)?;
    let rewrapped =
        crypt::rewrap(&wrapped, &old.as_secret(dir)?, &new.as_secret(dir)?, cost).map_err(|e| crypt_error(dir, e))?;
    write_key_file(dir, &crypt::key_file_text(&rewrapped))
}

/// The wrapped master key in `keys/archive.key`.
fn read_wrapped(dir: &Path) -> Result<crypt::Wrapped> {
    let path = layout::archive_key_path(dir);
    let text = std::fs::read_to_string(&path).map_err(|source| ArchiveError::Io {
        path: path.clone(),
        source,
    })?;
    crypt::parse_key_file(&text).map_err(|what| ArchiveError::Encryption { path, what })
}

/// What a frame's seal is bound to: its pack and offset.
pub fn frame_aad(pack: u64, frame_offset: u64) -> Vec<u8> {
    let mut a = b"mailvault frame v1".to_vec();
    a.extend_from_slice(&pack.to_be_bytes());
    a.extend_from_slice(&frame_offset.to_be_bytes());
    a
}

/// What a dictionary's seal is bound to: its id.
pub fn dictionary_aad(id: u32) -> Vec<u8> {
    let mut a = b"mailvault dictionary v1".to_vec();
    a.extend_from_slice(&id.to_be_bytes());
    a
}
