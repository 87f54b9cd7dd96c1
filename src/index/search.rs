//! Query expressions → tantivy queries, and search results.

use std::ops::Bound;

use tantivy::collector::TopDocs;
use tantivy::query::{
    AllQuery, Bm25StatisticsProvider, BooleanQuery, EmptyQuery, Occur, PhraseQuery, Query, RangeQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{DocAddress, DocId, Score, Searcher, SegmentReader, TantivyDocument, Term};

use super::schema::{words_analyzer, Fields};
use super::sum::SumOf;
use crate::archive::Filed;
use crate::query::{ExactField, Expr, TextField};

/// Result order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    /// Newest first.
    DateDesc,
    /// Oldest first.
    DateAsc,
    Relevance,
}

/// One search result, from the stored fields.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Hit {
    pub id: String,
    /// The Date header, else the internal date: Unix seconds here, RFC 3339 (UTC)
    /// in JSON.
    #[serde(serialize_with = "rfc3339")]
    #[schemars(with = "String")]
    pub date: i64,
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub subject: String,
    pub folders: Vec<String>,
    pub accounts: Vec<String>,
    /// Each account with a folder the message is in.
    pub placements: Vec<Filed>,
    pub flags: Vec<String>,
    pub size: u64,
    pub attachments: Vec<String>,
    /// The message's thread (`thread:ID` finds all of it).
    pub thread: String,
}

pub(super) fn rfc3339<S: serde::Serializer>(secs: &i64, s: S) -> Result<S::Ok, S::Error> {
    match chrono::DateTime::from_timestamp(*secs, 0) {
        Some(d) => s.collect_str(&d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        None => s.serialize_none(),
    }
}

fn text_field(f: &Fields, t: TextField) -> Field {
    match t {
        TextField::From => f.from,
        TextField::To => f.to,
        TextField::Cc => f.cc,
        TextField::Bcc => f.bcc,
        TextField::Subject => f.subject,
        TextField::Body => f.body,
        TextField::List => f.list,
        TextField::Filename => f.filename,
        TextField::Attachment => f.attachment,
    }
}

fn exact_field(f: &Fields, e: ExactField) -> Field {
    match e {
        ExactField::MsgId => f.msgid,
        ExactField::Refs => f.refs,
        ExactField::Thread => f.thread,
        ExactField::Folder => f.folder,
        ExactField::Account => f.account,
        ExactField::Mime => f.mime,
        ExactField::Flag => f.flag,
        ExactField::Has => f.has,
    }
}

/// The analyzer's tokens of `text`: (position, token text).
fn analyze(text: &str) -> Vec<(usize, String)> {
    let mut analyzer = words_analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut tokens = Vec::new();
    while stream.advance() {
        tokens.push((stream.token().position, stream.token().text.clone()));
    }
    tokens
}

/// Words or a phrase in one field: a term, or a phrase of the analyzed tokens.
fn words_query(field: Field, tokens: &[(usize, String)]) -> Box<dyn Query> {
    let mut terms: Vec<(usize, Term)> = tokens
        .iter()
        .map(|(pos, t)| (*pos, Term::from_field_text(field, t)))
        .collect();
    match terms.len() {
        0 => Box::new(EmptyQuery),
        1 => Box::new(TermQuery::new(terms.pop().unwrap().1, IndexRecordOption::WithFreqs)),
        _ => Box::new(PhraseQuery::new_with_offset(terms)),
    }
}

/// `e`, narrowed to the one message `id`.
pub fn with_id(f: &Fields, e: &Expr, id: &crate::model::MessageId) -> Box<dyn Query> {
    let this = TermQuery::new(Term::from_field_text(f.id, &id.to_hex()), IndexRecordOption::Basic);
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, to_query(f, e)),
        (Occur::Must, Box::new(this)),
    ]))
}

