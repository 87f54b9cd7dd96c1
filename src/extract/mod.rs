//! Text inside attachments: the words of PDF, office documents (OOXML and
//! OpenDocument), RTF, HTML, plain text and CSV, forwarded messages and ZIP
//! archives, for the index's `attachment` field.
//!
//! Pure (bytes in, text out; no I/O) and bounded: every document gets a time
//! budget (checked between pages, XML events and archive members), the whole
//! message a text budget, archives and office files a limit on what they may
//! inflate to (in all and per member, by ratio) and on how deep they nest; a PDF
//! is refused before its parser sees it when it nests its objects deeper than
//! the parser's stack allows. A panic inside a parser library is caught and
//! reported as a failure of that one document. What happened to each part is
//! returned with the text ([`PartReport`]), for `stats` and `show --extraction`.
//!
//! Formats are told by content (magic bytes, a ZIP's members), then by the
//! declared type and the file name's extension ([`sniff`]).

mod office;
mod pdf;
mod rtf;
pub mod sniff;
mod text;
mod zip;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

pub use sniff::Kind;

/// The limits of one message's extraction.
#[derive(Clone, Debug)]
pub struct Budget {
    /// Text kept from all the message's attachments together (beyond it the text
    /// is cut, and the part that reached it says so).
    pub text_bytes: usize,
    /// Time one document may take (a PDF that loops is abandoned at the next check).
    pub time: Duration,
    /// Bytes an archive or office file may inflate to, all its members together.
    pub inflated_bytes: u64,
    /// The largest inflated/compressed ratio of a member bigger than [`RATIO_FLOOR`].
    pub ratio: u64,
    /// How deep archives, forwarded messages and documents may nest.
    pub depth: u32,
    /// Members of one archive looked at.
    pub members: usize,
}

/// Members smaller than this are never refused for their ratio (a small file of
/// one repeated byte compresses a thousandfold and harms nobody).
pub const RATIO_FLOOR: u64 = 1 << 20;

impl Default for Budget {
    fn default() -> Self {
        Budget {
            text_bytes: 10 << 20,
            time: Duration::from_secs(2),
            inflated_bytes: 64 << 20,
            ratio: 100,
            depth: 8,
            members: 10_000,
        }
    }
}

/// Why a document gave no (or only part of its) text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The time budget ran out.
    Time { limit: Duration },
    /// An archive would inflate past the budget.
    Inflated { limit: u64 },
    /// A member inflates more than the ratio allows.
    Ratio { member: String, ratio: u64 },
    /// Archives or messages nested deeper than the budget.
    Depth { limit: u32 },
    /// An archive with more members than the budget; the rest were not read.
    Members { limit: usize },
    /// Password-protected.
    Encrypted,
    /// The document is damaged or not what it claims.
    Corrupt(String),
    /// The parser library panicked (its message).
    Panic(String),
}

impl Failure {
    /// A short stable name (for counts in `stats` and the index's facets).
    pub fn code(&self) -> &'static str {
        match self {
            Failure::Time { .. } => "time-budget",
            Failure::Inflated { .. } => "inflate-limit",
            Failure::Ratio { .. } => "ratio-limit",
            Failure::Depth { .. } => "depth-limit",
            Failure::Members { .. } => "member-limit",
            Failure::Encrypted => "encrypted",
            Failure::Corrupt(_) => "corrupt",
            Failure::Panic(_) => "parser-panic",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Time { limit } => write!(f, "abandoned after its time budget of {limit:?}"),
            Failure::Inflated { limit } => write!(f, "would inflate past its budget of {} MiB", limit >> 20),
            Failure::Ratio { member, ratio } => {
                write!(
                    f,
                    "member {member:?} inflates more than {ratio} times (a compression bomb?)"
                )
            }
            Failure::Depth { limit } => write!(f, "nested deeper than {limit} levels"),
            Failure::Members { limit } => write!(f, "more than {limit} members; the rest were not read"),
            Failure::Encrypted => write!(f, "encrypted"),
            Failure::Corrupt(why) => write!(f, "damaged: {why}"),
            Failure::Panic(why) => write!(f, "the parser panicked: {why}"),
        }
    }
}

/// What became of one part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Text was extracted (`truncated`: the text budget cut it short).
    Text { bytes: usize, truncated: bool },
    /// Not a format we read (images, binaries): skipped and counted.
    Skipped,
    /// Extraction failed; text found before the failure is kept.
    Failed(Failure),
}

