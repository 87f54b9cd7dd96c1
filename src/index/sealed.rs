//! The search index of an encrypted archive: a tantivy [`Directory`] over another
//! one (the files on disk) that seals every file in fixed-size blocks with the
//! index key ([`crate::crypt`], XChaCha20-Poly1305).
//!
//! A file written by tantivy is stored as blocks of [`BLOCK`] plaintext bytes,
//! each sealed on its own (nonce ‖ ciphertext ‖ tag) and bound by its associated
//! data to the file's name, its block number and whether it is the last block. So
//! a block moved within or between files, a file renamed, or a file cut short at
//! a block boundary does not open. The last block may be short or empty; the
//! plaintext length follows from the stored length. Reads open only the blocks a
//! range touches, so a search decrypts what it reads, not the whole index.
//! `meta.json` and tantivy's other small files written whole are sealed whole,
//! bound to their name.

use std::io::{self, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, Lock, OwnedBytes, TerminatingWrite, WatchCallback,
    WatchHandle, WritePtr,
};
use tantivy::HasLen;

use crate::crypt::{self, Key, SEAL_OVERHEAD};

/// Plaintext bytes per sealed block. Small enough that a posting list read opens
/// little more than it needs; large enough that the 40 bytes a seal adds are 0.25%.
pub const BLOCK: usize = 16 << 10;
const SEALED_BLOCK: usize = BLOCK + SEAL_OVERHEAD;

/// The associated data of block `n` of file `name`.
fn block_aad(name: &str, n: u64, last: bool) -> Vec<u8> {
    let mut aad = Vec::with_capacity(name.len() + 40);
    aad.extend_from_slice(b"mailvault index block v1\0");
    aad.extend_from_slice(name.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&n.to_be_bytes());
    aad.push(u8::from(last));
    aad
}

/// The associated data of a file written whole (`atomic_write`).
fn whole_aad(name: &str) -> Vec<u8> {
    let mut aad = b"mailvault index file v1\0".to_vec();
    aad.extend_from_slice(name.as_bytes());
    aad
}

fn name_of(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// A directory whose files are sealed with `key`.
#[derive(Clone)]
pub struct SealedDirectory {
    inner: Box<dyn Directory>,
    key: Arc<Key>,
}

impl std::fmt::Debug for SealedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedDirectory({:?})", self.inner)
    }
}

impl SealedDirectory {
    pub fn new(inner: Box<dyn Directory>, key: Arc<Key>) -> SealedDirectory {
        SealedDirectory { inner, key }
    }
}

impl Directory for SealedDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        let inner = self.inner.get_file_handle(path)?;
        let name = name_of(path);
        let file = SealedFile::new(inner, self.key.clone(), name).map_err(|io_error| OpenReadError::IoError {
            io_error: Arc::new(io_error),
            filepath: path.to_path_buf(),
        })?;
        Ok(Arc::new(file))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let inner = self.inner.open_write(path)?;
        Ok(io::BufWriter::new(Box::new(SealingWriter {
            inner,
            key: self.key.clone(),
            name: name_of(path),
            buf: Vec::with_capacity(BLOCK),
            block: 0,
        })))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        let sealed = self.inner.atomic_read(path)?;
        let name = name_of(path);
        crypt::open(
            &self.key,
            &whole_aad(&name),
            &sealed,
            &format!("search index file {name}"),
        )
        .map_err(|e| OpenReadError::IoError {
            io_error: Arc::new(invalid(e.to_string())),
            filepath: path.to_path_buf(),
        })
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let sealed = crypt::seal(&self.key, &whole_aad(&name_of(path)), data).map_err(io::Error::other)?;
        self.inner.atomic_write(path, &sealed)
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.inner.sync_directory()
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        self.inner.acquire_lock(lock)
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(watch_callback)
    }
}

/// Seals what tantivy writes, a block at a time.
struct SealingWriter {
    inner: WritePtr,
    key: Arc<Key>,
    name: String,
    /// Plaintext not sealed yet (always less than a block).
    buf: Vec<u8>,
    /// The number of the next block.
    block: u64,
}

