//! Extraction as a whole, on documents made in the test.

use super::*;

fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut w = ::zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in members {
        w.start_file(*name, ::zip::write::SimpleFileOptions::default()).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn a_zip_gives_member_names_and_text_recursively() {
    let inner = zip_of(&[("deep.txt", b"innermost words")]);
    let outer = zip_of(&[
        ("a.txt", b"alpha words"),
        ("inner.zip", &inner),
        ("pic.png", b"\x89PNG\r\n"),
    ]);
    let e = document(&outer, "outer.zip", "application/zip", &Budget::default());
    for w in [
        "a.txt",
        "alpha words",
        "inner.zip",
        "deep.txt",
        "innermost words",
        "pic.png",
    ] {
        assert!(e.text.contains(w), "{w} in {:?}", e.text);
    }
    let outcome = |p: &str| e.parts.iter().find(|r| r.path == p).map(|r| r.outcome.code());
    assert_eq!(outcome("outer.zip"), Some("extracted"));
    assert_eq!(outcome("outer.zip/inner.zip/deep.txt"), Some("extracted"));
    assert_eq!(outcome("outer.zip/pic.png"), Some("skipped"));
}

#[test]
fn nesting_past_the_depth_limit_fails_that_level_only() {
    let mut z = zip_of(&[("bottom.txt", b"bottom")]);
    for _ in 0..5 {
        z = zip_of(&[("next.zip", &z)]);
    }
    let budget = Budget {
        depth: 3,
        ..Budget::default()
    };
    let e = document(&z, "top.zip", "", &budget);
    assert!(
        !e.text.contains("bottom\n") && !e.text.contains(" bottom"),
        "{:?}",
        e.text
    );
    assert!(e
        .parts
        .iter()
        .any(|p| p.outcome == Outcome::Failed(Failure::Depth { limit: 3 })));
    assert_eq!(
        e.parts.last().unwrap().outcome.code(),
        "extracted",
        "the top level keeps its text"
    );
}

#[test]
fn a_member_that_inflates_past_the_ratio_is_refused() {
    let zeros = vec![0u8; 8 << 20];
    let z = zip_of(&[("zeros.txt", &zeros)]);
    let e = document(&z, "bomb.zip", "", &Budget::default());
    assert!(
        matches!(e.parts.last().unwrap().outcome, Outcome::Failed(Failure::Ratio { .. })),
        "{:?}",
        e.parts
    );
}

#[test]
fn the_text_budget_cuts_and_says_so() {
    let budget = Budget {
        text_bytes: 10,
        ..Budget::default()
    };
    let e = document("ééééééééé words".as_bytes(), "a.txt", "text/plain", &budget);
    assert!(e.text.len() <= 10 && e.text.starts_with("éé"));
    assert_eq!(
        e.parts[0].outcome,
        Outcome::Text {
            bytes: e.text.len(),
            truncated: true
        }
    );
}

#[test]
fn damaged_documents_fail_with_a_reason_and_unknown_types_are_skipped() {
    let cases: &[(&[u8], &str, &str, &str)] = &[
        (b"%PDF-1.4 garbage", "a.pdf", "application/pdf", "corrupt"),
        (b"PK\x03\x04 truncated", "a.docx", "", "corrupt"),
        (b"\x89PNG\r\n\x1a\n", "a.png", "image/png", "skipped"),
    ];
    for (bytes, name, mime, want) in cases {
        let e = document(bytes, name, mime, &Budget::default());
        let got = match &e.parts[0].outcome {
            Outcome::Failed(f) => f.code(),
            o => o.code(),
        };
        assert_eq!(got, *want, "{name}: {:?}", e.parts);
    }
}
