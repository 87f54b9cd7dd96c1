//! Where a source folder goes on a replay target — a pure function of the folder,
//! the user's `--map` rules and the target's folder list, tested by a table and a
//! property.
//!
//! ```text
//! 1. An explicit rule FROM=TO whose FROM is the folder or one of its ancestors wins
//!    (the longest such FROM): "Work=Jobs" sends "Work" to "Jobs" and "Work/2001" to
//!    "Jobs/2001". A rule to the empty name is not allowed (parse_rule refuses it).
//! 2. Unless role mapping is off (`--no-role-map`), a folder with a SPECIAL-USE role (\Sent, \Drafts, \Trash, \Junk, \Archive,
//!    \All) — the server's, or guessed from a well-known name ("Sent Items",
//!    "Deleted Messages", "[Gmail]/Spam", …) — goes to the target folder holding that
//!    role, whatever it is called. Without such a folder on the target it keeps its
//!    name (and is created).
//! 3. INBOX, in any case spelling, goes to INBOX.
//! 4. Anything else keeps its name. Names are `/`-separated in the archive, relative
//!    to the personal namespace; on the target they are joined with the target's
//!    separator and put under its personal prefix (`INBOX.` on many servers), and a
//!    separator character inside one name component is replaced by `_` (reported),
//!    since it would otherwise split the folder in two.
//! 5. The result is created on the target when no target folder has that name.
//! ```

use crate::plan::namespace::Namespace;

/// SPECIAL-USE roles that identify a folder across servers (RFC 6154).
pub const ROLES: [&str; 6] = ["\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", "\\All"];

/// One folder as the target lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetFolder {
    /// The decoded name, components joined by the target's separator.
    pub name: String,
    /// Its SPECIAL-USE role, or empty.
    pub special_use: String,
}

/// The target as a mapping needs it: its personal namespace (prefix and separator)
/// and the folders it lists there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub namespace: Namespace,
    pub folders: Vec<TargetFolder>,
}

impl Target {
    /// The hierarchy separator names are joined with.
    pub fn separator(&self) -> char {
        self.namespace.separator.unwrap_or('/')
    }
}

/// How folders are mapped: the user's rules, and whether SPECIAL-USE roles are
/// matched (step 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub rules: Vec<Rule>,
    pub roles: bool,
}

impl Default for Mapping {
    fn default() -> Mapping {
        Mapping {
            rules: Vec::new(),
            roles: true,
        }
    }
}

/// An explicit `--map FROM=TO` rule (both `/`-separated archive names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub from: String,
    pub to: String,
}

/// Why a `--map` argument is not a rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--map {arg:?}: {why} (expected FROM=TO, e.g. \"Sent Items=Sent\")")]
pub struct RuleError {
    pub arg: String,
    pub why: &'static str,
}

/// Parses `FROM=TO`; surrounding `/` are dropped from both sides.
pub fn parse_rule(arg: &str) -> Result<Rule, RuleError> {
    let err = |why| RuleError { arg: arg.into(), why };
    let (from, to) = arg.split_once('=').ok_or_else(|| err("no '='"))?;
    let (from, to) = (from.trim_matches('/'), to.trim_matches('/'));
    if from.is_empty() {
        return Err(err("empty FROM"));
    }
    if to.is_empty() {
        return Err(err("empty TO"));
    }
    Ok(Rule {
        from: from.into(),
        to: to.into(),
    })
}

/// Where one folder goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapped {
    /// The target folder's name, joined with the target's separator.
    pub name: String,
    /// No target folder has that name: it is to be created.
    pub create: bool,
    /// Which step decided, and anything changed on the way (for the plan and report).
    pub why: String,
}

/// The SPECIAL-USE role a folder is commonly known by when its server does not say.
pub fn role_from_name(name: &str) -> Option<&'static str> {
    let last = name.rsplit('/').next().unwrap_or(name).to_lowercase();
    let gmail = name.to_lowercase().starts_with("[gmail]/") || name.to_lowercase().starts_with("[google mail]/");
    Some(match last.as_str() {
        "sent" | "sent items" | "sent messages" | "sent mail" | "sent-mail" | "sent_items" | "sent_mail" => "\\Sent",
        "drafts" | "draft" => "\\Drafts",
        "trash" | "deleted items" | "deleted messages" | "deleted_items" | "bin" => "\\Trash",
        "junk" | "spam" | "junk e-mail" | "junk email" | "bulk mail" => "\\Junk",
        "archive" | "archives" => "\\Archive",
        "all mail" if gmail => "\\All",
        _ => return None,
    })
}

