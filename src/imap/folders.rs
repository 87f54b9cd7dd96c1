//! Which folders to pull: LIST results turned into [`Folder`]s (modified UTF-7
//! decoded, named relative to the personal namespace with `/` as hierarchy
//! separator, SPECIAL-USE role kept, `\Noselect` dropped), filtered by
//! `--folder`/`--exclude` globs and by namespace. Pure.

use async_imap::imap_proto::NameAttribute;

use crate::plan::mutf7;
use crate::plan::namespace::{Namespace, NamespaceKind, Namespaces};

/// One selectable folder on the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folder {
    /// The name as the server spells it (for EXAMINE).
    pub remote: String,
    /// The decoded name with `/` as hierarchy separator (the archive's mailbox name).
    pub name: String,
    /// `\Sent`, `\Trash`, … or empty.
    pub special_use: String,
    /// The namespace it lies in (personal on servers without NAMESPACE).
    pub namespace: NamespaceKind,
}

/// Builds a folder from one LIST answer, named as `namespaces` say (from the top of
/// the hierarchy when the server announced none); `None` for
/// `\Noselect`/`\NonExistent`.
pub fn folder_from_list(
    remote: &str,
    delimiter: Option<&str>,
    attrs: &[NameAttribute<'_>],
    namespaces: Option<&Namespaces>,
) -> Option<Folder> {
    let mut special_use = String::new();
    for a in attrs {
        match a {
            NameAttribute::NoSelect => return None,
            NameAttribute::Extension(e) if e.eq_ignore_ascii_case("\\NonExistent") => return None,
            NameAttribute::All => special_use = "\\All".into(),
            NameAttribute::Archive => special_use = "\\Archive".into(),
            NameAttribute::Drafts => special_use = "\\Drafts".into(),
            NameAttribute::Flagged => special_use = "\\Flagged".into(),
            NameAttribute::Junk => special_use = "\\Junk".into(),
            NameAttribute::Sent => special_use = "\\Sent".into(),
            NameAttribute::Trash => special_use = "\\Trash".into(),
            _ => {}
        }
    }
    let decoded = mutf7::decode(remote).unwrap_or_else(|_| remote.to_string());
    let listed = delimiter.and_then(|d| d.chars().next());
    let (namespace, mut ns) = match namespaces {
        Some(all) => all.of(&decoded),
        None => (NamespaceKind::Personal, Namespace::root(listed)),
    };
    ns.separator = ns.separator.or(listed);
    if namespace != NamespaceKind::Personal {
        // Another user's or a shared folder keeps its whole name.
        ns.prefix.clear();
    }
    Some(Folder {
        remote: remote.to_string(),
        name: ns.to_archive(&decoded),
        special_use,
        namespace,
    })
}

/// Whether `name` passes the include globs (all folders when there are none) and
/// none of the exclude globs.
pub fn selected(name: &str, include: &[String], exclude: &[String]) -> bool {
    (include.is_empty() || include.iter().any(|g| glob_match(g, name))) && !exclude.iter().any(|g| glob_match(g, name))
}

/// Shell-style glob: `*` any run of characters (including `/`), `?` one character,
/// everything else literal. Case-sensitive except that `INBOX` matches in any case.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    if pattern.eq_ignore_ascii_case("INBOX") {
        return name.eq_ignore_ascii_case("INBOX");
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with one backtrack point: linear in practice, never
    // exponential.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn globs() {
        let cases = [
            ("*", "a/b", true),
            ("INBOX", "inbox", true),
            ("Sent*", "Sent Items", true),
            ("Sent*", "Drafts", false),
            ("a/*/c", "a/b/c", true),
            ("a/?", "a/bc", false),
            ("*.old", "x.old", true),
            ("*a*b*c", "xaybzc", true),
            ("*a*b*c", "xaybz", false),
            ("", "", true),
            ("", "x", false),
        ];
        for (g, n, want) in cases {
            assert_eq!(glob_match(g, n), want, "{g} vs {n}");
        }
        assert!(selected("INBOX", &[], &[]));
        assert!(!selected("Trash", &[], &["Trash".into()]));
        assert!(selected("Work/a", &["Work/*".into()], &["Work/b".into()]));
        assert!(!selected("Home", &["Work/*".into()], &[]));
    }

    #[test]
    fn list_answers() {
        let f = folder_from_list("Entw&APw-rfe", Some("."), &[NameAttribute::Drafts], None).unwrap();
        assert_eq!(
            f,
            Folder {
                remote: "Entw&APw-rfe".into(),
                name: "Entwürfe".into(),
                special_use: "\\Drafts".into(),
                namespace: NamespaceKind::Personal,
            }
        );
        let f = folder_from_list("Work.2024.Q1", Some("."), &[], None).unwrap();
        assert_eq!(f.name, "Work/2024/Q1");
        assert_eq!(
            folder_from_list("[Gmail]", Some("/"), &[NameAttribute::NoSelect], None),
            None
        );
        assert_eq!(
            folder_from_list(
                "x",
                Some("/"),
                &[NameAttribute::Extension(Cow::Borrowed("\\NonExistent"))],
                None
            ),
            None
        );
        assert_eq!(folder_from_list("inbox", Some("/"), &[], None).unwrap().name, "INBOX");
        // Not valid modified UTF-7: kept as the server spelled it.
        assert_eq!(folder_from_list("a&b", None, &[], None).unwrap().name, "a&b");
    }

    #[test]
    fn list_answers_under_namespaces() {
        let courier = crate::plan::namespace::parse(b"((\"INBOX.\" \".\")) NIL ((\"#shared.\" \".\"))").unwrap();
        let f = |name: &str| folder_from_list(name, Some("."), &[], Some(&courier)).unwrap();
        assert_eq!(f("INBOX").name, "INBOX");
        assert_eq!(f("INBOX.Work.2024").name, "Work/2024");
        assert_eq!(f("INBOX.Work.2024").remote, "INBOX.Work.2024");
        assert_eq!(f("INBOX.INBOX.genie").name, "INBOX/genie");
        let shared = f("#shared.news.x");
        assert_eq!(
            (shared.name.as_str(), shared.namespace),
            ("#shared/news/x", NamespaceKind::Shared)
        );
    }

    proptest::proptest! {
        #[test]
        fn glob_never_panics(p in ".{0,12}", n in ".{0,24}") {
            let _ = glob_match(&p, &n);
        }
        #[test]
        fn star_matches_everything(n in ".{0,24}") {
            proptest::prop_assert!(glob_match("*", &n));
        }
    }
}
