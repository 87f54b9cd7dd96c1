//! The access token of one stored sign-in, as a pull, replay or the service needs
//! it: refreshed before it expires (a quarter of its life early, at most five
//! minutes), refreshed once more when a server refuses it, and saved after every
//! refresh (providers rotate refresh tokens: the old one stops working).
//!
//! One refresh at a time per account: within a process every user of an account
//! shares one source ([`TokenSource::shared`]); across processes a refresh holds
//! the account's lock file and first rereads the store, taking a token another
//! process has just refreshed instead of spending the rotated refresh token again.
//! A refresh the provider refuses for good (`invalid_grant`) is
//! [`OAuthError::NeedsLogin`], recorded in the store, and not tried again by
//! anyone until `mailvault login` signs in anew.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use tokio::sync::Mutex;
use tracing::warn;

use super::client::{self, OAuthClient};
use super::flow::Tokens;
use super::store::{Grant, SignIn, TokenStore};
use super::OAuthError;
use crate::net::Secret;

/// The refreshing access token of one account.
pub struct TokenSource {
    account: String,
    store: TokenStore,
    client: OAuthClient,
    state: Mutex<SignIn>,
    refreshes: AtomicU64,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// The sources alive in this process, by sign-in file.
static SHARED: std::sync::Mutex<Option<HashMap<PathBuf, Weak<TokenSource>>>> = std::sync::Mutex::new(None);

impl TokenSource {
    /// The source of `account`'s sign-in, shared with every other user of it in
    /// this process (blocking: may read one small file).
    pub fn shared(store: TokenStore, account: &str) -> Result<Arc<TokenSource>, OAuthError> {
        let path = store.path(account);
        let mut map = SHARED.lock().expect("token sources");
        let map = map.get_or_insert_with(HashMap::new);
        if let Some(s) = map.get(&path).and_then(Weak::upgrade) {
            return Ok(s);
        }
        let s = Self::open(store, account)?;
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(path, Arc::downgrade(&s));
        Ok(s)
    }

    fn open(store: TokenStore, account: &str) -> Result<Arc<TokenSource>, OAuthError> {
        let sign_in = store.load(account)?;
        if let Some(detail) = &sign_in.needs_login {
            return Err(OAuthError::NeedsLogin {
                account: account.into(),
                detail: detail.clone(),
            });
        }
        let secret = sign_in.client_secret.clone().map(Secret::new);
        let client = OAuthClient::new(
            client::http_client()?,
            sign_in.endpoints.clone(),
            sign_in.client_id.clone(),
            secret,
        );
        Ok(Arc::new(TokenSource {
            account: account.to_string(),
            store,
            client,
            state: Mutex::new(sign_in),
            refreshes: AtomicU64::new(0),
        }))
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// Refreshes done by this source.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// An access token good for work that starts now.
    pub async fn access_token(&self) -> Result<Secret, OAuthError> {
        let mut st = self.state.lock().await;
        self.check_alive(&st)?;
        if !st.tokens.fresh_at(client::now()) {
            self.refresh(&mut st, None).await?;
        }
        Ok(Secret::new(st.tokens.access_token.clone()))
    }

    /// A server refused `refused`: a new token, unless another connection has
    /// already replaced it (then that one).
    pub async fn after_refusal(&self, refused: &Secret) -> Result<Secret, OAuthError> {
        let mut st = self.state.lock().await;
        self.check_alive(&st)?;
        if st.tokens.access_token == refused.expose() {
            warn!(account = %self.account, "the server refused the access token; refreshing it once");
            self.refresh(&mut st, Some(refused.expose())).await?;
        }
        Ok(Secret::new(st.tokens.access_token.clone()))
    }

    /// Seconds until the current token is due for a refresh.
    pub async fn refresh_due_in(&self) -> u64 {
        self.state.lock().await.tokens.refresh_due_in(client::now())
    }

    fn check_alive(&self, st: &SignIn) -> Result<(), OAuthError> {
        match &st.needs_login {
            Some(detail) => Err(OAuthError::NeedsLogin {
                account: self.account.clone(),
                detail: detail.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Refreshes under the account's lock file. Another process may have
    /// refreshed meanwhile: its token is taken when it is fresh and not `refused`.
    async fn refresh(&self, st: &mut SignIn, refused: Option<&str>) -> Result<(), OAuthError> {
        let (store, account) = (self.store.clone(), self.account.clone());
        let (lock, stored) = tokio::task::spawn_blocking(move || {
            let lock = store.lock(&account)?;
            let stored = store.load(&account)?;
            Ok::<_, OAuthError>((lock, stored))
        })
        .await
        .map_err(|e| OAuthError::Config(format!("reading the sign-in: {e}")))??;
        let theirs_fresh = stored.tokens.access_token != st.tokens.access_token
            && Some(stored.tokens.access_token.as_str()) != refused
            && stored.tokens.fresh_at(client::now());
        if stored.needs_login.is_some() || theirs_fresh {
            *st = stored;
            return self.check_alive(st);
        }
        // The stored refresh token is the newest (another process may have rotated it).
        st.tokens.refresh_token = stored.tokens.refresh_token.clone();
        match self.fetch(st).await {
            Ok(tokens) => {
                st.tokens = tokens;
                self.refreshes.fetch_add(1, Ordering::Relaxed);
            }
            Err(OAuthError::NeedsLogin { detail, .. }) => st.needs_login = Some(detail),
            Err(e) => return Err(e),
        }
        let (store, sign_in) = (self.store.clone(), st.clone());
        tokio::task::spawn_blocking(move || {
            let saved = store.save(&sign_in);
            drop(lock);
            saved
        })
        .await
        .map_err(|e| OAuthError::Config(format!("saving the sign-in: {e}")))??;
        self.check_alive(st)
    }

    async fn fetch(&self, s: &SignIn) -> Result<Tokens, OAuthError> {
        match s.grant {
            Grant::App => self.client.client_credentials(&self.account, &s.scopes).await,
            Grant::User => match s.tokens.refresh_token.as_deref() {
                Some(r) => self.client.refresh(&self.account, r).await,
                None => Err(OAuthError::NeedsLogin {
                    account: self.account.clone(),
                    detail: "the sign-in has no refresh token (was offline access granted?)".into(),
                }),
            },
        }
    }
}
