//! Server addresses as users write them: `imaps://USER@HOST[:PORT]`,
//! `imap://…`, `pop3s://…`, `pop3://…`. Pure parsing, no I/O.

use std::fmt;

/// The protocol and how the connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// IMAP over implicit TLS (port 993).
    Imaps,
    /// IMAP on the plain port (143): STARTTLS unless plaintext is explicitly allowed.
    Imap,
    /// POP3 over implicit TLS (port 995).
    Pop3s,
    /// POP3 on the plain port (110): STLS unless plaintext is explicitly allowed.
    Pop3,
}

impl Scheme {
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Imaps => 993,
            Scheme::Imap => 143,
            Scheme::Pop3s => 995,
            Scheme::Pop3 => 110,
        }
    }
    pub fn implicit_tls(self) -> bool {
        matches!(self, Scheme::Imaps | Scheme::Pop3s)
    }
    pub fn is_imap(self) -> bool {
        matches!(self, Scheme::Imaps | Scheme::Imap)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Imaps => "imaps",
            Scheme::Imap => "imap",
            Scheme::Pop3s => "pop3s",
            Scheme::Pop3 => "pop3",
        }
    }
}

/// A parsed server address with the login name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    pub user: String,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    /// `imaps://alice@127.0.0.1:993` — never contains a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "{}://{}@{}:{}", self.scheme.as_str(), self.user, host, self.port)
    }
}

/// Why an address could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    #[error("{0:?}: expected imaps://USER@HOST[:PORT] (or imap://, pop3s://, pop3://)")]
    Shape(String),
    #[error("{0:?}: unknown scheme (use imaps, imap, pop3s or pop3)")]
    Scheme(String),
    #[error("the address contains a password; give it with --password-env, --password-file or --password-command instead, never on the command line")]
    PasswordInUrl,
    #[error("{0:?}: invalid port")]
    Port(String),
    #[error("{0:?}: invalid %-escape in the user name")]
    Escape(String),
}

impl Endpoint {
    pub fn parse(s: &str) -> Result<Endpoint, EndpointError> {
        let (scheme, rest) = s.split_once("://").ok_or_else(|| EndpointError::Shape(s.into()))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "imaps" => Scheme::Imaps,
            "imap" => Scheme::Imap,
            "pop3s" => Scheme::Pop3s,
            "pop3" | "pop" => Scheme::Pop3,
            _ => return Err(EndpointError::Scheme(scheme.into())),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        // The user part ends at the last '@' (user names may be e-mail addresses).
        let (userinfo, hostport) = rest.rsplit_once('@').ok_or_else(|| EndpointError::Shape(s.into()))?;
        if userinfo.contains(':') {
            return Err(EndpointError::PasswordInUrl);
        }
        let user = percent_decode(userinfo).ok_or_else(|| EndpointError::Escape(userinfo.into()))?;
        if user.is_empty() || hostport.is_empty() || hostport.contains('/') {
            return Err(EndpointError::Shape(s.into()));
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| EndpointError::Shape(s.into()))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(EndpointError::Shape(s.into())),
            };
            (h.to_string(), port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(EndpointError::Shape(s.into()));
        }
        let port = match port {
            None => scheme.default_port(),
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(EndpointError::Port(p.into())),
            },
        };
        Ok(Endpoint {
            scheme,
            user,
            host,
            port,
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(scheme: Scheme, user: &str, host: &str, port: u16) -> Endpoint {
        Endpoint {
            scheme,
            user: user.into(),
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parse_table() {
        let ok: Vec<(&str, Endpoint)> = vec![
            (
                "imaps://alice@mail.example.com",
                ep(Scheme::Imaps, "alice", "mail.example.com", 993),
            ),
            (
                "imaps://alice@127.0.0.1:10993",
                ep(Scheme::Imaps, "alice", "127.0.0.1", 10993),
            ),
            ("IMAP://bob@host", ep(Scheme::Imap, "bob", "host", 143)),
            ("pop3s://c@h", ep(Scheme::Pop3s, "c", "h", 995)),
            ("pop3://c@h:1110/", ep(Scheme::Pop3, "c", "h", 1110)),
            (
                "imaps://me@example.com@imap.gmail.com",
                ep(Scheme::Imaps, "me@example.com", "imap.gmail.com", 993),
            ),
            (
                "imaps://me%40example.com@imap.gmail.com",
                ep(Scheme::Imaps, "me@example.com", "imap.gmail.com", 993),
            ),
            ("imaps://u@[::1]:2993", ep(Scheme::Imaps, "u", "::1", 2993)),
            ("imaps://u@[::1]", ep(Scheme::Imaps, "u", "::1", 993)),
        ];
        for (s, want) in ok {
            assert_eq!(Endpoint::parse(s), Ok(want), "{s}");
        }
        let bad: Vec<(&str, EndpointError)> = vec![
            ("alice@host", EndpointError::Shape("alice@host".into())),
            ("imaps://host", EndpointError::Shape("imaps://host".into())),
            ("smtp://a@h", EndpointError::Scheme("smtp".into())),
            ("imaps://a:secret@h", EndpointError::PasswordInUrl),
            ("imaps://a@h:0", EndpointError::Port("0".into())),
            ("imaps://a@h:99999", EndpointError::Port("99999".into())),
            ("imaps://a%zz@h", EndpointError::Escape("a%zz".into())),
            ("imaps://@h", EndpointError::Shape("imaps://@h".into())),
            ("imaps://a@h/INBOX", EndpointError::Shape("imaps://a@h/INBOX".into())),
        ];
        for (s, want) in bad {
            assert_eq!(Endpoint::parse(s), Err(want), "{s}");
        }
    }

    #[test]
    fn display_has_no_secret_and_round_trips() {
        let e = Endpoint::parse("imaps://u@[::1]:2993").unwrap();
        assert_eq!(e.to_string(), "imaps://u@[::1]:2993");
        assert_eq!(Endpoint::parse(&e.to_string()).unwrap(), e);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,60}") {
            let _ = Endpoint::parse(&s);
        }
    }
}
