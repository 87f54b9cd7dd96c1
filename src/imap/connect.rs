//! Opening an IMAP session: TCP, implicit TLS or STARTTLS (required unless plaintext
//! is explicitly allowed), greeting checks, CAPABILITY after TLS, login by LOGIN,
//! AUTHENTICATE PLAIN or XOAUTH2/OAUTHBEARER, then ENABLE QRESYNC/CONDSTORE and
//! NAMESPACE.
//!
//! Everything before TLS is done here, line by line, so that nothing the server sent
//! in plaintext survives into the TLS session: bytes after the STARTTLS OK are
//! discarded, and CAPABILITY is asked again once TLS is up.

use std::time::Duration;

use async_imap::{Client, Session};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::debug;

use super::ImapError;
use crate::net::deflate::{DeflateSwitch, Deflating};
use crate::net::{tls, Dropped, Guarded, MaybeTls, Scheme, Secret};
use crate::plan::namespace::Namespaces;
use crate::remote::{Auth, ConnectOptions, OAuthMechanism};

/// What the server can do, as far as the sync cares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerCaps {
    pub condstore: bool,
    pub qresync: bool,
    pub gmail: bool,
    pub special_use: bool,
    pub namespace: bool,
    /// What a replay into this server may use.
    pub append: crate::imap::caps::AppendCaps,
}

pub type ImapSession = Session<Guarded<Deflating<MaybeTls>>>;

/// An authenticated session and what the server offers.
pub struct Connected {
    pub session: ImapSession,
    pub caps: ServerCaps,
    /// Literals over the maximum message size the session's guard dropped.
    pub dropped: Dropped,
    /// What NAMESPACE answered, asked the first time it is wanted
    /// ([`Connected::namespaces`]): a connection that only fetches never asks.
    namespaces: Option<Option<Namespaces>>,
    /// When the session should be closed at the next commit and a new one opened:
    /// its OAuth2 token is then due for a refresh (providers such as Exchange
    /// Online end sessions whose token has expired).
    pub retire_at: Option<tokio::time::Instant>,
    /// Whether the session runs COMPRESS=DEFLATE.
    pub compressed: bool,
    /// The time the CAPABILITY after login took: one round trip and the server's
    /// (tiny) work.
    pub round_trip: Duration,
}

impl Connected {
    /// The server's namespaces; `None` when it does not offer NAMESPACE (or refused
    /// it): folders are then named from the top of the hierarchy. One round trip the
    /// first time, none after.
    pub async fn namespaces(&mut self, server: &str, t: Duration) -> Result<Option<Namespaces>, ImapError> {
        if self.namespaces.is_none() {
            let answer = if self.caps.namespace {
                super::namespace::namespaces(&mut self.session, server, t).await?
            } else {
                None
            };
            self.namespaces = Some(answer);
        }
        Ok(self.namespaces.clone().flatten())
    }

    /// Whether the session's token is due and it should make way for a new one.
    pub fn retiring(&self) -> bool {
        self.retire_at.is_some_and(|t| tokio::time::Instant::now() >= t)
    }
}

const MAX_LINE: usize = 64 * 1024;

