//! `mailvault login`: signs an account in with OAuth2 and stores the sign-in (the
//! refresh token, or the client secret of an app-only sign-in) in the archive's
//! secret store. The device grant prints a code and an address; the browser grant
//! prints an address and waits for the redirect on 127.0.0.1. No client id is
//! shipped: the organisation's own app registration is given with `--client-id`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

use mailvault::net::{Secret, SecretSource};
use mailvault::oauth::client::{self, OAuthClient};
use mailvault::oauth::flow::{self, AuthorizationRequest, Endpoints, Pkce, Tokens};
use mailvault::oauth::loopback::Loopback;
use mailvault::oauth::store::{check_account, SIGN_IN_FORMAT};
use mailvault::oauth::{provider_name, Grant, SignIn};

use super::{Cli, UsageError};

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The name the sign-in is kept under: `pull --oauth2-account NAME`, and a job
    /// account of this name with `oauth2 = { … }`, sign in with it
    #[arg(long, value_name = "NAME")]
    account: String,
    /// `microsoft`, `google`, `generic` (an OpenID provider found by --issuer), or
    /// another preset with OAuth2
    #[arg(long, value_name = "NAME")]
    provider: String,
    /// The application (client) id registered with the provider
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// Microsoft: the tenant (directory id or domain); default `organizations`
    /// (Microsoft 365) or `consumers` (Outlook.com)
    #[arg(long, value_name = "T")]
    tenant: Option<String>,
    /// `generic`: the OpenID issuer URL (its discovery document names the endpoints)
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// Sign in on another device: print an address and a code, then wait (the default)
    #[arg(long, conflicts_with_all = ["browser", "client_credentials"])]
    device: bool,
    /// Sign in with a browser on this machine: print an address, then wait for the
    /// browser to come back to 127.0.0.1
    #[arg(long, conflicts_with = "client_credentials")]
    browser: bool,
    /// App-only access for tenant-wide archiving (the client credentials grant);
    /// needs --client-secret-env or --client-secret-file
    #[arg(long)]
    client_credentials: bool,
    /// Read the client secret from this environment variable
    #[arg(long, value_name = "VAR", conflicts_with = "client_secret_file")]
    client_secret_env: Option<String>,
    /// Read the client secret from the first line of this file
    #[arg(long, value_name = "FILE")]
    client_secret_file: Option<PathBuf>,
    /// Ask for this scope instead of the provider's (repeatable)
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// The user to sign in as, filled in for them where the provider allows
    #[arg(long, value_name = "USER")]
    login_hint: Option<String>,
    /// Give up when the sign-in is not finished within this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    timeout: u64,
}

/// Where to sign in and which scopes to ask for.
struct Provider {
    name: String,
    endpoints: Endpoints,
    scopes: Vec<String>,
    app_scopes: Vec<String>,
}

async fn resolve(a: &LoginArgs, http: &reqwest::Client) -> Result<Provider> {
    if a.provider.eq_ignore_ascii_case("generic") {
        let issuer = a
            .issuer
            .as_deref()
            .ok_or_else(|| UsageError("--provider generic needs --issuer URL".into()))?;
        return Ok(Provider {
            name: "generic".into(),
            endpoints: client::discover(http, issuer).await?,
            scopes: vec!["openid".into(), "offline_access".into()],
            app_scopes: Vec::new(),
        });
    }
    if a.issuer.is_some() {
        bail!(UsageError("--issuer applies to --provider generic".into()));
    }
    let preset = mailvault::presets::lookup(&a.provider).map_err(|e| UsageError(e.to_string()))?;
    let o = preset.oauth2.as_ref().ok_or_else(|| {
        UsageError(format!(
            "{} has no OAuth2 sign-in for IMAP/POP3: use an app password (--password-env and friends)",
            preset.title
        ))
    })?;
    Ok(Provider {
        name: provider_name(&a.provider),
        endpoints: Endpoints::from_preset(o, a.tenant.as_deref()),
        scopes: o.scopes.clone(),
        app_scopes: o.app_scopes.clone(),
    })
}

fn client_secret(a: &LoginArgs) -> Result<Option<Secret>> {
    let source = match (&a.client_secret_env, &a.client_secret_file) {
        (Some(v), _) => SecretSource::Env(v.clone()),
        (None, Some(f)) => SecretSource::File(f.clone()),
        (None, None) => return Ok(None),
    };
    Ok(Some(source.read()?))
}

