//! Maildir and Maildir++ layout: which directories are maildirs, folder names of
//! Maildir++ subfolders, flags from file names.

use std::path::Path;

use crate::model::Flags;

/// A directory is a maildir when it has `cur` and `new` subdirectories.
pub fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir() && dir.join("new").is_dir()
}

/// The keyword file of a maildir (Dovecot's convention): line `N name` says the
/// info letter `a` + N (N from 0 to 25) stands for the keyword `name`.
pub const KEYWORDS_FILE: &str = "dovecot-keywords";

/// Reads a [`KEYWORDS_FILE`]'s text: the keyword of each letter `a`..`z` (lines
/// that are not `N name` with N below 26 are ignored).
pub fn parse_keywords(text: &str) -> Vec<Option<String>> {
    let mut by_letter = vec![None; 26];
    for line in text.lines() {
        let Some((n, name)) = line.split_once(' ') else {
            continue;
        };
        if let (Ok(n), name) = (n.parse::<usize>(), name.trim()) {
            if n < 26 && !name.is_empty() && !name.contains(char::is_whitespace) {
                by_letter[n] = Some(name.to_string());
            }
        }
    }
    by_letter
}

/// A [`KEYWORDS_FILE`]'s text for `keywords`, the first standing for `a`.
pub fn keywords_file(keywords: &[String]) -> String {
    keywords.iter().enumerate().map(|(n, k)| format!("{n} {k}\n")).collect()
}

/// Flags from a maildir file name: the info after `:2,` (or `;2,`, used where `:`
/// is not allowed in file names), its lower-case letters read as the keywords of
/// `keywords` ([`parse_keywords`]). Messages in `new/` have no flags.
pub fn flags_from_name(name: &str, in_new: bool, keywords: &[Option<String>]) -> Flags {
    if in_new {
        return Flags::default();
    }
    match name.rfind(":2,").or_else(|| name.rfind(";2,")) {
        Some(i) => {
            let info = &name[i + 1..];
            let mut f = Flags::from_maildir_info(info);
            for c in info.trim_start_matches("2,").chars().filter(char::is_ascii_lowercase) {
                if let Some(Some(k)) = keywords.get(usize::from(c as u8 - b'a')) {
                    f.add_keyword(k);
                }
            }
            f
        }
        None => Flags::default(),
    }
}

/// The folder name of a Maildir++ subfolder directory (`.Sent.2020` → `Sent/2020`);
/// `None` for directories that are not subfolders.
pub fn subfolder_name(dir_name: &str) -> Option<String> {
    let rest = dir_name.strip_prefix('.')?;
    if rest.is_empty() || rest == "." {
        return None;
    }
    Some(rest.split('.').collect::<Vec<_>>().join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_table() {
        assert_eq!(
            subfolder_name(".My Folder.Nested Folder").as_deref(),
            Some("My Folder/Nested Folder")
        );
        assert_eq!(subfolder_name("cur"), None);
        assert_eq!(subfolder_name(".."), None);
        let f = flags_from_name("1035478339.27041_118.foo.org,S=1000,W=1030:2,RDF", false, &[]);
        assert_eq!(f.to_maildir_letters(), "DFR");
        assert_eq!(
            flags_from_name("1276533073.M242911P3632.kurkku;2,FP", false, &[]).to_maildir_letters(),
            "FP"
        );
        assert_eq!(flags_from_name("x:2,S", true, &[]), Flags::default());
    }

    #[test]
    fn keyword_letters_name_the_keywords_file_entries() {
        let kw = parse_keywords("0 case-42\n1 todo\nnot a line\n30 far\n3 $Junk\n");
        assert_eq!(kw[0].as_deref(), Some("case-42"));
        assert_eq!(kw[3].as_deref(), Some("$Junk"));
        assert_eq!(kw[2], None);
        // c has no entry: no keyword.
        let f = flags_from_name("1.M2P3.host,S=10:2,Sabcd", false, &kw);
        assert_eq!(f.keywords, ["case-42", "todo", "$Junk"]);
        assert_eq!(f.system, Flags::SEEN);
        assert_eq!(keywords_file(&["a".into(), "b".into()]), "0 a\n1 b\n");
        assert_eq!(parse_keywords(&keywords_file(&["x".into()]))[0].as_deref(), Some("x"));
    }
}