impl SealingWriter {
    /// Seals `plain` as the next block and writes it out.
    fn seal_block(&mut self, plain: &[u8], last: bool) -> io::Result<()> {
        let aad = block_aad(&self.name, self.block, last);
        let sealed = crypt::seal(&self.key, &aad, plain).map_err(io::Error::other)?;
        self.inner.write_all(&sealed)?;
        self.block += 1;
        Ok(())
    }
}

impl Write for SealingWriter {
    /// Fills the pending block, then seals whole blocks straight from `data`,
    /// keeping only the tail: no byte is copied more than once. A full block is
    /// never the last: the last one is sealed at the end, even when empty, so
    /// that a file cut at a block boundary is caught.
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        if !self.buf.is_empty() {
            let take = (BLOCK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() < BLOCK {
                return Ok(n);
            }
            let block = std::mem::take(&mut self.buf);
            self.seal_block(&block, false)?;
            self.buf = block;
            self.buf.clear();
        }
        while data.len() >= BLOCK {
            self.seal_block(&data[..BLOCK], false)?;
            data = &data[BLOCK..];
        }
        self.buf.extend_from_slice(data);
        Ok(n)
    }

    /// Only whole blocks are ever written, so a flush passes on what is sealed.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl TerminatingWrite for SealingWriter {
    fn terminate_ref(&mut self, token: AntiCallToken) -> io::Result<()> {
        let tail = std::mem::take(&mut self.buf);
        self.seal_block(&tail, true)?;
        self.inner.terminate_ref(token)
    }
}

/// A sealed file, opened a block at a time as it is read.
struct SealedFile {
    inner: Arc<dyn FileHandle>,
    key: Arc<Key>,
    name: String,
    /// Sealed blocks, the last one included.
    blocks: u64,
    /// Plaintext length.
    len: usize,
}

impl std::fmt::Debug for SealedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedFile({}, {} bytes)", self.name, self.len)
    }
}

impl SealedFile {
    fn new(inner: Arc<dyn FileHandle>, key: Arc<Key>, name: String) -> io::Result<SealedFile> {
        let stored = inner.len();
        let blocks = stored.div_ceil(SEALED_BLOCK);
        let last = stored - blocks.saturating_sub(1) * SEALED_BLOCK;
        if blocks == 0 || last < SEAL_OVERHEAD {
            return Err(invalid(format!(
                "search index file {name}: {stored} bytes cannot be sealed blocks (cut short?)"
            )));
        }
        Ok(SealedFile {
            len: stored - blocks * SEAL_OVERHEAD,
            inner,
            key,
            name,
            blocks: blocks as u64,
        })
    }

    /// The plaintext of block `n`.
    fn block(&self, n: u64) -> io::Result<Vec<u8>> {
        let start = n as usize * SEALED_BLOCK;
        let end = (start + SEALED_BLOCK).min(self.inner.len());
        let sealed = self.inner.read_bytes(start..end)?;
        let last = n + 1 == self.blocks;
        let what = format!("search index file {} block {n}", self.name);
        crypt::open(&self.key, &block_aad(&self.name, n, last), sealed.as_slice(), &what)
            .map_err(|e| invalid(e.to_string()))
    }
}

impl HasLen for SealedFile {
    fn len(&self) -> usize {
        self.len
    }
}

