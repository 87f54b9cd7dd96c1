//! Command-line interface: argument parsing, logging set-up, archive location, exit
//! codes. Errors from the library are reported here with `anyhow` context.
//!
//! Exit codes: 0 success; 1 error; 2 usage error; 3 `verify` found damage.

mod choices;
mod compare;
mod compliance;
mod import;
mod inspect;
mod jobs;
mod login;
mod probe;
mod pull;
mod readers;
mod replay;
mod search;
mod secret;
mod server_args;
mod table;
mod tags;
mod web;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use tracing_subscriber::prelude::*;

use mailvault::archive::layout::{self, BlobsConfig, MetaConfig};
use mailvault::archive::{Archive, ArchiveConfig};

#[derive(Parser, Debug)]
#[command(
    name = "mailvault",
    version,
    about = "Archive mail once, byte-exact: import, search, export, verify"
)]
pub struct Cli {
    /// Archive directory [default: $MAILVAULT_ARCHIVE, else the user data directory]
    #[arg(long, global = true, env = "MAILVAULT_ARCHIVE", value_name = "DIR")]
    archive: Option<PathBuf>,
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on stderr; no progress bars
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Log lines as text for people or JSON objects for log collectors
    #[arg(long, global = true, value_enum, default_value = "text", value_name = "FORMAT")]
    log_format: LogFormat,
    /// Colour in logs and tables: auto means on a terminal unless NO_COLOR is set
    #[arg(long, global = true, value_enum, default_value = "auto", value_name = "WHEN")]
    color: ColorWhen,
    #[command(flatten)]
    secret: secret::SecretArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create an archive (other commands create one on first use too), with its
    /// packs on the local disk or in S3-compatible object storage
    #[command(
        after_help = "Examples:\n  mailvault init\n  mailvault --archive /srv/mail-archive init\n  mailvault init --blobs s3://mail-archive/acme --s3-endpoint https://s3.example.com --s3-region eu-1\n\nS3 credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and\nAWS_SESSION_TOKEN), else from ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE,\nAWS_PROFILE); never from the command line."
    )]
    Init(InitArgs),
    /// Rewrite packs of new mail at a high compression level with similar mail
    /// together; drop what nothing references; remove packs a crash left behind
    #[command(after_help = "Examples:\n  mailvault compact\n  mailvault compact --json")]
    Compact(CompactArgs),
    /// Import mbox files, maildirs, and .eml files or folders of them
    #[command(
        after_help = "Examples:\n  mailvault import ~/Mail/ --account me\n  mailvault import Takeout/Mail/Inbox.mbox --account gmail\n  mailvault import --json export.mbox"
    )]
    Import(import::ImportArgs),
    /// Write archived messages out as .eml files, a maildir or mbox files
    #[command(
        after_help = "Examples:\n  mailvault export --format mbox --out ./out --account work\n  mailvault export --format eml --out ./found --query 'from:alice date:2021'"
    )]
    Export(import::ExportArgs),
    /// Print one message for people, or its bytes as archived with --raw (by id or
    /// unambiguous id prefix)
    #[command(
        after_help = "Examples:\n  mailvault show 3f2a9c\n  mailvault show --raw 3f2a9c > message.eml\n  mailvault show --query 'msgid:abc@example.org'"
    )]
    Show(inspect::ShowArgs),
    /// Add and remove tags on the messages a query matches (kept in the archive's
    /// metadata, never in the messages); `tag:NAME` finds them
    #[command(
        after_help = "Examples:\n  mailvault tag +case-42 -todo -- 'from:bob subject:contract'\n  mailvault tag +reviewed -- 'tag:case-42 date:2024'\n  mailvault tag --list"
    )]
    Tag(tags::TagArgs),
    /// Counts and sizes of the archive
    #[command(after_help = "Examples:\n  mailvault stats\n  mailvault stats --json | jq .messages")]
    Stats(inspect::StatsArgs),
    /// Rebuild and rehash every message and part; name each damaged one
    #[command(after_help = "Examples:\n  mailvault verify\n  mailvault verify --json > verify-report.json")]
    Verify(inspect::VerifyArgs),
    /// Search the archive (`mailvault search --help` shows the query language)
    Search(search::SearchArgs),
    /// Rebuild the search index from the archive
    #[command(after_help = "Examples:\n  mailvault reindex")]
    Reindex(search::ReindexArgs),
    /// Pull an IMAP account (every folder) or a POP3 mailbox into the archive (incremental)
    #[command(
        after_help = "Examples:\n  mailvault pull imaps://ann@mail.example.com --password-command 'pass show mail'\n  mailvault pull imaps://ann@mail.example.com --list-folders\n  mailvault pull pop3s://ann@pop.example.com --delete-after-archive --password-env POP_PW"
    )]
    Pull(pull::PullArgs),
    /// Append archived messages to an IMAP account, with flags, dates and folders;
    /// never twice (a ledger in the archive remembers what each target has)
    #[command(
        after_help = "Examples:\n  mailvault replay --to imaps://ann@new.example.com --account old --dry-run\n  mailvault replay --to imaps://ann@new.example.com --account old --map 'Sent Items=Sent'"
    )]
    Replay(replay::ReplayArgs),
    /// Pull an account, then replay into another what it does not have yet; rerun
    /// it on cut-over day to carry over only the new mail
    #[command(
        after_help = "Examples:\n  mailvault migrate --from imaps://ann@old.example.com --to imaps://ann@new.example.com --dry-run\n  mailvault migrate --from imaps://ann@old.example.com --to imaps://ann@new.example.com --from-password-env OLD_PW --to-password-env NEW_PW"
    )]
    Migrate(replay::MigrateArgs),
    /// List every difference between two IMAP accounts (missing, extra, wrong
    /// folder, flags, INTERNALDATE), A's folders mapped as replay maps them; exit 1
    /// when there is any
    #[command(
        after_help = "Examples:\n  mailvault compare imaps://ann@old.example.com imaps://ann@new.example.com\n  mailvault compare imaps://ann@old.example.com imaps://ann@new.example.com --json"
    )]
    Compare(compare::CompareArgs),
    /// Run a job file: every account on the job's schedule, or once (--once)
    #[command(
        after_help = "Examples:\n  mailvault run jobs/work.toml --dry-run\n  mailvault run jobs/work.toml --once"
    )]
    Run(jobs::RunArgs),
    /// Run every job of a directory as a service: schedules, IDLE on watched
    /// folders, shared per-server connection limits; SIGTERM stops gracefully
    #[command(
        after_help = "Examples:\n  mailvault serve --jobs /etc/mailvault/jobs\n  mailvault serve --jobs ./jobs --metrics 127.0.0.1:9898"
    )]
    Serve(jobs::ServeArgs),
    /// Per job and account: last run, result, messages, errors, next run
    #[command(after_help = "Examples:\n  mailvault status\n  mailvault status --json")]
    Status(jobs::StatusArgs),
    /// Retention policies: how long what a query matches is kept (nothing is ever
    /// removed but by `purge`; with no policy, everything is kept forever)
    #[command(
        subcommand,
        after_help = "Examples:\n  mailvault retention set spam --query 'folder:Spam' --keep 90d\n  mailvault retention set all --query '*' --keep 10y --from date\n  mailvault retention list\n  mailvault retention remove spam"
    )]
    Retention(compliance::RetentionCommand),
    /// Legal holds: what a query matches survives every purge until released
    #[command(
        subcommand,
        after_help = "Examples:\n  mailvault hold add case-42 --query 'from:x@example.org' --reason 'litigation 42'\n  mailvault hold list\n  mailvault hold release case-42"
    )]
    Hold(compliance::HoldCommand),
    /// Remove what retention let expire (never anything held); `compact` then
    /// reclaims the space
    #[command(after_help = "Examples:\n  mailvault purge --dry-run\n  mailvault purge\n  mailvault purge --json")]
    Purge(compliance::PurgeArgs),
    /// Export the latest signed checkpoint of the change log, to keep elsewhere and
    /// check later with `verify --chain --against FILE`
    #[command(after_help = "Examples:\n  mailvault attest --out /safe/place/archive-2026-12.json")]
    Attest(compliance::AttestArgs),
    /// Who read what and when: the access log of searches, shows, exports and
    /// replays, with its hash chain checked
    #[command(
        after_help = "Examples:\n  mailvault audit\n  mailvault audit --since 7d --user alice\n  mailvault audit --json"
    )]
    Audit(compliance::AuditArgs),
    /// Wrap an encrypted archive's key with a new passphrase or key file; the data
    /// is not rewritten, and the old secret no longer opens the archive
    #[command(
        after_help = "Examples:\n  mailvault rekey\n  mailvault rekey --passphrase-file old.txt --new-passphrase-file new.txt\n  mailvault rekey --passphrase-env OLD_PW --new-key-file /safe/archive.keyfile"
    )]
    Rekey(secret::RekeyArgs),
    /// Sign an account in with OAuth2 (Microsoft 365, Outlook.com, Google, any
    /// OpenID provider) and keep the sign-in in the archive's secret store
    #[command(
        after_help = "Examples:\n  mailvault login --account alice --provider microsoft --client-id 00000000-0000-0000-0000-000000000000 --tenant contoso.com\n  mailvault login --account bob --provider google --client-id ID.apps.googleusercontent.com --client-secret-file google-secret.txt --browser\n  mailvault login --account sso --provider generic --issuer https://id.example.org --client-id mailvault --device\n  mailvault login --account tenant --provider microsoft --client-id ID --tenant contoso.com --client-credentials --client-secret-env APP_SECRET\n\nThen: mailvault pull --provider microsoft alice@contoso.com --oauth2-account alice"
    )]
    Login(login::LoginArgs),
    /// What a mail server offers (IMAP and POP3, TLS and certificate, capabilities,
    /// sign-in methods; with --login, folders, sizes, quota and speed) and which
    /// protocol and settings suit an archive or a migration
    #[command(
        after_help = "Examples:\n  mailvault probe mail.example.org\n  mailvault probe ann@example.org --password-env MAIL_PW\n  mailvault probe imap.example.org --login ann --tls-ca company-ca.pem --json\n  mailvault probe mail.example.org --imaps-port 10993 --imap-port 10143 --pop3s-port 10995 --pop3-port 10110"
    )]
    Probe(probe::ProbeArgs),
    /// Users of the web interface: add (with a role, and accounts for role user),
    /// list, remove, passwd
    #[command(
        subcommand,
        after_help = "Examples:\n  mailvault user add alice --role admin\n  mailvault user add bob --role user --accounts bob,sales --password-file bob.txt\n  mailvault user add carol --role auditor --password-env CAROL_PW\n  mailvault user list --json\n  mailvault user passwd bob\n  mailvault user remove bob"
    )]
    User(readers::UserCommand),
    /// Bearer tokens for the JSON API: create (printed once), list, revoke
    #[command(
        subcommand,
        after_help = "Examples:\n  mailvault token create ediscovery --role auditor > token.txt\n  mailvault token create crm --role user --accounts sales\n  mailvault token revoke crm"
    )]
    Token(readers::TokenCommand),
    /// Serve the archive over HTTP: the JSON API under /api/v1 (bearer tokens from
    /// `mailvault token create`), every read in the access log
    #[command(
        after_help = "Examples:\n  mailvault web\n  mailvault web --listen 127.0.0.1:9000\n  curl -H \"Authorization: Bearer $(cat token.txt)\" 'http://127.0.0.1:8080/api/v1/search?q=from:alice'"
    )]
    Web(web::WebArgs),
    /// Print a shell completion script (see the README for where to put it)
    #[command(
        after_help = "Examples:\n  mailvault completions bash > ~/.local/share/bash-completion/completions/mailvault\n  mailvault completions zsh > \"${fpath[1]}/_mailvault\""
    )]
    Completions(CompletionsArgs),
    /// Print the manual page, or write one page per command into a directory
    #[command(after_help = "Examples:\n  mailvault man | man -l -\n  mailvault man --dir ~/.local/share/man/man1")]
    Man(ManArgs),
}

