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

/// A size in bytes, written as a number (`536870912`) or with a unit as rsync reads
/// them: `K`, `M`, `G` (and `KiB`, `MiB`, `GiB`) count in 1024s, `KB`, `MB`, `GB` in
/// 1000s: `"512MiB"`, `"20M"`, `"1GB"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(into = "u64")]
pub struct ByteSize(pub u64);

impl From<ByteSize> for u64 {
    fn from(b: ByteSize) -> u64 {
        b.0
    }
}

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(text: &str) -> Result<ByteSize, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        let bad = || format!("{text:?} is not a size; write e.g. \"512MiB\", \"20M\", \"1GB\" or a number of bytes");
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let scale: u64 = match unit.trim() {
            "" | "B" => 1,
            "K" | "k" | "KiB" => 1 << 10,
            "M" | "MiB" => 1 << 20,
            "G" | "GiB" => 1 << 30,
            "KB" | "kB" => 1000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            _ => return Err(bad()),
        };
        let bytes = n.checked_mul(scale).ok_or_else(|| format!("{text:?} is too large"))?;
        if bytes == 0 {
            return Err(format!("{text:?}: a size must be at least 1 byte"));
        }
        Ok(ByteSize(bytes))
    }
}

impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0;
        match n {
            _ if n >= 1 << 30 && n.is_multiple_of(1 << 30) => write!(f, "{}GiB", n >> 30),
            _ if n >= 1 << 20 && n.is_multiple_of(1 << 20) => write!(f, "{}MiB", n >> 20),
            _ if n >= 1 << 10 && n.is_multiple_of(1 << 10) => write!(f, "{}KiB", n >> 10),
            _ => write!(f, "{n} bytes"),
        }
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a size: a number of bytes or a string such as \"512MiB\"")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<ByteSize, E> {
                if n == 0 {
                    return Err(E::custom("a size must be at least 1 byte"));
                }
                Ok(ByteSize(n))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<ByteSize, E> {
                u64::try_from(n)
                    .map_err(|_| E::custom(format!("{n} is not a size")))
                    .and_then(|n| self.visit_u64(n))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ByteSize, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A size: a number of bytes, or a number and a unit (K, M, G or KiB, MiB, GiB count in 1024s; KB, MB, GB in 1000s), e.g. \"512MiB\"",
            "oneOf": [
                { "type": "integer", "minimum": 1 },
                { "type": "string", "pattern": "^\\s*[0-9]+\\s*(B|K|k|KiB|M|MiB|G|GiB|KB|kB|MB|GB)?\\s*$" }
            ]
        })
    }
}

#[cfg(test)]
mod byte_size_tests {
    use super::ByteSize;

    #[test]
    fn sizes_read_as_rsync_reads_them() {
        for (text, bytes) in [
            ("1", 1),
            ("536870912", 512 << 20),
            ("512MiB", 512 << 20),
            ("512M", 512 << 20),
            ("20 MB", 20_000_000),
            ("1GB", 1_000_000_000),
            ("1G", 1 << 30),
            ("64k", 64 << 10),
            ("3KB", 3000),
        ] {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
        }
        for bad in ["", "MiB", "12 parsecs", "-1", "0", "99999999999999999999G", "1.5G"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_print_in_the_largest_whole_unit() {
        assert_eq!(ByteSize(512 << 20).to_string(), "512MiB");
        assert_eq!(ByteSize(1 << 30).to_string(), "1GiB");
        assert_eq!(ByteSize(1000).to_string(), "1000 bytes");
    }
}