pub fn login(cli: &Cli, a: &LoginArgs) -> Result<ExitCode> {
    check_account(&a.account).map_err(|e| UsageError(e.to_string()))?;
    let client_id = a.client_id.clone().ok_or_else(|| {
        UsageError(format!(
            "--client-id is needed: register an application with {} (README, \"Signing in with OAuth2\") and give its id",
            a.provider
        ))
    })?;
    let secret = client_secret(a)?;
    if a.client_credentials && secret.is_none() {
        bail!(UsageError(
            "--client-credentials needs --client-secret-env VAR or --client-secret-file FILE".into()
        ));
    }
    // The store is the archive's (created when missing, like pull does).
    let archive = super::open_archive(cli, true)?;
    let store = mailvault::oauth::TokenStore::of(&archive);
    drop(archive);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let sign_in = rt.block_on(sign_in(a, client_id, secret))?;
    {
        // Under the account's lock: a refresh running meanwhile (the service) saves
        // before us, or rereads the store after us and takes this sign-in.
        let _lock = store.lock(&sign_in.account)?;
        store.save(&sign_in)?;
    }
    let refresh = match (sign_in.grant, &sign_in.tokens.refresh_token) {
        (Grant::App, _) => "the client secret".to_string(),
        (Grant::User, Some(_)) => "a refresh token".to_string(),
        (Grant::User, None) => {
            eprintln!(
                "warning: the provider gave no refresh token (was offline_access granted?); \
                 the sign-in lasts as long as this access token"
            );
            "no refresh token".to_string()
        }
    };
    println!(
        "signed in: account {} at {} (client {}); {refresh} kept in {}",
        sign_in.account,
        sign_in.provider,
        sign_in.client_id,
        store.path(&sign_in.account).display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn sign_in(a: &LoginArgs, client_id: String, secret: Option<Secret>) -> Result<SignIn> {
    let http = client::http_client()?;
    let p = resolve(a, &http).await?;
    let grant = if a.client_credentials { Grant::App } else { Grant::User };
    let scopes = match (a.scopes.is_empty(), grant) {
        (false, _) => a.scopes.clone(),
        (true, Grant::App) => p.app_scopes.clone(),
        (true, Grant::User) => p.scopes.clone(),
    };
    let oauth = OAuthClient::new(http, p.endpoints.clone(), client_id.clone(), secret.clone());
    let limit = Duration::from_secs(a.timeout.max(1));
    let tokens = match grant {
        Grant::App => oauth.client_credentials(&a.account, &scopes).await?,
        Grant::User if a.browser => browser(&oauth, a, &scopes, limit).await?,
        Grant::User => tokio::time::timeout(limit, device(&oauth, &scopes))
            .await
            .map_err(|_| anyhow::anyhow!("the sign-in was not finished within {} s", limit.as_secs()))??,
    };
    Ok(SignIn {
        format: SIGN_IN_FORMAT.into(),
        account: a.account.clone(),
        provider: p.name,
        grant,
        client_id,
        // Needed again by every renewal: an app-only token, or a confidential
        // client's refresh (Google's desktop clients have a secret).
        client_secret: secret.map(|s| s.expose().to_string()),
        endpoints: p.endpoints,
        scopes,
        tokens,
        needs_login: None,
    })
}

async fn device(oauth: &OAuthClient, scopes: &[String]) -> Result<Tokens> {
    let d = oauth.device_start(scopes).await?;
    eprintln!(
        "To sign in, open {} and enter the code {}",
        d.verification_uri, d.user_code
    );
    if let Some(full) = &d.verification_uri_complete {
        eprintln!("(or open {full})");
    }
    eprintln!("Waiting for the sign-in ({} s at most)…", d.expires_in);
    Ok(oauth.device_finish(&d).await?)
}

async fn browser(oauth: &OAuthClient, a: &LoginArgs, scopes: &[String], limit: Duration) -> Result<Tokens> {
    let authorize = oauth
        .endpoints
        .authorization
        .clone()
        .context("this provider has no authorization endpoint: sign in with --device")?;
    let pkce = Pkce::from_seed(&mailvault::crypt::random::<32>()?);
    let state = flow::b64url(&mailvault::crypt::random::<16>()?);
    let lb = Loopback::bind().await?;
    let url = AuthorizationRequest {
        client_id: &oauth.client_id,
        redirect_uri: &lb.redirect_uri,
        scopes,
        state: &state,
        challenge: &pkce.challenge,
        login_hint: a.login_hint.as_deref(),
    }
    .url(&authorize);
    eprintln!("To sign in, open this address in a browser on this machine:\n  {url}");
    if let Some(b) = std::env::var_os("BROWSER").filter(|b| !b.is_empty()) {
        // Started without a shell; a browser that fails to start leaves the address printed.
        let _ = std::process::Command::new(b)
            .arg(&url)
            .stdin(std::process::Stdio::null())
            .spawn();
    }
    eprintln!("Waiting for the browser to come back to {}…", lb.redirect_uri);
    let code = lb.wait_for_code(&state, limit).await?;
    Ok(oauth.exchange_code(&code, &lb.redirect_uri, &pkce.verifier).await?)
}