impl Outcome {
    /// `extracted`, `skipped` or `failed`.
    pub fn code(&self) -> &'static str {
        match self {
            Outcome::Text { .. } => "extracted",
            Outcome::Skipped => "skipped",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// One attachment (or a member inside one) and what became of it.
#[derive(Clone, Debug)]
pub struct PartReport {
    /// Where it is: the attachment's name, then members inside it (`a.zip/b.docx`).
    pub path: String,
    /// The declared MIME type (lower case), or the one the name implies.
    pub mime: String,
    /// The format it was read as.
    pub kind: Option<Kind>,
    pub outcome: Outcome,
    pub took: Duration,
}

/// The text of a message's attachments and what happened to each.
#[derive(Clone, Debug, Default)]
pub struct Extracted {
    pub text: String,
    pub parts: Vec<PartReport>,
}

/// The text of every attachment and inline non-body part of `m`.
pub fn message(m: &Message<'_>, budget: &Budget) -> Extracted {
    let mut walk = Walk::new(budget);
    walk.attachments(m, "", 0);
    Extracted {
        text: walk.text,
        parts: walk.parts,
    }
}

/// One document on its own (the name and type as an attachment would give them).
pub fn document(bytes: &[u8], name: &str, mime: &str, budget: &Budget) -> Extracted {
    let mut walk = Walk::new(budget);
    walk.document(bytes, name, mime, 0);
    Extracted {
        text: walk.text,
        parts: walk.parts,
    }
}

/// Why a reader stopped early.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The message's text budget is spent: stop quietly, keep what we have.
    Full,
    Failed(Failure),
}

impl From<Failure> for Stop {
    fn from(f: Failure) -> Self {
        Stop::Failed(f)
    }
}

/// The state of one message's extraction, lent to each format's reader.
pub(crate) struct Walk<'b> {
    pub(crate) budget: &'b Budget,
    text: String,
    parts: Vec<PartReport>,
    /// When the current document's time runs out.
    deadline: Instant,
    /// Bytes inflated so far within the current top-level document.
    pub(crate) inflated: u64,
}

impl<'b> Walk<'b> {
    fn new(budget: &'b Budget) -> Self {
        Walk {
            budget,
            text: String::new(),
            parts: Vec::new(),
            deadline: Instant::now() + budget.time,
            inflated: 0,
        }
    }

    /// Appends text, cut at the budget.
    pub(crate) fn push(&mut self, s: &str) -> Result<(), Stop> {
        let room = self.budget.text_bytes.saturating_sub(self.text.len());
        if s.len() <= room {
            self.text.push_str(s);
            return Ok(());
        }
        let mut cut = room;
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.text.push_str(&s[..cut]);
        Err(Stop::Full)
    }

    /// A separator between words, unless the text already ends with one.
    pub(crate) fn space(&mut self) -> Result<(), Stop> {
        match self.text.chars().last() {
            None => Ok(()),
            Some(c) if c.is_whitespace() => Ok(()),
            Some(_) => self.push(" "),
        }
    }

    /// Fails once the current document's time is up.
    pub(crate) fn check_time(&self) -> Result<(), Stop> {
        if Instant::now() > self.deadline {
            return Err(Stop::Failed(Failure::Time {
                limit: self.budget.time,
            }));
        }
        Ok(())
    }

    /// Counts `n` inflated bytes against the budget.
    pub(crate) fn inflate(&mut self, n: u64) -> Result<(), Stop> {
        self.inflated += n;
        if self.inflated > self.budget.inflated_bytes {
            return Err(Stop::Failed(Failure::Inflated {
                limit: self.budget.inflated_bytes,
            }));
        }
        Ok(())
    }

    fn full(&self) -> bool {
        self.text.len() >= self.budget.text_bytes
    }

    /// Every attachment of `m` (`prefix` names the message inside its parent).
    fn attachments(&mut self, m: &Message<'_>, prefix: &str, depth: u32) {
        for (i, part) in m.attachments().enumerate() {
            let name = part
                .attachment_name()
                .map(str::to_string)
                .unwrap_or_else(|| format!("part {}", i + 1));
            let path = format!("{prefix}{name}");
            let mime = crate::mime::readable::content_type(part)
                .unwrap_or_default()
                .to_ascii_lowercase();
            self.part(part, &path, &mime, depth);
        }
    }

