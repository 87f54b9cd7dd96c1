//! `mailvault probe HOST|ADDRESS`: what a server offers and what suits the user
//! (see `mailvault::probe`), as a page for people or JSON (`probe.v1`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use mailvault::net::{SecretSource, TlsOptions};
use mailvault::probe::report::{PortState, ProbeReport, Protocol, Service, TlsMode};
use mailvault::probe::{Ports, ProbeLogin, ProbeOptions};
use mailvault::remote::Auth;

use super::{human_bytes, Cli, UsageError};

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// The server's host name, or an address (user@example.org: its domain is probed)
    #[arg(value_name = "HOST|ADDRESS")]
    target: String,
    /// Also log in as USER to look inside the mailbox (folders, counts, sizes,
    /// quota, a timed download); the password as for pull
    #[arg(long, value_name = "USER")]
    login: Option<String>,
    /// Read the password from this environment variable
    #[arg(long, value_name = "VAR", group = "secret")]
    password_env: Option<String>,
    /// Read the password from the first line of this file
    #[arg(long, value_name = "FILE", group = "secret")]
    password_file: Option<PathBuf>,
    /// Run this shell command and use the first line it prints as the password
    #[arg(long, value_name = "CMD", group = "secret")]
    password_command: Option<String>,
    /// Log in with the OAuth2 sign-in stored under NAME (`mailvault login`)
    #[arg(long, value_name = "NAME", group = "secret")]
    oauth2_account: Option<String>,
    /// Also trust the CA certificate(s) in this PEM file
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// IMAP over TLS on this port instead of 993
    #[arg(long, value_name = "PORT", default_value_t = 993)]
    imaps_port: u16,
    /// IMAP with STARTTLS on this port instead of 143
    #[arg(long, value_name = "PORT", default_value_t = 143)]
    imap_port: u16,
    /// POP3 over TLS on this port instead of 995
    #[arg(long, value_name = "PORT", default_value_t = 995)]
    pop3s_port: u16,
    /// POP3 with STLS on this port instead of 110
    #[arg(long, value_name = "PORT", default_value_t = 110)]
    pop3_port: u16,
    /// Seconds to wait for each port
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,
    #[command(flatten)]
    output: super::Output,
}

/// The host of `target` (`user@host` → `host`) and the user it names.
fn split_target(target: &str) -> (String, Option<String>) {
    match target.rsplit_once('@') {
        Some((_, host)) => (host.to_string(), Some(target.to_string())),
        None => (target.to_string(), None),
    }
}

fn login(cli: &Cli, a: &ProbeArgs, user: Option<String>) -> Result<Option<ProbeLogin>> {
    let credential = a.password_env.is_some()
        || a.password_file.is_some()
        || a.password_command.is_some()
        || a.oauth2_account.is_some();
    let Some(user) = a.login.clone().or(user.filter(|_| credential)) else {
        if credential {
            return Err(UsageError("a password or sign-in is given but no --login USER".into()).into());
        }
        return Ok(None);
    };
    let auth = if let Some(name) = &a.oauth2_account {
        let store = super::secret::token_store(&cli.secret, &super::archive_dir(cli)?)?;
        Auth::OAuth2SignIn(mailvault::oauth::TokenSource::shared(store, name)?)
    } else {
        let source = match (&a.password_env, &a.password_file, &a.password_command) {
            (Some(v), _, _) => SecretSource::Env(v.clone()),
            (_, Some(f), _) => SecretSource::File(f.clone()),
            (_, _, Some(c)) => SecretSource::Command(c.clone()),
            _ => SecretSource::Prompt(format!("password for {user}: ")),
        };
        Auth::Password(source.read()?)
    };
    Ok(Some(ProbeLogin { user, auth }))
}