/// Opens, secures and authenticates one connection.
pub async fn connect(o: &ConnectOptions) -> Result<Connected, ImapError> {
    let server = o.endpoint.to_string();
    let ep = &o.endpoint;
    let t = o.io_timeout;
    let tcp = crate::net::tcp_connect(ep, t, o.slots.as_ref()).await?;
    let (mut stream, greeted) = match ep.scheme {
        Scheme::Imaps => {
            let tls = timed(t, &server, "TLS handshake", async {
                Ok(tls::handshake(tcp, &ep.host, o.tls.clone()).await?)
            })
            .await?;
            let mut s = MaybeTls::Tls(Box::new(tls));
            let greeting = read_line(&mut s, t, &server).await?;
            check_greeting(&server, &greeting)?;
            (s, greeting_capabilities(&greeting))
        }
        Scheme::Imap => {
            let mut tcp = tcp;
            check_greeting(&server, &read_line(&mut tcp, t, &server).await?)?;
            if o.insecure_plaintext {
                // The greeting's capabilities were sent in the clear: asked again.
                (MaybeTls::Plain(tcp), None)
            } else {
                (starttls(tcp, o, &server).await?, None)
            }
        }
        Scheme::Pop3s | Scheme::Pop3 => {
            return Err(ImapError::Protocol {
                server,
                what: "connecting".into(),
                detail: "not an IMAP address".into(),
            })
        }
    };
    // The greeting's `[CAPABILITY …]` saves a round trip (RFC 3501 7.1).
    let pre_caps = match greeted {
        Some(caps) => caps,
        None => capability(&mut stream, "M1", t, &server).await?,
    };
    let dropped = Dropped::default();
    let switch = DeflateSwitch::default();
    let stream = Deflating::new(stream, switch.clone());
    let client = Client::new(Guarded::new(stream, o.max_message_size, dropped.clone()));
    let mut session = login(client, o, &pre_caps, &server).await?;
    let asked = std::time::Instant::now();
    let caps_list = timed(t, &server, "CAPABILITY", async {
        session
            .capabilities()
            .await
            .map_err(|e| ImapError::from_client(&server, "CAPABILITY", e))
    })
    .await?;
    let round_trip = asked.elapsed();
    let caps = ServerCaps {
        condstore: caps_list.has_str("CONDSTORE") || caps_list.has_str("QRESYNC"),
        qresync: caps_list.has_str("QRESYNC"),
        gmail: caps_list.has_str("X-GM-EXT-1"),
        special_use: caps_list.has_str("SPECIAL-USE"),
        namespace: caps_list.has_str("NAMESPACE"),
        append: crate::imap::caps::AppendCaps::from_atoms(caps_list.iter().filter_map(|c| match c {
            async_imap::types::Capability::Atom(a) => Some(a.as_ref()),
            _ => None,
        })),
    };
    let compressed = o.compress && caps_list.has_str("COMPRESS=DEFLATE");
    if compressed {
        // RFC 4978: from the OK on, both ways are deflated.
        timed(t, &server, "COMPRESS", async {
            session
                .run_command_and_check_ok("COMPRESS DEFLATE")
                .await
                .map_err(|e| ImapError::from_client(&server, "COMPRESS DEFLATE", e))
        })
        .await?;
        switch.turn_on();
    }
    let enable = if caps.qresync {
        Some("ENABLE QRESYNC")
    } else if caps.condstore {
        Some("ENABLE CONDSTORE")
    } else {
        None
    };
    if let Some(cmd) = enable {
        timed(t, &server, cmd, async {
            session
                .run_command_and_check_ok(cmd)
                .await
                .map_err(|e| ImapError::from_client(&server, cmd, e))
        })
        .await?;
    }
    debug!(%server, ?caps, compressed, "logged in");
    let retire_at = match &o.auth {
        Auth::OAuth2SignIn(s) => Some(tokio::time::Instant::now() + Duration::from_secs(s.refresh_due_in().await)),
        _ => None,
    };
    Ok(Connected {
        session,
        caps,
        dropped,
        namespaces: None,
        retire_at,
        compressed,
        round_trip,
    })
}

/// Runs `fut` with a time limit.
pub(crate) async fn timed<T>(
    limit: Duration,
    server: &str,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, ImapError>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(ImapError::Timeout {
            server: server.into(),
            what: what.into(),
            seconds: limit.as_secs(),
        }),
    }
}

pub(crate) fn check_greeting(server: &str, line: &str) -> Result<(), ImapError> {
    let upper = line.to_ascii_uppercase();
    if upper.starts_with("* OK") {
        Ok(())
    } else if upper.starts_with("* PREAUTH") {
        Err(ImapError::Preauth { server: server.into() })
    } else {
        Err(ImapError::Greeting {
            server: server.into(),
            line: line.chars().take(200).collect(),
        })
    }
}

