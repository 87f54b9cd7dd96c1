//! What the IMAP and POP3 pulls share: how to reach and log in to a server, the
//! size of a commit batch, progress reporting, the per-folder summary, and the
//! backoff between reconnects.

use std::sync::Arc;
use std::time::Duration;

use crate::net::{Endpoint, Secret};

/// How to authenticate.
#[derive(Clone, Debug)]
pub enum Auth {
    Password(Secret),
    /// An OAuth2 access token (XOAUTH2 or OAUTHBEARER), as given.
    OAuth2(Secret),
    /// The access token of a stored sign-in (`mailvault login`), refreshed before
    /// it expires and once more when the server refuses it.
    OAuth2SignIn(Arc<crate::oauth::TokenSource>),
}

impl Auth {
    /// The access token to offer now (refreshed first when due).
    pub async fn oauth2_token(&self) -> Result<Secret, crate::oauth::OAuthError> {
        match self {
            Auth::Password(_) => Err(crate::oauth::OAuthError::Config(
                "a password login has no OAuth2 token".into(),
            )),
            Auth::OAuth2(t) => Ok(t.clone()),
            Auth::OAuth2SignIn(s) => s.access_token().await,
        }
    }

    /// After the server refused `token`: a new one to try once, when there is one.
    pub async fn oauth2_retry(&self, token: &Secret) -> Result<Option<Secret>, crate::oauth::OAuthError> {
        match self {
            Auth::OAuth2SignIn(s) => s.after_refusal(token).await.map(Some),
            _ => Ok(None),
        }
    }
}

/// Which SASL mechanism carries an OAuth2 token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OAuthMechanism {
    /// XOAUTH2 when offered, else OAUTHBEARER.
    #[default]
    Auto,
    /// Google's and Microsoft's XOAUTH2.
    XOAuth2,
    /// RFC 7628's OAUTHBEARER.
    OAuthBearer,
}

/// Everything needed to open sessions to one server.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub endpoint: Endpoint,
    pub tls: Arc<rustls::ClientConfig>,
    /// `imap://` or `pop3://` without TLS at all. Never the default.
    pub insecure_plaintext: bool,
    pub auth: Auth,
    /// The SASL mechanism of an OAuth2 token.
    pub oauth2_mechanism: OAuthMechanism,
    /// IMAP: COMPRESS=DEFLATE (RFC 4978) when the server offers it.
    pub compress: bool,
    /// Bound on each network wait (connect, a response line, a FETCH item).
    pub io_timeout: Duration,
    /// The server's connection slots, when a service limits connections per host.
    pub slots: Option<Arc<tokio::sync::Semaphore>>,
    /// The largest message accepted from the server, by the size it announces and by
    /// the bytes it sends ([`DEFAULT_MAX_MESSAGE_SIZE`] unless set).
    pub max_message_size: u64,
}

/// The largest message a pull accepts unless told otherwise: 512 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 512 << 20;

/// A round trip from which a link counts as a WAN for [`Sessions`].
pub const FAR_ROUND_TRIP: Duration = Duration::from_millis(20);

/// How many sessions a pull opens in parallel (one folder each at a time): `near`
/// on a short round trip, `far` when the first session's round trip is
/// [`FAR_ROUND_TRIP`] or longer. Each folder costs a few round trips before its
/// first byte (EXAMINE, sizes, bodies); over a WAN more sessions in flight hide
/// more of them, while on a LAN they only compete for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sessions {
    pub near: usize,
    pub far: usize,
}

impl Sessions {
    /// The default without a provider preset: 4, and 8 over a WAN (Dovecot allows
    /// 10 per user and address unless told otherwise).
    pub const DEFAULT: Sessions = Sessions { near: 4, far: 8 };

    /// Always `n` (the user said so).
    pub fn exactly(n: usize) -> Sessions {
        Sessions { near: n, far: n }
    }

    /// A provider preset's: its `connections`, and over a WAN up to 8 within its
    /// published limit (none published: no more than `connections`).
    pub fn of_preset(connections: u32, max_connections: Option<u32>) -> Sessions {
        let near = connections.max(1) as usize;
        let far = max_connections.map_or(near, |m| (m as usize).min(8).max(near));
        Sessions { near, far }
    }

    /// The sessions for a measured round trip.
    pub fn for_round_trip(&self, rtt: Duration) -> usize {
        if rtt >= FAR_ROUND_TRIP {
            self.far.max(self.near).max(1)
        } else {
            self.near.max(1)
        }
    }
}

/// Size bounds of one fetch/commit batch.
#[derive(Clone, Copy, Debug)]
pub struct BatchLimits {
    pub max_messages: usize,
    pub max_bytes: u64,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_messages: 1000,
            max_bytes: 24 << 20,
        }
    }
}

/// Receives progress of a pull (a progress bar, a log, nothing).
pub trait PullProgress: Send + Sync {
    /// A folder has `messages` (`bytes`) to fetch.
    fn to_fetch(&self, folder: &str, messages: u64, bytes: u64);
    /// `messages` (`bytes`) of `folder` have been fetched.
    fn fetched(&self, folder: &str, messages: u64, bytes: u64);
    /// The folder is done (successfully or not).
    fn folder_done(&self, folder: &str);
}

/// A progress sink that ignores everything.
pub struct NoProgress;
impl PullProgress for NoProgress {
    fn to_fetch(&self, _: &str, _: u64, _: u64) {}
    fn fetched(&self, _: &str, _: u64, _: u64) {}
    fn folder_done(&self, _: &str) {}
}