pub fn probe(cli: &Cli, a: &ProbeArgs) -> Result<ExitCode> {
    let (host, user) = split_target(&a.target);
    if host.is_empty() || host.contains('/') || host.contains(':') {
        return Err(UsageError(format!("{}: give a host name or an address", a.target)).into());
    }
    let preset_connections = mailvault::presets::Presets::builtin()
        .providers
        .iter()
        .find(|p| p.imap.host.eq_ignore_ascii_case(&host))
        .map(|p| p.connections);
    let o = ProbeOptions {
        host,
        ports: Ports {
            imaps: a.imaps_port,
            imap: a.imap_port,
            pop3s: a.pop3s_port,
            pop3: a.pop3_port,
        },
        tls: TlsOptions {
            ca_file: a.tls_ca.clone(),
            ..Default::default()
        },
        timeout: Duration::from_secs(a.timeout.max(1)),
        login: login(cli, a, user.clone())?,
        user: a.login.clone().or(user),
        preset_connections,
        sample_bytes: 8 << 20,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = rt.block_on(mailvault::probe::probe(&o))?;
    if a.output.json() {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    let usable = report.advice.protocol.is_some() && report.login.as_ref().is_none_or(|l| l.ok);
    Ok(if usable { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn name(p: Protocol) -> &'static str {
    match p {
        Protocol::Imap => "IMAP",
        Protocol::Pop3 => "POP3",
    }
}

fn print_service(s: &Service) {
    let mode = match s.tls_mode {
        TlsMode::Implicit => "TLS",
        TlsMode::Starttls if s.protocol == Protocol::Imap => "STARTTLS",
        TlsMode::Starttls => "STLS",
    };
    let head = format!("{:<4} {:>5}  {mode:<8}", name(s.protocol), s.port);
    let state = match s.state {
        PortState::Open => "open",
        PortState::Closed => "closed",
        PortState::Timeout => "no answer",
        PortState::Error => "error",
    };
    match (&s.error, s.state) {
        (Some(e), PortState::Closed | PortState::Timeout) => return println!("{head}  {state} ({e})"),
        (Some(e), _) => println!("{head}  {state}: {e}"),
        (None, _) => println!("{head}  {state}"),
    }
    if s.starttls_offered == Some(false) {
        println!("      no {mode} offered: everything, the password too, would cross the network in clear");
    }
    if let Some(t) = &s.tls {
        let trust = match (&t.problem, t.verified) {
            (_, true) => "trusted".to_string(),
            (Some(p), false) => format!("NOT trusted: {p}"),
            (None, false) => "NOT trusted".to_string(),
        };
        println!("      {} {}, certificate {trust}", t.version, t.cipher);
        if let Some(c) = &t.certificate {
            println!(
                "      {} (issued by {}), for {}, valid {} to {} ({} days left), {}",
                c.subject,
                c.issuer,
                c.names.join(" "),
                c.not_before.format("%Y-%m-%d"),
                c.not_after.format("%Y-%m-%d"),
                t.days_left.unwrap_or_default(),
                c.fingerprint
            );
        }
    }
    if !s.capabilities.is_empty() {
        println!("      offers: {}", s.capabilities.join(" "));
    }
    if !s.auth_mechanisms.is_empty() {
        println!("      sign-in: {}", s.auth_mechanisms.join(" "));
    }
}

fn print_report(r: &ProbeReport) {
    println!("{} (probed {})", r.host, r.probed_at.format("%Y-%m-%d %H:%M UTC"));
    for s in &r.services {
        print_service(s);
    }
    if let Some(l) = &r.login {
        println!();
        match (&l.error, l.ok) {
            (Some(e), false) => println!("login to {}: FAILED: {e}", l.address),
            _ => {
                println!(
                    "logged in to {}: {} folder(s), {} message(s), {}",
                    l.address,
                    l.folders.len(),
                    l.messages,
                    human_bytes(l.bytes)
                );
                for f in &l.folders {
                    println!("  {:<30} {:>8} {:>10}", f.name, f.messages, human_bytes(f.bytes));
                }
                if let Some(q) = &l.quota {
                    println!(
                        "  quota: {} of {}",
                        human_bytes(q.used_bytes),
                        human_bytes(q.limit_bytes)
                    );
                }
                if let Some(rate) = &l.rate {
                    println!(
                        "  measured: {} message(s), {} in {:.2} s",
                        rate.messages,
                        human_bytes(rate.bytes),
                        rate.seconds
                    );
                }
                if !l.capabilities.is_empty() {
                    println!("  offers after login: {}", l.capabilities.join(" "));
                }
            }
        }
    }
    let a = &r.advice;
    println!();
    match (a.protocol, &a.address) {
        (Some(p), Some(addr)) => println!("Use {}: {addr} {}", name(p), a.options.join(" ")),
        _ => println!("Nothing usable answered."),
    }
    for n in &a.notes {
        println!("- {n}");
    }
    for w in &a.warnings {
        println!("! {w}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_names_its_domain_and_its_user() {
        assert_eq!(split_target("mail.example.org"), ("mail.example.org".into(), None));
        assert_eq!(
            split_target("ann@example.org"),
            ("example.org".into(), Some("ann@example.org".into()))
        );
    }
}
