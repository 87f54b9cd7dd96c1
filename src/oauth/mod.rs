//! OAuth2 sign-in for IMAP and POP3: `mailvault login` (the device grant, RFC 8628;
//! the authorization code grant with PKCE and a loopback redirect, RFC 7636 and
//! RFC 8252; client credentials for app-only access), the stored sign-in, and the
//! access token that pulls, replays and the service refresh as they go.
//!
//! - [`flow`]: pure — endpoints, PKCE, redirects, polling decisions, token lifetimes.
//! - [`client`]: the HTTP adapter (discovery, token endpoint, device endpoint).
//! - [`loopback`]: the one-request web server a browser sign-in returns to.
//! - [`store`]: sign-ins kept in the archive's secret store (0600; sealed when the
//!   archive is encrypted).
//! - [`source`]: the access token of one stored sign-in, refreshed before it expires
//!   and once more when a server refuses it.

pub mod client;
pub mod flow;
pub mod loopback;
pub mod source;
pub mod store;

pub use source::TokenSource;
pub use store::{Grant, SignIn, TokenStore};

/// What went wrong signing in or refreshing.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("OpenID discovery at {issuer}: {detail}")]
    Discovery { issuer: String, detail: String },
    #[error("{url}: {detail}")]
    Http { url: String, detail: String },
    #[error("{what}: the provider answered {error}{}", if description.is_empty() { String::new() } else { format!(" ({description})") })]
    Provider {
        what: String,
        error: String,
        description: String,
    },
    #[error("the sign-in was declined")]
    Denied,
    #[error("the device code expired before the sign-in was finished; run the command again")]
    DeviceCodeExpired,
    #[error("the browser's redirect: {detail}")]
    Redirect { detail: String },
    #[error("account {account}: the provider no longer accepts its sign-in ({detail}); run `mailvault login --account {account} …` again")]
    NeedsLogin { account: String, detail: String },
    #[error("account {account} has not signed in: run `mailvault login --account {account} --provider …` first (no sign-in at {path})")]
    NotSignedIn { account: String, path: String },
    #[error("the sign-in store {path}: {detail}")]
    Store { path: String, detail: String },
    #[error("{0}")]
    Config(String),
}

/// The preset a `--provider` name means (`microsoft` is `microsoft365`, `google`
/// is `gmail`), or the name itself (`generic`).
pub fn provider_name(name: &str) -> String {
    crate::presets::lookup(name).map_or_else(|_| name.to_ascii_lowercase(), |p| p.name.clone())
}

/// Whether two `--provider` names mean the same provider.
pub fn same_provider(a: &str, b: &str) -> bool {
    provider_name(a) == provider_name(b)
}

impl OAuthError {
    /// A failure that a new sign-in, not a retry, mends.
    pub fn needs_login(&self) -> bool {
        matches!(self, OAuthError::NeedsLogin { .. } | OAuthError::NotSignedIn { .. })
    }
}
