//! Sign-ins kept in the archive's secret store: `ARCHIVE/secrets/oauth2/ACCOUNT.json`,
//! one file per account, 0600 in a 0700 directory, written whole and renamed into
//! place (a refresh that rotates the refresh token must never leave half a file).
//! In an encrypted archive the file is sealed with the archive's secrets key and
//! bound to the account's name. Tokens are never printed: `Debug` hides them.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::flow::{Endpoints, Tokens};
use super::OAuthError;
use crate::crypt::{self, Key};

/// The format of a sign-in file.
pub const SIGN_IN_FORMAT: &str = "mailvault-sign-in-v1";
/// The first line of a sealed sign-in file.
const SEALED_MAGIC: &[u8] = b"mailvault-sealed-sign-in-v1\n";

/// How the access tokens of a sign-in are obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Grant {
    /// A user signed in (device or browser); refreshed with the refresh token.
    User,
    /// App-only (client credentials): a new token from the client's secret.
    App,
}

/// One account's sign-in: where and as which client it was made, and its tokens.
#[derive(Clone, Serialize, Deserialize)]
pub struct SignIn {
    pub format: String,
    pub account: String,
    /// The provider preset's name, or `generic`.
    pub provider: String,
    pub grant: Grant,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub endpoints: Endpoints,
    pub scopes: Vec<String>,
    pub tokens: Tokens,
    /// Set when the provider refused the sign-in for good (a revoked refresh
    /// token): nobody asks it again until `mailvault login` replaces the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_login: Option<String>,
}

impl SignIn {
    /// Whether this sign-in is the one a job asks for: the same provider (by any of
    /// its names), and the client id and Microsoft tenant when the job names them
    /// (the tenant is part of the token endpoint the sign-in was made with).
    pub fn made_for(&self, provider: &str, client_id: Option<&str>, tenant: Option<&str>) -> Result<(), String> {
        if !super::same_provider(&self.provider, provider) {
            return Err(format!(
                "the stored sign-in is for provider {}, the job says {provider}",
                self.provider
            ));
        }
        if let Some(c) = client_id.filter(|c| *c != self.client_id) {
            return Err(format!(
                "the stored sign-in is for client {}, the job says {c}",
                self.client_id
            ));
        }
        if let Some(t) = tenant.filter(|t| !self.endpoints.token.contains(&format!("/{t}/"))) {
            return Err(format!(
                "the stored sign-in's token endpoint {} is not tenant {t}'s",
                self.endpoints.token
            ));
        }
        Ok(())
    }
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("account", &self.account)
            .field("provider", &self.provider)
            .field("grant", &self.grant)
            .field("client_id", &self.client_id)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

/// The sign-ins of one archive.
#[derive(Clone, Debug)]
pub struct TokenStore {
    dir: PathBuf,
    key: Option<Arc<Key>>,
}

/// An account name fit for a file name: letters, digits, `.`, `_`, `-`, `@`, `+`.
pub fn check_account(account: &str) -> Result<(), OAuthError> {
    let ok = !account.is_empty()
        && account.len() <= 200
        && !account.starts_with('.')
        && account
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+'));
    if ok {
        Ok(())
    } else {
        Err(OAuthError::Config(format!(
            "account name {account:?}: use letters, digits and . _ - @ + only"
        )))
    }
}

impl TokenStore {
    /// The store of the archive at `archive`; `key` when the archive is encrypted.
    pub fn for_archive(archive: &Path, key: Option<Arc<Key>>) -> TokenStore {
        TokenStore {
            dir: archive.join("secrets").join("oauth2"),
            key,
        }
    }

    /// The store of `archive`.
    pub fn of(archive: &crate::archive::Archive) -> TokenStore {
        TokenStore::for_archive(archive.dir(), archive.secrets_key())
    }

    pub fn path(&self, account: &str) -> PathBuf {
        self.dir.join(format!("{account}.json"))
    }

    /// Holds `account`'s lock file (an exclusive `flock`) until the returned file
    /// is dropped: one refresh at a time across processes (blocking).
    pub fn lock(&self, account: &str) -> Result<std::fs::File, OAuthError> {
        use std::os::unix::io::AsRawFd;
        check_account(account)?;
        crate::private::create_dir_all(&self.dir).map_err(|e| self.store_err(account, e))?;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(self.dir.join(format!(".{account}.lock")))
            .map_err(|e| self.store_err(account, e))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(self.store_err(account, std::io::Error::last_os_error()));
        }
        Ok(f)
    }

    fn aad(account: &str) -> Vec<u8> {
        format!("mailvault sign-in {account}").into_bytes()
    }

    fn store_err(&self, account: &str, detail: impl std::fmt::Display) -> OAuthError {
        OAuthError::Store {
            path: self.path(account).display().to_string(),
            detail: detail.to_string(),
        }
    }

