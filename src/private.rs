//! Files mailvault creates hold mail, credentials or keys: they are the owner's
//! alone, whatever the umask. The binary narrows its umask once at start
//! ([`restrict_umask`]), which covers every file and directory created by the
//! process (RocksDB's and tantivy's included); directories we create ourselves are
//! also made 0700 explicitly ([`create_dir_all`]), for library users that keep their
//! own umask. An existing directory that others can reach is reported
//! ([`exposure`]), not changed behind the owner's back.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Mode bits of group and others.
const OTHERS: u32 = 0o077;

/// Sets the process umask so that new files are 0600 and new directories 0700.
pub fn restrict_umask() {
    // SAFETY: umask only swaps the process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(OTHERS as libc::mode_t);
    }
}

/// `mkdir -p` with mode 0700 for every directory it creates.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Writes `bytes` as `dir/name` whole: a temporary file (0600) beside it, fsync,
/// rename over the old one, fsync of the directory — a reader sees the old file or
/// the new one, never half of either, even across a crash.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Whether this process may write `path` (create files in it, for a directory):
/// the permission bits as the kernel judges them for this user.
pub fn may_write(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path; access(2) only reads it.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// The mode of `path` when group or others have any access to it; `None` when it is
/// private (or cannot be read, which the caller's open will report).
pub fn exposure(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & OTHERS != 0).then_some(mode)
}

/// The warning for a directory others can reach: the path, the mode, the fix.
pub fn exposure_warning(what: &str, path: &Path, mode: u32) -> String {
    format!(
        "{what} {} can be reached by other users of this machine (mode {mode:03o}); \
         make it private with: chmod -R go-rwx '{}'",
        path.display(),
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_directories_are_private_and_open_ones_are_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b/c");
        create_dir_all(&deep).unwrap();
        for d in ["a", "a/b", "a/b/c"] {
            assert_eq!(exposure(&tmp.path().join(d)), None, "{d}");
        }
        std::fs::set_permissions(&deep, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(exposure(&deep), Some(0o755));
        let w = exposure_warning("archive", &deep, 0o755);
        assert!(w.contains("mode 755") && w.contains("chmod -R go-rwx"), "{w}");
    }
}
