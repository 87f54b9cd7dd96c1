//! The HTTP side of OAuth2: OpenID discovery, the token endpoint (code exchange,
//! refresh, client credentials, device polling) and the device authorization
//! endpoint. Confidential clients authenticate with HTTP Basic (RFC 6749 §2.3.1).

use std::time::Duration;

use tracing::{debug, info};

use super::flow::{self, DeviceAuthorization, DevicePoll, Endpoints, ErrorResponse, TokenResponse, Tokens};
use super::OAuthError;
use crate::net::Secret;

/// A bound on every request; a provider that does not answer in this time fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read from a provider.
const MAX_ANSWER: usize = 1 << 20;

/// One client (the `client_id` registered at the provider) talking to its endpoints.
pub struct OAuthClient {
    http: reqwest::Client,
    pub endpoints: Endpoints,
    pub client_id: String,
    client_secret: Option<Secret>,
}

/// The HTTP client: rustls with the ring provider, bounded in time.
pub fn http_client() -> Result<reqwest::Client, OAuthError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| OAuthError::Config(format!("cannot make an HTTP client: {e}")))
}

/// The seconds since the Unix epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn read_answer(url: &str, resp: reqwest::Response) -> Result<(u16, Vec<u8>), OAuthError> {
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(|e| http_err(url, e))?;
    if bytes.len() > MAX_ANSWER {
        return Err(OAuthError::Http {
            url: url.into(),
            detail: format!("an answer of {} bytes (more than {MAX_ANSWER})", bytes.len()),
        });
    }
    Ok((status, bytes.to_vec()))
}

fn http_err(url: &str, e: reqwest::Error) -> OAuthError {
    // reqwest's message names the URL too; the chain says why.
    let mut detail = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        detail = format!("{detail}: {s}");
        src = s.source();
    }
    OAuthError::Http {
        url: url.into(),
        detail,
    }
}

/// Reads an issuer's discovery document.
pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Endpoints, OAuthError> {
    let url = flow::discovery_url(issuer);
    let resp = http.get(&url).send().await.map_err(|e| http_err(&url, e))?;
    let (status, body) = read_answer(&url, resp).await?;
    if status != 200 {
        return Err(OAuthError::Discovery {
            issuer: issuer.into(),
            detail: format!("HTTP {status} for {url}"),
        });
    }
    Endpoints::from_discovery(issuer, &body)
}

impl OAuthClient {
    pub fn new(http: reqwest::Client, endpoints: Endpoints, client_id: String, client_secret: Option<Secret>) -> Self {
        OAuthClient {
            http,
            endpoints,
            client_id,
            client_secret,
        }
    }

    /// POSTs a form to `url` as this client; a JSON answer of 200 or an OAuth error.
    async fn post(&self, url: &str, form: &[(&str, &str)]) -> Result<Result<Vec<u8>, ErrorResponse>, OAuthError> {
        let mut pairs: Vec<(&str, &str)> = form.to_vec();
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json");
        match &self.client_secret {
            Some(s) => {
                use base64::Engine;
                let basic = format!(
                    "{}:{}",
                    flow::form_escape(&self.client_id),
                    flow::form_escape(s.expose())
                );
                req = req.header(
                    "authorization",
                    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(basic)),
                );
            }
            None => pairs.push(("client_id", &self.client_id)),
        }
        let resp = req
            .body(flow::encode_form(&pairs))
            .send()
            .await
            .map_err(|e| http_err(url, e))?;
        let (status, body) = read_answer(url, resp).await?;
        if status == 200 {
            return Ok(Ok(body));
        }
        match serde_json::from_slice::<ErrorResponse>(&body) {
            Ok(e) if (400..500).contains(&status) => Ok(Err(e)),
            _ => Err(OAuthError::Http {
                url: url.into(),
                detail: format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
            }),
        }
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<Result<TokenResponse, ErrorResponse>, OAuthError> {
        let url = self.endpoints.token.clone();
        Ok(match self.post(&url, form).await? {
            Ok(body) => Ok(serde_json::from_slice(&body).map_err(|e| OAuthError::Http {
                url,
                detail: format!("not a token answer: {e}"),
            })?),
            Err(e) => Err(e),
        })
    }

