//! `mailvault user …` and `mailvault token …`: who may read the archive through the
//! web interface and its API (`mailvault::readers`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use mailvault::readers::store::ReaderStore;
use mailvault::readers::Role;

use super::{Cli, Output};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// Reads every account; manages holds, tags, users and tokens
    Admin,
    /// Reads every account and the access log; changes nothing
    Auditor,
    /// Reads only the accounts given with --accounts
    User,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Auditor => Role::Auditor,
            RoleArg::User => Role::User,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user of the web interface
    Add(UserAddArgs),
    /// Every user and token, with role and accounts
    List(ListArgs),
    /// Remove a user (their sessions end at their next request)
    Remove(NameArg),
    /// Set a user's password
    Passwd(PasswdArgs),
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a bearer token for the JSON API; it is printed once, never again
    Create(TokenCreateArgs),
    /// Every user and token, with role and accounts
    List(ListArgs),
    /// Revoke a token
    Revoke(NameArg),
}

#[derive(Args, Debug)]
pub struct Grant {
    /// What the reader may do
    #[arg(long, value_enum)]
    role: RoleArg,
    /// For role user: the archive accounts they may read (comma-separated)
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    accounts: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PasswordSource {
    /// Read the password from this environment variable
    #[arg(long, value_name = "VAR", conflicts_with = "password_file")]
    password_env: Option<String>,
    /// Read the password from the first line of FILE
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct UserAddArgs {
    /// The user's name (letters, digits, '.', '_', '-', '@')
    name: String,
    #[command(flatten)]
    grant: Grant,
    #[command(flatten)]
    password: PasswordSource,
}

#[derive(Args, Debug)]
pub struct PasswdArgs {
    /// The user whose password to set
    name: String,
    #[command(flatten)]
    password: PasswordSource,
}

#[derive(Args, Debug)]
pub struct TokenCreateArgs {
    /// The token's name (what the access log records: token:NAME)
    name: String,
    #[command(flatten)]
    grant: Grant,
}

#[derive(Args, Debug)]
pub struct NameArg {
    /// The user's or token's name
    name: String,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    output: Output,
}

/// The password from the variable or file given, else typed twice at the terminal.
fn new_password(src: &PasswordSource, name: &str) -> Result<String> {
    if let Some(var) = &src.password_env {
        return std::env::var(var).with_context(|| format!("--password-env {var}: the variable is not set"));
    }
    if let Some(path) = &src.password_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading the password file {}", path.display()))?;
        let line = text.lines().next().unwrap_or_default();
        return Ok(line.to_string());
    }
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        bail!("a password for {name} is needed and there is no terminal to ask on: give --password-env VAR or --password-file FILE");
    }
    let first = rpassword::prompt_password(format!("Password for {name}: ")).context("reading the password")?;
    let again = rpassword::prompt_password("The same again: ").context("reading the password")?;
    if first != again {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}

fn store(cli: &Cli) -> Result<ReaderStore> {
    let dir = super::archive_dir(cli)?;
    if mailvault::archive::layout::check(&dir)?.is_none() {
        bail!("no archive at {} (`mailvault init` makes one)", dir.display());
    }
    let key = super::secret::keys(&cli.secret, &dir)?.map(|k| k.secrets_key());
    Ok(ReaderStore::for_archive(&dir, key))
}

fn list(cli: &Cli, a: &ListArgs) -> Result<ExitCode> {
    let listed = store(cli)?.load()?.listed();
    if a.output.json() {
        for l in &listed {
            println!("{}", serde_json::to_string(l)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if listed.is_empty() {
        eprintln!("no users or tokens (`mailvault user add NAME --role admin` makes the first)");
    }
    for l in &listed {
        let accounts = l.accounts.as_ref().map_or("every account".to_string(), |a| a.join(","));
        println!("{:<6} {:<24} {:<8} {accounts}", l.kind, l.name, l.role.as_str());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn user_cmd(cli: &Cli, cmd: &UserCommand) -> Result<ExitCode> {
    match cmd {
        UserCommand::Add(a) => {
            let s = store(cli)?;
            mailvault::readers::check_name(&a.name).map_err(|e| super::UsageError(e.to_string()))?;
            mailvault::readers::grant(&a.name, a.grant.role.into(), &a.grant.accounts)
                .map_err(|e| super::UsageError(e.to_string()))?;
            let pw = new_password(&a.password, &a.name)?;
            s.add_user(&a.name, a.grant.role.into(), &a.grant.accounts, &pw)?;
            println!("user {} added with role {}", a.name, Role::from(a.grant.role).as_str());
        }
        UserCommand::List(a) => return list(cli, a),
        UserCommand::Remove(a) => {
            store(cli)?.remove_user(&a.name)?;
            println!("user {} removed", a.name);
        }
        UserCommand::Passwd(a) => {
            let s = store(cli)?;
            if s.load()?.user(&a.name).is_none() {
                bail!("no user {:?}", a.name);
            }
            let pw = new_password(&a.password, &a.name)?;
            s.set_password(&a.name, &pw)?;
            println!("password of {} changed", a.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn token_cmd(cli: &Cli, cmd: &TokenCommand) -> Result<ExitCode> {
    match cmd {
        TokenCommand::Create(a) => {
            let token = store(cli)?.create_token(&a.name, a.grant.role.into(), &a.grant.accounts)?;
            // The one time it is shown: on standard output alone, for a script to keep.
            println!("{token}");
            eprintln!(
                "token {} made with role {}; it is not shown again (`Authorization: Bearer …`)",
                a.name,
                Role::from(a.grant.role).as_str()
            );
        }
        TokenCommand::List(a) => return list(cli, a),
        TokenCommand::Revoke(a) => {
            store(cli)?.revoke_token(&a.name)?;
            println!("token {} revoked", a.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}
