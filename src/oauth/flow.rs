//! The pure part of OAuth2 sign-in: endpoints (from a preset or OpenID discovery),
//! PKCE (RFC 7636), the authorization URL and the loopback redirect's answer
//! (RFC 8252), the device grant's polling decisions (RFC 8628), token responses
//! and when an access token wants refreshing. No I/O: the HTTP adapter is
//! [`super::client`].

use serde::{Deserialize, Serialize};

use super::OAuthError;
use crate::net::Secret;

/// The grant type of the device authorization grant (RFC 8628 §3.4).
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Where a provider takes sign-ins and hands out tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// The OpenID issuer, when the endpoints came from discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<String>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: Option<String>,
    token_endpoint: String,
    device_authorization_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
}

impl Endpoints {
    /// The endpoints of a preset's `oauth2` table, `{tenant}` filled in.
    pub fn from_preset(o: &crate::presets::OAuth2, tenant: Option<&str>) -> Endpoints {
        Endpoints {
            issuer: None,
            authorization: Some(o.with_tenant(&o.authorization, tenant)),
            token: o.with_tenant(&o.token, tenant),
            device: o.device.as_ref().map(|d| o.with_tenant(d, tenant)),
            revocation: None,
        }
    }

    /// The endpoints an OpenID discovery document (`ISSUER/.well-known/openid-configuration`)
    /// names. Its `issuer` must be the one asked (OpenID Connect Discovery §4.3).
    pub fn from_discovery(issuer: &str, body: &[u8]) -> Result<Endpoints, OAuthError> {
        let bad = |detail: String| OAuthError::Discovery {
            issuer: issuer.to_string(),
            detail,
        };
        let d: Discovery = serde_json::from_slice(body).map_err(|e| bad(format!("not a discovery document: {e}")))?;
        if d.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(bad(format!("the document is for issuer {}", d.issuer)));
        }
        Ok(Endpoints {
            issuer: Some(d.issuer),
            authorization: d.authorization_endpoint,
            token: d.token_endpoint,
            device: d.device_authorization_endpoint,
            revocation: d.revocation_endpoint,
        })
    }
}

/// The address of an issuer's discovery document.
pub fn discovery_url(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))
}

/// A PKCE verifier and its S256 challenge (RFC 7636 §4.1–4.2).
pub struct Pkce {
    pub verifier: Secret,
    pub challenge: String,
}

impl Pkce {
    /// From 32 random bytes: a 43-character verifier.
    pub fn from_seed(seed: &[u8; 32]) -> Pkce {
        let verifier = b64url(seed);
        let challenge = b64url(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref());
        Pkce {
            verifier: Secret::new(verifier),
            challenge,
        }
    }
}

/// base64url without padding.
pub fn b64url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// `application/x-www-form-urlencoded` (also a URL's query).
pub fn encode_form(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode(k, &mut out);
        out.push('=');
        percent_encode(v, &mut out);
    }
    out
}

/// One value escaped as a form or query encodes it.
pub fn form_escape(s: &str) -> String {
    let mut out = String::new();
    percent_encode(s, &mut out);
    out
}

fn percent_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// A query string's pairs, decoded (`+` is a space).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() => {
                let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(b[i + 1]) << 4 | hex(b[i + 2]));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The request that sends the user's browser to sign in (RFC 6749 §4.1.1 with PKCE).
pub struct AuthorizationRequest<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a [String],
    pub state: &'a str,
    pub challenge: &'a str,
    /// A hint of the account to sign in as (`login_hint`).
    pub login_hint: Option<&'a str>,
}

impl AuthorizationRequest<'_> {
    pub fn url(&self, endpoint: &str) -> String {
        let scope = self.scopes.join(" ");
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", self.client_id),
            ("redirect_uri", self.redirect_uri),
            ("scope", scope.as_str()),
            ("state", self.state),
            ("code_challenge", self.challenge),
            ("code_challenge_method", "S256"),
            // Refresh tokens for offline_access are issued after consent.
            ("prompt", "consent"),
        ];
        if let Some(h) = self.login_hint {
            pairs.push(("login_hint", h));
        }
        let sep = if endpoint.contains('?') { '&' } else { '?' };
        format!("{endpoint}{sep}{}", encode_form(&pairs))
    }
}

