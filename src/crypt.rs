//! Encryption at rest, the pure part: the archive's keys and the sealing of
//! bytes. `archive::sealing` uses it for pack frames and dictionaries; message
//! ids, the search index and the access log are the next steps.
//!
//! - A random 32-byte **master key** per archive. Everything is encrypted under
//!   keys derived from it ([`ArchiveKeys`], BLAKE3 `derive_key` with a context
//!   per use), so one master key serves packs, dictionaries, the index and the
//!   access log, and message ids become keyed BLAKE3 (dedup and ids reveal
//!   nothing without it).
//! - The master key is stored only **wrapped** ([`Wrapped`]): sealed with a key
//!   encryption key from a passphrase (Argon2id: salt and costs stored beside it)
//!   or from a key file. `rekey` unwraps with the old secret and wraps with the
//!   new one: the data, sealed under the master key, is not touched. A wrong
//!   secret fails the seal's authentication and is refused as such.
//! - **Sealing** is XChaCha20-Poly1305: a random 24-byte nonce (random nonces of
//!   this length never repeat in practice), the ciphertext and the 16-byte tag;
//!   the associated data binds the bytes to where they belong (a pack frame's
//!   location, an index block's file and number), so moving sealed bytes
//!   elsewhere fails to open.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ring::rand::{SecureRandom, SystemRandom};
use thiserror::Error;

/// Bytes a seal adds: the nonce and the tag.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CryptError {
    /// The secret does not unwrap the master key: a wrong passphrase or key file.
    #[error("the passphrase or key file is not this archive's (the archive key does not open with it)")]
    WrongSecret,
    /// Sealed bytes that do not open: altered, moved, or sealed under another key.
    #[error("{what}: the encrypted bytes do not authenticate (altered, moved, or another archive's)")]
    Tampered { what: String },
    #[error("{what}: {len} bytes are too short to be sealed bytes")]
    TooShort { what: String, len: usize },
    #[error("the system's random source failed")]
    Random,
    #[error("key derivation: {0}")]
    Kdf(String),
}

pub type Result<T, E = CryptError> = std::result::Result<T, E>;

/// `N` bytes from the system's random source.
pub fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    SystemRandom::new().fill(&mut b).map_err(|_| CryptError::Random)?;
    Ok(b)
}

/// A 32-byte symmetric key, wiped when dropped.
pub struct Key([u8; 32]);

impl Key {
    pub fn from_bytes(b: [u8; 32]) -> Key {
        Key(b)
    }