/// The capabilities a greeting names in its `[CAPABILITY …]` response code
/// (upper-cased), when it has one that includes IMAP4rev1.
fn greeting_capabilities(line: &str) -> Option<Vec<String>> {
    let upper = line.to_ascii_uppercase();
    let rest = upper.strip_prefix("* OK [CAPABILITY ")?;
    let words: Vec<String> = rest[..rest.find(']')?]
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    words.iter().any(|w| w == "IMAP4REV1").then_some(words)
}

/// Reads one CRLF-terminated line, byte by byte so nothing beyond it is consumed.
async fn read_line<S: AsyncRead + Unpin>(s: &mut S, t: Duration, server: &str) -> Result<String, ImapError> {
    timed(t, server, "reading a response line", async {
        let mut line = Vec::with_capacity(128);
        loop {
            let b = s.read_u8().await.map_err(|e| ImapError::Lost {
                server: server.into(),
                what: "reading a response line".into(),
                detail: e.to_string(),
            })?;
            if b == b'\n' {
                break;
            }
            if line.len() >= MAX_LINE {
                return Err(ImapError::Protocol {
                    server: server.into(),
                    what: "reading a response line".into(),
                    detail: format!("line longer than {MAX_LINE} bytes"),
                });
            }
            line.push(b);
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    })
    .await
}

/// Sends `TAG CAPABILITY` and returns the capability words (upper-cased).
async fn capability<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    tag: &str,
    t: Duration,
    server: &str,
) -> Result<Vec<String>, ImapError> {
    let lost = |e: std::io::Error| ImapError::Lost {
        server: server.into(),
        what: "CAPABILITY".into(),
        detail: e.to_string(),
    };
    s.write_all(format!("{tag} CAPABILITY\r\n").as_bytes())
        .await
        .map_err(lost)?;
    s.flush().await.map_err(lost)?;
    let mut caps = Vec::new();
    for _ in 0..64 {
        let line = read_line(s, t, server).await?;
        let upper = line.to_ascii_uppercase();
        if let Some(rest) = upper.strip_prefix("* CAPABILITY ") {
            caps.extend(rest.split_ascii_whitespace().map(str::to_string));
        } else if let Some(rest) = upper.strip_prefix(&format!("{tag} ")) {
            if rest.starts_with("OK") {
                return Ok(caps);
            }
            return Err(ImapError::Protocol {
                server: server.into(),
                what: "CAPABILITY".into(),
                detail: line,
            });
        }
    }
    Err(ImapError::Protocol {
        server: server.into(),
        what: "CAPABILITY".into(),
        detail: "no tagged answer after 64 lines".into(),
    })
}

/// Plaintext phase of `imap://`: STARTTLS must be offered and accepted.
async fn starttls(mut tcp: crate::net::Tcp, o: &ConnectOptions, server: &str) -> Result<MaybeTls, ImapError> {
    let t = o.io_timeout;
    let caps = capability(&mut tcp, "M0", t, server).await?;
    if !caps.iter().any(|c| c == "STARTTLS") {
        return Err(ImapError::NoStartTls { server: server.into() });
    }
    let lost = |e: std::io::Error| ImapError::Lost {
        server: server.into(),
        what: "STARTTLS".into(),
        detail: e.to_string(),
    };
    tcp.write_all(b"S1 STARTTLS\r\n").await.map_err(lost)?;
    loop {
        let line = read_line(&mut tcp, t, server).await?;
        if line.starts_with("* ") {
            continue;
        }
        if !line.to_ascii_uppercase().starts_with("S1 OK") {
            return Err(ImapError::StartTlsRefused {
                server: server.into(),
                line: line.chars().take(200).collect(),
            });
        }
        break;
    }
    // Anything the server (or a man in the middle) pushed after the OK is plaintext
    // that must not be read as part of the TLS session: drop what has arrived.
    let mut junk = [0u8; 4096];
    let mut dropped = 0usize;
    while let Ok(n) = tcp.stream.try_read(&mut junk) {
        if n == 0 {
            break;
        }
        dropped += n;
    }
    if dropped > 0 {
        tracing::warn!(%server, bytes = dropped, "discarded plaintext the server sent after STARTTLS OK");
    }
    let tls = timed(t, server, "TLS handshake", async {
        Ok(tls::handshake(tcp, &o.endpoint.host, o.tls.clone()).await?)
    })
    .await?;
    Ok(MaybeTls::Tls(Box::new(tls)))
}

