//! Job files (`jobs/*.toml`): what a worker archives, from where, when and how fast.
//! The types here are the file format — `schemas/job.schema.json` is generated from
//! them — and [`parse`] turns a file into a checked [`Job`], or into an error that
//! names the file, line, column and field. No I/O besides what the caller read.

pub mod schedule;
mod spec;
pub mod units;

pub use schedule::{next_attempt, Outcome, Timing};
pub use spec::*;

use std::path::{Path, PathBuf};

/// Why a job file was refused.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{file}: cannot read the job file: {source}")]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{file}:{line}:{column}: {}{message}", field_prefix(field))]
    Invalid {
        file: PathBuf,
        line: usize,
        column: usize,
        /// The field's path (`accounts[1].password`), empty for a syntax error.
        field: String,
        message: String,
    },
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("field `{field}`: ")
    }
}

/// Reads and checks a job file.
pub fn load(path: &Path) -> Result<Job, JobError> {
    let text = std::fs::read_to_string(path).map_err(|source| JobError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses and checks a job file's text; `path` names it in errors and gives the job
/// its default name (the file stem).
pub fn parse(path: &Path, text: &str) -> Result<Job, JobError> {
    let invalid = |span: Option<std::ops::Range<usize>>, field: String, message: String| {
        let (line, column) = line_column(text, span.map_or(0, |s| s.start));
        JobError::Invalid {
            file: path.to_path_buf(),
            line,
            column,
            field,
            message,
        }
    };
    let de =
        toml::de::Deserializer::parse(text).map_err(|e| invalid(e.span(), String::new(), first_line(e.message())))?;
    let file: JobFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = field_path(e.path());
        let inner = e.into_inner();
        invalid(inner.span(), field, first_line(inner.message()))
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "job".into());
    Job::check(name, file).map_err(|e| invalid(e.span, e.field, e.message))
}

/// `accounts[1].password`: serde's path without the wrapper fields of `Spanned`.
fn field_path(p: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for seg in p.iter() {
        match seg {
            serde_path_to_error::Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key } if key.starts_with("$__") => {}
            serde_path_to_error::Segment::Map { key } | serde_path_to_error::Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    out
}

fn first_line(s: &str) -> String {
    s.trim().lines().next().unwrap_or("").to_string()
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// The JSON Schema of job files, as `schemas/job.schema.json` holds it.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(JobFile);
    let mut s = serde_json::to_string_pretty(&schema).expect("a schema serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests;
