//! Retention policies and legal holds over an archive and its search index:
//! rules checked before they are kept, the holds that `is:held` and `hold:NAME`
//! search, and what a purge would remove and why ([`plan`]). Which messages a
//! rule covers is its query's answer from the index; how the answers are weighed
//! is [`crate::plan::retention`]'s.

use std::collections::HashMap;

use thiserror::Error;

use crate::archive::{Archive, ArchiveError};
use crate::evidence::{RuleKind, RuleRecord};
use crate::index::{IndexError, MessageIndex};
use crate::model::MessageId;
use crate::plan::retention::{self, BadKeep, Facts, Keep, KeepFrom, Policy, Verdict};
use crate::query::{self, Expr, QueryError};

#[derive(Debug, Error)]
pub enum RetentionError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("{kind} {name:?}: {source}")]
    Query {
        kind: &'static str,
        name: String,
        #[source]
        source: QueryError,
    },
    #[error("{kind} {name:?}: its query refers to legal holds (is:held, hold:); a rule's query must select messages by what they are")]
    RefersToHolds { kind: &'static str, name: String },
    #[error("retention policy {name:?}: {source}")]
    Keep {
        name: String,
        #[source]
        source: BadKeep,
    },
}

pub type Result<T, E = RetentionError> = std::result::Result<T, E>;

/// Parses a rule's query, refusing one that refers to holds.
fn rule_query(kind: RuleKind, name: &str, q: &str) -> Result<Expr> {
    let expr = query::parse(q).map_err(|source| RetentionError::Query {
        kind: kind.name(),
        name: name.to_string(),
        source,
    })?;
    if expr.mentions_holds() {
        return Err(RetentionError::RefersToHolds {
            kind: kind.name(),
            name: name.to_string(),
        });
    }
    Ok(expr)
}

/// Sets (or replaces) retention policy `name`.
pub fn set_policy(archive: &Archive, name: &str, q: &str, keep: &str, from: KeepFrom) -> Result<()> {
    rule_query(RuleKind::Retention, name, q)?;
    let keep: Keep = keep.parse().map_err(|source| RetentionError::Keep {
        name: name.to_string(),
        source,
    })?;
    archive.set_rule(
        RuleKind::Retention,
        name,
        RuleRecord {
            query: q.to_string(),
            keep: keep.to_string(),
            from_date: from == KeepFrom::Date,
            reason: String::new(),
            by: crate::identity::os_user(),
            at: chrono::Utc::now().timestamp(),
        },
    )?;
    Ok(())
}

/// Places legal hold `name` (or replaces its query and reason), as placed by `by`
/// (the OS user, or `web:NAME` / `token:NAME`).
pub fn add_hold(archive: &Archive, name: &str, q: &str, reason: &str, by: &str) -> Result<()> {
    rule_query(RuleKind::Hold, name, q)?;
    archive.set_rule(
        RuleKind::Hold,
        name,
        RuleRecord {
            query: q.to_string(),
            keep: String::new(),
            from_date: false,
            reason: reason.to_string(),
            by: by.to_string(),
            at: chrono::Utc::now().timestamp(),
        },
    )?;
    Ok(())
}

/// The archive's holds with their parsed queries, for [`MessageIndex::set_holds`].
pub fn holds(archive: &Archive) -> Result<Vec<(String, Expr)>> {
    archive
        .rules(RuleKind::Hold)?
        .into_iter()
        .map(|(name, r)| Ok((name.clone(), rule_query(RuleKind::Hold, &name, &r.query)?)))
        .collect()
}

/// Which tags [`prepare_index`] reads.
pub enum TagScope<'a> {
    /// Those these queries, the holds and the policies name.
    Named(&'a [&'a Expr]),
    /// Every tag in use (for a server that runs queries not known yet).
    All,
}

/// Gives `index` what queries may name besides what the index holds: the
/// archive's legal holds (`is:held`, `hold:NAME`), and the messages of the tags
/// (`tag:NAME`) in `scope`.
pub fn prepare_index(archive: &Archive, index: &mut MessageIndex, scope: TagScope<'_>) -> Result<()> {
    let holds = holds(archive)?;
    let names: Vec<String> = match scope {
        TagScope::All => archive
            .tag_counts()?
            .into_iter()
            .map(|(t, _)| t.as_str().to_string())
            .collect(),
        TagScope::Named(queries) => {
            let mut names = Vec::new();
            let policies = policies(archive)?;
            let rules = holds.iter().map(|(_, e)| e).chain(policies.iter().map(|(_, e)| e));
            for e in queries.iter().copied().chain(rules) {
                for t in e.tag_names() {
                    if !names.contains(&t) {
                        names.push(t);
                    }
                }
            }
            names
        }
    };
    let mut tagged = HashMap::new();
    for name in names {
        // Names come from parsed queries: valid tags.
        let ids = match crate::tags::Tag::parse(&name) {
            Ok(t) => archive.tagged(&t)?,
            Err(_) => Vec::new(),
        };
        tagged.insert(name, ids);
    }
    index.set_holds(holds);
    index.set_tags(tagged);
    Ok(())
}

