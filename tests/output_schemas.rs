//! One output convention: `--format table|json` (search adds `ids`) with `--json`
//! as its alias on every command that reports; JSON shapes follow the versioned
//! schemas in `schemas/output/` (exactly what the types generate;
//! `MAILVAULT_BLESS=1` rewrites them); errors are JSON when JSON was asked for;
//! dates are RFC 3339.

mod common;

use std::path::Path;

#[test]
fn output_schemas_match_the_types() {
    let dir = common::manifest_dir().join("schemas/output");
    for (name, built) in mailvault::output::schemas() {
        let path = dir.join(name);
        if std::env::var("MAILVAULT_BLESS").is_ok() {
            std::fs::write(&path, &built).unwrap();
        }
        let declared = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{} exists", path.display()));
        assert_eq!(
            built, declared,
            "{name}: the output types changed: regenerate with MAILVAULT_BLESS=1 cargo test --test output_schemas \
             (and a new version file if the change is not only an addition)"
        );
    }
}

/// The keys the schema `schemas/output/NAME` requires at its top level.
fn required(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(common::manifest_dir().join("schemas/output").join(name)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

fn json_lines(archive: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    common::ok(archive, args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{args:?}: {e}: {l}")))
        .collect()
}

#[test]
fn every_reporting_command_takes_format_json_and_its_alias_json() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = common::demo_archive(tmp.path());
    let cases: [(&[&str], &str); 4] = [
        (&["stats"], "stats.v1.schema.json"),
        (&["verify"], "verify.v1.schema.json"),
        (&["search", "--limit", "5", "the"], "search-hit.v1.schema.json"),
        (
            &["search", "--threads", "--limit", "5", "the"],
            "search-thread.v1.schema.json",
        ),
    ];
    for (args, schema) in cases {
        let with = |extra: &[&str]| json_lines(&archive, &[args, extra].concat());
        let by_format = with(&["--format", "json"]);
        let by_alias = with(&["--json"]);
        assert!(!by_format.is_empty(), "{args:?}");
        // verify's timings differ between runs; everything else is the same.
        if args != ["verify"] {
            assert_eq!(by_format, by_alias, "{args:?}");
        }
        for v in by_format {
            for key in required(schema) {
                assert!(v.get(&key).is_some(), "{args:?}: {key} of {schema} in {v}");
            }
        }
    }
    // import too, on a new file.
    let file = tmp.path().join("one.eml");
    std::fs::write(&file, "From: a@example.org\r\nSubject: one\r\n\r\nx\r\n").unwrap();
    let v = &json_lines(&archive, &["import", "--format", "json", file.to_str().unwrap()])[0];
    for key in required("import.v1.schema.json") {
        assert!(v.get(&key).is_some(), "import: {key} in {v}");
    }
}

#[test]
fn search_json_dates_are_rfc3339() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = common::demo_archive(tmp.path());
    for hit in json_lines(&archive, &["search", "--json", "--limit", "50", "the"]) {
        let date = hit["date"].as_str().unwrap_or_else(|| panic!("{hit}"));
        chrono::DateTime::parse_from_rfc3339(date).unwrap_or_else(|e| panic!("{date}: {e}"));
        assert!(date.ends_with('Z'), "{date}");
    }
}

#[test]
fn errors_are_json_when_json_was_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = common::demo_archive(tmp.path());
    let cases: [(&[&str], i32, &str); 3] = [
        (&["search", "--json", "subject:("], 2, "query error at column"),
        (&["show", "--json", "zzzz"], 2, ""),
        (&["verify", "--format", "json"], 1, "no archive at"),
    ];
    for (args, code, words) in cases {
        let target = if args[0] == "verify" {
            tmp.path().join("nope")
        } else {
            archive.clone()
        };
        let out = common::run(&target, args);
        if args[0] == "show" {
            // show has no JSON output: --json is a usage error, in clap's words.
            assert_eq!(out.status.code(), Some(code), "{args:?}");
            continue;
        }
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)));
        assert_eq!(v["exit_code"], code as u64, "{v}");
        assert!(v["error"].as_str().unwrap().contains(words), "{v}");
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for key in required("error.v1.schema.json") {
            assert!(v.get(&key).is_some(), "{key} in {v}");
        }
    }
}

/// Search JSON ties each folder to its account (`placements`), which the flat
/// `folders` and `accounts` lists cannot when a message is in several accounts.
#[test]
fn search_json_ties_folders_to_their_accounts() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("a");
    let file = tmp.path().join("m.eml");
    std::fs::write(&file, "From: a@example.org\r\nSubject: placed twice\r\n\r\nx\r\n").unwrap();
    for (account, folder) in [("work", "Projects"), ("home", "INBOX")] {
        common::ok(
            &archive,
            &[
                "-q",
                "import",
                "--account",
                account,
                "--folder",
                folder,
                file.to_str().unwrap(),
            ],
        );
    }
    let hits = json_lines(&archive, &["search", "--json", "subject:placed"]);
    assert_eq!(hits.len(), 1);
    let mut placed: Vec<(String, String)> = hits[0]["placements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["account"].as_str().unwrap().into(),
                p["folder"].as_str().unwrap().into(),
            )
        })
        .collect();
    placed.sort();
    assert_eq!(
        placed,
        [
            ("home".to_string(), "INBOX".to_string()),
            ("work".into(), "Projects".into())
        ]
    );
}