/// The authorization code a loopback redirect carries, from the first line of the
/// browser's request (`GET /callback?code=…&state=… HTTP/1.1`). The state must be
/// the one sent; an `error` the provider sent is returned as such.
pub fn code_from_redirect(request_line: &str, state: &str) -> Result<Secret, OAuthError> {
    let bad = |detail: &str| OAuthError::Redirect { detail: detail.into() };
    let mut words = request_line.split_whitespace();
    let (Some("GET"), Some(target)) = (words.next(), words.next()) else {
        return Err(bad("not a GET request"));
    };
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let pairs = parse_query(query);
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if let Some(e) = get("error") {
        return Err(OAuthError::Provider {
            what: "sign-in".into(),
            error: e.to_string(),
            description: get("error_description").unwrap_or_default().to_string(),
        });
    }
    if get("state") != Some(state) {
        return Err(bad("the state does not match the request (a stale or forged redirect)"));
    }
    get("code")
        .map(Secret::new)
        .ok_or_else(|| bad("no code in the redirect"))
}

/// A token endpoint's successful answer (RFC 6749 §5.1). `Debug` hides the tokens.
#[derive(Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub token_type: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// A token endpoint's error answer (RFC 6749 §5.2, RFC 8628 §3.5).
#[derive(Debug, Deserialize)]
pub struct ErrorResponse {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

/// A device authorization answer (RFC 8628 §3.2). Google says `verification_url`.
#[derive(Debug, Deserialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    #[serde(alias = "verification_url")]
    pub verification_uri: String,
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    #[serde(default)]
    pub interval: Option<u64>,
}

/// What to do after one poll of the device grant.
#[derive(Debug)]
pub enum DevicePoll {
    /// Signed in.
    Done(TokenResponse),
    /// Not yet: poll again after this many seconds (RFC 8628 §3.5: 5 more after `slow_down`).
    Wait(u64),
}

/// Decides what one device-grant poll's answer means; `interval` is the current
/// polling interval in seconds and grows on `slow_down`.
pub fn device_poll(answer: Result<TokenResponse, ErrorResponse>, interval: &mut u64) -> Result<DevicePoll, OAuthError> {
    match answer {
        Ok(t) => Ok(DevicePoll::Done(t)),
        Err(e) if e.error == "authorization_pending" => Ok(DevicePoll::Wait(*interval)),
        Err(e) if e.error == "slow_down" => {
            *interval += 5;
            Ok(DevicePoll::Wait(*interval))
        }
        Err(e) if e.error == "access_denied" => Err(OAuthError::Denied),
        Err(e) if e.error == "expired_token" => Err(OAuthError::DeviceCodeExpired),
        Err(e) => Err(OAuthError::Provider {
            what: "device sign-in".into(),
            error: e.error,
            description: e.error_description.unwrap_or_default(),
        }),
    }
}

/// An access token with its lifetime, and the refresh token that renews it.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tokens {
    pub access_token: String,
    /// Unix seconds.
    pub obtained_at: i64,
    /// Unix seconds; `None` when the provider did not say (treated as an hour).
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("obtained_at", &self.obtained_at)
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

/// An access token whose lifetime nobody said lives this long.
const ASSUMED_LIFETIME: i64 = 3600;
/// The most of a token's life given up by refreshing early.
const MAX_MARGIN: i64 = 300;

impl Tokens {
    /// The tokens an answer gives at `now`. A refresh answer without a refresh
    /// token keeps the one that was used (RFC 6749 §6).
    pub fn from_response(r: TokenResponse, now: i64, previous_refresh: Option<&str>) -> Result<Tokens, OAuthError> {
        if !r.token_type.is_empty() && !r.token_type.eq_ignore_ascii_case("bearer") {
            return Err(OAuthError::Provider {
                what: "token".into(),
                error: "unsupported_token_type".into(),
                description: format!("a {} token; IMAP and POP3 take bearer tokens", r.token_type),
            });
        }
        Ok(Tokens {
            access_token: r.access_token,
            obtained_at: now,
            expires_at: r.expires_in.map(|s| now + s.min(i64::MAX as u64 / 2) as i64),
            refresh_token: r.refresh_token.or(previous_refresh.map(str::to_string)),
            scope: r.scope,
        })
    }

