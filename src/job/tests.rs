//! Job files: what is accepted, and that every refusal names line, column and field.

use std::path::Path;

use chrono::{TimeZone, Utc};

use super::*;

const GOOD: &str = r#"
archive = "/var/lib/mailvault"

[schedule]
every = "15m"

[limits]
connections_per_host = 3
messages_per_second = 50

[retry]
auth_failure_backoff = "30m"

[[accounts]]
name = "alice"
url = "imaps://alice@imap.example.com"
password = { env = "ALICE_PASSWORD" }
exclude = ["Spam"]
watch = ["INBOX"]
preset = "gmail"

[[accounts]]
url = "pop3s://shop@pop.example.com"
password = { command = "pass show shop" }
delete = "after-archive"
"#;

fn parse_str(text: &str) -> Result<Job, JobError> {
    parse(Path::new("jobs/test.toml"), text)
}

/// (file line, column, field, words the message must hold) of a refusal.
fn refusal(text: &str) -> (usize, usize, String, String) {
    match parse_str(text) {
        Err(JobError::Invalid {
            line,
            column,
            field,
            message,
            file,
        }) => {
            assert_eq!(file, Path::new("jobs/test.toml"));
            (line, column, field, message)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_good_job_is_read_with_defaults_filled_in() {
    let job = parse_str(GOOD).unwrap();
    assert_eq!(job.name, "test");
    assert_eq!(job.archive.as_deref(), Some(Path::new("/var/lib/mailvault")));
    assert!(matches!(job.timing, Timing::Every(d) if d.as_secs() == 900));
    assert_eq!(job.limits.connections_per_host, 3);
    assert_eq!(job.limits.accounts_in_parallel, 4);
    assert_eq!(job.limits.messages_per_second, Some(50));
    assert_eq!(job.retry.attempts, 5);
    assert_eq!(job.retry.auth_failure_backoff.0.as_secs(), 1800);
    assert_eq!(job.accounts.len(), 2);
    let (a, b) = (&job.accounts[0], &job.accounts[1]);
    assert_eq!((a.name.as_str(), a.is_imap(), a.connections()), ("alice", true, 4));
    assert_eq!(a.host_key(), "imap.example.com:993");
    assert_eq!(b.name, "shop@pop.example.com");
    assert_eq!(b.spec.delete, DeleteMode::AfterArchive);
    assert_eq!(
        b.spec.login().password.unwrap().source(),
        crate::net::SecretSource::Command("pass show shop".into())
    );
}

#[test]
fn a_preset_needs_only_the_user_name_and_bounds_connections() {
    let text = GOOD
        .replace("url = \"imaps://alice@imap.example.com\"", "url = \"alice@gmail.com\"")
        .replace(
            "url = \"pop3s://shop@pop.example.com\"",
            "url = \"pop3:shop@gmail.com\"\npreset = \"google\"",
        )
        .replace("preset = \"gmail\"", "preset = \"gmail\"\nconnections = 15");
    let job = parse_str(&text).unwrap();
    let (a, b) = (&job.accounts[0], &job.accounts[1]);
    assert_eq!(a.endpoint.to_string(), "imaps://alice@gmail.com@imap.gmail.com:993");
    assert_eq!((a.name.as_str(), a.connections()), ("alice", 15));
    assert_eq!(b.endpoint.to_string(), "pop3s://shop@gmail.com@pop.gmail.com:995");
    assert_eq!(b.name, "shop@gmail.com@pop.gmail.com");
}

#[test]
fn an_account_signs_in_with_a_stored_oauth2_sign_in() {
    let text = GOOD.replace(
        "password = { command = \"pass show shop\" }",
        "oauth2 = { provider = \"microsoft\", client_id = \"c-1\", tenant = \"contoso.com\" }",
    );
    let job = parse_str(&text).unwrap();
    let login = job.accounts[1].spec.login();
    let o = login.oauth2.expect("an oauth2 sign-in");
    assert_eq!(
        (o.provider.as_str(), o.client_id.as_deref()),
        ("microsoft", Some("c-1"))
    );
    assert_eq!((o.tenant.as_deref(), o.account.as_deref()), (Some("contoso.com"), None));
    assert!(login.password.is_none() && login.oauth2_token.is_none());
    // One credential only; the table's keys are checked.
    let both = GOOD.replace(
        "password = { command = \"pass show shop\" }",
        "password = { command = \"pass show shop\" }\noauth2 = { provider = \"google\" }",
    );
    let (_, _, field, message) = refusal(&both);
    assert_eq!(field, "accounts[1].oauth2");
    assert!(message.contains("one of"), "{message}");
    let typo = GOOD.replace(
        "password = { command = \"pass show shop\" }",
        "oauth2 = { provider = \"google\", clientid = \"x\" }",
    );
    let (_, _, _, message) = refusal(&typo);
    assert!(message.contains("clientid"), "{message}");
}

#[test]
fn an_unknown_key_is_an_error_at_its_place() {
    let text = GOOD.replace("preset = \"gmail\"", "preset = \"gmail\"\npasword = { env = \"X\" }");
    let (line, column, field, message) = refusal(&text);
    assert_eq!((line, column), (21, 1), "{message}");
    assert!(message.contains("unknown field `pasword`"), "{message}");
    assert!(field.starts_with("accounts[0]"), "{field}");
}

#[test]
fn refusals_name_line_column_and_field() {
    // (what to replace, with what, line, column, field, words in the message)
    let table: &[(&str, &str, usize, usize, &str, &str)] = &[
        (
            "every = \"15m\"",
            "every = \"soon\"",
            5,
            9,
            "schedule.every",
            "not a duration",
        ),
        (
            "every = \"15m\"",
            "cron = \"61 * * * *\"",
            5,
            8,
            "schedule.cron",
            "not a cron pattern",
        ),
        (
            "connections_per_host = 3",
            "connections_per_host = \"three\"",
            8,
            24,
            "limits.connections_per_host",
            "invalid type",
        ),
        (
            "password = { env = \"ALICE_PASSWORD\" }",
            "password = \"hunter2\"",
            17,
            12,
            "accounts[0].password",
            "never written in a job file",
        ),
        (
            "password = { env = \"ALICE_PASSWORD\" }",
            "password = { env = \"A\", file = \"/f\" }",
            17,
            12,
            "accounts[0].password",
            "exactly one of env, file and command",
        ),
        (
            "preset = \"gmail\"",
            "preset = \"hotmial\"",
            20,
            10,
            "accounts[0].preset",
            "no provider preset \"hotmial\"; known: gmail, microsoft365",
        ),
        (
            "imaps://alice@imap.example.com",
            "imapz://alice@imap.example.com",
            16,
            7,
            "accounts[0].url",
            "imapz",
        ),
        (
            "delete = \"after-archive\"",
            "delete = \"sometimes\"",
            25,
            10,
            "accounts[1].delete",
            "unknown variant",
        ),
    ];
    for (from, to, line, column, field, words) in table {
        assert!(GOOD.contains(from), "{from}");
        let text = GOOD.replacen(from, to, 1);
        let got = refusal(&text);
        assert_eq!(
            (got.0, got.1, got.2.as_str()),
            (*line, *column, *field),
            "{to}: {}",
            got.3
        );
        assert!(got.3.contains(words), "{to}: {}", got.3);
    }
}

#[test]
fn checks_beyond_types_point_at_the_account() {
    let table: &[(&str, &str, &str, &str)] = &[
        (
            "delete = \"after-archive\"",
            "watch = [\"INBOX\"]",
            "accounts[1].watch",
            "applies to IMAP",
        ),
        (
            "exclude = [\"Spam\"]",
            "delete = \"after-archive\"",
            "accounts[0].delete",
            "applies to POP3",
        ),
        (
            "password = { command = \"pass show shop\" }\n",
            "",
            "accounts[1].password",
            "no credential",
        ),
        (
            "preset = \"gmail\"",
            "preset = \"gmail\"\nconnections = 16",
            "accounts[0].connections",
            "preset allows (15)",
        ),
        (
            "delete = \"after-archive\"",
            "name = \"alice\"",
            "accounts[1].name",
            "used twice",
        ),
        (
            "every = \"15m\"",
            "every = \"15m\"\ncron = \"* * * * *\"",
            "schedule",
            "not both",
        ),
    ];
    for (from, to, field, words) in table {
        assert!(GOOD.contains(from), "{from}");
        let text = GOOD.replacen(from, to, 1);
        let (line, _, got_field, message) = refusal(&text);
        assert_eq!(got_field, *field, "{to}: {message}");
        assert!(message.contains(words), "{to}: {message}");
        assert!(line > 1, "{to}: line {line}");
    }
}

#[test]
fn declared_retention_policies_are_read_and_checked() {
    let with = |rules: &str| format!("{GOOD}\n{rules}");
    let job = parse_str(&with(
        "[[retention]]\nname = \"spam\"\nquery = \"folder:Spam\"\nkeep = \"90d\"\nfrom = \"date\"\n\n[[retention]]\nname = \"all\"\nquery = \"*\"\nkeep = \"10y\"\n",
    ))
    .unwrap();
    assert_eq!(job.retention.len(), 2);
    assert_eq!(job.retention[0].from, RetentionFrom::Date);
    assert_eq!(
        job.retention[1].from,
        RetentionFrom::Received,
        "received is the default"
    );
    let table: &[(&str, &str, &str)] = &[
        (
            "name = \"a\"\nquery = \"*\"\nkeep = \"0d\"",
            "retention[0].keep",
            "zero",
        ),
        (
            "name = \"a\"\nquery = \"from:(\"\nkeep = \"1y\"",
            "retention[0].query",
            "query error",
        ),
        (
            "name = \"a\"\nquery = \"is:held\"\nkeep = \"1y\"",
            "retention[0].query",
            "legal holds",
        ),
        (
            "name = \"a\"\nquery = \"*\"\nkeep = \"1y\"\n\n[[retention]]\nname = \"a\"\nquery = \"*\"\nkeep = \"2y\"",
            "retention[1].name",
            "declared twice",
        ),
        (
            "name = \"a\"\nquery = \"*\"\nkeep = \"1y\"\nfrom = \"sent\"",
            "retention[0].from",
            "unknown variant",
        ),
    ];
    for (rule, field, words) in table {
        let (line, _, got_field, message) = refusal(&with(&format!("[[retention]]\n{rule}\n")));
        assert_eq!(got_field, *field, "{rule}: {message}");
        assert!(message.contains(words), "{rule}: {message}");
        assert!(line > 25, "{rule}: line {line}");
    }
}

#[test]
fn a_syntax_error_has_a_place_too() {
    let (line, column, field, _) = refusal("[schedule\nevery = \"1m\"\n");
    assert_eq!((line, field.as_str()), (1, ""));
    assert!(column >= 1);
    let e = parse_str("[schedule\n").unwrap_err().to_string();
    assert!(e.starts_with("jobs/test.toml:1:"), "{e}");
}

#[test]
fn the_error_text_reads_file_line_column_field() {
    let e = parse_str(&GOOD.replace("\"15m\"", "\"soon\"")).unwrap_err().to_string();
    assert!(
        e.starts_with("jobs/test.toml:5:9: field `schedule.every`: \"soon\" is not a duration"),
        "{e}"
    );
}

fn at(h: u32, m: u32, s: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, h, m, s).unwrap()
}

#[test]
fn next_attempt_follows_the_schedule_and_backs_off() {
    let every = Timing::Every(std::time::Duration::from_secs(900));
    let retry = RetryPolicy::default(); // backoff 30s, auth 15m, max 1h
    let start = at(10, 0, 0);
    let end = at(10, 0, 20);
    // (outcome, consecutive failures, expected next)
    let table = [
        (Outcome::Ok, 0, at(10, 15, 0)),
        (Outcome::Temporary, 1, at(10, 0, 50)),
        (Outcome::Temporary, 2, at(10, 1, 20)),
        (Outcome::Temporary, 4, at(10, 4, 20)),
        (Outcome::Temporary, 30, at(11, 0, 20)),
        (Outcome::Permanent, 1, at(10, 15, 20)),
        (Outcome::Permanent, 2, at(10, 30, 20)),
        (Outcome::Permanent, 3, at(11, 0, 20)),
        (Outcome::Permanent, 9, at(11, 0, 20)),
    ];
    for (outcome, k, want) in table {
        assert_eq!(
            next_attempt(&every, start, end, outcome, k, &retry, 1.0),
            want,
            "{outcome:?} {k}"
        );
    }
    // A short interval does not make a refused login retried often.
    let fast = Timing::Every(std::time::Duration::from_secs(1));
    let next = next_attempt(&fast, start, end, Outcome::Permanent, 1, &retry, 1.0);
    assert_eq!(next, at(10, 15, 20));
    // Jitter stays within ±25 %.
    let lo = next_attempt(&every, start, end, Outcome::Temporary, 1, &retry, 0.0);
    let hi = next_attempt(&every, start, end, Outcome::Temporary, 1, &retry, 9.0);
    assert_eq!((lo - end).num_milliseconds(), 22_500);
    assert_eq!((hi - end).num_milliseconds(), 37_500);
}

#[test]
fn cron_schedules_give_the_next_matching_minute() {
    let job = parse_str(&GOOD.replace("every = \"15m\"", "cron = \"0 */2 * * *\"")).unwrap();
    assert_eq!(job.timing.next_after(at(10, 0, 0)), at(12, 0, 0));
    assert_eq!(job.timing.next_after(at(11, 59, 59)), at(12, 0, 0));
    assert_eq!(job.timing.describe(), "cron 0 */2 * * *");
}

#[test]
fn the_schema_describes_every_top_level_key() {
    let s: serde_json::Value = serde_json::from_str(&schema_json()).unwrap();
    let props = s["properties"].as_object().unwrap();
    for key in ["archive", "schedule", "limits", "retry", "accounts"] {
        assert!(props.contains_key(key), "{key}");
    }
    assert_eq!(s["additionalProperties"], serde_json::json!(false));
}
