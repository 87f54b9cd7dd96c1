//! How to reach and log in to a server, as command-line options: the credential
//! source, TLS trust, plaintext consent. `pull` and `replay` take them as
//! `--password-env` …; `migrate`, which talks to two servers, as `--from-…` and
//! `--to-…` (one macro makes all three, so they can't drift apart).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use mailvault::net::tls::{self, Pin};
use mailvault::net::{Endpoint, SecretSource, TlsOptions};
use mailvault::oauth::{TokenSource, TokenStore};
use mailvault::presets::Preset;
use mailvault::remote::{Auth, ConnectOptions};

/// The options' values, whichever spelling they came from.
pub struct ServerOptions<'a> {
    pub provider: &'a Option<String>,
    pub starttls: bool,
    pub insecure_plaintext: bool,
    pub password_env: &'a Option<String>,
    pub password_file: &'a Option<PathBuf>,
    pub password_command: &'a Option<String>,
    pub oauth2_token_command: &'a Option<String>,
    pub oauth2_account: &'a Option<String>,
    pub oauth2_mechanism: Option<super::choices::OAuthMechanismArg>,
    pub no_compress: bool,
    pub tls_ca: &'a Option<PathBuf>,
    pub tls_pin: &'a [Pin],
    pub danger_accept_invalid_certs: bool,
}

impl ServerOptions<'_> {
    /// The provider preset named by `--provider`, if any (a site's own presets
    /// file, `MAILVAULT_PRESETS`, first).
    pub fn preset(&self) -> Result<Option<&'static Preset>> {
        self.provider
            .as_deref()
            .map(|name| mailvault::presets::lookup(name).map_err(|e| super::UsageError(e.to_string()).into()))
            .transpose()
    }

    /// Parses `url` and checks the options fit it. With `--provider`, `url` is the
    /// user name (`pop3:USER` for the provider's POP3 server).
    pub fn endpoint(&self, url: &str) -> Result<Endpoint> {
        let ep = match self.preset()? {
            None => Endpoint::parse(url).map_err(|e| super::UsageError(e.to_string()))?,
            Some(p) => p.endpoint_for(url).map_err(|e| super::UsageError(e.to_string()))?,
        };
        if ep.scheme.implicit_tls() && (self.starttls || self.insecure_plaintext) {
            return Err(super::UsageError(format!(
                "--starttls and --insecure-plaintext apply to imap:// and pop3:// addresses; {}:// is TLS from the start",
                ep.scheme.as_str()
            ))
            .into());
        }
        Ok(ep)
    }

    /// Reads the secret (this may prompt) and builds the TLS configuration. `store`
    /// holds the sign-ins `--oauth2-account` names (the archive's).
    pub fn connect_options(
        &self,
        ep: Endpoint,
        timeout_secs: u64,
        store: Option<&TokenStore>,
    ) -> Result<ConnectOptions> {
        let auth = self.auth(&ep, store)?;
        let tls = tls::client_config(&TlsOptions {
            ca_file: self.tls_ca.clone(),
            pins: self.tls_pin.to_vec(),
            danger_accept_invalid_certs: self.danger_accept_invalid_certs,
        })?;
        Ok(ConnectOptions {
            endpoint: ep,
            tls,
            insecure_plaintext: self.insecure_plaintext,
            auth,
            oauth2_mechanism: self.oauth2_mechanism.map(Into::into).unwrap_or_default(),
            compress: !self.no_compress,
            io_timeout: Duration::from_secs(timeout_secs.max(1)),
            slots: None,
            max_message_size: mailvault::remote::DEFAULT_MAX_MESSAGE_SIZE,
        })
    }

    fn auth(&self, ep: &Endpoint, store: Option<&TokenStore>) -> Result<Auth> {
        if let Some(name) = self.oauth2_account {
            let store = store.context("--oauth2-account needs an archive, whose secret store holds the sign-in")?;
            return Ok(Auth::OAuth2SignIn(TokenSource::shared(store.clone(), name)?));
        }
        let source = if let Some(v) = self.password_env {
            SecretSource::Env(v.clone())
        } else if let Some(f) = self.password_file {
            SecretSource::File(f.clone())
        } else if let Some(c) = self.password_command.as_ref().or(self.oauth2_token_command.as_ref()) {
            SecretSource::Command(c.clone())
        } else {
            SecretSource::Prompt(format!("password for {ep}: "))
        };
        let secret = source.read()?;
        Ok(if self.oauth2_token_command.is_some() {
            Auth::OAuth2(secret)
        } else {
            Auth::Password(secret)
        })
    }
}

