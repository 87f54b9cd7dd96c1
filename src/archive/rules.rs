//! Retention policies and legal holds as the archive keeps them: named records,
//! set and removed through [`Archive::commit`], so each change is in the change
//! log. What they mean is `plan::retention`'s and `crate::retention`'s.

use super::error::{ArchiveError, Result};
use super::Archive;
use crate::evidence::{RuleKind, RuleRecord};
use crate::metastore::{Change, MetaBatch};

impl Archive {
    /// The rules of `kind`, by name.
    pub fn rules(&self, kind: RuleKind) -> Result<Vec<(String, RuleRecord)>> {
        Ok(self.meta.rules(kind)?)
    }

    /// Sets (or replaces) the rule `name`.
    pub fn set_rule(&self, kind: RuleKind, name: &str, record: RuleRecord) -> Result<()> {
        super::check_name(kind.name(), name)?;
        let _writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut batch = MetaBatch::default();
        batch.push(Change::Rule {
            kind,
            name: name.to_string(),
            record,
        });
        self.commit(batch)
    }

    /// Removes the rule `name`; an error when there is none.
    pub fn remove_rule(&self, kind: RuleKind, name: &str) -> Result<RuleRecord> {
        let _writer = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some((_, old)) = self.meta.rules(kind)?.into_iter().find(|(n, _)| n == name) else {
            return Err(ArchiveError::NoSuchRule {
                kind: kind.name(),
                name: name.to_string(),
            });
        };
        let mut batch = MetaBatch::default();
        batch.push(Change::DropRule {
            kind,
            name: name.to_string(),
        });
        self.commit(batch)?;
        Ok(old)
    }
}
