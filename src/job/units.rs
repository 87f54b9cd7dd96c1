//! Values a job file writes as strings: durations (`"15m"`, `"1h 30m"`) and cron
//! patterns. Each checks itself while the file is read, so a bad value is reported at
//! its own line and column.

use std::borrow::Cow;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

/// A duration written as humans do: `"90s"`, `"15m"`, `"1h 30m"`, `"2days"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Duration(pub std::time::Duration);

impl TryFrom<String> for Duration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        humantime::parse_duration(s.trim())
            .map(Duration)
            .map_err(|e| format!("{s:?} is not a duration ({e}); write e.g. \"30s\", \"15m\", \"1h 30m\""))
    }
}

impl From<Duration> for String {
    fn from(d: Duration) -> String {
        humantime::format_duration(d.0).to_string()
    }
}

impl Duration {
    pub const fn secs(n: u64) -> Duration {
        Duration(std::time::Duration::from_secs(n))
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration: a number and a unit (ms, s, m, h, d), e.g. \"30s\", \"15m\", \"1h 30m\"",
            "pattern": "^\\s*[0-9]+\\s*[a-zA-Z]+(\\s*[0-9]+\\s*[a-zA-Z]+)*\\s*$"
        })
    }
}

/// A cron pattern (`minute hour day-of-month month day-of-week`, optionally with
/// seconds first), evaluated in UTC.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CronExpr {
    pub text: String,
    pub cron: croner::Cron,
}

impl TryFrom<String> for CronExpr {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let cron = croner::Cron::from_str(text.trim())
            .map_err(|e| format!("{text:?} is not a cron pattern ({e}); write e.g. \"*/15 * * * *\""))?;
        Ok(CronExpr { text, cron })
    }
}

impl From<CronExpr> for String {
    fn from(c: CronExpr) -> String {
        c.text
    }
}

impl JsonSchema for CronExpr {
    fn schema_name() -> Cow<'static, str> {
        "CronExpr".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A cron pattern, UTC: minute hour day-of-month month day-of-week (a seconds field may come first), e.g. \"*/15 * * * *\""
        })
    }
}
