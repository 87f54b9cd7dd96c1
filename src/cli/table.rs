//! Text tables for people: columns fitted to the terminal by display width (a
//! Chinese, Japanese or Korean character takes two cells), long values cut with
//! `…` at their end, folder names cut in the middle so both ends stay readable.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Cells `s` takes on a terminal.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// The longest start of `s` that fits in `max` cells.
fn head(s: &str, max: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += c.width().unwrap_or(0);
        if used > max {
            return &s[..i];
        }
    }
    s
}

/// The longest end of `s` that fits in `max` cells.
fn tail(s: &str, max: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices().rev() {
        used += c.width().unwrap_or(0);
        if used > max {
            return &s[i + c.len_utf8()..];
        }
    }
    s
}

/// `s` padded with spaces to exactly `cells` (it must fit already).
fn pad(s: String, cells: usize) -> String {
    let w = width(&s);
    s + &" ".repeat(cells.saturating_sub(w))
}

/// `s` in exactly `cells` cells: cut at the end with `…` when too long.
pub fn fit_end(s: &str, cells: usize) -> String {
    if width(s) <= cells {
        return pad(s.to_string(), cells);
    }
    pad(format!("{}…", head(s, cells.saturating_sub(1))), cells)
}

/// `s` in exactly `cells` cells: cut in the middle with `…` when too long.
pub fn fit_middle(s: &str, cells: usize) -> String {
    if width(s) <= cells {
        return pad(s.to_string(), cells);
    }
    let room = cells.saturating_sub(1);
    let front = head(s, room / 2);
    let back = tail(s, room - width(front));
    pad(format!("{front}…{back}"), cells)
}

/// The first of `items` cut in the middle, with ` +N` when there are N more, in
/// exactly `cells` cells.
pub fn first_and_more(items: &[String], cells: usize) -> String {
    match items {
        [] => pad(String::new(), cells),
        [one] => fit_middle(one, cells),
        [first, rest @ ..] => {
            let more = format!(" +{}", rest.len());
            let room = cells.saturating_sub(width(&more));
            pad(format!("{}{more}", fit_middle(first, room).trim_end()), cells)
        }
    }
}

/// Widths of the search table's text columns for a terminal `total` cells wide
/// (DATE and ID are fixed; at least 30 cells are shared out).
#[derive(Debug, PartialEq, Eq)]
pub struct Columns {
    pub from: usize,
    pub subject: usize,
    pub folder: usize,
}

/// DATE (10), ID (12) and four gaps of two take 30 cells; FROM, SUBJECT and
/// FOLDER share the rest 24 : 48 : 18.
pub fn columns(total: usize) -> Columns {
    let rest = total.saturating_sub(30).max(30);
    let from = rest * 24 / 90;
    let folder = rest * 18 / 90;
    Columns {
        from,
        folder,
        subject: rest - from - folder,
    }
}

/// The width to fit tables to: the terminal's when standard output is one, else
/// `$COLUMNS`, else 120.
pub fn output_width() -> usize {
    terminal_columns()
        .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
        .filter(|&w| w > 0)
        .unwrap_or(120)
}

fn terminal_columns() -> Option<usize> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return None;
    }
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we own.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0).then_some(ws.ws_col as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_cut_and_padded_by_display_cells() {
        let cases = [
            ("short", 8, "short   "),
            ("exactly8", 8, "exactly8"),
            ("much too long", 8, "much to…"),
            // Two cells per character: three and … take 7 cells, padded to 8.
            ("東京大阪名古屋", 8, "東京大… "),
            ("東京大阪名古屋", 7, "東京大…"),
            ("", 3, "   "),
        ];
        for (s, cells, want) in cases {
            assert_eq!(fit_end(s, cells), want, "{s} in {cells}");
            assert_eq!(width(&fit_end(s, cells)), cells);
        }
    }

    #[test]
    fn folder_names_are_cut_in_the_middle() {
        assert_eq!(fit_middle("spamassassin/easy_ham_2", 15), "spamass…y_ham_2");
        assert_eq!(width(&fit_middle("spamassassin/easy_ham_2", 15)), 15);
        assert_eq!(fit_middle("INBOX", 8), "INBOX   ");
        assert_eq!(fit_middle("報告/二〇二四年/第一四半期", 12), "報告/…四半期");
        assert_eq!(width(&fit_middle("報告/二〇二四年/第一四半期", 12)), 12);
    }

    #[test]
    fn more_folders_are_counted() {
        let folders = ["spamassassin/easy_ham".to_string(), "Archive".into(), "Work".into()];
        let s = first_and_more(&folders, 18);
        assert_eq!(width(&s), 18, "{s:?}");
        assert!(s.trim_end().ends_with(" +2") && s.starts_with("spam"), "{s:?}");
        assert_eq!(first_and_more(&folders[1..2], 10), "Archive   ");
    }

    #[test]
    fn columns_share_the_width_and_keep_a_minimum() {
        assert_eq!(
            columns(120),
            Columns {
                from: 24,
                subject: 48,
                folder: 18
            }
        );
        let wide = columns(200);
        assert_eq!(wide.from + wide.subject + wide.folder + 30, 200);
        let narrow = columns(40);
        assert_eq!(narrow.from + narrow.subject + narrow.folder, 30);
    }
}