#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Write mailvault.1 and a mailvault-COMMAND.1 per command into DIR instead of
    /// printing mailvault.1
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// `--color`: whether logs and tables use ANSI colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ColorWhen {
    /// On a terminal, unless NO_COLOR is set to a non-empty value
    Auto,
    /// Always, even into a pipe
    Always,
    /// Never
    Never,
}

impl ColorWhen {
    /// Whether output going to a terminal (`is_terminal`) gets colour.
    fn enabled(self, is_terminal: bool) -> bool {
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// `--format table|json` and its alias `--json`: every command that reports
/// something takes them (search adds `ids`). JSON output follows the versioned
/// schemas in `schemas/output/`, and errors are JSON too when JSON was asked for.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct Output {
    /// Output for people (table) or programs (json; see schemas/output/)
    #[arg(long, value_enum, default_value_t = OutputFormat::Table, value_name = "FORMAT")]
    format: OutputFormat,
    /// Same as --format json
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    /// Lines and aligned columns for people
    Table,
    /// JSON for programs
    Json,
}

impl Output {
    pub fn json(&self) -> bool {
        self.json || self.format == OutputFormat::Json
    }
}

/// Output settings shared by commands.
pub struct Ui {
    pub quiet: bool,
    /// Tables on standard output may use ANSI colour.
    pub color: bool,
}

impl Ui {
    /// `text` in bold when colour is on (a table's header line).
    pub fn bold(&self, text: &str) -> String {
        if self.color {
            format!("\x1b[1m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn progress(&self, len: Option<u64>, what: &str) -> indicatif::ProgressBar {
        if self.quiet {
            return indicatif::ProgressBar::hidden();
        }
        let pb = match len {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        let template = match len {
            Some(_) => "{spinner} {msg} {pos}/{len} [{elapsed_precise}] {rate} eta {eta}",
            None => "{spinner} {msg} {pos} [{elapsed_precise}] {rate}",
        };
        // `{per_sec}` prints four decimals (8009.1461/s); a whole number reads better.
        let style = indicatif::ProgressStyle::with_template(template)
            .expect("valid template")
            .with_key("rate", |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", s.per_sec());
            });
        pb.set_style(style);
        pb.set_message(what.to_string());
        pb
    }
}

fn archive_dir(cli: &Cli) -> Result<PathBuf> {
    if let Some(d) = &cli.archive {
        return Ok(d.clone());
    }
    let dirs = directories::ProjectDirs::from("", "", "mailvault")
        .context("no home directory to put the default archive in; give --archive DIR")?;
    Ok(dirs.data_dir().join("archive"))
}

/// The archive's directory, which must exist: only `init`, `import`, `pull`,
/// `migrate` and the job commands create an archive, so a mistyped `--archive`
/// is an error, never an empty archive that checks clean.
fn existing_archive_dir(cli: &Cli) -> Result<PathBuf> {
    let dir = archive_dir(cli)?;
    if !dir.exists() {
        bail!(
            "no archive at {} (create one with `mailvault init`, or give --archive DIR)",
            dir.display()
        );
    }
    Ok(dir)
}

fn open_archive(cli: &Cli, create: bool) -> Result<Archive> {
    let dir = if create {
        archive_dir(cli)?
    } else {
        existing_archive_dir(cli)?
    };
    let secret = secret::for_archive(&cli.secret, &dir)?;
    let (blobs, meta) = if create {
        (
            BlobsConfig::from_env().map_err(|e| UsageError(e.to_string()))?,
            MetaConfig::from_env().map_err(|e| UsageError(e.to_string()))?,
        )
    } else {
        Default::default()
    };
    Archive::open_with(
        &dir,
        create,
        ArchiveConfig {
            blobs,
            meta,
            secret,
            ..ArchiveConfig::default()
        },
    )
    .with_context(|| format!("opening archive {}", dir.display()))
}

/// Opens an existing archive without taking its lock (searching while importing).
fn open_archive_read_only(cli: &Cli) -> Result<Archive> {
    let dir = existing_archive_dir(cli)?;
    let secret = secret::for_archive(&cli.secret, &dir)?;
    Archive::open_read_only_secret(&dir, secret).with_context(|| format!("opening archive {}", dir.display()))
}

/// `mailvault search … | head -1`: when the reader of standard output goes away,
/// stop at once and quietly with status 0, as ripgrep does, instead of failing on
/// the next write. Only for standard output: a SIGPIPE from a network connection
/// the other end closed (an S3 server's, written with `writev`, which cannot ask
/// for MSG_NOSIGNAL) returns, and that write fails with EPIPE like any other, to
/// be retried or reported. Not for the service (`run`, `serve`).
fn exit_quietly_on_closed_pipe() {
    extern "C" fn on_sigpipe(_: libc::c_int) {
        let mut out = libc::pollfd {
            fd: libc::STDOUT_FILENO,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: poll and _exit are async-signal-safe; nothing else runs here. A
        // pipe whose reader is gone polls as POLLERR.
        unsafe {
            if libc::poll(&mut out, 1, 0) == 1 && out.revents & libc::POLLERR != 0 {
                libc::_exit(0)
            }
        }
    }
    // SAFETY: installs a handler that only calls an async-signal-safe function.
    unsafe {
        libc::signal(libc::SIGPIPE, on_sigpipe as *const () as libc::sighandler_t);
    }
}

/// Libraries whose warnings describe the documents they read, not our work: a
/// PDF's unparsed font encoding is routine (and a failed extraction is reported
/// by `stats` and `show --extraction`).
const QUIET_LIBRARIES: &str = "lopdf=error";

fn init_logging(cli: &Cli) {
    // A service's progress is its log: info unless asked otherwise.
    let service = matches!(cli.command, Command::Run(_) | Command::Serve(_));
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) if service => "info",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("mailvault={level},warn,{QUIET_LIBRARIES}")));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::filter::filter_fn(may_be_logged));
    match cli.log_format {
        LogFormat::Json => registry
            .with(fmt.json().with_current_span(true).with_span_list(true))
            .init(),
        LogFormat::Text => registry
            .with(fmt.with_ansi(cli.color.enabled(std::io::IsTerminal::is_terminal(&std::io::stderr()))))
            .init(),
    }
}

