//! The secret of an encrypted archive on the command line: `--passphrase-env VAR`,
//! `--passphrase-file FILE` or `--key-file FILE` (never the passphrase itself in
//! argv), else asked for on the terminal. It is unwrapped once per command
//! ([`sealing::unlock`]) and the keys reused by every open of that archive.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use clap::Args;

use mailvault::archive::layout;
use mailvault::archive::sealing::{self, ArchiveSecret, Unlocked};
use mailvault::crypt::ArchiveKeys;

/// Where the secret of an encrypted archive comes from (any command).
#[derive(Args, Debug, Clone, Default)]
pub struct SecretArgs {
    /// Encrypted archives: read the passphrase from environment variable VAR
    #[arg(long, global = true, value_name = "VAR", conflicts_with_all = ["passphrase_file", "key_file"])]
    pub passphrase_env: Option<String>,
    /// Encrypted archives: read the passphrase from FILE (its first line)
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "key_file")]
    pub passphrase_file: Option<PathBuf>,
    /// Encrypted archives: unlock with the random bytes of FILE (at least 32)
    /// instead of a passphrase
    #[arg(long, global = true, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

/// The new secret of `rekey`.
#[derive(Args, Debug, Clone, Default)]
pub struct NewSecretArgs {
    /// Read the new passphrase from environment variable VAR
    #[arg(long, value_name = "VAR", conflicts_with_all = ["new_passphrase_file", "new_key_file"])]
    pub new_passphrase_env: Option<String>,
    /// Read the new passphrase from FILE (its first line)
    #[arg(long, value_name = "FILE", conflicts_with = "new_key_file")]
    pub new_passphrase_file: Option<PathBuf>,
    /// Unlock with the bytes of FILE from now on
    #[arg(long, value_name = "FILE")]
    pub new_key_file: Option<PathBuf>,
}

/// A passphrase from a file: its first line, without the line break.
fn passphrase_from_file(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading the passphrase file {}", path.display()))?;
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    Ok(line.strip_suffix(b"\r").unwrap_or(line).to_vec())
}

fn given(env: Option<&str>, file: Option<&Path>, key_file: Option<&Path>) -> Result<Option<ArchiveSecret>> {
    let secret = if let Some(var) = env {
        let v = std::env::var_os(var).with_context(|| format!("--passphrase-env {var}: the variable is not set"))?;
        ArchiveSecret::Passphrase(std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec())
    } else if let Some(path) = file {
        ArchiveSecret::Passphrase(passphrase_from_file(path)?)
    } else if let Some(path) = key_file {
        let bytes = std::fs::read(path).with_context(|| format!("reading the key file {}", path.display()))?;
        ArchiveSecret::KeyFile(bytes)
    } else {
        return Ok(None);
    };
    if matches!(&secret, ArchiveSecret::Passphrase(p) if p.is_empty()) {
        bail!("the passphrase is empty");
    }
    Ok(Some(secret))
}

fn is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

/// A passphrase typed at the terminal; twice (and they must match) for a new one.
fn prompt(what: &str, twice: bool) -> Result<ArchiveSecret> {
    if !is_terminal() {
        bail!(
            "{what} is needed and there is no terminal to ask on: give --passphrase-env VAR, \
             --passphrase-file FILE or --key-file FILE"
        );
    }
    let first = rpassword::prompt_password(format!("{what}: ")).context("reading the passphrase")?;
    if twice {
        let again = rpassword::prompt_password("The same again: ").context("reading the passphrase")?;
        if again != first {
            bail!("the two passphrases differ; nothing was changed");
        }
    }
    if first.is_empty() {
        bail!("the passphrase is empty");
    }
    Ok(ArchiveSecret::Passphrase(first.into_bytes()))
}

impl SecretArgs {
    /// The secret given on the command line, if any (the service asks no one).
    pub fn given(&self) -> Result<Option<ArchiveSecret>> {
        given(
            self.passphrase_env.as_deref(),
            self.passphrase_file.as_deref(),
            self.key_file.as_deref(),
        )
    }

    /// The secret of a new encrypted archive at `dir`.
    pub fn for_new(&self, dir: &Path) -> Result<ArchiveSecret> {
        match self.given()? {
            Some(s) => Ok(s),
            None => prompt(&format!("New passphrase for the archive {}", dir.display()), true),
        }
    }

    /// The current secret of the encrypted archive at `dir` (as given, or asked).
    pub fn current(&self, dir: &Path) -> Result<ArchiveSecret> {
        match self.given()? {
            Some(s) => Ok(s),
            None => prompt(&format!("Passphrase for the archive {}", dir.display()), false),
        }
    }
}