struct Plain<'a>(&'a str, &'a str);
impl async_imap::Authenticator for Plain<'_> {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        format!("\0{}\0{}", self.0, self.1).into_bytes()
    }
}

struct OAuth<'a> {
    user: &'a str,
    token: &'a str,
    bearer: bool,
    answered: bool,
}
impl async_imap::Authenticator for OAuth<'_> {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        if self.answered {
            // A second challenge carries the server's error (JSON); an empty
            // answer ends the exchange so the tagged NO arrives.
            return Vec::new();
        }
        self.answered = true;
        if self.bearer {
            format!("n,a={},\x01auth=Bearer {}\x01\x01", self.user, self.token).into_bytes()
        } else {
            format!("user={}\x01auth=Bearer {}\x01\x01", self.user, self.token).into_bytes()
        }
    }
}

async fn login(
    client: Client<Guarded<Deflating<MaybeTls>>>,
    o: &ConnectOptions,
    caps: &[String],
    server: &str,
) -> Result<ImapSession, ImapError> {
    let user = o.endpoint.user.as_str();
    let has = |c: &str| caps.iter().any(|x| x == c);
    let auth_err = |e: async_imap::error::Error| match e {
        async_imap::error::Error::No(d) | async_imap::error::Error::Bad(d) => ImapError::Auth {
            server: server.into(),
            user: user.into(),
            detail: crate::net::server_quote(&d),
        },
        other => ImapError::from_client(server, "logging in", other),
    };
    let fut = async {
        match &o.auth {
            Auth::Password(pw) if has("LOGINDISABLED") => client
                .authenticate("PLAIN", Plain(user, pw.expose()))
                .await
                .map_err(|(e, _)| auth_err(e)),
            Auth::Password(pw) => client.login(user, pw.expose()).await.map_err(|(e, _)| auth_err(e)),
            Auth::OAuth2(_) | Auth::OAuth2SignIn(_) => {
                let bearer = match o.oauth2_mechanism {
                    OAuthMechanism::Auto => !has("AUTH=XOAUTH2") && has("AUTH=OAUTHBEARER"),
                    OAuthMechanism::XOAuth2 => false,
                    OAuthMechanism::OAuthBearer => true,
                };
                let token = o.auth.oauth2_token().await?;
                let (e, client) = match oauth_login(client, user, &token, bearer).await {
                    Ok(s) => return Ok(s),
                    // The server could not check the token just now (its token
                    // service did not answer): the same token once more, later.
                    Err((e, client)) if temporary_failure(&e) => {
                        tracing::info!(server, user, detail = %e, "the server could not check the access token; trying it again");
                        tokio::time::sleep(TEMPORARY_FAILURE_PAUSE).await;
                        match oauth_login(client, user, &token, bearer).await {
                            Ok(s) => return Ok(s),
                            Err(again) => again,
                        }
                    }
                    Err(refused) => refused,
                };
                // Refused: a token refreshed once, on the same connection.
                match o.auth.oauth2_retry(&token).await? {
                    Some(again) => oauth_login(client, user, &again, bearer)
                        .await
                        .map_err(|(e, _)| auth_err(e)),
                    None => Err(auth_err(e)),
                }
            }
        }
    };
    timed(o.io_timeout, server, "logging in", fut).await
}

