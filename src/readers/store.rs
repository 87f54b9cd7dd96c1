//! Users and API tokens in the archive's secret store: `ARCHIVE/secrets/readers.json`,
//! 0600 in a 0700 directory, written whole and renamed into place under an
//! exclusive lock (`.readers.lock`), so two `mailvault user …` commands and a
//! running web server never lose each other's changes. In an encrypted archive
//! the file is sealed with the archive's secrets key.
//!
//! Passwords are kept as Argon2id hashes ([`super::password`]); tokens as the
//! BLAKE3 hash of the token (a token is 32 random bytes: a fast hash is enough,
//! and a stolen file gives no token). A token is shown once, when made.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{check_name, grant, password, Principal, ReaderError, Result, Role, Via};
use crate::crypt::{self, Key};

/// The format of the readers file.
pub const READERS_FORMAT: &str = "mailvault-readers-v1";
/// The first line of a sealed readers file.
const SEALED_MAGIC: &[u8] = b"mailvault-sealed-readers-v1\n";
const SEAL_AAD: &[u8] = b"mailvault readers v1";
/// What every API token starts with (so a leaked one is recognisable by scanners).
pub const TOKEN_PREFIX: &str = "mvt_";
/// The largest readers file read.
const MAX_FILE: u64 = 16 << 20;
/// A valid hash verified when the user does not exist, so that a login takes as
/// long for an unknown name as for a wrong password.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$Vp1I/2w4mYJmRkEJ1PEz2oV6bvvzsIh1bYxlr2gTd2U";

/// A web user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// For role `user`: the accounts granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<std::collections::BTreeSet<String>>,
    /// Argon2id, PHC string.
    pub password: String,
    pub created_at: i64,
    pub changed_at: i64,
}

/// An API token (its hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub name: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<std::collections::BTreeSet<String>>,
    /// BLAKE3 of the token, hex.
    pub hash: String,
    pub created_at: i64,
}

impl User {
    fn principal(&self) -> Principal {
        Principal {
            name: self.name.clone(),
            via: Via::Password,
            role: self.role,
            accounts: self.accounts.clone(),
        }
    }
}

impl Token {
    fn principal(&self) -> Principal {
        Principal {
            name: self.name.clone(),
            via: Via::Token,
            role: self.role,
            accounts: self.accounts.clone(),
        }
    }
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readers {
    pub format: String,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub tokens: Vec<Token>,
}

/// A user or token as listed (no hash).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Listed {
    pub name: String,
    pub kind: &'static str,
    pub role: Role,
    /// For role `user`: the accounts granted.
    pub accounts: Option<Vec<String>>,
    /// RFC 3339, UTC.
    pub created_at: String,
}

impl Readers {
    /// Users then tokens, each by name.
    pub fn listed(&self) -> Vec<Listed> {
        let list = |kind, name: &str, role, accounts: &Option<std::collections::BTreeSet<String>>, created_at| Listed {
            name: name.to_string(),
            kind,
            role,
            accounts: accounts.as_ref().map(|a| a.iter().cloned().collect()),
            created_at: chrono::DateTime::from_timestamp(created_at, 0)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default(),
        };
        let mut out: Vec<Listed> = self
            .users
            .iter()
            .map(|u| list("user", &u.name, u.role, &u.accounts, u.created_at))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        let mut tokens: Vec<Listed> = self
            .tokens
            .iter()
            .map(|t| list("token", &t.name, t.role, &t.accounts, t.created_at))
            .collect();
        tokens.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(tokens);
        out
    }
}

