//! Text inside attachments: documents made by real tools (LibreOffice, pandoc,
//! Ghostscript, zip; `tests/data/documents/make.sh`) each carry one distinctive
//! word, found by search in its own message only; hostile documents
//! (`tests/data/hostile-documents/make.py`) fail alone, counted and explained.

use std::path::Path;

use mailvault::extract::{self, Budget, Outcome};

mod common;

use common::documents::{dir as documents, DOCUMENTS};

#[test]
fn every_format_gives_the_word_of_its_body_text() {
    for (name, mime, word) in DOCUMENTS {
        let bytes = std::fs::read(documents().join(name)).unwrap();
        let e = extract::document(&bytes, name, mime, &Budget::default());
        assert!(
            e.text.contains(word),
            "{name}: {word} not in {:?}\n{:?}",
            e.text,
            e.parts
        );
        assert!(
            e.parts.iter().all(|p| !matches!(p.outcome, Outcome::Failed(_))),
            "{name}: {:?}",
            e.parts
        );
    }
    // The ZIP's members: a text file, a DOCX and another ZIP, each read in turn.
    let bundle = std::fs::read(documents().join("bundle.zip")).unwrap();
    let e = extract::document(&bundle, "bundle.zip", "application/zip", &Budget::default());
    for word in [
        "readme.txt",
        "inner.docx",
        "thistledrum",
        "inner.zip",
        "deep.txt",
        "glacierpoppy",
    ] {
        assert!(e.text.contains(word), "{word} not in {:?}", e.text);
    }
}

#[test]
fn hostile_documents_fail_alone_with_a_reason() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hostile-documents");
    for (name, want) in [
        // Stopped by whichever bound it meets first: all it may inflate to, or
        // the ratio of one member.
        ("bomb.zip", &["inflate-limit", "ratio-limit"][..]),
        ("deep.zip", &["depth-limit"]),
        ("cyclic.pdf", &["corrupt"]),
        ("huge-stream.pdf", &["inflate-limit"]),
        ("truncated.docx", &["corrupt"]),
        // Overflows lopdf's stack when parsed: refused before.
        ("nested.pdf", &["corrupt"]),
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let started = std::time::Instant::now();
        let e = extract::document(&bytes, name, "", &Budget::default());
        let codes: Vec<String> = e
            .parts
            .iter()
            .map(|p| match &p.outcome {
                Outcome::Failed(f) => format!("{}: {f}", f.code()),
                o => o.code().to_string(),
            })
            .collect();
        eprintln!(
            "{name} {:?} {} bytes of text: {codes:?}",
            started.elapsed(),
            e.text.len()
        );
        assert!(
            codes.iter().any(|c| want.iter().any(|w| c.starts_with(w))),
            "{name}: {codes:?}"
        );
    }
}