    pub fn random() -> Result<Key> {
        Ok(Key(random()?))
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key for one use, derived from this one.
    pub fn derive(&self, context: &str) -> Key {
        Key(blake3::derive_key(context, &self.0))
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // Volatile writes, so the wipe is not optimised away.
        for b in self.0.iter_mut() {
            // SAFETY: a valid, aligned &mut u8.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(…)")
    }
}

/// Seals `plain` under `key`, bound to `aad`: nonce ‖ ciphertext ‖ tag.
pub fn seal(key: &Key, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
    let nonce: [u8; NONCE_LEN] = random()?;
    let cipher = XChaCha20Poly1305::new(key.0.as_ref().into());
    let sealed = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
        .map_err(|_| CryptError::Random)?;
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens what [`seal`] made with the same key and `aad`; `what` names the bytes
/// in the error.
pub fn open(key: &Key, aad: &[u8], sealed: &[u8], what: &str) -> Result<Vec<u8>> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(CryptError::TooShort {
            what: what.to_string(),
            len: sealed.len(),
        });
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    XChaCha20Poly1305::new(key.0.as_ref().into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
        .map_err(|_| CryptError::Tampered { what: what.to_string() })
}

/// The keys of an encrypted archive, each derived from its master key.
#[derive(Debug)]
pub struct ArchiveKeys {
    /// Pack frames (message skeletons and parts) and zstd dictionaries.
    pub content: Key,
    /// The search index's blocks.
    pub index: Key,
    /// The access log's entries.
    pub log: Key,
    /// Keyed BLAKE3 for message and part ids.
    pub ids: Key,
    /// The secret store (OAuth2 sign-ins).
    pub secrets: Key,
}

impl ArchiveKeys {
    pub fn derive(master: &Key) -> ArchiveKeys {
        ArchiveKeys {
            content: master.derive("mailvault 2026 content v1"),
            index: master.derive("mailvault 2026 index v1"),
            log: master.derive("mailvault 2026 access log v1"),
            ids: master.derive("mailvault 2026 ids v1"),
            secrets: master.derive("mailvault 2026 secrets v1"),
        }
    }

    /// The index key, shared with the search index's directory.
    pub fn index_key(&self) -> std::sync::Arc<Key> {
        std::sync::Arc::new(Key(self.index.0))
    }

    /// The secret store's key.
    pub fn secrets_key(&self) -> std::sync::Arc<Key> {
        std::sync::Arc::new(Key(self.secrets.0))
    }

    /// Makes message and part ids: BLAKE3 keyed with the archive's id key.
    pub fn id_hasher(&self) -> crate::model::IdHasher {
        crate::model::IdHasher::keyed(self.ids.0)
    }
}

/// Argon2id costs; the defaults follow RFC 9106's second recommendation (64 MiB,
/// 3 passes, 4 lanes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfCost {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

impl Default for KdfCost {
    fn default() -> Self {
        KdfCost {
            memory_kib: 64 * 1024,
            passes: 3,
            lanes: 4,
        }
    }
}

/// What unwraps the master key.
pub enum Secret<'a> {
    Passphrase(&'a [u8]),
    /// A key file's bytes (at least 32).
    KeyFile(&'a [u8]),
}

/// How the master key is wrapped: the key encryption key's recipe and the sealed
/// master key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wrapped {
    Passphrase {
        salt: [u8; 16],
        cost: KdfCost,
        sealed: Vec<u8>,
    },
    KeyFile {
        sealed: Vec<u8>,
    },
}

/// The associated data of a wrapped master key.
const WRAP_AAD: &[u8] = b"mailvault master key v1";
/// Key files shorter than this are refused: they would be guessable.
pub const MIN_KEY_FILE: usize = 32;

fn kek_from_passphrase(passphrase: &[u8], salt: &[u8; 16], cost: KdfCost) -> Result<Key> {
    let params =
        Params::new(cost.memory_kib, cost.passes, cost.lanes, Some(32)).map_err(|e| CryptError::Kdf(e.to_string()))?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, &mut out)
        .map_err(|e| CryptError::Kdf(e.to_string()))?;
    Ok(Key(out))
}

fn kek_from_key_file(bytes: &[u8]) -> Result<Key> {
    if bytes.len() < MIN_KEY_FILE {
        return Err(CryptError::Kdf(format!(
            "a key file must hold at least {MIN_KEY_FILE} bytes (it has {})",
            bytes.len()
        )));
    }
    Ok(Key(blake3::derive_key("mailvault 2026 key file v1", bytes)))
}

/// Wraps `master` with `secret` (`cost` for a passphrase).
pub fn wrap(master: &Key, secret: &Secret<'_>, cost: KdfCost) -> Result<Wrapped> {
    Ok(match secret {
        Secret::Passphrase(p) => {
            let salt: [u8; 16] = random()?;
            let kek = kek_from_passphrase(p, &salt, cost)?;
            Wrapped::Passphrase {
                salt,
                cost,
                sealed: seal(&kek, WRAP_AAD, &master.0)?,
            }
        }
        Secret::KeyFile(bytes) => Wrapped::KeyFile {
            sealed: seal(&kek_from_key_file(bytes)?, WRAP_AAD, &master.0)?,
        },
    })
}

/// The master key `wrapped` holds, or [`CryptError::WrongSecret`].
pub fn unwrap(wrapped: &Wrapped, secret: &Secret<'_>) -> Result<Key> {
    let (kek, sealed) = match (wrapped, secret) {
        (Wrapped::Passphrase { salt, cost, sealed }, Secret::Passphrase(p)) => {
            (kek_from_passphrase(p, salt, *cost)?, sealed)
        }
        (Wrapped::KeyFile { sealed }, Secret::KeyFile(bytes)) => (kek_from_key_file(bytes)?, sealed),
        _ => return Err(CryptError::WrongSecret),
    };
    let plain = open(&kek, WRAP_AAD, sealed, "the archive key").map_err(|_| CryptError::WrongSecret)?;
    let bytes: [u8; 32] = plain.try_into().map_err(|_| CryptError::WrongSecret)?;
    Ok(Key(bytes))
}

/// `rekey`: the same master key, wrapped with `new` instead of `old`.
pub fn rewrap(wrapped: &Wrapped, old: &Secret<'_>, new: &Secret<'_>, cost: KdfCost) -> Result<Wrapped> {
    let master = unwrap(wrapped, old)?;
    wrap(&master, new, cost)
}

/// The text of `ARCHIVE/keys/archive.key`: the wrapped master key and how to
/// unwrap it (nothing secret in it without the passphrase or key file).
pub fn key_file_text(w: &Wrapped) -> String {
    use crate::model::bytes_to_hex as hex;
    match w {
        Wrapped::Passphrase { salt, cost, sealed } => format!(
            "format = \"{KEY_FILE_FORMAT}\"\nwrapped_by = \"passphrase\"\nkdf = \"argon2id\"\nsalt = \"{}\"\nmemory_kib = {}\npasses = {}\nlanes = {}\nsealed = \"{}\"\n",
            hex(salt),
            cost.memory_kib,
            cost.passes,
            cost.lanes,
            hex(sealed)
        ),
        Wrapped::KeyFile { sealed } => format!(
            "format = \"{KEY_FILE_FORMAT}\"\nwrapped_by = \"key-file\"\nsealed = \"{}\"\n",
            hex(sealed)
        ),
    }
}

pub const KEY_FILE_FORMAT: &str = "mailvault-archive-key-v1";

/// Reads [`key_file_text`]'s output; the error says what is wrong.
pub fn parse_key_file(text: &str) -> std::result::Result<Wrapped, String> {
    let t: toml::Table = text.parse().map_err(|e: toml::de::Error| e.message().to_string())?;
    let s = |k: &str| {
        t.get(k)
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("`{k}` is missing"))
    };
    let n = |k: &str| {
        t.get(k)
            .and_then(|v| v.as_integer())
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| format!("`{k}` is missing or not a number"))
    };
    let unhex = |k: &str| -> std::result::Result<Vec<u8>, String> {
        let h = s(k)?;
        if h.len() % 2 != 0 || !h.is_ascii() {
            return Err(format!("`{k}` is not hex"));
        }
        (0..h.len() / 2)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).map_err(|_| format!("`{k}` is not hex")))
            .collect()
    };
    if s("format")? != KEY_FILE_FORMAT {
        return Err(format!("format {:?} is not {KEY_FILE_FORMAT}", s("format")?));
    }
    match s("wrapped_by")? {
        "passphrase" => {
            if s("kdf")? != "argon2id" {
                return Err(format!("key derivation {:?} is not argon2id", s("kdf")?));
            }
            let salt: [u8; 16] = unhex("salt")?
                .try_into()
                .map_err(|_| "`salt` is not 16 bytes".to_string())?;
            Ok(Wrapped::Passphrase {
                salt,
                cost: KdfCost {
                    memory_kib: n("memory_kib")?,
                    passes: n("passes")?,
                    lanes: n("lanes")?,
                },
                sealed: unhex("sealed")?,
            })
        }
        "key-file" => Ok(Wrapped::KeyFile {
            sealed: unhex("sealed")?,
        }),
        other => Err(format!("wrapped_by {other:?} is not passphrase or key-file")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Cheap costs: the tests check the wrapping, not Argon2's strength.
    const FAST: KdfCost = KdfCost {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    };

    #[test]
    fn sealed_bytes_open_only_with_their_key_and_place() {
        let k = Key::random().unwrap();
        let s = seal(&k, b"pack 7 frame 0", b"hello").unwrap();
        assert_eq!(s.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(open(&k, b"pack 7 frame 0", &s, "f").unwrap(), b"hello");
        let moved = open(&k, b"pack 7 frame 1", &s, "frame 1").unwrap_err();
        assert_eq!(moved, CryptError::Tampered { what: "frame 1".into() });
        assert!(open(&Key::random().unwrap(), b"pack 7 frame 0", &s, "f").is_err());
        let mut flipped = s.clone();
        flipped[30] ^= 1;
        assert!(open(&k, b"pack 7 frame 0", &flipped, "f").is_err());
        assert!(matches!(
            open(&k, b"", &s[..10], "f"),
            Err(CryptError::TooShort { len: 10, .. })
        ));
        assert_ne!(
            seal(&k, b"a", b"same").unwrap(),
            seal(&k, b"a", b"same").unwrap(),
            "fresh nonces"
        );
    }

    #[test]
    fn a_passphrase_or_key_file_unwraps_the_master_key_and_a_wrong_one_is_refused() {
        let master = Key::random().unwrap();
        let w = wrap(&master, &Secret::Passphrase(b"correct horse"), FAST).unwrap();
        assert_eq!(
            unwrap(&w, &Secret::Passphrase(b"correct horse")).unwrap().bytes(),
            master.bytes()
        );
        assert_eq!(
            unwrap(&w, &Secret::Passphrase(b"correct hors")).unwrap_err(),
            CryptError::WrongSecret
        );
        assert_eq!(
            unwrap(&w, &Secret::KeyFile(&[7; 32])).unwrap_err(),
            CryptError::WrongSecret
        );
        let kf = [9u8; 64];
        let w = wrap(&master, &Secret::KeyFile(&kf), FAST).unwrap();
        assert_eq!(unwrap(&w, &Secret::KeyFile(&kf)).unwrap().bytes(), master.bytes());
        assert!(
            wrap(&master, &Secret::KeyFile(&[1; 8]), FAST).is_err(),
            "a short key file"
        );
    }

    #[test]
    fn rekey_keeps_the_master_key_and_retires_the_old_secret() {
        let master = Key::random().unwrap();
        let w = wrap(&master, &Secret::Passphrase(b"old"), FAST).unwrap();
        let w2 = rewrap(&w, &Secret::Passphrase(b"old"), &Secret::Passphrase(b"new"), FAST).unwrap();
        assert_eq!(
            unwrap(&w2, &Secret::Passphrase(b"new")).unwrap().bytes(),
            master.bytes()
        );
        assert_eq!(
            unwrap(&w2, &Secret::Passphrase(b"old")).unwrap_err(),
            CryptError::WrongSecret
        );
        assert!(rewrap(&w, &Secret::Passphrase(b"wrong"), &Secret::Passphrase(b"x"), FAST).is_err());
    }

    #[test]
    fn derived_keys_differ_and_ids_depend_on_the_key() {
        let a = ArchiveKeys::derive(&Key::from_bytes([1; 32]));
        let b = ArchiveKeys::derive(&Key::from_bytes([2; 32]));
        let all = [a.content.bytes(), a.index.bytes(), a.log.bytes(), a.ids.bytes()];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
        let (ia, ib) = (a.id_hasher(), b.id_hasher());
        assert_eq!(ia.id(b"m"), a.id_hasher().id(b"m"));
        assert_ne!(ia.id(b"m"), ib.id(b"m"));
        assert_ne!(ia.id(b"m").0, *blake3::hash(b"m").as_bytes(), "not the plain id");
    }

    #[test]
    fn key_files_read_back_and_bad_ones_are_named() {
        let master = Key::random().unwrap();
        for w in [
            wrap(&master, &Secret::Passphrase(b"p"), FAST).unwrap(),
            wrap(&master, &Secret::KeyFile(&[5; 32]), FAST).unwrap(),
        ] {
            assert_eq!(parse_key_file(&key_file_text(&w)).unwrap(), w);
        }
        let good = key_file_text(&wrap(&master, &Secret::Passphrase(b"p"), FAST).unwrap());
        for (bad, words) in [
            (
                good.replace(KEY_FILE_FORMAT, "other-v9"),
                "is not mailvault-archive-key-v1",
            ),
            (good.replace("argon2id", "scrypt"), "not argon2id"),
            (good.replace("memory_kib = 64", "memory_kib = \"x\""), "`memory_kib`"),
            (good.replace("salt = \"", "salt = \"zz"), "`salt` is not hex"),
            ("not toml [".to_string(), ""),
        ] {
            let e = parse_key_file(&bad).unwrap_err();
            assert!(e.contains(words), "{bad}: {e}");
        }
    }

    proptest! {
        #[test]
        fn no_bytes_open_without_the_key_or_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let k = Key::from_bytes([3; 32]);
            prop_assert!(open(&k, b"x", &bytes, "fuzz").is_err());
        }

        #[test]
        fn anything_sealed_opens_back(plain in proptest::collection::vec(any::<u8>(), 0..2000), aad in proptest::collection::vec(any::<u8>(), 0..40)) {
            let k = Key::from_bytes([4; 32]);
            prop_assert_eq!(open(&k, &aad, &seal(&k, &aad, &plain).unwrap(), "p").unwrap(), plain);
        }
    }
}