/// How long to wait before offering a token again after a temporary failure.
const TEMPORARY_FAILURE_PAUSE: Duration = Duration::from_secs(1);

/// A refusal that says nothing of the credentials: `NO [UNAVAILABLE]` (RFC 5530),
/// which Dovecot answers when its token introspection failed. (imap-proto knows
/// no such code, so async-imap reports it inside the response's text.)
fn temporary_failure(e: &async_imap::error::Error) -> bool {
    match e {
        async_imap::error::Error::No(d) => d.to_ascii_uppercase().contains("[UNAVAILABLE]"),
        _ => false,
    }
}

/// AUTHENTICATE XOAUTH2 (or OAUTHBEARER) with `token`; the client back when refused.
async fn oauth_login(
    client: Client<Guarded<Deflating<MaybeTls>>>,
    user: &str,
    token: &Secret,
    bearer: bool,
) -> Result<ImapSession, (async_imap::error::Error, Client<Guarded<Deflating<MaybeTls>>>)> {
    let mech = if bearer { "OAUTHBEARER" } else { "XOAUTH2" };
    let auth = OAuth {
        user,
        token: token.expose(),
        bearer,
        answered: false,
    };
    client.authenticate(mech, auth).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn only_an_unavailable_refusal_is_temporary() {
        use async_imap::error::Error;
        let no = |info: &str| Error::No(format!("code: None, info: Some({info:?})"));
        assert!(temporary_failure(&no(
            "[UNAVAILABLE] Temporary authentication failure. [host:2026-12-02]"
        )));
        assert!(temporary_failure(&no("[unavailable] busy")));
        assert!(!temporary_failure(&no("[AUTHENTICATIONFAILED] Authentication failed.")));
        assert!(!temporary_failure(&no("Authentication failed")));
        assert!(!temporary_failure(&Error::Bad(
            "code: None, info: Some(\"[UNAVAILABLE] x\")".into()
        )));
    }

    #[test]
    fn greetings() {
        assert!(check_greeting("s", "* OK [CAPABILITY IMAP4rev1] ready").is_ok());
        assert!(matches!(
            check_greeting("s", "* PREAUTH welcome"),
            Err(ImapError::Preauth { .. })
        ));
        assert!(matches!(
            check_greeting("s", "* BYE go away"),
            Err(ImapError::Greeting { .. })
        ));
    }

    #[test]
    fn a_greeting_names_its_capabilities_only_in_a_capability_code_with_imap4rev1() {
        let words = |v: &[&str]| Some(v.iter().map(|w| w.to_string()).collect::<Vec<_>>());
        for (line, want) in [
            (
                "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] Dovecot ready.",
                words(&["IMAP4REV1", "SASL-IR", "AUTH=PLAIN"]),
            ),
            (
                "* OK [CAPABILITY IMAP4rev1 LOGINDISABLED]",
                words(&["IMAP4REV1", "LOGINDISABLED"]),
            ),
            ("* OK Gimap ready", None),
            ("* OK [ALERT] CAPABILITY IMAP4rev1 here", None),
            ("* OK [CAPABILITY AUTH=PLAIN] no version", None),
            ("* OK [CAPABILITY IMAP4rev1 unterminated", None),
            ("* BYE [CAPABILITY IMAP4rev1] busy", None),
        ] {
            assert_eq!(greeting_capabilities(line), want, "{line}");
        }
    }

    #[test]
    fn xoauth2_format() {
        use async_imap::Authenticator;
        let mut a = OAuth {
            user: "someuser@example.com",
            token: "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
            bearer: false,
            answered: false,
        };
        // The example of Google's XOAUTH2 documentation.
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(a.process(b"")),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
        );
    }
}
