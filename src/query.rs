//! The search query language, parsed into an expression tree (pure, no I/O).
//!
//! ```text
//! query    := or
//! or       := and ("OR" and)*
//! and      := unary (["AND"] unary)*
//! unary    := ("NOT" | "-") unary | "(" or ")" | term
//! term     := [field ":"] (word | "quoted phrase")
//! ```
//!
//! Fields: `from: to: cc: bcc: subject: body: list: filename:`, `att:` (text
//! inside attachments; also `attachment:`) (words, matched
//! like free text: case- and accent-insensitive, CJK by character pairs);
//! `msgid: refs: folder: account: mime: flag:` (whole values, case-insensitive);
//! `date:A..B`, `after:`, `before:` (YYYY, YYYY-MM or YYYY-MM-DD; either side of
//! `..` may be empty); `size:>1M`, `size:<10k`, `size:>=N`, `size:A..B` (k, M, G =
//! 1024, 1024², 1024³); `has:attachment`; `is:unread|read|flagged|answered|draft|deleted`;
//! `is:held`, `hold:NAME` (legal holds, expanded by [`expand_holds`]).
//! Words without a field search subject, body, from, to, cc, attachment names
//! and the text inside attachments.
//! Dates are UTC; `after:X` is on or after the start of X, `before:X` strictly
//! before the start of X, `date:X` anywhere within X.

use chrono::{Datelike, NaiveDate};
use thiserror::Error;

/// Fields matched word by word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextField {
    From,
    To,
    Cc,
    Bcc,
    Subject,
    Body,
    List,
    Filename,
    /// Text inside attachments.
    Attachment,
}

/// Fields matched as whole values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExactField {
    MsgId,
    /// A Message-ID named in In-Reply-To or References.
    Refs,
    /// A thread's key (`crate::thread::key`).
    Thread,
    Folder,
    Account,
    Mime,
    Flag,
    Has,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// Every message (the query `*`).
    All,
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// Words or a phrase; `field: None` = the default fields.
    Text {
        field: Option<TextField>,
        text: String,
    },
    Exact {
        field: ExactField,
        value: String,
    },
    /// Unix seconds, `from` inclusive, `to` exclusive.
    Date {
        from: Option<i64>,
        to: Option<i64>,
    },
    /// Bytes, both inclusive.
    Size {
        min: Option<u64>,
        max: Option<u64>,
    },
    /// Under a legal hold: `is:held` (any hold, `None`) or `hold:NAME`. Holds are
    /// queries kept in the archive; [`expand_holds`] replaces this with theirs
    /// before a search (unexpanded, it matches nothing).
    Held(Option<String>),
    /// `tag:NAME` (lower-cased). Tags are kept in the archive's metadata;
    /// [`expand_tags`] replaces this with the tagged messages before a search
    /// (unexpanded, it matches nothing).
    Tagged(String),
    /// These messages (what [`expand_tags`] puts in place of a tag; never parsed).
    Ids(Vec<crate::model::MessageId>),
}