/// Subjects of the messages a search finds (`search --format json`).
fn subjects(archive: &Path, query: &str) -> Vec<String> {
    let out = common::ok(archive, &["search", "--format", "json", "--limit", "100", query]);
    out.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["subject"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

#[test]
fn each_word_is_found_by_search_in_its_own_message_only() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a");
    let mbox = documents().join("messages.mbox");
    common::ok(&archive, &["-q", "import", "--account", "docs", mbox.to_str().unwrap()]);
    let mut expected: Vec<(&str, String)> = DOCUMENTS
        .iter()
        .map(|(name, _, word)| (*word, format!("Document {name}")))
        .collect();
    // Inside the ZIP: a DOCX, and a ZIP inside that; a forwarded message's own
    // text and its attachment's.
    expected.push(("thistledrum", "Document bundle.zip".into()));
    expected.push(("glacierpoppy", "Document bundle.zip".into()));
    expected.push(("pebblegarnet", "Fwd: Travel plans".into()));
    expected.push(("driftwoodsonnet", "Fwd: Travel plans".into()));
    for (word, subject) in &expected {
        assert_eq!(
            subjects(&archive, word),
            std::slice::from_ref(subject),
            "free text {word}"
        );
        assert_eq!(
            subjects(&archive, &format!("att:{word}")),
            std::slice::from_ref(subject),
            "att:{word}"
        );
        assert!(
            subjects(&archive, &format!("body:{word}")).is_empty(),
            "{word} is not in a body"
        );
    }
    // Phrases work inside attachments too; words of no attachment find nothing.
    assert_eq!(
        subjects(&archive, "att:\"payable within thirty days\""),
        ["Document invoice.pdf"]
    );
    assert!(subjects(&archive, "att:ordinary").len() >= 6);
    assert!(subjects(&archive, "att:absentword").is_empty());

    // Every attachment was read; `stats` counts them by format.
    let stats = common::stats(&archive);
    let count = |outcome: &str, detail: &str| {
        stats["extraction"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["outcome"] == outcome && c["detail"] == detail)
            .map_or(0, |c| c["messages"].as_u64().unwrap())
    };
    for kind in [
        "pdf", "docx", "xlsx", "pptx", "odt", "ods", "odp", "rtf", "html", "text", "csv", "zip", "message",
    ] {
        assert!(count("extracted", kind) >= 1, "{kind}: {stats}");
    }
    assert_eq!(count("extracted", "pdf"), 2, "{stats}");
    assert!(
        stats["extraction"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["outcome"] != "failed"),
        "{stats}"
    );
}

#[test]
fn hostile_attachments_are_counted_and_explained_and_nothing_else_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a");
    let mbox = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hostile-documents/hostile.mbox");
    let import = common::cmd(&archive, &["-q", "import", "--account", "h", mbox.to_str().unwrap()]);
    let (status, peak_rss, _, stderr) = common::output_with_peak_rss(import);
    assert!(status.success(), "{}", String::from_utf8_lossy(&stderr));
    // 300 MB + the largest message (the 500 MiB PDF stream is 1.5 MB compressed).
    let largest = common::web::mbox_messages(&std::fs::read(&mbox).unwrap())
        .iter()
        .map(|m| m.len() as u64)
        .max()
        .unwrap();
    assert!(
        peak_rss < (300 << 20) + largest,
        "peak RSS {} MB importing the hostile documents",
        peak_rss >> 20
    );
    // Every message is archived byte-exact and found by its body's word.
    for n in 0..6 {
        let ids = common::ok(&archive, &["search", "--format", "ids", &format!("hostilemarker{n}")]);
        assert_eq!(ids.lines().count(), 1, "hostilemarker{n}");
    }
    let verify = common::ok(&archive, &["verify"]);
    assert!(verify.contains("6 messages") && verify.contains("clean"), "{verify}");
    // Counted by `stats`, explained by `show --extraction`.
    let stats = common::stats(&archive);
    let failed = |reason: &str| {
        stats["extraction"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["outcome"] == "failed" && c["detail"] == reason)
            .map_or(0, |c| c["messages"].as_u64().unwrap())
    };
    assert_eq!(failed("inflate-limit"), 2, "the bomb and the 500 MiB stream: {stats}");
    assert_eq!(failed("depth-limit"), 1, "the ZIP 100 deep: {stats}");
    assert_eq!(failed("corrupt"), 3, "cyclic and nested PDFs, truncated DOCX: {stats}");
    for (marker, says) in [
        ("hostilemarker0", "bomb.zip  [application/octet-stream, read as zip]  failed (inflate-limit)"),
        ("hostilemarker1", "failed (depth-limit): nested deeper than 8 levels"),
        ("hostilemarker2", "cyclic.pdf  [application/octet-stream, read as pdf]  failed (corrupt): damaged: PDF: reference cycle"),
        ("hostilemarker3", "huge-stream.pdf  [application/octet-stream, read as pdf]  failed (inflate-limit)"),
        ("hostilemarker4", "truncated.docx  [application/octet-stream, read as docx]  failed (corrupt)"),
        ("hostilemarker5", "nested.pdf  [application/octet-stream, read as pdf]  failed (corrupt): damaged: PDF: objects nest deeper than 256 levels"),
    ] {
        let id = common::ok(&archive, &["search", "--format", "ids", marker]);
        let shown = common::ok(&archive, &["show", "--extraction", id.trim()]);
        assert!(shown.contains(says), "{marker}: {shown}");
    }
}

#[test]
fn attachment_text_left_out_stays_out_until_the_next_reindex() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a");
    let mbox = documents().join("messages.mbox");
    common::ok(&archive, &["-q", "import", "--account", "docs", mbox.to_str().unwrap()]);
    let found = |q: &str| common::ok(&archive, &["search", "--format", "ids", q]).lines().count();
    assert_eq!(found("att:quillorbit"), 1);
    common::ok(&archive, &["-q", "reindex", "--no-attachment-text"]);
    assert_eq!(found("att:quillorbit"), 0);
    assert_eq!(found("quillorbit"), 0);
    assert_eq!(found("subject:contract"), 1, "the rest is indexed");
    // Mail indexed later is indexed the same way.
    let later = dir.path().join("later.eml");
    std::fs::write(
        &later,
        "From: c@example.org\r\nSubject: later\r\nMessage-ID: <later@x>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
         --b\r\nContent-Type: text/plain; name=n.txt\r\nContent-Disposition: attachment; filename=n.txt\r\n\r\n\
         latecomerword\r\n--b--\r\n",
    )
    .unwrap();
    common::ok(
        &archive,
        &["-q", "import", "--account", "docs", later.to_str().unwrap()],
    );
    assert_eq!(found("subject:later"), 1);
    assert_eq!(found("att:latecomerword"), 0);
    common::ok(&archive, &["-q", "reindex"]);
    assert_eq!(found("att:quillorbit"), 1);
    assert_eq!(found("att:latecomerword"), 1);
}
