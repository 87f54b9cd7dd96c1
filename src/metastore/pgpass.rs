//! Finding a PostgreSQL password the way libpq does, without I/O: `PGPASSWORD`
//! first, then the password file (`PGPASSFILE`, default `~/.pgpass`), whose lines
//! are `host:port:database:user:password` with `*` for any value and `\` escaping
//! `:` and `\`. The caller reads the environment and the file; this module only
//! decides.

/// What a password is looked up for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted<'a> {
    pub host: &'a str,
    pub port: u16,
    pub database: &'a str,
    pub user: &'a str,
}

/// The password of the first line of a password file that matches `wanted`.
pub fn lookup(file: &str, wanted: &Wanted<'_>) -> Option<String> {
    let port = wanted.port.to_string();
    file.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .filter_map(fields)
        .find(|f| {
            let want = [wanted.host, port.as_str(), wanted.database, wanted.user];
            f[..4].iter().zip(want).all(|(have, want)| have == "*" || have == want)
        })
        .map(|mut f| f.pop().expect("five fields"))
}

/// The five fields of a line (`None` for a line with fewer).
fn fields(line: &str) -> Option<Vec<String>> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.last_mut()?.push(chars.next().unwrap_or('\\')),
            ':' if out.len() < 5 => out.push(String::new()),
            c => out.last_mut()?.push(c),
        }
    }
    (out.len() == 5).then_some(out)
}

/// Whether a password file's permission bits keep it to its owner (libpq ignores
/// one that others may read).
pub fn private_enough(mode: u32) -> bool {
    mode & 0o077 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want() -> Wanted<'static> {
        Wanted {
            host: "db.example",
            port: 5432,
            database: "mail",
            user: "vault",
        }
    }

    #[test]
    fn the_first_matching_line_wins_and_stars_match_anything() {
        let file = "# comment\n\nother:5432:mail:vault:no\ndb.example:5432:mail:vault:first\n*:*:*:*:second\n";
        assert_eq!(lookup(file, &want()).as_deref(), Some("first"));
        let file = "db.example:5433:mail:vault:no\n*:*:mail:*:star\n";
        assert_eq!(lookup(file, &want()).as_deref(), Some("star"));
        assert_eq!(lookup("db.example:5433:mail:vault:no\n", &want()), None);
    }

    #[test]
    fn escaped_colons_and_backslashes_are_part_of_a_field() {
        let file = "db.example:5432:mail:vault:pa\\:ss\\\\word:with:colons\n";
        assert_eq!(lookup(file, &want()).as_deref(), Some("pa:ss\\word:with:colons"));
        let file = "db.example:5432:ma\\:il:vault:x\n";
        assert_eq!(lookup(file, &want()), None);
    }

    #[test]
    fn short_lines_are_skipped() {
        assert_eq!(
            lookup("db.example:5432:mail\n*:*:*:*:ok\n", &want()).as_deref(),
            Some("ok")
        );
    }

    #[test]
    fn only_an_owner_only_file_is_used() {
        assert!(private_enough(0o600));
        assert!(private_enough(0o400));
        assert!(!private_enough(0o640));
        assert!(!private_enough(0o604));
    }
}