    fn provider_error(what: &str, e: ErrorResponse) -> OAuthError {
        OAuthError::Provider {
            what: what.into(),
            error: e.error,
            description: e.error_description.unwrap_or_default(),
        }
    }

    /// Starts a device sign-in (RFC 8628 §3.1).
    pub async fn device_start(&self, scopes: &[String]) -> Result<DeviceAuthorization, OAuthError> {
        let url = self.endpoints.device.clone().ok_or_else(|| {
            OAuthError::Config("this provider has no device authorization endpoint: sign in with --browser".into())
        })?;
        let scope = scopes.join(" ");
        match self.post(&url, &[("scope", &scope)]).await? {
            Ok(body) => serde_json::from_slice(&body).map_err(|e| OAuthError::Http {
                url,
                detail: format!("not a device authorization answer: {e}"),
            }),
            Err(e) => Err(Self::provider_error("device sign-in", e)),
        }
    }

    /// Polls the token endpoint until the user has signed in, declined, or the code
    /// expired (bounded by the code's lifetime).
    pub async fn device_finish(&self, d: &DeviceAuthorization) -> Result<Tokens, OAuthError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(d.expires_in.clamp(1, 3600));
        let mut interval = d.interval.unwrap_or(5).max(1);
        loop {
            tokio::time::sleep(Duration::from_secs(interval)).await;
            if tokio::time::Instant::now() > deadline {
                return Err(OAuthError::DeviceCodeExpired);
            }
            let answer = self
                .token_request(&[("grant_type", flow::DEVICE_GRANT), ("device_code", &d.device_code)])
                .await?;
            match flow::device_poll(answer, &mut interval)? {
                DevicePoll::Done(t) => return Tokens::from_response(t, now(), None),
                DevicePoll::Wait(s) => debug!(seconds = s, "device sign-in pending"),
            }
        }
    }

    /// Exchanges an authorization code (RFC 6749 §4.1.3, with the PKCE verifier).
    pub async fn exchange_code(
        &self,
        code: &Secret,
        redirect_uri: &str,
        verifier: &Secret,
    ) -> Result<Tokens, OAuthError> {
        let answer = self
            .token_request(&[
                ("grant_type", "authorization_code"),
                ("code", code.expose()),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier.expose()),
            ])
            .await?;
        match answer {
            Ok(t) => Tokens::from_response(t, now(), None),
            Err(e) => Err(Self::provider_error("exchanging the sign-in code", e)),
        }
    }

    /// Renews the access token (RFC 6749 §6). `invalid_grant` (revoked, expired,
    /// or the user changed the password) means the user must sign in again.
    pub async fn refresh(&self, account: &str, refresh_token: &str) -> Result<Tokens, OAuthError> {
        let answer = self
            .token_request(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)])
            .await?;
        match answer {
            Ok(t) => {
                let t = Tokens::from_response(t, now(), Some(refresh_token))?;
                info!(
                    account,
                    expires_in = t.expires_at.map(|e| e - t.obtained_at),
                    "access token refreshed"
                );
                Ok(t)
            }
            Err(e) if e.error == "invalid_grant" || e.error == "unauthorized_client" => Err(OAuthError::NeedsLogin {
                account: account.into(),
                detail: format!(
                    "{}{}",
                    e.error,
                    e.error_description.map(|d| format!(": {d}")).unwrap_or_default()
                ),
            }),
            Err(e) => Err(Self::provider_error("refreshing the access token", e)),
        }
    }

    /// An app-only token (RFC 6749 §4.4). A refused client means new credentials.
    pub async fn client_credentials(&self, account: &str, scopes: &[String]) -> Result<Tokens, OAuthError> {
        let scope = scopes.join(" ");
        let mut form = vec![("grant_type", "client_credentials")];
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        match self.token_request(&form).await? {
            Ok(t) => {
                let t = Tokens::from_response(t, now(), None)?;
                info!(
                    account,
                    expires_in = t.expires_at.map(|e| e - t.obtained_at),
                    "app-only access token obtained"
                );
                Ok(t)
            }
            Err(e) if e.error == "invalid_client" || e.error == "unauthorized_client" => Err(OAuthError::NeedsLogin {
                account: account.into(),
                detail: e.error,
            }),
            Err(e) => Err(Self::provider_error("client credentials", e)),
        }
    }
}
