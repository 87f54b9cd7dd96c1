//! A small POP3 client over tokio (RFC 1939, 2449, 2595): implicit TLS or STLS
//! (required unless plaintext is explicitly allowed), CAPA, USER/PASS, APOP, AUTH
//! PLAIN, AUTH XOAUTH2, UIDL, LIST, TOP, pipelined RETR and DELE, QUIT. In-house because
//! `async-pop3` is async-std + native-tls and panics on TLS errors.

use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::proto::{self, Capabilities, DotDecoder, Fed, Status};
use super::Pop3Error;
use crate::net::{tls, MaybeTls, Scheme, Secret};
use crate::remote::{Auth, ConnectOptions, OAuthMechanism};

/// POP3 choices beyond the connection settings IMAP shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pop3Session {
    /// Log in with APOP only, and fail if the server does not offer it. (Without
    /// it, APOP is used on a plaintext connection when offered, so the password
    /// does not cross the network in clear.)
    pub require_apop: bool,
    /// Pipeline commands when the server advertises PIPELINING.
    pub pipelining: bool,
}

impl Default for Pop3Session {
    fn default() -> Self {
        Pop3Session {
            require_apop: false,
            pipelining: true,
        }
    }
}

/// An authenticated POP3 session.
pub struct Pop3Client {
    s: BufReader<MaybeTls>,
    server: String,
    t: Duration,
    pub caps: Capabilities,
    /// Commands in flight at most (1 when the server does not pipeline).
    window: usize,
    /// Messages the last LIST gave (bounds the UIDL listing), if LIST ran.
    listed: Option<usize>,
}

/// The most lines a LIST or UIDL answer may have: a maildrop of four million
/// messages (far past what POP3 servers serve), ~200 MB held at most.
pub const MAX_LISTING: usize = 4_000_000;

/// The largest header `TOP n 0` may return.
pub const MAX_HEADER: u64 = 16 << 20;

/// A multi-line body, or the length of one read past its cap and dropped.
enum Body {
    Whole(Vec<u8>),
    Dropped(u64),
}

/// What [`Pop3Client::retr_many`] could not hand over.
#[derive(Debug, Default)]
pub struct Retrieved {
    /// Refused (`-ERR`), with the server's words.
    pub refused: Vec<(u32, String)>,
    /// Over the maximum message size by the bytes sent: (message number, bytes).
    pub too_large: Vec<(u32, u64)>,
    /// Sent past the batch's bound of bytes held: to be retrieved again alone.
    pub deferred: Vec<(u32, u64)>,
}

impl Pop3Client {
    /// Connects, secures and logs in.
    pub async fn connect(o: &ConnectOptions, session: Pop3Session) -> Result<Pop3Client, Pop3Error> {
        let server = o.endpoint.to_string();
        let ep = &o.endpoint;
        let t = o.io_timeout;
        let tcp = crate::net::tcp_connect(ep, t, o.slots.as_ref()).await?;
        let stream = match ep.scheme {
            Scheme::Pop3s => {
                let tls = timed(t, &server, "TLS handshake", async {
                    Ok(tls::handshake(tcp, &ep.host, o.tls.clone()).await?)
                })
                .await?;
                MaybeTls::Tls(Box::new(tls))
            }
            _ => MaybeTls::Plain(tcp),
        };
        let mut c = Pop3Client {
            s: BufReader::new(stream),
            server: server.clone(),
            t,
            caps: Capabilities::default(),
            window: 1,
            listed: None,
        };
        let greeting = c.expect_ok("reading the greeting").await?;
        let apop = proto::apop_timestamp(&greeting).map(str::to_string);
        if !c.s.get_ref().is_tls() && !o.insecure_plaintext {
            c.caps = c.capa().await?;
            if !c.caps.stls {
                return Err(Pop3Error::NoStls { server });
            }
            c.send("STLS").await?;
            c.expect_ok("STLS").await?;
            // Whatever was sent after the +OK is plaintext that must not be read as
            // part of the TLS session: the buffer goes with the BufReader, and what
            // already arrived in the socket is drained.
            let MaybeTls::Plain(tcp) = c.s.into_inner() else {
                unreachable!("checked above")
            };
            let mut junk = [0u8; 4096];
            while let Ok(n) = tcp.stream.try_read(&mut junk) {
                if n == 0 {
                    break;
                }
            }
            let tls = timed(t, &server, "TLS handshake", async {
                Ok(tls::handshake(tcp, &ep.host, o.tls.clone()).await?)
            })
            .await?;
            c = Pop3Client {
                s: BufReader::new(MaybeTls::Tls(Box::new(tls))),
                server: server.clone(),
                t,
                caps: Capabilities::default(),
                window: 1,
                listed: None,
            };
        }
        c.caps = c.capa().await.unwrap_or_default();
        c.login(o, session, apop.as_deref()).await?;
        // Capabilities may differ after login (RFC 2449 §5).
        c.caps = c.capa().await.unwrap_or_default();
        c.window = if session.pipelining && c.caps.pipelining { 32 } else { 1 };
        Ok(c)
    }

