use super::*;

fn t(field: Option<TextField>, text: &str) -> Expr {
    Expr::Text {
        field,
        text: text.into(),
    }
}
fn x(field: ExactField, value: &str) -> Expr {
    Expr::Exact {
        field,
        value: value.into(),
    }
}
const D2020: i64 = 1577836800; // 2020-01-01
const D2021: i64 = 1609459200;

#[test]
fn parse_table() {
    use ExactField::*;
    use TextField::*;
    let cases: Vec<(&str, Expr)> = vec![
        ("hello", t(None, "hello")),
        ("*", Expr::All),
        (" * ", Expr::All),
        ("\"exact phrase\"", t(None, "exact phrase")),
        ("a b", Expr::And(vec![t(None, "a"), t(None, "b")])),
        ("a AND b", Expr::And(vec![t(None, "a"), t(None, "b")])),
        (
            "a OR b c",
            Expr::Or(vec![t(None, "a"), Expr::And(vec![t(None, "b"), t(None, "c")])]),
        ),
        ("-spam", Expr::Not(Box::new(t(None, "spam")))),
        ("NOT from:bob", Expr::Not(Box::new(t(Some(From), "bob")))),
        (
            "(a OR b) c",
            Expr::And(vec![Expr::Or(vec![t(None, "a"), t(None, "b")]), t(None, "c")]),
        ),
        ("from:alice@example.com", t(Some(From), "alice@example.com")),
        ("To:bob", t(Some(To), "bob")),
        ("cc:x bcc:y", Expr::And(vec![t(Some(Cc), "x"), t(Some(Bcc), "y")])),
        ("subject:\"quarterly report\"", t(Some(Subject), "quarterly report")),
        ("body:café", t(Some(Body), "café")),
        ("list:usrp-users", t(Some(List), "usrp-users")),
        ("filename:report.pdf", t(Some(Filename), "report.pdf")),
        ("att:invoice", t(Some(Attachment), "invoice")),
        ("attachment:\"net 30\"", t(Some(Attachment), "net 30")),
        ("msgid:<A@B>", x(MsgId, "a@b")),
        ("refs:<Root@B>", x(Refs, "root@b")),
        ("thread:3F2A9C01D4E5B6A7", x(Thread, "3f2a9c01d4e5b6a7")),
        ("tag:Case-42", Expr::Tagged("case-42".into())),
        ("folder:INBOX", x(Folder, "inbox")),
        ("account:Work", x(Account, "work")),
        ("mime:application/PDF", x(Mime, "application/pdf")),
        ("flag:\\Seen", x(Flag, "seen")),
        ("has:attachment", x(Has, "attachment")),
        ("is:unread", Expr::Not(Box::new(x(Flag, "seen")))),
        ("is:flagged", x(Flag, "flagged")),
        (
            "date:2020",
            Expr::Date {
                from: Some(D2020),
                to: Some(D2021),
            },
        ),
        (
            "date:2020-01-01..2020-12",
            Expr::Date {
                from: Some(D2020),
                to: Some(D2021),
            },
        ),
        (
            "date:2020..",
            Expr::Date {
                from: Some(D2020),
                to: None,
            },
        ),
        (
            "after:2020",
            Expr::Date {
                from: Some(D2020),
                to: None,
            },
        ),
        (
            "before:2021-01-01",
            Expr::Date {
                from: None,
                to: Some(D2021),
            },
        ),
        (
            "date:2020-02",
            Expr::Date {
                from: Some(1580515200),
                to: Some(1583020800),
            },
        ),
        (
            "size:>1M",
            Expr::Size {
                min: Some((1 << 20) + 1),
                max: None,
            },
        ),
        (
            "size:<10k",
            Expr::Size {
                min: None,
                max: Some(10 * 1024 - 1),
            },
        ),
        (
            "size:>=5",
            Expr::Size {
                min: Some(5),
                max: None,
            },
        ),
        (
            "size:1k..2k",
            Expr::Size {
                min: Some(1024),
                max: Some(2048),
            },
        ),
        ("\"AND\"", t(None, "AND")),
        ("東京", t(None, "東京")),
    ];
    for (q, want) in cases {
        assert_eq!(parse(q), Ok(want), "{q}");
    }
}

