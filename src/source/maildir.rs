//! Maildir and Maildir++ layout: which directories are maildirs, folder names of
//! Maildir++ subfolders, flags from file names.

use std::path::Path;

use crate::model::Flags;

/// A directory is a maildir when it has `cur` and `new` subdirectories.
pub fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir() && dir.join("new").is_dir()
}

/// Flags from a maildir file name: the info after `:2,` (or `;2,`, used where `:`
/// is not allowed in file names). Messages in `new/` have no flags.
pub fn flags_from_name(name: &str, in_new: bool) -> Flags {
    if in_new {
        return Flags::default();
    }
    match name.rfind(":2,").or_else(|| name.rfind(";2,")) {
        Some(i) => Flags::from_maildir_info(&name[i + 1..]),
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
        let f = flags_from_name("1035478339.27041_118.foo.org,S=1000,W=1030:2,RDF", false);
        assert_eq!(f.to_maildir_letters(), "DFR");
        assert_eq!(
            flags_from_name("1276533073.M242911P3632.kurkku;2,FP", false).to_maildir_letters(),
            "FP"
        );
        assert_eq!(flags_from_name("x:2,S", true), Flags::default());
    }
}
