//! Signed-in browser sessions: a random 256-bit id in an `HttpOnly`,
//! `SameSite=Strict` cookie (also `Secure` over TLS), kept in memory by its BLAKE3
//! hash (a memory dump does not give usable cookies), with a CSRF token of its own
//! that every state-changing form must carry. A session ends after 30 minutes idle
//! or 12 hours in all, at sign-out, or when the server stops; the user is looked up
//! again at every request, so a removed user is out at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The session cookie's name.
pub const COOKIE: &str = "mailvault_session";
/// The cookie that carries the sign-in form's CSRF token (before a session exists).
pub const LOGIN_COOKIE: &str = "mailvault_login";
/// A session idle this long ends.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after sign-in, however busy.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// At most this many sessions at once; the oldest-used goes first.
pub const MAX_SESSIONS: usize = 10_000;

/// A random token: 32 bytes, base64url.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("the system's random source");
    URL_SAFE_NO_PAD.encode(b)
}

/// Whether two tokens are equal, in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    crate::readers::same_secret(a, b)
}

/// One signed-in session.
#[derive(Clone, Debug)]
pub struct Session {
    pub user: String,
    pub csrf: String,
    /// The user's password stamp at sign-in (`Readers::password_stamp`).
    pub stamp: [u8; 32],
    started: Instant,
    used: Instant,
}

/// A new session: the cookie value to set, and the session.
pub struct Started {
    pub cookie: String,
    pub session: Session,
}

#[derive(Default)]
pub struct Sessions {
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
}

fn key(cookie: &str) -> [u8; 32] {
    *blake3::hash(cookie.as_bytes()).as_bytes()
}

impl Sessions {
    /// Starts a session for `user`.
    pub fn start(&self, user: &str, stamp: [u8; 32]) -> Started {
        self.start_at(user, stamp, Instant::now())
    }

    fn start_at(&self, user: &str, stamp: [u8; 32], now: Instant) -> Started {
        let cookie = random_token();
        let session = Session {
            user: user.to_string(),
            csrf: random_token(),
            stamp,
            started: now,
            used: now,
        };
        let mut all = self.by_hash.lock().expect("sessions lock");
        all.retain(|_, s| live(s, now));
        if all.len() >= MAX_SESSIONS {
            if let Some(oldest) = all.iter().min_by_key(|(_, s)| s.used).map(|(k, _)| *k) {
                all.remove(&oldest);
            }
        }
        all.insert(key(&cookie), session.clone());
        Started { cookie, session }
    }

    /// The live session of `cookie`, marked used.
    pub fn get(&self, cookie: &str) -> Option<Session> {
        self.get_at(cookie, Instant::now())
    }

    fn get_at(&self, cookie: &str, now: Instant) -> Option<Session> {
        let mut all = self.by_hash.lock().expect("sessions lock");
        let k = key(cookie);
        let s = all.get_mut(&k)?;
        if !live(s, now) {
            all.remove(&k);
            return None;
        }
        s.used = now;
        Some(s.clone())
    }

    /// Ends the session of `cookie`.
    pub fn end(&self, cookie: &str) {
        self.by_hash.lock().expect("sessions lock").remove(&key(cookie));
    }

    /// Ends every session of `user` (their password changed or they were removed).
    pub fn end_user(&self, user: &str) {
        self.by_hash
            .lock()
            .expect("sessions lock")
            .retain(|_, s| s.user != user);
    }
}

fn live(s: &Session, now: Instant) -> bool {
    now.duration_since(s.used) < IDLE && now.duration_since(s.started) < LIFETIME
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    header.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// A `Set-Cookie` value for `name`: `HttpOnly`, `SameSite=Strict`, path `/`, and
/// `Secure` when served over TLS. `None` clears it.
pub fn set_cookie(name: &str, value: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match value {
        Some(v) => format!("{name}={v}; Path=/; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_when_idle_or_old() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let a = s.start_at("ann", [0; 32], t0);
        assert_eq!(s.get_at(&a.cookie, t0 + IDLE / 2).map(|x| x.user), Some("ann".into()));
        // Used at IDLE/2, so still live a little under IDLE after that.
        assert!(s
            .get_at(&a.cookie, t0 + IDLE / 2 + IDLE - Duration::from_secs(1))
            .is_some());
        assert!(s.get_at(&a.cookie, t0 + 3 * IDLE).is_none(), "idle too long");
        let b = s.start_at("bo", [0; 32], t0);
        let mut t = t0;
        while t < t0 + LIFETIME - IDLE {
            t += IDLE / 2;
            assert!(s.get_at(&b.cookie, t).is_some());
        }
        assert!(s.get_at(&b.cookie, t0 + LIFETIME).is_none(), "too old");
    }

    #[test]
    fn sessions_are_found_only_by_their_cookie_and_end_on_sign_out() {
        let s = Sessions::default();
        let a = s.start("ann", [0; 32]);
        let b = s.start("ann", [0; 32]);
        assert_ne!(a.cookie, b.cookie);
        assert_ne!(a.session.csrf, b.session.csrf);
        assert!(s.get("not-a-cookie").is_none());
        s.end(&a.cookie);
        assert!(s.get(&a.cookie).is_none());
        assert!(s.get(&b.cookie).is_some());
        s.end_user("ann");
        assert!(s.get(&b.cookie).is_none());
    }

    #[test]
    fn cookies_are_read_and_written_strictly() {
        assert_eq!(cookie_value("a=1; mailvault_session=xyz; b=2", COOKIE), Some("xyz"));
        assert_eq!(cookie_value("xmailvault_session=1", COOKIE), None);
        let set = set_cookie(COOKIE, Some("v"), true);
        for part in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
            assert!(set.contains(part), "{set}");
        }
        assert!(set_cookie(COOKIE, None, false).contains("Max-Age=0"));
        assert!(same_token("abc", "abc") && !same_token("abc", "abd") && !same_token("abc", "ab"));
    }
}