impl FileHandle for SealedFile {
    fn read_bytes(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        if range.start >= range.end {
            return Ok(OwnedBytes::empty());
        }
        if range.end > self.len {
            return Err(invalid(format!(
                "search index file {}: read of {range:?} past its {} bytes",
                self.name, self.len
            )));
        }
        let first = (range.start / BLOCK) as u64;
        let last = ((range.end - 1) / BLOCK) as u64;
        let skip = range.start - first as usize * BLOCK;
        let mut out = Vec::with_capacity(range.len());
        for n in first..=last {
            let plain = self.block(n)?;
            let from = if n == first { skip } else { 0 };
            let want = (range.len() - out.len()).min(plain.len().saturating_sub(from));
            out.extend_from_slice(&plain[from..from + want]);
        }
        if out.len() != range.len() {
            return Err(invalid(format!(
                "search index file {}: blocks hold fewer bytes than its length says",
                self.name
            )));
        }
        Ok(OwnedBytes::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::directory::RamDirectory;

    fn dir(key: u8) -> (RamDirectory, SealedDirectory) {
        let ram = RamDirectory::create();
        let sealed = SealedDirectory::new(Box::new(ram.clone()), Arc::new(Key::from_bytes([key; 32])));
        (ram, sealed)
    }

    fn write(d: &SealedDirectory, name: &str, data: &[u8]) {
        let mut w = d.open_write(Path::new(name)).unwrap();
        // One large write (whole blocks sealed straight from it), then odd-sized
        // ones, to cross block boundaries in the middle of a write.
        let (head, rest) = data.split_at(data.len() / 2);
        w.write_all(head).unwrap();
        for chunk in rest.chunks(7777) {
            w.write_all(chunk).unwrap();
        }
        w.terminate().unwrap();
    }

    #[test]
    fn every_range_reads_back_whatever_the_length() {
        let (_, d) = dir(1);
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let name = format!("f{len}");
            write(&d, &name, &data);
            let f = d.get_file_handle(Path::new(&name)).unwrap();
            assert_eq!(f.len(), len);
            let ranges = [
                0..len,
                0..len.min(1),
                len / 3..len / 2,
                len.saturating_sub(BLOCK + 3)..len,
            ];
            for r in ranges {
                assert_eq!(
                    f.read_bytes(r.clone()).unwrap().as_slice(),
                    &data[r.clone()],
                    "{len} {r:?}"
                );
            }
        }
    }

    #[test]
    fn nothing_of_the_plaintext_is_stored() {
        let (ram, d) = dir(1);
        let phrase = b"quarterly figures for the Hamburg office";
        let data: Vec<u8> = phrase.iter().cycle().take(3 * BLOCK).copied().collect();
        write(&d, "f", &data);
        d.atomic_write(Path::new("meta.json"), phrase).unwrap();
        for name in ["f", "meta.json"] {
            let stored = ram.open_read(Path::new(name)).unwrap().read_bytes().unwrap();
            assert!(!stored.as_slice().windows(8).any(|w| w == &phrase[..8]), "{name}");
        }
        assert_eq!(d.atomic_read(Path::new("meta.json")).unwrap(), phrase);
    }

    #[test]
    fn wrong_key_moved_blocks_renamed_and_cut_files_do_not_open() {
        let (ram, d) = dir(1);
        let data = vec![7u8; 2 * BLOCK + 5];
        write(&d, "a", &data);
        let stored = ram.open_read(Path::new("a")).unwrap().read_bytes().unwrap().to_vec();
        // Another key.
        let other = SealedDirectory::new(Box::new(ram.clone()), Arc::new(Key::from_bytes([2; 32])));
        assert!(other.get_file_handle(Path::new("a")).unwrap().read_bytes(0..1).is_err());
        // The same bytes under another name.
        ram.atomic_write(Path::new("b"), &stored).unwrap();
        assert!(d.get_file_handle(Path::new("b")).unwrap().read_bytes(0..1).is_err());
        // Two blocks swapped.
        let mut swapped = stored.clone();
        swapped[..SEALED_BLOCK].copy_from_slice(&stored[SEALED_BLOCK..2 * SEALED_BLOCK]);
        swapped[SEALED_BLOCK..2 * SEALED_BLOCK].copy_from_slice(&stored[..SEALED_BLOCK]);
        ram.atomic_write(Path::new("a"), &swapped).unwrap();
        assert!(d.get_file_handle(Path::new("a")).unwrap().read_bytes(0..1).is_err());
        // Cut at a block boundary: the new last block was not sealed as last.
        ram.atomic_write(Path::new("a"), &stored[..2 * SEALED_BLOCK]).unwrap();
        let cut = d.get_file_handle(Path::new("a")).unwrap();
        let e = cut.read_bytes(BLOCK..BLOCK + 1).unwrap_err();
        assert!(e.to_string().contains("search index file a block 1"), "{e}");
        // Cut inside the seal overhead.
        ram.atomic_write(Path::new("a"), &stored[..2 * SEALED_BLOCK + 3])
            .unwrap();
        assert!(d.get_file_handle(Path::new("a")).is_err());
    }
}