/// The tantivy query for an expression.
pub fn to_query(f: &Fields, e: &Expr) -> Box<dyn Query> {
    match e {
        Expr::All => Box::new(AllQuery),
        // Expanded by the caller (`query::expand_holds`); unexpanded, nothing.
        Expr::Held(_) | Expr::Tagged(_) => Box::new(tantivy::query::EmptyQuery),
        Expr::Ids(ids) => Box::new(tantivy::query::TermSetQuery::new(
            ids.iter().map(|id| Term::from_field_text(f.id, &id.to_hex())),
        )),
        Expr::Text { field: Some(t), text } => words_query(text_field(f, *t), &analyze(text)),
        Expr::Text { field: None, text } => {
            // Analyzed once, looked up in each default field.
            let tokens = analyze(text);
            let defaults = [f.subject, f.body, f.from, f.to, f.cc, f.filename, f.attachment];
            Box::new(SumOf(defaults.iter().map(|&fl| words_query(fl, &tokens)).collect()))
        }
        Expr::Exact { field, value } => Box::new(TermQuery::new(
            Term::from_field_text(exact_field(f, *field), value),
            IndexRecordOption::Basic,
        )),
        Expr::Date { from, to } => Box::new(RangeQuery::new(
            from.map_or(Bound::Unbounded, |v| Bound::Included(Term::from_field_i64(f.date, v))),
            to.map_or(Bound::Unbounded, |v| Bound::Excluded(Term::from_field_i64(f.date, v))),
        )),
        Expr::Size { min, max } => Box::new(RangeQuery::new(
            min.map_or(Bound::Unbounded, |v| Bound::Included(Term::from_field_u64(f.size, v))),
            max.map_or(Bound::Unbounded, |v| Bound::Included(Term::from_field_u64(f.size, v))),
        )),
        Expr::Not(inner) => Box::new(BooleanQuery::new(vec![
            (Occur::Must, Box::new(AllQuery)),
            (Occur::MustNot, to_query(f, inner)),
        ])),
        Expr::And(parts) => {
            // NOT x inside an AND is a MustNot clause; an AND of only negations
            // still needs something to subtract from.
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = parts
                .iter()
                .map(|p| match p {
                    Expr::Not(inner) => (Occur::MustNot, to_query(f, inner)),
                    other => (Occur::Must, to_query(f, other)),
                })
                .collect();
            if clauses.iter().all(|(o, _)| *o == Occur::MustNot) {
                clauses.push((Occur::Must, Box::new(AllQuery)));
            }
            Box::new(BooleanQuery::new(clauses))
        }
        Expr::Or(parts) => Box::new(SumOf(parts.iter().map(|p| to_query(f, p)).collect())),
    }
}

fn strings(doc: &TantivyDocument, field: Field) -> Vec<String> {
    doc.get_all(field)
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

pub(super) fn hit(f: &Fields, doc: &TantivyDocument) -> Hit {
    Hit {
        id: strings(doc, f.id).pop().unwrap_or_default(),
        date: doc.get_first(f.date).and_then(|v| v.as_i64()).unwrap_or(0),
        from: strings(doc, f.from),
        to: strings(doc, f.to),
        subject: strings(doc, f.subject).pop().unwrap_or_default(),
        folders: strings(doc, f.folder),
        accounts: strings(doc, f.account),
        placements: strings(doc, f.placement)
            .into_iter()
            .filter_map(|p| {
                let (account, folder) = p.split_once(super::schema::PLACEMENT_SEPARATOR)?;
                Some(Filed {
                    account: account.to_string(),
                    folder: folder.to_string(),
                })
            })
            .collect(),
        flags: strings(doc, f.flag),
        size: doc.get_first(f.size).and_then(|v| v.as_u64()).unwrap_or(0),
        attachments: strings(doc, f.filename),
        thread: strings(doc, f.thread).pop().unwrap_or_default(),
    }
}

/// Where a hit sorts, larger first, the same whichever index (or shard) holds
/// it: the sort's key (relevance; the date, negated for oldest first), then the
/// message's [`order_key`](super::schema::order_key), smaller first — a total
/// order, so that merging shards gives what one index gives.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Rank(pub f64, pub std::cmp::Reverse<u64>);

/// Runs `query` on `searcher`, scoring relevance with `stats` (the searcher's
/// own, or every shard's): the hits in the requested order with their ranks.
pub(super) fn run(
    searcher: &Searcher,
    stats: &dyn Bm25StatisticsProvider,
    query: &dyn Query,
    sort: Sort,
    limit: usize,
    offset: usize,
) -> tantivy::Result<Vec<(Rank, DocAddress)>> {
    let top = TopDocs::with_limit(limit.max(1)).and_offset(offset);
    let order_of = |reader: &SegmentReader| reader.fast_fields().u64("order").ok();
    match sort {
        Sort::Relevance => searcher.search_with_statistics_provider(
            query,
            &top.tweak_score(move |reader: &SegmentReader| {
                let order = order_of(reader);
                move |doc: DocId, score: Score| {
                    let key = order.as_ref().and_then(|c| c.first(doc)).unwrap_or(0);
                    Rank(f64::from(score), std::cmp::Reverse(key))
                }
            }),
            stats,
        ),
        Sort::DateDesc | Sort::DateAsc => {
            let sign = if sort == Sort::DateDesc { 1.0 } else { -1.0 };
            searcher.search(
                query,
                &top.custom_score(move |reader: &SegmentReader| {
                    let order = order_of(reader);
                    let date = reader.fast_fields().i64("date").ok();
                    move |doc: DocId| {
                        let key = order.as_ref().and_then(|c| c.first(doc)).unwrap_or(0);
                        let d = date.as_ref().and_then(|c| c.first(doc)).unwrap_or(0);
                        Rank(sign * d as f64, std::cmp::Reverse(key))
                    }
                }),
            )
        }
    }
}