impl Expr {
    /// The tags the query names, each once, in order of first mention.
    pub fn tag_names(&self) -> Vec<String> {
        fn walk(e: &Expr, out: &mut Vec<String>) {
            match e {
                Expr::Tagged(t) if !out.contains(t) => out.push(t.clone()),
                Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| walk(e, out)),
                Expr::Not(e) => walk(e, out),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }

    /// Whether the query refers to legal holds anywhere.
    pub fn mentions_holds(&self) -> bool {
        match self {
            Expr::Held(_) => true,
            Expr::And(v) | Expr::Or(v) => v.iter().any(Expr::mentions_holds),
            Expr::Not(e) => e.mentions_holds(),
            _ => false,
        }
    }
}

/// Replaces every [`Expr::Held`] with the queries of the holds it names (`holds`:
/// name and parsed query). An unknown hold name is an error; `is:held` with no
/// holds matches nothing.
pub fn expand_holds(expr: Expr, holds: &[(String, Expr)]) -> Result<Expr, QueryError> {
    Ok(match expr {
        Expr::Held(None) if holds.is_empty() => Expr::Held(None),
        Expr::Held(None) => Expr::Or(holds.iter().map(|(_, e)| e.clone()).collect()),
        Expr::Held(Some(name)) => match holds.iter().find(|(n, _)| *n == name) {
            Some((_, e)) => e.clone(),
            None => {
                return err(
                    0,
                    format!("hold:{name}: there is no legal hold named {name:?} (see `mailvault hold list`)"),
                )
            }
        },
        Expr::And(v) => Expr::And(
            v.into_iter()
                .map(|e| expand_holds(e, holds))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(v) => Expr::Or(
            v.into_iter()
                .map(|e| expand_holds(e, holds))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(e) => Expr::Not(Box::new(expand_holds(*e, holds)?)),
        other => other,
    })
}

/// Replaces every [`Expr::Tagged`] with the messages `tagged` lists for it; a
/// tag it does not list is an error (so a query is never run with a tag left
/// unresolved, which would match nothing).
pub fn expand_tags(
    expr: Expr,
    tagged: &std::collections::HashMap<String, Vec<crate::model::MessageId>>,
) -> Result<Expr, QueryError> {
    let each =
        |v: Vec<Expr>| -> Result<Vec<Expr>, QueryError> { v.into_iter().map(|e| expand_tags(e, tagged)).collect() };
    Ok(match expr {
        Expr::Tagged(t) => match tagged.get(&t) {
            Some(ids) => Expr::Ids(ids.clone()),
            None => return err(0, format!("tag:{t}: the archive's tags were not read for this search")),
        },
        Expr::And(v) => Expr::And(each(v)?),
        Expr::Or(v) => Expr::Or(each(v)?),
        Expr::Not(e) => Expr::Not(Box::new(expand_tags(*e, tagged)?)),
        other => other,
    })
}

/// A query that could not be parsed: what is wrong, and where (1-based column).
#[derive(Debug, Error, PartialEq, Eq)]
#[error("query error at column {column}: {message}")]
pub struct QueryError {
    pub column: usize,
    pub message: String,
}

fn err<T>(pos: usize, message: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError {
        column: pos + 1,
        message: message.into(),
    })
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Minus,
    /// `field:` immediately followed by its value.
    Field(String, Value),
    Word(Value),
}

#[derive(Clone, Debug, PartialEq)]
struct Value {
    text: String,
    pos: usize,
}

fn lex(input: &str) -> Result<Vec<(usize, Tok)>, QueryError> {
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        match c {
            '(' => {
                out.push((start, Tok::LParen));
                i += 1;
            }
            ')' => {
                out.push((start, Tok::RParen));
                i += 1;
            }
            '-' if i + 1 < chars.len() && !chars[i + 1].1.is_whitespace() => {
                out.push((start, Tok::Minus));
                i += 1;
            }
            _ => {
                // A field name followed by ':'?
                let mut j = i;
                while j < chars.len() && chars[j].1.is_ascii_alphabetic() {
                    j += 1;
                }
                if j > i && j < chars.len() && chars[j].1 == ':' {
                    let name: String = chars[i..j].iter().map(|(_, c)| c.to_ascii_lowercase()).collect();
                    i = j + 1;
                    if i >= chars.len() || chars[i].1.is_whitespace() || chars[i].1 == ')' {
                        return err(start, format!("{name}: needs a value"));
                    }
                    let (value, next) = read_value(&chars, i)?;
                    out.push((start, Tok::Field(name, value)));
                    i = next;
                    continue;
                }
                let (value, next) = read_value(&chars, i)?;
                i = next;
                let tok = match value.text.as_str() {
                    "AND" if !value_was_quoted(&chars, start) => Tok::And,
                    "OR" if !value_was_quoted(&chars, start) => Tok::Or,
                    "NOT" if !value_was_quoted(&chars, start) => Tok::Not,
                    _ => Tok::Word(value),
                };
                out.push((start, tok));
            }
        }
    }
    Ok(out)
}

fn value_was_quoted(chars: &[(usize, char)], i: usize) -> bool {
    chars.get(i).is_some_and(|(_, c)| *c == '"')
}

/// A bare word (to whitespace or a parenthesis) or a "quoted phrase".
fn read_value(chars: &[(usize, char)], start: usize) -> Result<(Value, usize), QueryError> {
    if chars[start].1 == '"' {
        let mut text = String::new();
        let mut i = start + 1;
        while i < chars.len() && chars[i].1 != '"' {
            text.push(chars[i].1);
            i += 1;
        }
        if i >= chars.len() {
            return err(start, "unterminated quote");
        }
        return Ok((Value { text, pos: start }, i + 1));
    }
    let mut i = start;
    let mut text = String::new();
    while i < chars.len() && !chars[i].1.is_whitespace() && chars[i].1 != '(' && chars[i].1 != ')' {
        text.push(chars[i].1);
        i += 1;
    }
    Ok((Value { text, pos: start }, i))
}

/// How deep parentheses and `NOT`/`-` may nest. The parser, the expression's drop
/// and the search that walks it all recurse: without a bound, 100,000 `(` overflow
/// the stack and abort the process.
pub const MAX_DEPTH: usize = 64;

struct Parser {
    /// The day relative dates count from (`date:yesterday`, `date:2w..`).
    today: NaiveDate,
    toks: Vec<(usize, Tok)>,
    at: usize,
    len: usize,
    /// Parentheses and negations open around the current token.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(_, t)| t)
    }
    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.len, |(p, _)| *p)
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.at += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap()
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut parts = vec![self.unary()?];
        loop {
            match self.peek() {
                Some(Tok::And) => {
                    self.at += 1;
                    parts.push(self.unary()?);
                }
                None | Some(Tok::Or) | Some(Tok::RParen) => break,
                Some(_) => parts.push(self.unary()?),
            }
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap()
        } else {
            Expr::And(parts)
        })
    }

    /// Parses what `inner` parses one nesting level deeper, refusing past [`MAX_DEPTH`].
    fn nested(
        &mut self,
        pos: usize,
        inner: impl FnOnce(&mut Self) -> Result<Expr, QueryError>,
    ) -> Result<Expr, QueryError> {
        if self.depth >= MAX_DEPTH {
            return err(
                pos,
                format!("the query nests parentheses and NOT/- more than {MAX_DEPTH} deep"),
            );
        }
        self.depth += 1;
        let e = inner(self);
        self.depth -= 1;
        e
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        let pos = self.pos();
        match self.peek().cloned() {
            Some(Tok::Not) | Some(Tok::Minus) => {
                self.at += 1;
                self.nested(pos, |p| Ok(Expr::Not(Box::new(p.unary()?))))
            }
            Some(Tok::LParen) => {
                self.at += 1;
                if self.peek() == Some(&Tok::RParen) {
                    return err(pos, "empty parentheses");
                }
                let e = self.nested(pos, Self::or)?;
                if self.peek() != Some(&Tok::RParen) {
                    return err(pos, "unbalanced parenthesis: '(' is never closed");
                }
                self.at += 1;
                Ok(e)
            }
            Some(Tok::RParen) => err(pos, "unbalanced parenthesis: ')' without '('"),
            Some(Tok::And) | Some(Tok::Or) => err(pos, "AND/OR needs a term on each side"),
            Some(Tok::Word(v)) => {
                self.at += 1;
                Ok(Expr::Text {
                    field: None,
                    text: v.text,
                })
            }
            Some(Tok::Field(name, v)) => {
                self.at += 1;
                field_expr(&name, pos, &v, self.today)
            }
            None => err(pos, "the query ends where a term was expected"),
        }
    }
}