impl NewSecretArgs {
    pub fn new_secret(&self, dir: &Path) -> Result<ArchiveSecret> {
        match given(
            self.new_passphrase_env.as_deref(),
            self.new_passphrase_file.as_deref(),
            self.new_key_file.as_deref(),
        )? {
            Some(s) => Ok(s),
            None => prompt(&format!("New passphrase for the archive {}", dir.display()), true),
        }
    }
}

/// `rekey`'s arguments: the new secret (the old one comes as for any command).
#[derive(Args, Debug)]
pub struct RekeyArgs {
    #[command(flatten)]
    new: NewSecretArgs,
}

/// `rekey`: the master key of the archive at `dir` rewrapped; the old secret is
/// proved before the new one is asked for. A new key file that does not exist yet
/// is made.
pub fn rekey(args: &SecretArgs, dir: &Path, r: &RekeyArgs) -> Result<std::process::ExitCode> {
    let marker = layout::read_marker(dir).with_context(|| format!("opening archive {}", dir.display()))?;
    if !marker.is_some_and(|m| m.encrypted) {
        bail!("archive {} is not encrypted: there is no key to rewrap", dir.display());
    }
    let old = args.current(dir)?;
    sealing::unlock(dir, &old).with_context(|| format!("opening archive {}", dir.display()))?;
    if let Some(path) = r.new.new_key_file.as_deref().filter(|p| !p.exists()) {
        make_key_file(path)?;
    }
    let new = r.new.new_secret(dir)?;
    sealing::rekey(dir, &old, &new, mailvault::crypt::KdfCost::default())
        .with_context(|| format!("rewrapping the key of archive {}", dir.display()))?;
    println!(
        "the key of archive {} is now wrapped with the new secret; the old one no longer opens it",
        dir.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// A new key file: 32 random bytes, private, never overwriting one.
pub fn make_key_file(path: &Path) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = mailvault::crypt::Key::random()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating the key file {}", path.display()))?;
    f.write_all(key.bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing the key file {}", path.display()))?;
    eprintln!(
        "mailvault: made the key file {}: keep a copy apart from the archive; without it the archive cannot be read",
        path.display()
    );
    Ok(())
}

/// Keys unlocked during this command, by archive directory.
static UNLOCKED: Mutex<Vec<(PathBuf, Unlocked)>> = Mutex::new(Vec::new());

/// What opens the archive at `dir`: nothing for an archive that is not encrypted
/// (or not there yet) unless a secret was given (which the archive then refuses);
/// for an encrypted one its keys, unwrapped once per command.
pub fn for_archive(args: &SecretArgs, dir: &Path) -> Result<Option<ArchiveSecret>> {
    let marker = layout::read_marker(dir).with_context(|| format!("opening archive {}", dir.display()))?;
    match marker {
        Some(m) if m.encrypted => {}
        // A plain archive refuses a secret given to it, with its own error.
        Some(_) => return args.given(),
        // An archive is encrypted only by asking for it.
        None if args.given()?.is_some() => bail!(
            "no archive at {} yet: create an encrypted one with `mailvault init --encrypt` first",
            dir.display()
        ),
        None => return Ok(None),
    }
    let mut unlocked = UNLOCKED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, u)) = unlocked.iter().find(|(d, _)| d == dir) {
        return Ok(Some(ArchiveSecret::Unlocked(u.clone())));
    }
    let secret = args.current(dir)?;
    let u = sealing::unlock(dir, &secret).with_context(|| format!("opening archive {}", dir.display()))?;
    unlocked.push((dir.to_path_buf(), u.clone()));
    Ok(Some(ArchiveSecret::Unlocked(u)))
}

/// The keys of the archive at `dir` when it is encrypted.
pub fn keys(args: &SecretArgs, dir: &Path) -> Result<Option<Arc<ArchiveKeys>>> {
    Ok(match for_archive(args, dir)? {
        Some(ArchiveSecret::Unlocked(u)) => Some(u.keys().clone()),
        _ => None,
    })
}

/// The secret store (OAuth2 sign-ins) of the archive at `dir`, sealed when the
/// archive is encrypted.
pub fn token_store(args: &SecretArgs, dir: &Path) -> Result<mailvault::oauth::TokenStore> {
    let key = keys(args, dir)?.map(|k| k.secrets_key());
    Ok(mailvault::oauth::TokenStore::for_archive(dir, key))
}

/// The index key of the archive at `dir` when it is encrypted.
pub fn index_key(args: &SecretArgs, dir: &Path) -> Result<Option<Arc<mailvault::crypt::Key>>> {
    Ok(keys(args, dir)?.map(|k| k.index_key()))
}