/// Whether an event may reach the log at all, whatever `RUST_LOG` asks for. The
/// protocol libraries trace every command sent (LOGIN and AUTHENTICATE with their
/// credentials) and every buffer received (mail): those never go out. A directive in
/// the filter is not enough, since a more specific `RUST_LOG` directive
/// (`async_imap::imap_stream=trace`) would win over it.
fn may_be_logged(meta: &tracing::Metadata<'_>) -> bool {
    const SILENT_BELOW_WARN: [&str; 2] = ["async_imap", "imap_proto"];
    let target = meta.target();
    let silenced = SILENT_BELOW_WARN.iter().any(|t| {
        target
            .strip_prefix(t)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    });
    !silenced || *meta.level() <= tracing::Level::WARN
}

pub fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command()
        .try_get_matches()
        .unwrap_or_else(|e| exit_on_usage_error(e));
    let json_asked = matches.subcommand().is_some_and(|(_, m)| asks_for_json(m));
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if !matches!(cli.command, Command::Run(_) | Command::Serve(_)) {
        exit_quietly_on_closed_pipe();
    }
    init_logging(&cli);
    let ui = Ui {
        quiet: cli.quiet,
        color: cli.color.enabled(std::io::IsTerminal::is_terminal(&std::io::stdout())),
    };
    let result = match &cli.command {
        Command::Init(a) => init(&cli, a),
        Command::Compact(a) => compact(&cli, &ui, a),
        Command::Import(a) => import::import(&cli, &ui, a),
        Command::Export(a) => import::export(&cli, &ui, a),
        Command::Show(a) => inspect::show(&cli, &ui, a),
        Command::Tag(a) => tags::tag(&cli, &ui, a),
        Command::Stats(a) => inspect::stats(&cli, a),
        Command::Verify(a) => inspect::verify(&cli, &ui, a),
        Command::Search(a) => search::search(&cli, &ui, a),
        Command::Reindex(a) => search::reindex(&cli, &ui, a),
        Command::Pull(a) => pull::pull(&cli, &ui, a),
        Command::Replay(a) => replay::replay(&cli, &ui, a),
        Command::Migrate(a) => replay::migrate(&cli, &ui, a),
        Command::Compare(a) => compare::compare(a),
        Command::Run(a) => jobs::run(&cli, a),
        Command::Serve(a) => jobs::serve(&cli, a),
        Command::Status(a) => jobs::status(&cli, a),
        Command::Retention(c) => compliance::retention_cmd(&cli, c),
        Command::Hold(c) => compliance::hold_cmd(&cli, c),
        Command::Purge(a) => compliance::purge(&cli, &ui, a),
        Command::Attest(a) => compliance::attest(&cli, a),
        Command::Audit(a) => compliance::audit(&cli, a),
        Command::Login(a) => login::login(&cli, a),
        Command::User(c) => readers::user_cmd(&cli, c),
        Command::Token(c) => readers::token_cmd(&cli, c),
        Command::Web(a) => web::web(&cli, a),
        Command::Probe(a) => probe::probe(&cli, a),
        Command::Rekey(a) => existing_archive_dir(&cli).and_then(|dir| secret::rekey(&cli.secret, &dir, a)),
        Command::Completions(a) => completions(a),
        Command::Man(a) => man(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = if e.downcast_ref::<UsageError>().is_some() { 2 } else { 1 };
            report_error(&error_chain(&e), code, json_asked)
        }
    }
}