/// The archive's policies, parsed.
fn policies(archive: &Archive) -> Result<Vec<(Policy, Expr)>> {
    archive
        .rules(RuleKind::Retention)?
        .into_iter()
        .map(|(name, r)| {
            let expr = rule_query(RuleKind::Retention, &name, &r.query)?;
            let keep = r.keep.parse().map_err(|source| RetentionError::Keep {
                name: name.clone(),
                source,
            })?;
            let from = if r.from_date {
                KeepFrom::Date
            } else {
                KeepFrom::Received
            };
            Ok((Policy { name, keep, from }, expr))
        })
        .collect()
}

/// One message a purge would remove, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Expired {
    #[serde(serialize_with = "hex_id")]
    #[schemars(with = "String")]
    pub id: MessageId,
    /// The matching policy that kept it longest.
    pub policy: String,
    /// When its retention ended (Unix seconds).
    pub since: i64,
}

fn hex_id<S: serde::Serializer>(id: &MessageId, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&id.to_hex())
}

/// What a purge at `now` would do.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct PurgePlan {
    /// The moment weighed (Unix seconds).
    pub now: i64,
    /// Messages some policy covers.
    pub covered: u64,
    /// Of those, kept by a legal hold although a policy's period has ended.
    pub held_past_retention: u64,
    /// Every message to remove, by id.
    pub expired: Vec<Expired>,
}

/// Weighs every message a policy covers at `now` (the index must be up to date).
pub fn plan(archive: &Archive, index: &MessageIndex, now: i64) -> Result<PurgePlan> {
    let policies = policies(archive)?;
    let mut matched: HashMap<MessageId, (i64, Vec<usize>)> = HashMap::new();
    for (i, (_, expr)) in policies.iter().enumerate() {
        for (id, date) in index.matching_expr(expr)? {
            matched.entry(id).or_insert_with(|| (date, Vec::new())).1.push(i);
        }
    }
    let mut held: HashMap<MessageId, Vec<String>> = HashMap::new();
    for (name, expr) in holds(archive)? {
        for (id, _) in index.matching_expr(&expr)? {
            if matched.contains_key(&id) {
                held.entry(id).or_default().push(name.clone());
            }
        }
    }
    let mut out = PurgePlan {
        now,
        covered: matched.len() as u64,
        ..PurgePlan::default()
    };
    for (id, (date, which)) in matched {
        // A message the index knows but the archive no longer holds was purged.
        let Some(record) = archive.message_record(&id)? else {
            continue;
        };
        let holds_of = held.get(&id);
        let facts = Facts {
            received: record.first_seen,
            date: (date != 0).then_some(date),
            policies: which.iter().map(|&i| &policies[i].0).collect(),
            holds: holds_of
                .map(|h| h.iter().map(String::as_str).collect())
                .unwrap_or_default(),
        };
        match retention::verdict(&facts, now) {
            Verdict::Expired { policy, since } => out.expired.push(Expired {
                id,
                policy: policy.to_string(),
                since,
            }),
            Verdict::Held { .. } => {
                let without_holds = Facts {
                    holds: Vec::new(),
                    ..facts.clone()
                };
                if retention::verdict(&without_holds, now).is_expired() {
                    out.held_past_retention += 1;
                }
            }
            Verdict::Kept { .. } | Verdict::NoPolicy => {}
        }
    }
    out.expired.sort_by_key(|a| a.id);
    Ok(out)
}

/// The moment retention is weighed at: now, or `MAILVAULT_NOW` (Unix seconds or
/// RFC 3339) when that is earlier — a clock for tests of ten-year periods, which
/// can only keep more: a clock set ahead would let a purge remove what is not due,
/// so it is ignored with a warning.
pub fn now() -> i64 {
    let real = chrono::Utc::now().timestamp();
    let Some(set) = std::env::var("MAILVAULT_NOW").ok().and_then(|v| {
        v.parse::<i64>()
            .ok()
            .or_else(|| chrono::DateTime::parse_from_rfc3339(&v).ok().map(|d| d.timestamp()))
    }) else {
        return real;
    };
    if set > real {
        tracing::warn!("MAILVAULT_NOW is ahead of the clock; retention is weighed now, never later");
        return real;
    }
    set
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_test_clock_only_goes_back() {
        let real = chrono::Utc::now().timestamp();
        std::env::set_var("MAILVAULT_NOW", "2001-09-09T01:46:40Z");
        assert_eq!(super::now(), 1_000_000_000);
        std::env::set_var("MAILVAULT_NOW", (real + 10 * 365 * 86_400).to_string());
        assert!(
            super::now() <= chrono::Utc::now().timestamp(),
            "a clock ahead is ignored"
        );
        std::env::remove_var("MAILVAULT_NOW");
    }
}