    async fn login(&mut self, o: &ConnectOptions, session: Pop3Session, apop: Option<&str>) -> Result<(), Pop3Error> {
        let user = o.endpoint.user.as_str();
        let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
        let plaintext = !self.s.get_ref().is_tls();
        let result = match &o.auth {
            Auth::OAuth2(_) | Auth::OAuth2SignIn(_) => {
                let bearer = match o.oauth2_mechanism {
                    OAuthMechanism::Auto => {
                        let has = |m: &str| self.caps.sasl.iter().any(|x| x == m);
                        !has("XOAUTH2") && has("OAUTHBEARER")
                    }
                    OAuthMechanism::XOAuth2 => false,
                    OAuthMechanism::OAuthBearer => true,
                };
                let token = o.auth.oauth2_token().await?;
                match self.oauth_login(user, &token, bearer).await? {
                    Status::Err(detail) => match o.auth.oauth2_retry(&token).await? {
                        Some(again) => self.oauth_login(user, &again, bearer).await?,
                        None => Status::Err(detail),
                    },
                    ok => ok,
                }
            }
            Auth::Password(_) if session.require_apop && apop.is_none() => {
                return Err(Pop3Error::NoApop {
                    server: self.server.clone(),
                })
            }
            Auth::Password(pw) if session.require_apop || (plaintext && apop.is_some()) => {
                let digest = proto::apop_digest(apop.unwrap_or_default(), pw.expose());
                self.send_secret(&format!("APOP {user} "), &digest).await?;
                self.status("logging in").await?
            }
            Auth::Password(pw) if self.caps.sasl.iter().any(|m| m == "PLAIN") => {
                let ir = b64(format!("\0{user}\0{}", pw.expose()));
                self.send_secret("AUTH PLAIN ", &ir).await?;
                self.status("logging in").await?
            }
            Auth::Password(pw) => {
                self.send(&format!("USER {user}")).await?;
                match self.status("USER").await? {
                    Status::Ok(_) => {
                        self.send_secret("PASS ", pw.expose()).await?;
                        self.status("logging in").await?
                    }
                    err => err,
                }
            }
        };
        match result {
            Status::Ok(_) => Ok(()),
            Status::Err(detail) => Err(Pop3Error::Auth {
                server: self.server.clone(),
                user: user.into(),
                detail,
            }),
        }
    }

    /// AUTH XOAUTH2 (or OAUTHBEARER, RFC 7628) with `token` as the initial response.
    async fn oauth_login(&mut self, user: &str, token: &Secret, bearer: bool) -> Result<Status, Pop3Error> {
        let (mech, ir) = if bearer {
            (
                "OAUTHBEARER",
                format!("n,a={user},\x01auth=Bearer {}\x01\x01", token.expose()),
            )
        } else {
            (
                "XOAUTH2",
                format!("user={user}\x01auth=Bearer {}\x01\x01", token.expose()),
            )
        };
        let ir = base64::engine::general_purpose::STANDARD.encode(ir);
        self.send_secret(&format!("AUTH {mech} "), &ir).await?;
        let line = self.read_line("logging in").await?;
        // A failed exchange may first send a challenge carrying the error (RFC 7628
        // §3.2.2, XOAUTH2 alike): an empty answer ends it with the -ERR.
        if line == b"+" || line.starts_with(b"+ ") {
            self.send("").await?;
            return self.status("logging in").await;
        }
        proto::parse_status(&line).map_err(|e| self.proto("logging in", e))
    }