macro_rules! server_args {
    ($name:ident, $prefix:literal, $whose:literal) => {
        #[derive(clap::Args, Debug)]
        pub struct $name {
            #[arg(help = concat!("A provider preset", $whose, " (gmail, microsoft365, outlook, yahoo, icloud, fastmail, gmx, webde, t-online, mailbox.org): the address is then just the user name"),
                  long = concat!($prefix, "provider"), id = concat!($prefix, "provider"), value_name = "NAME")]
            pub provider: Option<String>,
            #[arg(help = concat!("imap://: require STARTTLS", $whose, " (the default; abort if the server does not offer it)"),
                  long = concat!($prefix, "starttls"), id = concat!($prefix, "starttls"), conflicts_with = concat!($prefix, "insecure_plaintext"))]
            pub starttls: bool,
            #[arg(help = concat!("imap://", $whose, ": no TLS at all; the password crosses the network in clear"),
                  long = concat!($prefix, "insecure-plaintext"), id = concat!($prefix, "insecure_plaintext"))]
            pub insecure_plaintext: bool,
            #[arg(help = concat!("Read the password", $whose, " from this environment variable"),
                  long = concat!($prefix, "password-env"), id = concat!($prefix, "password_env"), value_name = "VAR", group = concat!($prefix, "secret"))]
            pub password_env: Option<String>,
            #[arg(help = concat!("Read the password", $whose, " from the first line of this file"),
                  long = concat!($prefix, "password-file"), id = concat!($prefix, "password_file"), value_name = "FILE", group = concat!($prefix, "secret"))]
            pub password_file: Option<PathBuf>,
            #[arg(help = concat!("Run this shell command and use the first line it prints as the password", $whose),
                  long = concat!($prefix, "password-command"), id = concat!($prefix, "password_command"), value_name = "CMD", group = concat!($prefix, "secret"))]
            pub password_command: Option<String>,
            #[arg(help = concat!("Run this shell command for an OAuth2 access token", $whose, " (XOAUTH2/OAUTHBEARER)"),
                  long = concat!($prefix, "oauth2-token-command"), id = concat!($prefix, "oauth2_token_command"), value_name = "CMD", group = concat!($prefix, "secret"))]
            pub oauth2_token_command: Option<String>,
            #[arg(help = concat!("Sign in", $whose, " with the OAuth2 sign-in stored under NAME by `mailvault login --account NAME`, refreshed as the work goes"),
                  long = concat!($prefix, "oauth2-account"), id = concat!($prefix, "oauth2_account"), value_name = "NAME", group = concat!($prefix, "secret"))]
            pub oauth2_account: Option<String>,
            #[arg(help = concat!("The SASL mechanism", $whose, " for an OAuth2 token (default: XOAUTH2 when offered, else OAUTHBEARER)"),
                  long = concat!($prefix, "oauth2-mechanism"), id = concat!($prefix, "oauth2_mechanism"), value_name = "MECH")]
            pub oauth2_mechanism: Option<super::choices::OAuthMechanismArg>,
            #[arg(help = concat!("IMAP", $whose, ": do not use COMPRESS=DEFLATE even when the server offers it (it is used by default: less to send over a slow link)"),
                  long = concat!($prefix, "no-compress"), id = concat!($prefix, "no_compress"))]
            pub no_compress: bool,
            #[arg(help = concat!("Also trust the CA certificate(s) in this PEM file", $whose),
                  long = concat!($prefix, "tls-ca"), id = concat!($prefix, "tls_ca"), value_name = "FILE")]
            pub tls_ca: Option<PathBuf>,
            #[arg(help = concat!("Trust only a certificate", $whose, " with this SHA-256 fingerprint (sha256:HEX, as a refusal prints it); repeatable"),
                  long = concat!($prefix, "tls-pin"), id = concat!($prefix, "tls_pin"), value_name = "sha256:HEX")]
            pub tls_pin: Vec<Pin>,
            #[arg(help = concat!("Do not verify the certificate", $whose, " (anyone on the path can read your mail)"),
                  long = concat!($prefix, "danger-accept-invalid-certs"), id = concat!($prefix, "danger_accept_invalid_certs"))]
            pub danger_accept_invalid_certs: bool,
        }

        impl $name {
            pub fn options(&self) -> ServerOptions<'_> {
                ServerOptions {
                    provider: &self.provider,
                    starttls: self.starttls,
                    insecure_plaintext: self.insecure_plaintext,
                    password_env: &self.password_env,
                    password_file: &self.password_file,
                    password_command: &self.password_command,
                    oauth2_token_command: &self.oauth2_token_command,
                    oauth2_account: &self.oauth2_account,
                    oauth2_mechanism: self.oauth2_mechanism,
                    no_compress: self.no_compress,
                    tls_ca: &self.tls_ca,
                    tls_pin: &self.tls_pin,
                    danger_accept_invalid_certs: self.danger_accept_invalid_certs,
                }
            }
        }
    };
}

server_args!(ServerArgs, "", "");
server_args!(FromServerArgs, "from-", " of the source");
server_args!(ToServerArgs, "to-", " of the target");