    fn part(&mut self, part: &MessagePart<'_>, path: &str, mime: &str, depth: u32) {
        match &part.body {
            PartType::Message(inner) => {
                let started = Instant::now();
                let outcome = if depth >= self.budget.depth {
                    Outcome::Failed(Failure::Depth {
                        limit: self.budget.depth,
                    })
                } else {
                    let before = self.text.len();
                    let r = self.forwarded(inner, path, depth + 1);
                    self.result(r, before)
                };
                self.record(path, mime, Some(Kind::Message), outcome, started);
            }
            _ => {
                self.document(part.contents(), path, mime, depth);
            }
        }
    }

    /// A forwarded message: its headers, its text and its own attachments.
    fn forwarded(&mut self, m: &Message<'_>, path: &str, depth: u32) -> Result<(), Stop> {
        self.space()?;
        if let Some(s) = m.subject() {
            self.push(s)?;
            self.push("\n")?;
        }
        for a in [m.from(), m.to()].into_iter().flatten() {
            for addr in a.iter() {
                if let Some(n) = &addr.name {
                    self.push(n)?;
                    self.push(" ")?;
                }
                if let Some(x) = &addr.address {
                    self.push(x)?;
                    self.push(" ")?;
                }
            }
        }
        for i in 0..m.text_body_count() {
            if let Some(t) = m.body_text(i) {
                self.space()?;
                self.push(&t)?;
            }
        }
        self.attachments(m, &format!("{path}/"), depth);
        if self.full() {
            return Err(Stop::Full);
        }
        Ok(())
    }

    /// One document: told apart, read under a fresh time budget (when it is not
    /// inside another), panics caught. Returns a failure that should stop the
    /// document around it too (its time or inflation budget is spent, or it is a
    /// compression bomb).
    pub(crate) fn document(&mut self, bytes: &[u8], path: &str, mime: &str, depth: u32) -> Option<Failure> {
        let started = Instant::now();
        let kind = sniff::kind(bytes, path, mime);
        let outcome = match kind {
            None => Outcome::Skipped,
            Some(_) if self.full() => Outcome::Text {
                bytes: 0,
                truncated: true,
            },
            Some(_) if depth > self.budget.depth => Outcome::Failed(Failure::Depth {
                limit: self.budget.depth,
            }),
            Some(k) => {
                let top = depth == 0;
                let saved = self.deadline;
                if top {
                    self.deadline = started + self.budget.time;
                    self.inflated = 0;
                }
                let before = self.text.len();
                let read = catch_unwind(AssertUnwindSafe(|| self.read(k, bytes, path, depth)));
                let outcome = match read {
                    Ok(r) => self.result(r, before),
                    Err(panic) => Outcome::Failed(Failure::Panic(panic_message(&panic))),
                };
                if top {
                    self.deadline = saved;
                }
                outcome
            }
        };
        let spent = match &outcome {
            Outcome::Failed(f @ (Failure::Time { .. } | Failure::Inflated { .. } | Failure::Ratio { .. })) => {
                Some(f.clone())
            }
            _ => None,
        };
        self.record(path, mime, kind, outcome, started);
        spent
    }

    fn read(&mut self, kind: Kind, bytes: &[u8], path: &str, depth: u32) -> Result<(), Stop> {
        self.space()?;
        match kind {
            Kind::Pdf => pdf::read(self, bytes),
            Kind::Docx | Kind::Xlsx | Kind::Pptx | Kind::Odt | Kind::Ods | Kind::Odp => office::read(self, kind, bytes),
            Kind::Zip => zip::read(self, bytes, path, depth),
            Kind::Rtf => rtf::read(self, bytes),
            Kind::Html => text::html(self, bytes),
            Kind::Text | Kind::Csv => text::plain(self, bytes),
            Kind::Message => match mail_parser::MessageParser::default().parse(bytes) {
                Some(m) => self.forwarded(&m, path, depth + 1),
                None => Err(Stop::Failed(Failure::Corrupt("not a message".into()))),
            },
        }
    }

    fn result(&self, r: Result<(), Stop>, before: usize) -> Outcome {
        let bytes = self.text.len().saturating_sub(before);
        match r {
            Ok(()) => Outcome::Text {
                bytes,
                truncated: false,
            },
            Err(Stop::Full) => Outcome::Text { bytes, truncated: true },
            Err(Stop::Failed(f)) => Outcome::Failed(f),
        }
    }

    fn record(&mut self, path: &str, mime: &str, kind: Option<Kind>, outcome: Outcome, started: Instant) {
        self.parts.push(PartReport {
            path: path.to_string(),
            mime: mime.to_string(),
            kind,
            outcome,
            took: started.elapsed(),
        });
    }
}

/// Where `needle` first occurs in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    let s = if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    };
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests;
