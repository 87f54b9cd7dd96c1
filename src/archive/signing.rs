//! The Ed25519 key that signs the change log's checkpoints. Made by the first
//! writable open of a format-4 archive (or brought with `init --signing-key FILE`)
//! and kept in a file of its own, mode 0600: `mailvault-signing-key v1`, then the
//! 32-byte seed in hex. The public key is also in the metadata, so anyone can
//! verify the checkpoints; only the key's holder can make them.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

use super::error::{ArchiveError, Result};
use crate::evidence::CheckpointRecord;
use crate::model::Hash32;

const HEADER: &str = "mailvault-signing-key v1";

/// A loaded signing key.
pub struct Signer {
    pair: Ed25519KeyPair,
    public: [u8; 32],
    path: PathBuf,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn bad(path: &Path, reason: impl Into<String>) -> ArchiveError {
    ArchiveError::SigningKey {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn from_seed(path: &Path, seed: &[u8; 32]) -> Result<Signer> {
    let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| bad(path, "the seed is not a valid key"))?;
    let mut public = [0; 32];
    public.copy_from_slice(pair.public_key().as_ref());
    Ok(Signer {
        pair,
        public,
        path: path.to_path_buf(),
    })
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    Hash32::from_hex(text).map(|h| h.0)
}

impl Signer {
    /// Reads the key at `path`.
    pub fn load(path: &Path) -> Result<Signer> {
        let text = fs::read_to_string(path).map_err(|e| bad(path, format!("cannot be read: {e}")))?;
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(bad(
                path,
                format!("is not a mailvault signing key (its first line is not {HEADER:?})"),
            ));
        }
        let seed = lines
            .next()
            .and_then(|l| l.strip_prefix("seed "))
            .and_then(|h| parse_hex32(h.trim()))
            .ok_or_else(|| bad(path, "has no `seed` line of 64 hex digits"))?;
        from_seed(path, &seed)
    }

    /// Makes a new key and writes it to `path` (which must not exist), private and
    /// durable.
    pub fn create(path: &Path) -> Result<Signer> {
        let mut seed = [0u8; 32];
        SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| bad(path, "the system's random source failed"))?;
        if let Some(parent) = path.parent() {
            crate::private::create_dir_all(parent).map_err(|e| bad(path, format!("its folder: {e}")))?;
        }
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| bad(path, format!("cannot be created: {e}")))?;
        let text = format!("{HEADER}\nseed {}\n", Hash32(seed).to_hex());
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| bad(path, format!("cannot be written: {e}")))?;
        if let Some(parent) = path.parent() {
            let _ = fs::File::open(parent).and_then(|d| d.sync_all());
        }
        from_seed(path, &seed)
    }

    /// [`Signer::load`] when `path` exists, else [`Signer::create`].
    pub fn load_or_create(path: &Path) -> Result<Signer> {
        if path.exists() {
            Signer::load(path)
        } else {
            Signer::create(path)
        }
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A checkpoint: after `count` records the chain's hash is `head`.
    pub fn checkpoint(&self, count: u64, head: Hash32, at: i64) -> CheckpointRecord {
        let sig = self.pair.sign(&CheckpointRecord::signed_bytes(count, &head, at));
        let mut signature = [0; 64];
        signature.copy_from_slice(sig.as_ref());
        CheckpointRecord {
            count,
            head,
            at,
            signature,
        }
    }
}

/// Whether `c`'s signature verifies with `public`.
pub fn verifies(public: &[u8; 32], c: &CheckpointRecord) -> bool {
    UnparsedPublicKey::new(&ED25519, public)
        .verify(&CheckpointRecord::signed_bytes(c.count, &c.head, c.at), &c.signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_key_is_private_reloads_and_signs_what_verifies() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("keys/signing.key");
        let s = Signer::create(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let again = Signer::load(&path).unwrap();
        assert_eq!(again.public_key(), s.public_key());
        let c = s.checkpoint(3, Hash32([7; 32]), 99);
        assert!(verifies(&s.public_key(), &c));
        let mut forged = c.clone();
        forged.count = 4;
        assert!(!verifies(&s.public_key(), &forged), "count is signed");
        let other = Signer::create(&tmp.path().join("other.key")).unwrap();
        assert!(!verifies(&other.public_key(), &c), "another key's checkpoint");
        assert!(Signer::create(&path).is_err(), "an existing key is never overwritten");
    }

    #[test]
    fn a_file_that_is_not_a_key_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("k");
        fs::write(&path, "hello\n").unwrap();
        let e = Signer::load(&path).unwrap_err().to_string();
        assert!(e.contains("not a mailvault signing key") && e.contains("/k"), "{e}");
        fs::write(&path, format!("{HEADER}\nseed zz\n")).unwrap();
        assert!(Signer::load(&path).unwrap_err().to_string().contains("64 hex digits"));
    }
}