/// What happened to one folder.
#[derive(Clone, Debug, Default, serde::Serialize, schemars::JsonSchema)]
pub struct FolderSummary {
    pub folder: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub special_use: String,
    pub uidvalidity: u32,
    /// Messages in the folder on the server (EXAMINE's EXISTS).
    pub exists: u32,
    /// Message bodies fetched over the network by this run.
    pub fetched: u64,
    pub fetched_bytes: u64,
    /// Fetched messages not in the archive before.
    pub new_messages: u64,
    /// Fetched messages the archive already had (from elsewhere or an older UIDVALIDITY).
    pub duplicates: u64,
    pub new_placements: u64,
    pub flag_changes: u64,
    pub deleted_at_source: u64,
    /// Messages found at UIDs below ones already archived (a server that handed out
    /// a lower UID, or lost its modseq state): fetched by this run, and said.
    #[serde(skip_serializing_if = "is_zero")]
    pub below_cursor: u64,
    /// Messages larger than the maximum message size: not archived, not deleted, and
    /// not fetched again (an IMAP cursor moves past them; a POP3 pull skips them by
    /// the size LIST gives).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub too_large: Vec<TooLarge>,
    /// Messages this run deleted on the server (POP3 with a delete policy).
    #[serde(skip_serializing_if = "is_zero")]
    pub deleted_on_server: u64,
    /// Connection retries this folder needed.
    pub retries: u32,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A stop (a signal) ended this folder before it was done; the next run resumes
    /// it. `error` says so in words.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
}

impl FolderSummary {
    /// Records that a stop ended this folder before it was done.
    pub fn mark_stopped(&mut self) {
        self.stopped = true;
        self.error = Some(STOPPED.into());
    }
}

/// What a folder a stop ended says as its error.
pub const STOPPED: &str = "stopped before this folder was done (the next run resumes it)";

/// A message not archived because it is larger than the maximum message size.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct TooLarge {
    pub folder: String,
    /// IMAP: the folder's UIDVALIDITY and the message's UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uidvalidity: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// POP3: the message's UIDL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uidl: Option<String>,
    pub bytes: u64,
    /// Whether `bytes` is what the server announced or what it began to send.
    pub seen: SizeSeen,
}

/// How a message's size was learnt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SizeSeen {
    /// RFC822.SIZE (IMAP) or LIST (POP3), before any byte of it was fetched.
    Announced,
    /// The literal's announced length or the bytes received, over the maximum while
    /// the size announced before was not.
    Received,
}

impl TooLarge {
    /// `folder UID n` or `UIDL x`, for messages and tables.
    pub fn which(&self) -> String {
        match (&self.uid, &self.uidl) {
            (Some(uid), _) => format!("{} UID {uid}", self.folder),
            (None, Some(uidl)) => format!("{} UIDL {uidl}", self.folder),
            (None, None) => self.folder.clone(),
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The result of a pull: one entry per folder, and totals.
#[derive(Clone, Debug, Default, serde::Serialize, schemars::JsonSchema)]
pub struct PullSummary {
    pub account: String,
    pub server: String,
    pub folders: Vec<FolderSummary>,
    pub total: FolderSummary,
    pub seconds: f64,
}

impl PullSummary {
    pub fn failed_folders(&self) -> usize {
        self.folders.iter().filter(|f| f.error.is_some()).count()
    }
}

/// Exponential backoff with ±25 % jitter, capped at 30 s.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(16).saturating_sub(1));
    let capped = exp.min(Duration::from_secs(30));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let jitter = 0.75 + (nanos % 1000) as f64 / 2000.0; // 0.75 ..= 1.25
    capped.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_grow_over_a_wan_within_the_limit() {
        let ms = Duration::from_millis;
        for (sessions, rtt, want) in [
            (Sessions::DEFAULT, ms(0), 4),
            (Sessions::DEFAULT, ms(19), 4),
            (Sessions::DEFAULT, ms(20), 8),
            (Sessions::DEFAULT, ms(300), 8),
            (Sessions::exactly(3), ms(50), 3),
            (Sessions::exactly(0), ms(50), 1),
            // Gmail (15 allowed), Microsoft 365 (20): 4 near, 8 far.
            (Sessions::of_preset(4, Some(15)), ms(1), 4),
            (Sessions::of_preset(4, Some(15)), ms(50), 8),
            (Sessions::of_preset(4, Some(20)), ms(50), 8),
            // A limit below 8 is kept; no published limit: never more than advised.
            (Sessions::of_preset(2, Some(5)), ms(50), 5),
            (Sessions::of_preset(2, None), ms(50), 2),
            (Sessions::of_preset(6, Some(5)), ms(50), 6),
        ] {
            assert_eq!(sessions.for_round_trip(rtt), want, "{sessions:?} at {rtt:?}");
        }
    }

    /// A batch is one FETCH: the link idles for one round trip between batches
    /// (parallel sessions fill it). A batch far larger than the bandwidth-delay
    /// product keeps that idle share small: at 1 Gbit/s and 100 ms (12.5 MB in
    /// flight) a full batch takes 200 ms, so under a third of one session's time idles.
    #[test]
    fn a_fetch_batch_exceeds_the_bandwidth_delay_product_of_a_fast_wan() {
        let bdp = 1_000_000_000 / 8 / 10; // 1 Gbit/s × 100 ms
        let b = BatchLimits::default();
        assert!(b.max_bytes >= 2 * bdp, "{b:?}");
        // Messages of 16 KB (the main corpus's mean) fill a batch to more than one BDP.
        assert!(b.max_messages as u64 * 16_000 >= bdp, "{b:?}");
    }
}