    fn lost(&self, what: &str, e: std::io::Error) -> Pop3Error {
        Pop3Error::Lost {
            server: self.server.clone(),
            what: what.into(),
            detail: e.to_string(),
        }
    }

    fn proto(&self, what: &str, source: proto::ProtoError) -> Pop3Error {
        Pop3Error::Protocol {
            server: self.server.clone(),
            what: what.into(),
            source,
        }
    }

    async fn send(&mut self, line: &str) -> Result<(), Pop3Error> {
        let w = self.s.get_mut();
        let r = async {
            w.write_all(line.as_bytes()).await?;
            w.write_all(b"\r\n").await?;
            w.flush().await
        }
        .await;
        r.map_err(|e| self.lost(line.split(' ').next().unwrap_or(line), e))
    }

    /// Sends `prefix` + a secret; the secret never reaches an error or a log.
    async fn send_secret(&mut self, prefix: &str, secret: &str) -> Result<(), Pop3Error> {
        let w = self.s.get_mut();
        let r = async {
            w.write_all(prefix.as_bytes()).await?;
            w.write_all(secret.as_bytes()).await?;
            w.write_all(b"\r\n").await?;
            w.flush().await
        }
        .await;
        r.map_err(|e| self.lost("logging in", e))
    }

    /// Waits (within the I/O timeout) until the read buffer holds data; end of stream
    /// is an error.
    async fn fill(&mut self, what: &str) -> Result<(), Pop3Error> {
        let t = self.t;
        let r = match tokio::time::timeout(t, self.s.fill_buf()).await {
            Err(_) => Err(None),
            Ok(Err(e)) => Err(Some(e)),
            Ok(Ok(b)) => Ok(b.is_empty()),
        };
        match r {
            Ok(false) => Ok(()),
            Ok(true) => Err(self.lost(what, std::io::Error::other("the server closed the connection"))),
            Err(Some(e)) => Err(self.lost(what, e)),
            Err(None) => Err(Pop3Error::Timeout {
                server: self.server.clone(),
                what: what.into(),
                seconds: t.as_secs(),
            }),
        }
    }

    /// One line without its line end, at most [`proto::MAX_STATUS_LINE`] bytes.
    async fn read_line(&mut self, what: &str) -> Result<Vec<u8>, Pop3Error> {
        let mut line = Vec::new();
        loop {
            self.fill(what).await?;
            let buf = self.s.buffer();
            let (chunk, found) = match memchr::memchr(b'\n', buf) {
                Some(i) => (&buf[..=i], true),
                None => (buf, false),
            };
            line.extend_from_slice(chunk);
            let n = chunk.len();
            self.s.consume(n);
            if line.len() > proto::MAX_STATUS_LINE {
                return Err(self.proto(what, proto::ProtoError::TooLong));
            }
            if found {
                while matches!(line.last(), Some(b'\n' | b'\r')) {
                    line.pop();
                }
                return Ok(line);
            }
        }
    }

    async fn status(&mut self, what: &str) -> Result<Status, Pop3Error> {
        let line = self.read_line(what).await?;
        proto::parse_status(&line).map_err(|e| self.proto(what, e))
    }

    async fn expect_ok(&mut self, what: &str) -> Result<String, Pop3Error> {
        match self.status(what).await? {
            Status::Ok(t) => Ok(t),
            Status::Err(detail) => Err(Pop3Error::Refused {
                server: self.server.clone(),
                what: what.into(),
                detail,
            }),
        }
    }