/// The readers file of one archive.
pub struct ReaderStore {
    dir: PathBuf,
    key: Option<Arc<Key>>,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn token_hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// Equal strings, compared in time independent of where they differ.
impl ReaderStore {
    /// The store of the archive at `archive`; `key` seals it (an encrypted archive's
    /// secrets key).
    pub fn for_archive(archive: &Path, key: Option<Arc<Key>>) -> ReaderStore {
        ReaderStore {
            dir: archive.join("secrets"),
            key,
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("readers.json")
    }

    fn err(&self, detail: impl std::fmt::Display) -> ReaderError {
        ReaderError::Store {
            path: self.path(),
            detail: detail.to_string(),
        }
    }

    /// Everything stored; empty when there is no file yet.
    pub fn load(&self) -> Result<Readers> {
        let path = self.path();
        let f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Readers {
                    format: READERS_FORMAT.into(),
                    ..Default::default()
                })
            }
            Err(e) => return Err(self.err(e)),
        };
        let mut bytes = Vec::new();
        f.take(MAX_FILE + 1).read_to_end(&mut bytes).map_err(|e| self.err(e))?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(self.err(format!("larger than {MAX_FILE} bytes")));
        }
        let json = match (bytes.strip_prefix(SEALED_MAGIC), &self.key) {
            (Some(sealed), Some(key)) => crypt::open(key, SEAL_AAD, sealed, "readers file")
                .map_err(|e| self.err(format!("cannot be opened with this archive's key ({e})")))?,
            (Some(_), None) => return Err(self.err("sealed, and no archive secret was given")),
            (None, Some(_)) => return Err(self.err("not sealed in an encrypted archive (refused)")),
            (None, None) => bytes,
        };
        let r: Readers = serde_json::from_slice(&json).map_err(|e| self.err(format!("not a readers file ({e})")))?;
        if r.format != READERS_FORMAT {
            return Err(self.err(format!("format {:?}; this mailvault reads {READERS_FORMAT}", r.format)));
        }
        Ok(r)
    }

    /// Writes `r` whole: a temporary file, fsync, rename, fsync of the directory.
    fn save(&self, r: &Readers) -> Result<()> {
        crate::private::create_dir_all(&self.dir).map_err(|e| self.err(e))?;
        let json = serde_json::to_vec_pretty(r).map_err(|e| self.err(e))?;
        let bytes = match &self.key {
            Some(key) => {
                let mut b = SEALED_MAGIC.to_vec();
                b.extend(crypt::seal(key, SEAL_AAD, &json).map_err(|e| self.err(e))?);
                b
            }
            None => json,
        };
        crate::private::write_atomic(&self.dir, "readers.json", &bytes).map_err(|e| self.err(e))
    }

    /// Reads, changes and writes the file under the store's lock.
    pub fn update<T>(&self, change: impl FnOnce(&mut Readers) -> Result<T>) -> Result<T> {
        crate::private::create_dir_all(&self.dir).map_err(|e| self.err(e))?;
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(self.dir.join(".readers.lock"))
            .map_err(|e| self.err(e))?;
        // SAFETY: flock on a descriptor we own; released when `lock` closes.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(self.err(std::io::Error::last_os_error()));
        }
        let mut r = self.load()?;
        let out = change(&mut r)?;
        self.save(&r)?;
        Ok(out)
    }

    /// Adds a user (the password checked and hashed).
    pub fn add_user(&self, name: &str, role: Role, accounts: &[String], pw: &str) -> Result<()> {
        check_name(name)?;
        let accounts = grant(name, role, accounts)?;
        let hash = password::hash(pw)?;
        self.update(|r| {
            if r.users.iter().any(|u| u.name == name) {
                return Err(ReaderError::UserExists(name.into()));
            }
            let t = now();
            r.users.push(User {
                name: name.into(),
                role,
                accounts,
                password: hash,
                created_at: t,
                changed_at: t,
            });
            Ok(())
        })
    }

    /// Sets a user's password.
    pub fn set_password(&self, name: &str, pw: &str) -> Result<()> {
        let hash = password::hash(pw)?;
        self.update(|r| {
            let u = r
                .users
                .iter_mut()
                .find(|u| u.name == name)
                .ok_or_else(|| ReaderError::NoUser(name.into()))?;
            u.password = hash;
            u.changed_at = now();
            Ok(())
        })
    }

    /// Removes a user; an error when there is none.
    pub fn remove_user(&self, name: &str) -> Result<()> {
        self.update(|r| {
            let before = r.users.len();
            r.users.retain(|u| u.name != name);
            if r.users.len() == before {
                return Err(ReaderError::NoUser(name.into()));
            }
            Ok(())
        })
    }

    /// Makes a token; returns it (the only time it is seen).
    pub fn create_token(&self, name: &str, role: Role, accounts: &[String]) -> Result<String> {
        check_name(name)?;
        let accounts = grant(name, role, accounts)?;
        let raw = crypt::random::<32>().map_err(|e| self.err(e))?;
        use base64::Engine;
        let token = format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let hash = token_hash(&token);
        self.update(|r| {
            if r.tokens.iter().any(|t| t.name == name) {
                return Err(ReaderError::TokenExists(name.into()));
            }
            r.tokens.push(Token {
                name: name.into(),
                role,
                accounts,
                hash,
                created_at: now(),
            });
            Ok(())
        })?;
        Ok(token)
    }

    /// Revokes a token; an error when there is none.
    pub fn revoke_token(&self, name: &str) -> Result<()> {
        self.update(|r| {
            let before = r.tokens.len();
            r.tokens.retain(|t| t.name != name);
            if r.tokens.len() == before {
                return Err(ReaderError::NoToken(name.into()));
            }
            Ok(())
        })
    }
}

impl Readers {
    /// The user `name` when `pw` is theirs. An unknown name costs as much time as a
    /// wrong password.
    pub fn sign_in(&self, name: &str, pw: &str) -> Result<Option<Principal>> {
        let Some(u) = self.users.iter().find(|u| u.name == name) else {
            let _ = password::verify(pw, DUMMY_HASH);
            return Ok(None);
        };
        Ok(password::verify(pw, &u.password)?.then(|| u.principal()))
    }

