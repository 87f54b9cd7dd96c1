//! What commands print for programs: the JSON shapes of their reports, each with
//! a versioned schema in `schemas/output/` (checked against these types by
//! `tests/output_schemas.rs`). A shape changes compatibly (fields added) within a
//! version; anything else is a new version and a new file.

use schemars::JsonSchema;
use serde::Serialize;

/// `stats --format json`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct StatsReport {
    pub archive: std::path::PathBuf,
    pub format_version: u32,
    pub messages: u64,
    pub placements: u64,
    pub parts: u64,
    /// Bytes of every distinct message as received.
    pub raw_bytes: u64,
    /// Bytes of every placement's message (a message filed twice counts twice).
    pub placement_raw_bytes: u64,
    pub unique_bytes: u64,
    pub part_dedup_bytes: u64,
    /// Bytes stored after deduplication and compression.
    pub stored_bytes: u64,
    pub dedup_saved_bytes: u64,
    /// stored_bytes / raw_bytes.
    pub ratio: f64,
    /// Bytes the archive's files take on disk (its local packs included).
    pub disk_bytes: u64,
    pub dictionaries: u64,
    /// Where the packs are: a directory, or `s3://bucket/prefix at endpoint`.
    pub blob_store: String,
    /// Packs the archive references, and their bytes (objects in S3).
    pub packs: u64,
    pub pack_bytes: u64,
    /// Messages by what text extraction made of their attachments (from the
    /// search index; empty when there is none of this version).
    pub extraction: Vec<ExtractionCount>,
}

/// How many messages had an attachment extracted, skipped or failed, by format,
/// type or reason.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ExtractionCount {
    /// `extracted`, `skipped` or `failed`.
    pub outcome: String,
    /// The format read (`pdf`, `docx`, …), the type skipped (`image-png`), or why
    /// it failed (`corrupt`, `inflate-limit`, `ratio-limit`, `depth-limit`,
    /// `member-limit`, `time-budget`, `encrypted`, `parser-panic`).
    pub detail: String,
    pub messages: u64,
}

/// Any command's error, when JSON output was asked for (printed on standard
/// output, so a program reading it sees the error where it expects the report).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ErrorReport {
    /// The error and its causes, as one line.
    pub error: String,
    /// The process's exit status.
    pub exit_code: u8,
}

/// `compare --format json`: both accounts, every difference, and the count of
/// each kind.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CompareReport {
    pub a: CompareSide,
    pub b: CompareSide,
    pub differences: Vec<crate::plan::compare::Difference>,
    pub counts: std::collections::BTreeMap<crate::plan::compare::Kind, usize>,
}

/// One account of a comparison.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CompareSide {
    pub server: String,
    pub messages: usize,
    pub folders: usize,
}

/// `migrate --format json`: the pull, then the replay.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct MigrateReport {
    pub pull: crate::remote::PullSummary,
    pub replay: crate::replay::run::ReplayReport,
}

/// `pull --list-folders --format json`: the server's namespaces (when it has
/// NAMESPACE) and every folder.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct FolderList {
    pub namespaces: Option<crate::plan::namespace::Namespaces>,
    pub folders: Vec<crate::imap::pull::ListedFolder>,
}

/// `purge --format json`: what retention let go, and (unless a dry run) what was
/// removed.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PurgeOutput {
    pub dry_run: bool,
    pub plan: crate::retention::PurgePlan,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<crate::archive::PurgeReport>,
}

/// `audit --format json`: the matching entries of the access log and its state.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct AuditOutput {
    pub entries: Vec<crate::access::AccessEntry>,
    /// Entries in the whole log.
    pub total: u64,
    /// What the hash chain says is wrong (empty: intact).
    pub problems: Vec<String>,
}

/// Every output shape: (file name under `schemas/output/`, schema text).
pub fn schemas() -> Vec<(&'static str, String)> {
    fn text<T: JsonSchema>() -> String {
        let mut s = serde_json::to_string_pretty(&schemars::schema_for!(T)).expect("a schema serialises");
        s.push('\n');
        s
    }
    vec![
        ("search-hit.v1.schema.json", text::<crate::index::Hit>()),
        (
            "search-thread.v1.schema.json",
            text::<crate::index::conversations::ThreadSummary>(),
        ),
        ("stats.v1.schema.json", text::<StatsReport>()),
        ("verify.v1.schema.json", text::<crate::archive::VerifyReport>()),
        ("import.v1.schema.json", text::<crate::import::ImportSummary>()),
        ("pull.v1.schema.json", text::<crate::remote::PullSummary>()),
        ("pull-list-folders.v1.schema.json", text::<FolderList>()),
        ("pull-pop3-dry-run.v1.schema.json", text::<crate::pop3::pull::DryRun>()),
        ("replay.v1.schema.json", text::<crate::replay::run::ReplayReport>()),
        ("migrate.v1.schema.json", text::<MigrateReport>()),
        ("compare.v1.schema.json", text::<CompareReport>()),
        ("run.v1.schema.json", text::<Vec<crate::service::AccountRun>>()),
        (
            "status.v1.schema.json",
            text::<Vec<crate::service::status::JobStatus>>(),
        ),
        ("compact.v1.schema.json", text::<crate::archive::CompactReport>()),
        ("error.v1.schema.json", text::<ErrorReport>()),
        ("purge.v1.schema.json", text::<PurgeOutput>()),
        ("audit.v1.schema.json", text::<AuditOutput>()),
        ("probe.v1.schema.json", text::<crate::probe::report::ProbeReport>()),
        ("readers.v1.schema.json", text::<crate::readers::store::Listed>()),
    ]
}

/// `12.3 MB` style sizes (decimal units, as `du --si`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