/// A mistake in the command line that clap cannot see (a malformed URL, a
/// directory where a file is wanted): exit status 2, as clap's own.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `1 file`, `2 files`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// clap's usage error, with a word more for `search -press`: clap reads `-press`
/// as the flags -p -r -e -s -s, and its tip names only `-p`.
fn exit_on_usage_error(e: clap::Error) -> ! {
    let searching = std::env::args().skip(1).any(|a| a == "search");
    if searching && e.kind() == clap::error::ErrorKind::UnknownArgument {
        let _ = e.print();
        eprintln!("note: a query word that starts with '-' goes after '--': mailvault search -- -word");
        std::process::exit(2);
    }
    e.exit()
}

/// Whether a command's arguments ask for JSON output (`--json`, `--format json`).
fn asks_for_json(m: &clap::ArgMatches) -> bool {
    let flag = matches!(m.try_get_one::<bool>("json"), Ok(Some(true)));
    let format = m
        .try_get_raw("format")
        .ok()
        .flatten()
        .and_then(|mut v| v.next())
        .is_some_and(|v| v == "json");
    flag || format
}

/// Prints an error for whoever reads the output: one line on stderr, or, when JSON
/// was asked for, an [`ErrorReport`](mailvault::output::ErrorReport) on stdout.
pub fn report_error(text: &str, code: u8, json: bool) -> ExitCode {
    if json {
        let e = mailvault::output::ErrorReport {
            error: text.to_string(),
            exit_code: code,
        };
        println!("{}", serde_json::to_string(&e).expect("an error report serialises"));
    } else {
        eprintln!("mailvault: error: {text}");
    }
    ExitCode::from(code)
}