    /// The reader a bearer token stands for, if it is a live one.
    pub fn bearer(&self, token: &str) -> Option<Principal> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return None;
        }
        let hash = token_hash(token);
        // Every token is compared, so the time does not tell which one came close.
        let mut found = None;
        for t in &self.tokens {
            if super::same_secret(&t.hash, &hash) {
                found = Some(t);
            }
        }
        found.map(Token::principal)
    }

    /// The principal a web session's user stands for now (roles and grants change).
    pub fn user(&self, name: &str) -> Option<Principal> {
        self.users.iter().find(|u| u.name == name).map(User::principal)
    }

    /// A fingerprint of `name`'s password hash: a web session keeps the one it was
    /// started with, and ends when it changes (a new password signs out everywhere).
    pub fn password_stamp(&self, name: &str) -> Option<[u8; 32]> {
        let u = self.users.iter().find(|u| u.name == name)?;
        Some(*blake3::hash(u.password.as_bytes()).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const PW: &str = "a long enough secret";

    #[test]
    fn the_dummy_hash_is_a_valid_argon2id_hash() {
        assert!(!password::verify(PW, DUMMY_HASH).unwrap());
    }

    #[test]
    fn users_sign_in_with_their_password_only_and_the_file_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let s = ReaderStore::for_archive(tmp.path(), None);
        s.add_user("ann", Role::User, &["a".into()], PW).unwrap();
        s.add_user("root", Role::Admin, &[], PW).unwrap();
        assert!(matches!(
            s.add_user("ann", Role::Admin, &[], PW),
            Err(ReaderError::UserExists(_))
        ));
        let r = s.load().unwrap();
        let ann = r.sign_in("ann", PW).unwrap().unwrap();
        assert_eq!(
            (ann.role, ann.may_see("a"), ann.may_see("b")),
            (Role::User, true, false)
        );
        assert!(r.sign_in("ann", "a wrong secret!").unwrap().is_none());
        assert!(r.sign_in("nobody", PW).unwrap().is_none());
        let mode = std::fs::metadata(s.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(s.path()).unwrap();
        assert!(!text.contains(PW));

        s.set_password("ann", "another long secret").unwrap();
        let r = s.load().unwrap();
        assert!(r.sign_in("ann", PW).unwrap().is_none());
        assert!(r.sign_in("ann", "another long secret").unwrap().is_some());
        s.remove_user("ann").unwrap();
        assert!(matches!(s.remove_user("ann"), Err(ReaderError::NoUser(_))));
        assert!(s
            .load()
            .unwrap()
            .sign_in("ann", "another long secret")
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_token_is_shown_once_kept_as_a_hash_and_revocable() {
        let tmp = tempfile::tempdir().unwrap();
        let s = ReaderStore::for_archive(tmp.path(), None);
        let t = s.create_token("ci", Role::Auditor, &[]).unwrap();
        assert!(t.starts_with(TOKEN_PREFIX) && t.len() > 40, "{t}");
        assert!(!std::fs::read_to_string(s.path()).unwrap().contains(&t[4..]));
        let r = s.load().unwrap();
        let p = r.bearer(&t).unwrap();
        assert_eq!(
            (p.name.as_str(), p.role, p.logged_as()),
            ("ci", Role::Auditor, "token:ci".into())
        );
        assert!(r.bearer(&format!("{t}x")).is_none());
        assert!(r.bearer("mvt_").is_none());
        assert!(r.bearer(&t[4..]).is_none());
        s.revoke_token("ci").unwrap();
        assert!(s.load().unwrap().bearer(&t).is_none());
        assert!(matches!(s.revoke_token("ci"), Err(ReaderError::NoToken(_))));
    }

    #[test]
    fn a_sealed_store_opens_only_with_its_key() {
        let tmp = tempfile::tempdir().unwrap();
        let key = Arc::new(Key::random().unwrap());
        let s = ReaderStore::for_archive(tmp.path(), Some(key));
        s.add_user("ann", Role::Auditor, &[], PW).unwrap();
        let raw = std::fs::read(s.path()).unwrap();
        assert!(raw.starts_with(SEALED_MAGIC));
        assert!(!raw.windows(3).any(|w| w == b"ann"));
        assert!(s.load().unwrap().sign_in("ann", PW).unwrap().is_some());
        let other = ReaderStore::for_archive(tmp.path(), Some(Arc::new(Key::random().unwrap())));
        assert!(other.load().unwrap_err().to_string().contains("cannot be opened"));
        let plain = ReaderStore::for_archive(tmp.path(), None);
        assert!(plain.load().unwrap_err().to_string().contains("no archive secret"));
    }

    #[test]
    fn a_file_of_another_format_is_refused_with_both_versions_named() {
        let tmp = tempfile::tempdir().unwrap();
        let s = ReaderStore::for_archive(tmp.path(), None);
        std::fs::create_dir_all(tmp.path().join("secrets")).unwrap();
        std::fs::write(s.path(), r#"{"format":"mailvault-readers-v9","users":[],"tokens":[]}"#).unwrap();
        let e = s.load().unwrap_err().to_string();
        assert!(e.contains("mailvault-readers-v9") && e.contains(READERS_FORMAT), "{e}");
        std::fs::write(s.path(), "{ not json").unwrap();
        assert!(s.load().unwrap_err().to_string().contains("not a readers file"));
    }
}