    fn expiry(&self) -> i64 {
        self.expires_at.unwrap_or(self.obtained_at + ASSUMED_LIFETIME)
    }

    /// How early before expiry a refresh is due: a quarter of the lifetime, at
    /// most five minutes (a 20 s token is refreshed with 5 s left, an hour's with 5 min).
    pub fn margin(&self) -> i64 {
        ((self.expiry() - self.obtained_at) / 4).clamp(1, MAX_MARGIN)
    }

    /// Whether the access token is still good at `now` for work that starts now.
    pub fn fresh_at(&self, now: i64) -> bool {
        now < self.expiry() - self.margin()
    }

    /// Seconds until a refresh is due (0 when it is).
    pub fn refresh_due_in(&self, now: i64) -> u64 {
        (self.expiry() - self.margin() - now).max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_the_rfc_7636_example() {
        // RFC 7636 Appendix B: the verifier of these 32 bytes and its S256 challenge.
        let seed: [u8; 32] = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77, 105, 214, 191,
            240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let p = Pkce::from_seed(&seed);
        assert_eq!(p.verifier.expose(), "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(p.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn forms_and_queries_round_trip() {
        let cases = [
            ("plain", "abc"),
            ("space", "a b"),
            ("reserved", "a&b=c?d/e:f"),
            ("unicode", "Zürich ✓"),
            ("percent", "100%"),
        ];
        for (k, v) in cases {
            let q = encode_form(&[(k, v), ("x", "")]);
            assert_eq!(
                parse_query(&q),
                vec![(k.to_string(), v.to_string()), ("x".into(), String::new())],
                "{v}"
            );
        }
        assert_eq!(
            encode_form(&[("scope", "openid offline_access")]),
            "scope=openid+offline_access"
        );
        // A lone or broken escape is kept as it is.
        assert_eq!(
            parse_query("a=%zz&b=%4"),
            vec![("a".into(), "%zz".into()), ("b".into(), "%4".into())]
        );
    }

    #[test]
    fn the_authorization_url_carries_pkce_state_and_scopes() {
        let scopes = vec!["openid".to_string(), "offline_access".to_string()];
        let r = AuthorizationRequest {
            client_id: "c1",
            redirect_uri: "http://127.0.0.1:5000/callback",
            scopes: &scopes,
            state: "s1",
            challenge: "ch",
            login_hint: Some("a@b.example"),
        };
        let url = r.url("https://idp.example/auth");
        let (base, q) = url.split_once('?').unwrap();
        assert_eq!(base, "https://idp.example/auth");
        let pairs = parse_query(q);
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("redirect_uri"), Some("http://127.0.0.1:5000/callback"));
        assert_eq!(get("scope"), Some("openid offline_access"));
        assert_eq!(get("code_challenge_method"), Some("S256"));
        assert_eq!(get("login_hint"), Some("a@b.example"));
        assert!(r
            .url("https://idp.example/auth?x=1")
            .starts_with("https://idp.example/auth?x=1&response_type=code"));
    }

    #[test]
    fn a_redirect_gives_its_code_only_with_the_right_state() {
        let ok = code_from_redirect("GET /callback?code=abc%2Fd&state=s1&iss=x HTTP/1.1", "s1").unwrap();
        assert_eq!(ok.expose(), "abc/d");
        assert!(matches!(
            code_from_redirect("GET /callback?code=abc&state=other HTTP/1.1", "s1"),
            Err(OAuthError::Redirect { .. })
        ));
        assert!(matches!(
            code_from_redirect("GET /callback?error=access_denied&state=s1 HTTP/1.1", "s1"),
            Err(OAuthError::Provider { error, .. }) if error == "access_denied"
        ));
        assert!(code_from_redirect("POST /callback?code=a&state=s1 HTTP/1.1", "s1").is_err());
        assert!(code_from_redirect("GET /favicon.ico HTTP/1.1", "s1").is_err());
    }

    #[test]
    fn device_polling_follows_rfc_8628() {
        let err = |e: &str| {
            Err(ErrorResponse {
                error: e.into(),
                error_description: None,
            })
        };
        let mut interval = 5;
        assert!(matches!(
            device_poll(err("authorization_pending"), &mut interval),
            Ok(DevicePoll::Wait(5))
        ));
        assert!(matches!(
            device_poll(err("slow_down"), &mut interval),
            Ok(DevicePoll::Wait(10))
        ));
        assert_eq!(interval, 10);
        assert!(matches!(
            device_poll(err("access_denied"), &mut interval),
            Err(OAuthError::Denied)
        ));
        assert!(matches!(
            device_poll(err("expired_token"), &mut interval),
            Err(OAuthError::DeviceCodeExpired)
        ));
        assert!(matches!(
            device_poll(err("invalid_client"), &mut interval),
            Err(OAuthError::Provider { .. })
        ));
        let done = Ok(TokenResponse {
            access_token: "a".into(),
            token_type: "Bearer".into(),
            expires_in: Some(60),
            refresh_token: Some("r".into()),
            scope: None,
        });
        assert!(matches!(device_poll(done, &mut interval), Ok(DevicePoll::Done(_))));
    }

    #[test]
    fn tokens_are_refreshed_a_quarter_of_their_life_early_at_most_five_minutes() {
        let resp = |expires_in, refresh: Option<&str>| TokenResponse {
            access_token: "a".into(),
            token_type: "bearer".into(),
            expires_in,
            refresh_token: refresh.map(str::to_string),
            scope: None,
        };
        // (lifetime, fresh at +t?) for a token obtained at 1000.
        let table: &[(Option<u64>, i64, bool)] = &[
            (Some(20), 14, true),
            (Some(20), 15, false),
            (Some(3600), 3299, true),
            (Some(3600), 3300, false),
            (Some(600), 449, true),
            (Some(600), 450, false),
            (None, 3299, true),
            (None, 3300, false),
            (Some(1), 0, false),
        ];
        for &(life, t, fresh) in table {
            let tok = Tokens::from_response(resp(life, Some("r")), 1000, None).unwrap();
            assert_eq!(tok.fresh_at(1000 + t), fresh, "lifetime {life:?} at +{t}");
        }
        // A refresh without a new refresh token keeps the old one; a rotated one replaces it.
        assert_eq!(
            Tokens::from_response(resp(Some(60), None), 0, Some("old"))
                .unwrap()
                .refresh_token
                .as_deref(),
            Some("old")
        );
        assert_eq!(
            Tokens::from_response(resp(Some(60), Some("new")), 0, Some("old"))
                .unwrap()
                .refresh_token
                .as_deref(),
            Some("new")
        );
        let mut mac = resp(Some(60), None);
        mac.token_type = "mac".into();
        assert!(Tokens::from_response(mac, 0, None).is_err());
        // Never printed.
        let tok = Tokens::from_response(resp(Some(60), Some("very-secret")), 0, None).unwrap();
        assert!(!format!("{tok:?}").contains("very-secret"));
    }

    #[test]
    fn discovery_must_name_the_issuer_asked() {
        let doc = br#"{"issuer":"http://127.0.0.1:9/","authorization_endpoint":"http://127.0.0.1:9/auth","token_endpoint":"http://127.0.0.1:9/token","device_authorization_endpoint":"http://127.0.0.1:9/device/auth"}"#;
        let e = Endpoints::from_discovery("http://127.0.0.1:9", doc).unwrap();
        assert_eq!(e.token, "http://127.0.0.1:9/token");
        assert_eq!(e.device.as_deref(), Some("http://127.0.0.1:9/device/auth"));
        assert!(Endpoints::from_discovery("http://evil.example", doc).is_err());
        assert!(Endpoints::from_discovery("http://127.0.0.1:9", b"<html>").is_err());
        assert_eq!(
            discovery_url("https://idp.example/"),
            "https://idp.example/.well-known/openid-configuration"
        );
    }
}