const FIELDS: &str =
    "from to cc bcc subject body list filename msgid refs folder account mime flag has is hold date after before size";

fn field_expr(name: &str, pos: usize, v: &Value, today: NaiveDate) -> Result<Expr, QueryError> {
    let text = |field| {
        Ok(Expr::Text {
            field: Some(field),
            text: v.text.clone(),
        })
    };
    let exact = |field, value: &str| {
        Ok(Expr::Exact {
            field,
            value: value.to_lowercase(),
        })
    };
    match name {
        "from" => text(TextField::From),
        "to" => text(TextField::To),
        "cc" => text(TextField::Cc),
        "bcc" => text(TextField::Bcc),
        "subject" => text(TextField::Subject),
        "body" => text(TextField::Body),
        "list" => text(TextField::List),
        "filename" => text(TextField::Filename),
        "att" | "attachment" => text(TextField::Attachment),
        "msgid" => exact(ExactField::MsgId, v.text.trim_start_matches('<').trim_end_matches('>')),
        "refs" => exact(ExactField::Refs, v.text.trim_start_matches('<').trim_end_matches('>')),
        "thread" => {
            if crate::thread::is_key(&v.text) {
                exact(ExactField::Thread, &v.text)
            } else {
                err(
                    v.pos,
                    format!(
                        "thread:{} is not a thread id (16 hex digits, as `search --threads` shows)",
                        v.text
                    ),
                )
            }
        }
        "folder" => exact(ExactField::Folder, &v.text),
        "account" => exact(ExactField::Account, &v.text),
        "mime" => exact(ExactField::Mime, &v.text),
        "flag" => exact(ExactField::Flag, v.text.trim_start_matches('\\')),
        "tag" => match crate::tags::Tag::parse(&v.text) {
            Ok(t) => Ok(Expr::Tagged(t.as_str().to_string())),
            Err(e) => err(v.pos, format!("tag:{}: {e}", v.text)),
        },
        "hold" => {
            if v.text.is_empty() {
                err(v.pos, "hold: needs the name of a legal hold")
            } else {
                Ok(Expr::Held(Some(v.text.clone())))
            }
        }
        "has" => match v.text.to_lowercase().as_str() {
            "attachment" | "attachments" => exact(ExactField::Has, "attachment"),
            other => err(v.pos, format!("has:{other} is not known (has:attachment)")),
        },
        "is" => {
            let flag = |f: &str| Expr::Exact {
                field: ExactField::Flag,
                value: f.into(),
            };
            match v.text.to_lowercase().as_str() {
                "unread" | "unseen" => Ok(Expr::Not(Box::new(flag("seen")))),
                "read" | "seen" => Ok(flag("seen")),
                "flagged" | "starred" => Ok(flag("flagged")),
                "answered" | "replied" => Ok(flag("answered")),
                "draft" => Ok(flag("draft")),
                "deleted" => Ok(flag("deleted")),
                "held" => Ok(Expr::Held(None)),
                other => err(
                    v.pos,
                    format!("is:{other} is not known (unread, read, flagged, answered, draft, deleted, held)"),
                ),
            }
        }
        "date" => {
            let (from, to) = match v.text.split_once("..") {
                Some((a, b)) => (
                    opt_date(a, v.pos, today)?.map(|d| d.0),
                    opt_date(b, v.pos + a.len() + 2, today)?.map(|d| d.1),
                ),
                None => {
                    let (s, e) = date_span(&v.text, v.pos, today)?;
                    (Some(s), Some(e))
                }
            };
            Ok(Expr::Date { from, to })
        }
        "after" => Ok(Expr::Date {
            from: Some(date_span(&v.text, v.pos, today)?.0),
            to: None,
        }),
        "before" => Ok(Expr::Date {
            from: None,
            to: Some(date_span(&v.text, v.pos, today)?.0),
        }),
        "size" => size_expr(&v.text, v.pos),
        other => err(pos, format!("unknown field {other}: (fields: {FIELDS})")),
    }
}

