//! Passwords and OAuth2 tokens: read from an environment variable, a file, a command
//! (like mbsync's `PassCmd`) or a prompt on the terminal — never from argv — and
//! never printed: [`Secret`]'s `Debug` and `Display` show `***`.

use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A password or token. Its text is reachable only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// The value of an environment variable.
    Env(String),
    /// The first line of a file.
    File(PathBuf),
    /// The first line a shell command prints.
    Command(String),
    /// Asked for on the terminal (no echo).
    Prompt(String),
}

/// Why a secret could not be read. Never contains the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set (or not UTF-8)")]
    Env(String),
    #[error("reading password file {path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("running password command `{command}`: {detail}")]
    Command { command: String, detail: String },
    #[error("{0} is empty")]
    Empty(String),
    #[error("no password source given and stdin is not a terminal: use --password-env, --password-file or --password-command")]
    NoTerminal,
    #[error("reading the password from the terminal: {0}")]
    Prompt(std::io::Error),
}

impl SecretSource {
    /// Reads the secret. Trailing CR/LF is removed; only the first line counts.
    pub fn read(&self) -> Result<Secret, SecretError> {
        let (text, what) = match self {
            SecretSource::Env(var) => (
                std::env::var(var).map_err(|_| SecretError::Env(var.clone()))?,
                format!("environment variable {var}"),
            ),
            SecretSource::File(path) => (
                std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?,
                format!("password file {}", path.display()),
            ),
            SecretSource::Command(cmd) => (run_command(cmd)?, format!("output of `{cmd}`")),
            SecretSource::Prompt(prompt) => {
                if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    return Err(SecretError::NoTerminal);
                }
                (
                    rpassword::prompt_password(prompt).map_err(SecretError::Prompt)?,
                    "the password typed".to_string(),
                )
            }
        };
        let first = text.lines().next().unwrap_or("").trim_end_matches(['\r', '\n']);
        if first.is_empty() {
            return Err(SecretError::Empty(what));
        }
        Ok(Secret(first.to_string()))
    }
}

fn run_command(cmd: &str) -> Result<String, SecretError> {
    let err = |detail: String| SecretError::Command {
        command: cmd.to_string(),
        detail,
    };
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        return Err(err(format!("exited with {}", out.status)));
    }
    String::from_utf8(out.stdout).map_err(|_| err("printed non-UTF-8 output".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_secret() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
    }

    #[test]
    fn sources() {
        std::env::set_var("MAILVAULT_TEST_SECRET_ENV", "from-env\n");
        let env = SecretSource::Env("MAILVAULT_TEST_SECRET_ENV".into()).read().unwrap();
        assert_eq!(env.expose(), "from-env");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "from-file\r\nsecond line\n").unwrap();
        assert_eq!(SecretSource::File(f).read().unwrap().expose(), "from-file");
        let c = SecretSource::Command("printf 'from-cmd\\n'".into()).read().unwrap();
        assert_eq!(c.expose(), "from-cmd");
        assert!(matches!(
            SecretSource::Command("exit 3".into()).read(),
            Err(SecretError::Command { .. })
        ));
        assert!(matches!(
            SecretSource::Env("MAILVAULT_TEST_NO_SUCH_VAR".into()).read(),
            Err(SecretError::Env(_))
        ));
        assert!(matches!(
            SecretSource::Command("true".into()).read(),
            Err(SecretError::Empty(_))
        ));
    }
}
