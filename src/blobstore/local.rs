//! Packs as files in a directory (`ARCHIVE/packs/ab/ab….pack`), written to a
//! temporary name, fsynced, renamed and the directory fsynced: a pack is either
//! whole under its name or not there.

use std::fs;
use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{BlobStore, BlobStoreError, PackName, Result, StoredPack};

/// Packs under one local directory.
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    /// The store rooted at `root` (created, private, on the first put).
    pub fn new(root: &Path) -> LocalDir {
        LocalDir {
            root: root.to_path_buf(),
        }
    }

    fn path(&self, name: &PackName) -> PathBuf {
        self.root.join(name.object_path())
    }

    fn io(&self, op: &'static str, name: impl ToString) -> impl FnOnce(std::io::Error) -> BlobStoreError + '_ {
        let name = name.to_string();
        move |source| BlobStoreError::Io {
            store: self.describe(),
            op,
            name,
            source,
        }
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

impl BlobStore for LocalDir {
    fn put(&self, name: &PackName, bytes: Vec<u8>) -> Result<()> {
        let path = self.path(name);
        if fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64) {
            return Ok(());
        }
        let dir = path.parent().expect("a pack path has a directory");
        let fresh_dir = !dir.exists();
        crate::private::create_dir_all(dir).map_err(self.io("create the directory of", name))?;
        let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            sync_dir(dir)?;
            if fresh_dir {
                sync_dir(dir.parent().expect("packs/ab has a parent"))?;
                sync_dir(&self.root)?;
            }
            Ok(())
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            self.io("write", name)(e)
        })
    }

    fn read_range(&self, name: &PackName, range: Range<u64>) -> Result<Vec<u8>> {
        let f = match fs::File::open(self.path(name)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobStoreError::Missing {
                    store: self.describe(),
                    name: *name,
                })
            }
            Err(e) => return Err(self.io("open", name)(e)),
        };
        let len = range.end.saturating_sub(range.start) as usize;
        let mut buf = vec![0u8; len];
        match f.read_exact_at(&mut buf, range.start) {
            Ok(()) => Ok(buf),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(BlobStoreError::ShortRead {
                store: self.describe(),
                name: *name,
                start: range.start,
                end: range.end,
                size: f.metadata().map(|m| m.len()).unwrap_or(0),
            }),
            Err(e) => Err(self.io("read", name)(e)),
        }
    }

    fn list(&self) -> Result<Vec<StoredPack>> {
        let mut out = Vec::new();
        let packs = self.root.join("packs");
        if !packs.exists() {
            return Ok(out);
        }
        for entry in walkdir::WalkDir::new(&packs).min_depth(2).max_depth(2) {
            let entry = entry.map_err(|e| self.io("list", packs.display())(e.into()))?;
            let Some(name) = entry.file_name().to_str().and_then(PackName::from_object_path) else {
                continue;
            };
            let size = entry.metadata().map_err(|e| self.io("list", name)(e.into()))?.len();
            out.push(StoredPack { name, size });
        }
        out.sort_by_key(|p| p.name);
        Ok(out)
    }

    fn delete(&self, name: &PackName) -> Result<()> {
        match fs::remove_file(self.path(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io("delete", name)(e)),
        }
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_is_put_read_by_range_listed_and_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalDir::new(tmp.path());
        let bytes = b"0123456789".repeat(10);
        let name = PackName::of(&bytes);
        store.put(&name, bytes.clone()).unwrap();
        store.put(&name, bytes.clone()).unwrap();
        assert_eq!(store.read_range(&name, 5..15).unwrap(), &bytes[5..15]);
        assert_eq!(store.list().unwrap(), vec![StoredPack { name, size: 100 }]);
        let short = store.read_range(&name, 95..105).unwrap_err().to_string();
        assert!(short.contains("holds 100"), "{short}");
        store.delete(&name).unwrap();
        store.delete(&name).unwrap();
        assert!(matches!(
            store.read_range(&name, 0..1),
            Err(BlobStoreError::Missing { .. })
        ));
        assert!(store.list().unwrap().is_empty());
    }
}