    /// The sign-in of `account`.
    pub fn load(&self, account: &str) -> Result<SignIn, OAuthError> {
        check_account(account)?;
        let path = self.path(account);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(OAuthError::NotSignedIn {
                    account: account.into(),
                    path: path.display().to_string(),
                })
            }
            Err(e) => return Err(self.store_err(account, e)),
        };
        let json = match (bytes.strip_prefix(SEALED_MAGIC), &self.key) {
            (Some(sealed), Some(key)) => {
                crypt::open(key, &Self::aad(account), sealed, "the sign-in").map_err(|e| self.store_err(account, e))?
            }
            (Some(_), None) => return Err(self.store_err(account, "sealed, and the archive gave no key")),
            (None, Some(_)) => return Err(self.store_err(account, "not sealed, in an encrypted archive")),
            (None, None) => bytes,
        };
        let s: SignIn = serde_json::from_slice(&json).map_err(|e| self.store_err(account, e))?;
        if s.format != SIGN_IN_FORMAT {
            return Err(self.store_err(
                account,
                format!("format {:?}, this mailvault reads {SIGN_IN_FORMAT}", s.format),
            ));
        }
        if s.account != account {
            return Err(self.store_err(account, format!("holds the sign-in of {:?}", s.account)));
        }
        Ok(s)
    }

    /// Writes `sign_in` whole (a temporary file, fsync, rename, fsync of the directory).
    pub fn save(&self, sign_in: &SignIn) -> Result<(), OAuthError> {
        let account = sign_in.account.as_str();
        check_account(account)?;
        crate::private::create_dir_all(&self.dir).map_err(|e| self.store_err(account, e))?;
        let json = serde_json::to_vec_pretty(sign_in).map_err(|e| self.store_err(account, e))?;
        let bytes = match &self.key {
            Some(key) => {
                let mut b = SEALED_MAGIC.to_vec();
                b.extend(crypt::seal(key, &Self::aad(account), &json).map_err(|e| self.store_err(account, e))?);
                b
            }
            None => json,
        };
        crate::private::write_atomic(&self.dir, &format!("{account}.json"), &bytes)
            .map_err(|e| self.store_err(account, e))
    }

    /// Removes the sign-in of `account`; whether there was one.
    pub fn remove(&self, account: &str) -> Result<bool, OAuthError> {
        check_account(account)?;
        match std::fs::remove_file(self.path(account)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.store_err(account, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sign_in(account: &str) -> SignIn {
        SignIn {
            format: SIGN_IN_FORMAT.into(),
            account: account.into(),
            provider: "generic".into(),
            grant: Grant::User,
            client_id: "c".into(),
            client_secret: None,
            endpoints: Endpoints {
                issuer: None,
                authorization: None,
                token: "http://127.0.0.1:1/token".into(),
                device: None,
                revocation: None,
            },
            scopes: vec!["openid".into()],
            tokens: Tokens {
                access_token: "access-secret".into(),
                obtained_at: 1,
                expires_at: Some(2),
                refresh_token: Some("refresh-secret".into()),
                scope: None,
            },
            needs_login: None,
        }
    }

    #[test]
    fn a_sign_in_is_kept_private_and_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let store = TokenStore::for_archive(tmp.path(), None);
        assert!(matches!(store.load("alice"), Err(OAuthError::NotSignedIn { .. })));
        store.save(&sign_in("alice")).unwrap();
        let back = store.load("alice").unwrap();
        assert_eq!(back.tokens, sign_in("alice").tokens);
        let mode = std::fs::metadata(store.path("alice")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(tmp.path().join("secrets/oauth2"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert!(!format!("{back:?}").contains("secret"), "{back:?}");
        assert!(store.remove("alice").unwrap());
        assert!(!store.remove("alice").unwrap());
    }

    #[test]
    fn a_sealed_sign_in_needs_the_key_and_its_own_name() {
        let tmp = tempfile::tempdir().unwrap();
        let key = Arc::new(Key::from_bytes([7; 32]));
        let store = TokenStore::for_archive(tmp.path(), Some(key));
        store.save(&sign_in("alice")).unwrap();
        let raw = std::fs::read(store.path("alice")).unwrap();
        assert!(!raw.windows(14).any(|w| w == b"refresh-secret"));
        assert_eq!(store.load("alice").unwrap().account, "alice");
        // Another key, no key, or the file moved to another account's name: refused.
        let other = TokenStore::for_archive(tmp.path(), Some(Arc::new(Key::from_bytes([8; 32]))));
        assert!(matches!(other.load("alice"), Err(OAuthError::Store { .. })));
        assert!(matches!(
            TokenStore::for_archive(tmp.path(), None).load("alice"),
            Err(OAuthError::Store { .. })
        ));
        std::fs::copy(store.path("alice"), store.path("bob")).unwrap();
        assert!(matches!(store.load("bob"), Err(OAuthError::Store { .. })));
    }

    #[test]
    fn a_sign_in_is_used_only_for_the_provider_client_and_tenant_it_was_made_for() {
        let mut s = sign_in("alice");
        s.provider = "microsoft365".into();
        s.endpoints.token = "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token".into();
        s.client_id = "c-1".into();
        assert_eq!(s.made_for("microsoft", Some("c-1"), Some("contoso.com")), Ok(()));
        assert_eq!(s.made_for("m365", None, None), Ok(()));
        for (provider, client, tenant, words) in [
            ("google", None, None, "provider"),
            ("microsoft", Some("c-2"), None, "client c-1"),
            ("microsoft", None, Some("fabrikam.com"), "tenant fabrikam.com"),
        ] {
            let e = s.made_for(provider, client, tenant).unwrap_err();
            assert!(e.contains(words), "{e}");
        }
    }

    #[test]
    fn account_names_stay_inside_the_store() {
        for bad in ["", "../x", "a/b", ".hidden", "a b", "a\0"] {
            assert!(check_account(bad).is_err(), "{bad:?}");
        }
        for good in ["alice", "alice@example.org", "a.b-c_d+e"] {
            assert!(check_account(good).is_ok(), "{good:?}");
        }
    }
}