#[test]
fn relative_dates_count_back_from_the_given_day() {
    let today = chrono::NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
    let day = |y, m, d| {
        chrono::NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp()
    };
    let span = |from, to| Expr::Date { from, to };
    let cases = [
        ("date:today", span(Some(day(2026, 3, 10)), Some(day(2026, 3, 11)))),
        ("date:yesterday", span(Some(day(2026, 3, 9)), Some(day(2026, 3, 10)))),
        ("date:3d", span(Some(day(2026, 3, 7)), Some(day(2026, 3, 11)))),
        ("date:2w..", span(Some(day(2026, 2, 24)), None)),
        (
            "date:1m..yesterday",
            span(Some(day(2026, 2, 10)), Some(day(2026, 3, 10))),
        ),
        ("after:1y", span(Some(day(2025, 3, 10)), None)),
        ("before:6m", span(None, Some(day(2025, 9, 10)))),
        (
            "date:2026-03..today",
            span(Some(day(2026, 3, 1)), Some(day(2026, 3, 11))),
        ),
    ];
    for (q, want) in cases {
        assert_eq!(parse_on(q, today), Ok(want), "{q}");
    }
    for bad in ["date:3x", "date:w", "date:99999999999d", "date:-3d"] {
        let e = parse_on(bad, today).unwrap_err().to_string();
        assert!(e.contains("not a date") && e.contains("2w"), "{bad}: {e}");
    }
}

#[test]
fn error_table() {
    let cases: Vec<(&str, usize, &str)> = vec![
        ("from:", 1, "from: needs a value"),
        ("a from: b", 3, "from: needs a value"),
        ("date:2020-13-45..x", 6, "not a date"),
        ("date:2020..2020-02-30", 12, "not a date"),
        ("(a OR b", 1, "never closed"),
        ("a OR b)", 7, "')' without '('"),
        ("()", 1, "empty parentheses"),
        ("nosuch:x", 1, "unknown field nosuch"),
        ("size:>lots", 7, "not a size"),
        ("is:weird", 4, "is:weird is not known"),
        ("thread:<a@b>", 8, "not a thread id"),
        ("tag:a*b", 5, "is not a tag"),
        ("\"open", 1, "unterminated quote"),
        ("", 1, "empty query"),
        ("a OR", 5, "ends where a term was expected"),
        ("OR a", 1, "AND/OR needs a term"),
        ("-", 1, "unknown"),
    ];
    for (q, column, text) in cases {
        match parse(q) {
            Err(e) => {
                if text != "unknown" {
                    assert_eq!(e.column, column, "{q}: {e}");
                    assert!(e.to_string().contains(text), "{q}: {e}");
                }
                assert!(!e.to_string().contains('\n'), "one line: {e}");
            }
            Ok(x) if text == "unknown" => {
                let _ = x; // a lone '-' is a word; that is fine
            }
            Ok(x) => panic!("{q} parsed as {x:?}"),
        }
    }
}

proptest::proptest! {
    #[test]
    fn never_panics(q in "[a-z:()\" <>=.\\-0-9A-Z]{0,40}") {
        let _ = parse(&q);
    }
}

#[test]
fn deep_nesting_is_refused_with_its_column_not_a_stack_overflow() {
    // Run on a small stack, as a search request thread might be: the bound must hold
    // well below the 8 MiB main thread's stack.
    let deep = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let parens = format!("{}x", "(".repeat(100_000));
            let minus = format!("{}x", "-".repeat(100_000));
            let nots = format!("{}x", "NOT ".repeat(100_000));
            [parse(&parens), parse(&minus), parse(&nots)]
        })
        .expect("thread")
        .join()
        .expect("no stack overflow");
    for (e, column) in deep.into_iter().zip([MAX_DEPTH + 1, MAX_DEPTH + 1, MAX_DEPTH * 4 + 1]) {
        let e = e.expect_err("too deep");
        assert_eq!(e.column, column, "{e}");
        assert!(e.to_string().contains("more than 64 deep"), "{e}");
    }
    // At the bound itself the query is fine.
    let ok = format!("{}x{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert_eq!(parse(&ok), Ok(t(None, "x")));
}