    /// The lines of a multi-line answer (after its +OK), dot-unstuffed, each parsed
    /// as it arrives; more than `limit` lines is an error (a server cannot make us
    /// hold an endless listing).
    async fn lines<T>(
        &mut self,
        what: &str,
        limit: usize,
        mut parse: impl FnMut(&Self, &str) -> Result<T, Pop3Error>,
    ) -> Result<Vec<T>, Pop3Error> {
        let mut out = Vec::new();
        for _ in 0..=limit {
            let l = self.read_line(what).await?;
            if l == b"." {
                return Ok(out);
            }
            let l = l.strip_prefix(b".").unwrap_or(&l);
            out.push(parse(self, &String::from_utf8_lossy(l))?);
        }
        Err(self.proto(
            what,
            proto::ProtoError::Malformed {
                what: "multi-line",
                line: format!("more than {limit} lines"),
            },
        ))
    }

    async fn capa(&mut self) -> Result<Capabilities, Pop3Error> {
        self.send("CAPA").await?;
        self.expect_ok("CAPA").await?;
        let lines = self.lines("CAPA", 1000, |_, l| Ok(l.to_string())).await?;
        Ok(Capabilities::parse(lines.iter().map(String::as_str)))
    }

    /// `UIDL`: (message number, UIDL) for every message, as the server sent them
    /// (validation is the planner's: bad UIDLs are reported, not trusted); `None`
    /// when the server has no UIDL (not in its CAPA, or `-ERR`).
    pub async fn uidl(&mut self) -> Result<Option<Vec<(u32, String)>>, Pop3Error> {
        if self.caps.answered && !self.caps.uidl {
            return Ok(None);
        }
        self.send("UIDL").await?;
        if let Status::Err(_) = self.status("UIDL").await? {
            return Ok(None);
        }
        let parse = |c: &Self, l: &str| {
            let (n, u) = l.split_once(' ').unwrap_or((l, ""));
            let msg = n.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                c.proto(
                    "UIDL",
                    proto::ProtoError::Malformed {
                        what: "UIDL",
                        line: l.chars().take(200).collect(),
                    },
                )
            })?;
            Ok((msg, u.trim_end().to_string()))
        };
        // One line per message LIST gave (and a few more: the planner reports them).
        let limit = self
            .listed
            .map_or(MAX_LISTING, |n| n.saturating_add(1000).min(MAX_LISTING));
        self.lines("UIDL", limit, parse).await.map(Some)
    }

    /// `TOP n 0` (the header) of each message, pipelined when allowed; `None` when
    /// the server has no TOP (not in its CAPA, or `-ERR` to the first one).
    pub async fn headers(&mut self, msgs: &[u32]) -> Result<Option<Vec<(u32, Vec<u8>)>>, Pop3Error> {
        if self.caps.answered && !self.caps.top {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(msgs.len());
        let mut sent = 0;
        for (i, &msg) in msgs.iter().enumerate() {
            while sent < msgs.len() && sent < i + self.window {
                self.send(&format!("TOP {} 0", msgs[sent])).await?;
                sent += 1;
            }
            let what = format!("TOP {msg} 0");
            match self.status(&what).await? {
                Status::Ok(_) => match self.read_body(&what, 4096, MAX_HEADER).await? {
                    Body::Whole(h) => out.push((msg, h)),
                    Body::Dropped(n) => {
                        return Err(self.proto(
                            &what,
                            proto::ProtoError::Malformed {
                                what: "TOP",
                                line: format!("a header of {n} bytes (more than {MAX_HEADER})"),
                            },
                        ))
                    }
                },
                Status::Err(detail) if i == 0 => {
                    // Answers to the commands already sent are read and dropped.
                    for m in &msgs[1..sent] {
                        let what = format!("TOP {m} 0");
                        if let Status::Ok(_) = self.status(&what).await? {
                            self.read_body(&what, 4096, 0).await?;
                        }
                    }
                    tracing::debug!(detail, "TOP refused");
                    return Ok(None);
                }
                Status::Err(detail) => {
                    return Err(Pop3Error::Refused {
                        server: self.server.clone(),
                        what,
                        detail,
                    })
                }
            }
        }
        Ok(Some(out))
    }

    /// `LIST`: message number → size in octets.
    pub async fn list(&mut self) -> Result<Vec<(u32, u64)>, Pop3Error> {
        self.send("LIST").await?;
        self.expect_ok("LIST").await?;
        let sizes = self
            .lines("LIST", MAX_LISTING, |c, l| {
                proto::parse_list_line(l).map_err(|e| c.proto("LIST", e))
            })
            .await?;
        self.listed = Some(sizes.len());
        Ok(sizes)
    }

    /// Reads one dot-stuffed multi-line body, streaming through the decoder. Past
    /// `cap` bytes the rest is read and dropped (the answer must still be consumed):
    /// only its length is kept.
    async fn read_body(&mut self, what: &str, expect: u64, cap: u64) -> Result<Body, Pop3Error> {
        let mut out = Vec::with_capacity(expect.min(cap).min(64 << 20) as usize);
        let mut dropped: Option<u64> = None;
        let mut d = DotDecoder::new();
        loop {
            self.fill(what).await?;
            let buf = self.s.buffer();
            let fed = d.feed(buf, &mut out);
            let n = match fed {
                Fed::More => buf.len(),
                Fed::End(n) => n,
            };
            self.s.consume(n);
            if dropped.is_some() || out.len() as u64 > cap {
                let so_far = dropped.unwrap_or(0).saturating_add(out.len() as u64);
                dropped = Some(so_far);
                out = Vec::new();
            }
            if let Fed::End(_) = fed {
                return Ok(match dropped {
                    Some(n) => Body::Dropped(n),
                    None => Body::Whole(out),
                });
            }
        }
    }

    /// `RETR` of each message, pipelined (a window of commands in flight) when the
    /// server allows it; `on_message` gets each message's bytes in order. Bodies kept
    /// are bounded by bytes received: one over `max` is reported too large; past
    /// `bound` bytes held in all (after the first), the rest are deferred (read and
    /// dropped, to be retrieved again on their own). A message the server refuses
    /// (`-ERR`) is skipped and returned with the server's words.
    pub async fn retr_many(
        &mut self,
        msgs: &[(u32, u64)],
        max: u64,
        bound: u64,
        mut on_message: impl FnMut(u32, Vec<u8>),
    ) -> Result<Retrieved, Pop3Error> {
        let window = self.window;
        let mut sent = 0;
        let mut held = 0u64;
        let mut r = Retrieved::default();
        for (i, &(msg, size)) in msgs.iter().enumerate() {
            while sent < msgs.len() && sent < i + window {
                self.send(&format!("RETR {}", msgs[sent].0)).await?;
                sent += 1;
            }
            let what = format!("RETR {msg}");
            match self.status(&what).await? {
                Status::Ok(_) => {
                    let cap = if held == 0 {
                        max
                    } else {
                        max.min(bound.saturating_sub(held))
                    };
                    match self.read_body(&what, size, cap).await? {
                        Body::Whole(body) => {
                            held = held.saturating_add(body.len() as u64);
                            on_message(msg, body);
                        }
                        Body::Dropped(n) if n > max => r.too_large.push((msg, n)),
                        Body::Dropped(_) => r.deferred.push((msg, size)),
                    }
                }
                Status::Err(detail) => r.refused.push((msg, detail)),
            }
        }
        Ok(r)
    }

    /// `DELE` of each message (pipelined when allowed). Deletions take effect at QUIT.
    pub async fn dele_many(&mut self, msgs: &[u32]) -> Result<(), Pop3Error> {
        let window = if self.window > 1 { 64 } else { 1 };
        let mut sent = 0;
        for (i, &msg) in msgs.iter().enumerate() {
            while sent < msgs.len() && sent < i + window {
                self.send(&format!("DELE {}", msgs[sent])).await?;
                sent += 1;
            }
            self.expect_ok(&format!("DELE {msg}")).await?;
        }
        Ok(())
    }

    /// `QUIT`: the server commits deletions and closes.
    pub async fn quit(mut self) -> Result<(), Pop3Error> {
        self.send("QUIT").await?;
        self.expect_ok("QUIT").await?;
        Ok(())
    }
}

async fn timed<T>(
    limit: Duration,
    server: &str,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, Pop3Error>>,
) -> Result<T, Pop3Error> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(Pop3Error::Timeout {
            server: server.into(),
            what: what.into(),
            seconds: limit.as_secs(),
        }),
    }
}