/// The error and its causes on one line, without repeating a cause whose text the
/// message before it already contains (library errors name their source inline).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut previous = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !previous.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        previous = text;
    }
    out
}

fn completions(a: &CompletionsArgs) -> Result<ExitCode> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "mailvault", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

fn man(a: &ManArgs) -> Result<ExitCode> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    match &a.dir {
        None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?,
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("writing manual pages into {}", dir.display()))?;
            println!("manual pages written to {}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
struct InitArgs {
    /// Where packs are kept: `local` (ARCHIVE/packs, the default) or
    /// s3://BUCKET/PREFIX
    #[arg(long, value_name = "WHERE", env = "MAILVAULT_BLOBS", default_value = "local")]
    blobs: String,
    /// Where the metadata is kept: `embedded` (RocksDB in ARCHIVE/db, the default)
    /// or postgres://USER@HOST:PORT/DATABASE, shared by several workers. The
    /// password never goes in the URL: PGPASSWORD or a password file (PGPASSFILE,
    /// ~/.pgpass)
    #[arg(long, value_name = "WHERE", env = "MAILVAULT_META", default_value = "embedded")]
    meta: String,
    /// The S3 service's URL (path-style requests), e.g. http://127.0.0.1:3900;
    /// omit for AWS
    #[arg(long, value_name = "URL", env = "MAILVAULT_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// The S3 region [default: us-east-1]
    #[arg(long, value_name = "REGION", env = "MAILVAULT_S3_REGION")]
    s3_region: Option<String>,
    /// The Ed25519 key that signs the change log's checkpoints: used when FILE
    /// exists, made there when not [default: ARCHIVE/keys/signing.key]. A key kept
    /// off the archive's disk means that whoever can change the archive's files
    /// still cannot forge its history
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,
    /// Encrypt message content, the search index and the access log at rest, with
    /// a key wrapped by a passphrase (asked for, or --passphrase-env VAR,
    /// --passphrase-file FILE) or by a key file (--key-file FILE; made with 32
    /// random bytes when it does not exist). What stays in clear: see the README
    #[arg(long)]
    encrypt: bool,
}

/// The secret `init` encrypts a new archive with (none without `--encrypt`).
fn init_secret(
    cli: &Cli,
    args: &InitArgs,
    dir: &std::path::Path,
    exists: Option<bool>,
) -> Result<Option<mailvault::archive::sealing::ArchiveSecret>> {
    match (exists, args.encrypt) {
        (Some(false), true) => bail!(
            "archive {} already exists without encryption; `init --encrypt` does not encrypt an existing archive (import it into a new encrypted one)",
            dir.display()
        ),
        (Some(_), _) => secret::for_archive(&cli.secret, dir),
        (None, false) => Ok(None),
        (None, true) => {
            if let Some(path) = cli.secret.key_file.as_deref().filter(|p| !p.exists()) {
                secret::make_key_file(path)?;
            }
            cli.secret.for_new(dir).map(Some)
        }
    }
}

fn init(cli: &Cli, args: &InitArgs) -> Result<ExitCode> {
    let blobs = BlobsConfig::parse(&args.blobs, args.s3_endpoint.clone(), args.s3_region.clone())
        .map_err(|e| UsageError(e.to_string()))?;
    let meta = MetaConfig::parse(&args.meta).map_err(|e| UsageError(e.to_string()))?;
    let dir = archive_dir(cli)?;
    let existing = layout::read_marker(&dir).with_context(|| format!("opening archive {}", dir.display()))?;
    if let Some(existing) = &existing {
        if existing.blobs != blobs {
            bail!(
                "archive {} already exists with its packs elsewhere; `init` does not move them",
                dir.display()
            );
        }
        if existing.meta != meta {
            bail!(
                "archive {} already exists with its metadata elsewhere; `init` does not move it",
                dir.display()
            );
        }
    }
    let secret = init_secret(cli, args, &dir, existing.as_ref().map(|m| m.encrypted))?;
    let config = ArchiveConfig {
        blobs,
        meta,
        signing_key: args.signing_key.clone(),
        secret,
        ..ArchiveConfig::default()
    };
    let a = Archive::open_with(&dir, true, config).with_context(|| format!("opening archive {}", dir.display()))?;
    println!(
        "archive ready at {} (packs: {}; {}{})",
        a.dir().display(),
        a.blob_store().describe(),
        a.meta_describe(),
        if a.is_encrypted() { "; encrypted" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
struct CompactArgs {
    #[command(flatten)]
    output: Output,
}

fn compact(cli: &Cli, ui: &Ui, args: &CompactArgs) -> Result<ExitCode> {
    let archive = open_archive(cli, false)?;
    let pb = ui.progress(None, "compacting");
    let r = archive
        .compact(|done, total| {
            pb.set_length(total);
            pb.set_position(done);
        })
        .with_context(|| format!("compacting archive {}", archive.dir().display()))?;
    pb.finish_and_clear();
    if args.output.json() {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "compacted: {} rewritten into {}; {} ({}) before, {} ({}) after; {} dropped; {} removed ({})",
            plural(r.packs_rewritten, "pack", "packs"),
            plural(r.packs_written, "pack", "packs"),
            plural(r.packs_before, "pack", "packs"),
            human_bytes(r.bytes_before),
            plural(r.packs_after, "pack", "packs"),
            human_bytes(r.bytes_after),
            plural(r.payloads_dropped, "unreferenced payload", "unreferenced payloads"),
            plural(r.orphans_removed, "orphan pack", "orphan packs"),
            human_bytes(r.orphan_bytes_removed),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `ACCOUNT: N messages (B) VERB in S s: R msg/s, B/s` — the last line of a pull or
/// replay report.
pub fn rate_line(who: &str, messages: u64, bytes: u64, verb: &str, seconds: f64) -> String {
    let secs = seconds.max(1e-9);
    format!(
        "{who}: {messages} messages ({}) {verb} in {seconds:.1} s: {:.0} msg/s, {}/s",
        human_bytes(bytes),
        messages as f64 / secs,
        human_bytes((bytes as f64 / secs) as u64)
    )
}

pub use mailvault::output::human_bytes;

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every flag and argument of every command says what it does in `--help`.
    #[test]
    fn every_flag_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if a.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                let text = a
                    .get_help()
                    .or(a.get_long_help())
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                if text.trim().is_empty() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "mailvault", &mut missing);
        assert!(missing.is_empty(), "{} without help: {missing:#?}", missing.len());
    }
}