/// Maps one source folder (`/`-separated archive name, its role or empty).
pub fn map_folder(source: &str, special_use: &str, how: &Mapping, target: &Target) -> Mapped {
    let mut why = String::new();
    let separator = target.separator();
    // 1.
    let rule = how
        .rules
        .iter()
        .filter(|r| source == r.from || source.starts_with(&format!("{}/", r.from)))
        .max_by_key(|r| r.from.len());
    let archive_name: String = if let Some(r) = rule {
        why.push_str(&format!("--map {}={}", r.from, r.to));
        format!("{}{}", r.to, &source[r.from.len()..])
    } else {
        // 2.
        let role = if !how.roles {
            None
        } else if special_use.is_empty() {
            role_from_name(source)
        } else {
            ROLES.iter().copied().find(|r| r.eq_ignore_ascii_case(special_use))
        };
        if let Some(holder) = role.and_then(|r| target.folders.iter().find(|t| t.special_use.eq_ignore_ascii_case(r))) {
            return Mapped {
                name: holder.name.clone(),
                create: false,
                why: format!("{} on both", role.unwrap_or_default()),
            };
        }
        // 3.
        if source.eq_ignore_ascii_case("INBOX") {
            return Mapped {
                name: "INBOX".into(),
                create: false,
                why: "INBOX".into(),
            };
        }
        why.push_str("same name");
        source.to_string()
    };
    // 4.
    let mut replaced = false;
    let parts: Vec<String> = archive_name
        .split('/')
        .map(|c| {
            if separator != '/' && c.contains(separator) {
                replaced = true;
                c.replace(separator, "_")
            } else {
                c.to_string()
            }
        })
        .collect();
    if replaced {
        why.push_str(&format!("; '{separator}' inside a name became '_'"));
    }
    let name = target.namespace.to_server(&parts);
    // 5.
    let create = !name.eq_ignore_ascii_case("INBOX") && !target.folders.iter().any(|t| t.name == name);
    Mapped { name, create, why }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(name: &str, role: &str) -> TargetFolder {
        TargetFolder {
            name: name.into(),
            special_use: role.into(),
        }
    }

    fn rules(specs: &[&str]) -> Mapping {
        Mapping {
            rules: specs.iter().map(|s| parse_rule(s).unwrap()).collect(),
            roles: true,
        }
    }

    fn on(folders: &[TargetFolder], prefix: &str, sep: char) -> Target {
        Target {
            namespace: Namespace {
                prefix: prefix.into(),
                separator: Some(sep),
            },
            folders: folders.to_vec(),
        }
    }

    #[test]
    fn mapping_table() {
        let target = vec![
            t("INBOX", ""),
            t("Sent Items", "\\Sent"),
            t("Deleted Items", "\\Trash"),
            t("Junk", "\\Junk"),
            t("Projects", ""),
        ];
        let r = rules(&["Work=Jobs", "Work/Old=Attic", "Misc=Projects"]);
        // (source, role, separator) → (name, create)
        let cases: &[(&str, &str, char, &str, bool)] = &[
            ("INBOX", "", '/', "INBOX", false),
            ("inbox", "", '.', "INBOX", false),
            ("Sent", "\\Sent", '/', "Sent Items", false),
            ("Gesendet", "\\Sent", '.', "Sent Items", false),
            ("sent_items", "", '/', "Sent Items", false),
            ("[Gmail]/Spam", "", '/', "Junk", false),
            ("Trash", "", '.', "Deleted Items", false),
            ("Drafts", "\\Drafts", '/', "Drafts", true),
            ("Work", "", '/', "Jobs", true),
            ("Work/2001", "", '.', "Jobs.2001", true),
            ("Work/Old/x", "", '/', "Attic/x", true),
            ("Workshop", "", '/', "Workshop", true),
            ("Misc", "", '/', "Projects", false),
            ("a/b.c", "", '.', "a.b_c", true),
            ("a/b.c", "", '/', "a/b.c", true),
            ("Réunions/Été", "", '.', "Réunions.Été", true),
        ];
        for (src, role, sep, name, create) in cases {
            let m = map_folder(src, role, &r, &on(&target, "", *sep));
            assert_eq!(
                (m.name.as_str(), m.create),
                (*name, *create),
                "{src} {role} {sep}: {m:?}"
            );
        }
        // A rule beats a role.
        let m = map_folder("Sent", "\\Sent", &rules(&["Sent=Old Sent"]), &on(&target, "", '/'));
        assert_eq!(m.name, "Old Sent");
        assert!(map_folder("a/b.c", "", &rules(&[]), &on(&target, "", '.'))
            .why
            .contains("became '_'"));
    }

    #[test]
    fn folders_go_under_the_targets_personal_prefix() {
        let courier = on(
            &[t("INBOX", ""), t("INBOX.Sent", "\\Sent"), t("INBOX.Work", "")],
            "INBOX.",
            '.',
        );
        let none = rules(&[]);
        // (source, role) → (name, create)
        let cases: &[(&str, &str, &str, bool)] = &[
            ("INBOX", "", "INBOX", false),
            ("Work", "", "INBOX.Work", false),
            ("Work/2024", "", "INBOX.Work.2024", true),
            ("_sent_mail", "", "INBOX._sent_mail", true),
            ("sent_items", "", "INBOX.Sent", false),
            ("INBOX/genie", "", "INBOX.INBOX.genie", true),
        ];
        for (src, role, name, create) in cases {
            let m = map_folder(src, role, &none, &courier);
            assert_eq!((m.name.as_str(), m.create), (*name, *create), "{src}: {m:?}");
        }
        let m = map_folder("Work", "", &rules(&["Work=Jobs/Old"]), &courier);
        assert_eq!(m.name, "INBOX.Jobs.Old");
    }

    #[test]
    fn without_role_mapping_every_folder_keeps_its_name() {
        let target = on(&[t("INBOX", ""), t("Sent", "\\Sent"), t("Trash", "\\Trash")], "", '/');
        let keep = Mapping {
            rules: Vec::new(),
            roles: false,
        };
        for (src, role, name, create) in [
            ("sent_items", "", "sent_items", true),
            ("Sent Items", "\\Sent", "Sent Items", true),
            ("Sent", "\\Sent", "Sent", false),
            ("deleted_items", "", "deleted_items", true),
            ("inbox", "", "INBOX", false),
        ] {
            let m = map_folder(src, role, &keep, &target);
            assert_eq!((m.name.as_str(), m.create), (name, create), "{src}: {m:?}");
        }
        assert_eq!(map_folder("sent_items", "", &Mapping::default(), &target).name, "Sent");
    }

    #[test]
    fn rule_parsing() {
        assert_eq!(
            parse_rule("/Sent Items/=Sent"),
            Ok(Rule {
                from: "Sent Items".into(),
                to: "Sent".into()
            })
        );
        assert!(parse_rule("Sent").is_err());
        assert!(parse_rule("=x").is_err());
        assert!(parse_rule("x=").is_err());
        assert!(parse_rule("x=/").is_err());
        assert!(parse_rule("a=b=c").is_ok_and(|r| r.to == "b=c"));
    }

    #[test]
    fn roles_from_names() {
        assert_eq!(role_from_name("Sent Messages"), Some("\\Sent"));
        assert_eq!(role_from_name("Archive/Sent"), Some("\\Sent"));
        assert_eq!(role_from_name("[Gmail]/All Mail"), Some("\\All"));
        assert_eq!(role_from_name("All Mail"), None);
        assert_eq!(role_from_name("Sentinel"), None);
    }

    proptest! {
        /// Whatever the names, the result never has an empty component, never
        /// carries the separator inside a source component, and is created exactly
        /// when the target lacks it.
        #[test]
        fn mapped_names_are_well_formed(
            comps in proptest::collection::vec("[a-zA-Z0-9 ._-]{1,8}", 1..4),
            sep in prop::sample::select(vec!['/', '.']),
            existing in proptest::collection::vec("[a-z]{1,4}", 0..4),
        ) {
            let src = comps.join("/");
            let folders: Vec<TargetFolder> = existing.iter().map(|n| t(n, "")).collect();
            let target = on(&folders, "", sep);
            let m = map_folder(&src, "", &Mapping::default(), &target);
            prop_assert!(m.name.split(sep).all(|c| !c.is_empty()));
            if role_from_name(&src).is_none() && !src.eq_ignore_ascii_case("inbox") {
                prop_assert_eq!(m.name.split(sep).count(), comps.len());
                prop_assert_eq!(m.create, !folders.iter().any(|t| t.name == m.name));
            }
        }
    }
}