fn opt_date(s: &str, pos: usize, today: NaiveDate) -> Result<Option<(i64, i64)>, QueryError> {
    if s.is_empty() {
        Ok(None)
    } else {
        date_span(s, pos, today).map(Some)
    }
}

/// A date relative to `today`, as the span from its first day to the end of today:
/// `today`, `yesterday`, or N days, weeks, months or years back (`3d`, `2w`, `6m`,
/// `1y`). `None` when `s` is not one.
fn relative_span(s: &str, today: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let tomorrow = today.succ_opt()?;
    match s.to_ascii_lowercase().as_str() {
        "today" => return Some((today, tomorrow)),
        "yesterday" => return Some((today.pred_opt()?, today)),
        _ => {}
    }
    let unit = s.chars().last()?;
    let n: u32 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    let start = match unit.to_ascii_lowercase() {
        'd' => today.checked_sub_days(chrono::Days::new(n.into()))?,
        'w' => today.checked_sub_days(chrono::Days::new(u64::from(n) * 7))?,
        'm' => today.checked_sub_months(chrono::Months::new(n))?,
        'y' => today.checked_sub_months(chrono::Months::new(n.checked_mul(12)?))?,
        _ => return None,
    };
    Some((start, tomorrow))
}

/// `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or a date relative to `today` (see
/// [`relative_span`]) → [start, end) in Unix seconds (UTC).
fn date_span(s: &str, pos: usize, today: NaiveDate) -> Result<(i64, i64), QueryError> {
    let bad = || {
        err(
            pos,
            format!("{s:?} is not a date (YYYY, YYYY-MM, YYYY-MM-DD, today, yesterday, or 3d, 2w, 6m, 1y back)"),
        )
    };
    if let Some((start, end)) = relative_span(s, today) {
        return Ok((ts(start), ts(end)));
    }
    let parts: Vec<&str> = s.split(['-', '/']).collect();
    let num = |p: &str| -> Option<u32> {
        (!p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let (start, end) = match parts.as_slice() {
        [y] => {
            let Some(y) = num(y).filter(|_| y.len() == 4) else {
                return bad();
            };
            (
                NaiveDate::from_ymd_opt(y as i32, 1, 1),
                NaiveDate::from_ymd_opt(y as i32 + 1, 1, 1),
            )
        }
        [y, m] => {
            let (Some(y), Some(m)) = (num(y), num(m)) else {
                return bad();
            };
            let start = NaiveDate::from_ymd_opt(y as i32, m, 1);
            (start, start.and_then(|d| d.checked_add_months(chrono::Months::new(1))))
        }
        [y, m, d] => {
            let (Some(y), Some(m), Some(d)) = (num(y), num(m), num(d)) else {
                return bad();
            };
            let start = NaiveDate::from_ymd_opt(y as i32, m, d);
            (start, start.and_then(|d| d.succ_opt()))
        }
        _ => return bad(),
    };
    match (start, end) {
        (Some(s), Some(e)) if s.year() > 0 => Ok((ts(s), ts(e))),
        _ => bad(),
    }
}

fn ts(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp()
}

fn size_expr(s: &str, pos: usize) -> Result<Expr, QueryError> {
    let parse = |t: &str, p: usize| -> Result<u64, QueryError> {
        let t = t.trim();
        let (digits, mult) = match t.char_indices().last() {
            Some((i, 'k' | 'K')) => (&t[..i], 1u64 << 10),
            Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
            Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
            _ => (t, 1),
        };
        match digits.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)) {
            Some(n) => Ok(n),
            None => err(p, format!("{t:?} is not a size (like 10k, 2M, 1G or bytes)")),
        }
    };
    let e = if let Some(rest) = s.strip_prefix(">=") {
        Expr::Size {
            min: Some(parse(rest, pos + 2)?),
            max: None,
        }
    } else if let Some(rest) = s.strip_prefix("<=") {
        Expr::Size {
            min: None,
            max: Some(parse(rest, pos + 2)?),
        }
    } else if let Some(rest) = s.strip_prefix('>') {
        Expr::Size {
            min: Some(parse(rest, pos + 1)?.saturating_add(1)),
            max: None,
        }
    } else if let Some(rest) = s.strip_prefix('<') {
        let n = parse(rest, pos + 1)?;
        if n == 0 {
            return err(pos, "size:<0 can match nothing");
        }
        Expr::Size {
            min: None,
            max: Some(n - 1),
        }
    } else if let Some((a, b)) = s.split_once("..") {
        let min = if a.is_empty() { None } else { Some(parse(a, pos)?) };
        let max = if b.is_empty() {
            None
        } else {
            Some(parse(b, pos + a.len() + 2)?)
        };
        Expr::Size { min, max }
    } else {
        let n = parse(s, pos)?;
        Expr::Size {
            min: Some(n),
            max: Some(n),
        }
    };
    Ok(e)
}

/// Parses a query, relative dates counted from today (UTC). `*` alone matches
/// every message; an empty query is an error.
pub fn parse(input: &str) -> Result<Expr, QueryError> {
    parse_on(input, chrono::Utc::now().date_naive())
}

/// Parses a query, relative dates (`date:yesterday`, `date:2w..`) counted from
/// `today`.
pub fn parse_on(input: &str, today: NaiveDate) -> Result<Expr, QueryError> {
    if input.trim() == "*" {
        return Ok(Expr::All);
    }
    let toks = lex(input)?;
    if toks.is_empty() {
        return err(0, "empty query");
    }
    let mut p = Parser {
        today,
        toks,
        at: 0,
        len: input.chars().count(),
        depth: 0,
    };
    let e = p.or()?;
    if p.at < p.toks.len() {
        let pos = p.pos();
        return match p.peek() {
            Some(Tok::RParen) => err(pos, "unbalanced parenthesis: ')' without '('"),
            _ => err(pos, "unexpected text"),
        };
    }
    Ok(e)
}

#[cfg(test)]
mod tests;
