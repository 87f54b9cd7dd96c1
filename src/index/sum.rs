//! A disjunction (OR, and a word in every default field) scored the same
//! whatever the index's layout.
//!
//! tantivy's union adds its clauses' scores in an order that changes as clauses
//! run out of documents in a segment, so one message can score a few ulps apart
//! in two layouts of the same messages (one index, or shards) — enough to swap
//! two near-equal results. [`SumOf`] matches what any clause matches and adds
//! the matching clauses' scores in clause order, in `f64`. Unscored (counts,
//! sets of ids, date sorts) it is tantivy's union: only the scores differ.

use tantivy::query::{BooleanQuery, EnableScoring, Explanation, Occur, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, Term, TERMINATED};

/// Documents matching any of the queries, scored by the sum of the matching
/// ones' scores.
#[derive(Debug)]
pub struct SumOf(pub Vec<Box<dyn Query>>);

impl Clone for SumOf {
    fn clone(&self) -> SumOf {
        SumOf(self.0.iter().map(|q| q.box_clone()).collect())
    }
}

impl Query for SumOf {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        if !scoring.is_scoring_enabled() {
            // Only which documents match: tantivy's union finds them faster.
            let should = self.0.iter().map(|q| (Occur::Should, q.box_clone())).collect();
            return BooleanQuery::new(should).weight(scoring);
        }
        let weights = self
            .0
            .iter()
            .map(|q| q.weight(scoring))
            .collect::<tantivy::Result<Vec<_>>>()?;
        Ok(Box::new(SumWeight(weights)))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for q in &self.0 {
            q.query_terms(visitor);
        }
    }
}

struct SumWeight(Vec<Box<dyn Weight>>);

impl Weight for SumWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let scorers = self
            .0
            .iter()
            .map(|w| w.scorer(reader, boost))
            .collect::<tantivy::Result<Vec<_>>>()?;
        Ok(Box::new(SumScorer::new(scorers)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document #({doc}) does not match"
            )));
        }
        Ok(Explanation::new("SumOf", scorer.score()))
    }
}

/// The union of its scorers, each positioned on its own next document.
struct SumScorer {
    scorers: Vec<Box<dyn Scorer>>,
    doc: DocId,
}

impl SumScorer {
    fn new(scorers: Vec<Box<dyn Scorer>>) -> SumScorer {
        let mut s = SumScorer {
            scorers,
            doc: TERMINATED,
        };
        s.doc = s.least();
        s
    }

    fn least(&self) -> DocId {
        self.scorers.iter().map(|s| s.doc()).min().unwrap_or(TERMINATED)
    }
}

impl DocSet for SumScorer {
    fn advance(&mut self) -> DocId {
        if self.doc == TERMINATED {
            return TERMINATED;
        }
        for s in &mut self.scorers {
            if s.doc() == self.doc {
                s.advance();
            }
        }
        self.doc = self.least();
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc >= target {
            return self.doc;
        }
        for s in &mut self.scorers {
            if s.doc() < target {
                s.seek(target);
            }
        }
        self.doc = self.least();
        self.doc
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.scorers.iter().map(|s| s.size_hint()).max().unwrap_or(0)
    }
}

impl Scorer for SumScorer {
    fn score(&mut self) -> Score {
        let doc = self.doc;
        let mut sum = 0f64;
        for s in &mut self.scorers {
            if s.doc() == doc {
                sum += f64::from(s.score());
            }
        }
        sum as Score
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::{Count, TopDocs};
    use tantivy::query::TermQuery;
    use tantivy::schema::{IndexRecordOption, Schema, TEXT};
    use tantivy::{doc, Index};

    fn index() -> (Index, tantivy::schema::Field, tantivy::schema::Field) {
        let mut schema = Schema::builder();
        let a = schema.add_text_field("a", TEXT);
        let b = schema.add_text_field("b", TEXT);
        let index = Index::create_in_ram(schema.build());
        let mut w = index.writer_with_num_threads(1, 20_000_000).unwrap();
        for (x, y) in [
            ("red", "blue"),
            ("red red", ""),
            ("", "blue green"),
            ("green", "red"),
            ("", ""),
        ] {
            w.add_document(doc!(a => x, b => y)).unwrap();
        }
        w.commit().unwrap();
        (index, a, b)
    }

    fn term(f: tantivy::schema::Field, t: &str) -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(f, t),
            IndexRecordOption::WithFreqs,
        ))
    }

    #[test]
    fn it_matches_what_a_boolean_should_matches_with_the_same_scores_up_to_rounding() {
        let (index, a, b) = index();
        let searcher = index.reader().unwrap().searcher();
        let clauses = || vec![term(a, "red"), term(b, "blue"), term(a, "green"), term(b, "nothing")];
        let ours = SumOf(clauses());
        let theirs = BooleanQuery::new(clauses().into_iter().map(|q| (Occur::Should, q)).collect());
        assert_eq!(searcher.search(&ours, &Count).unwrap(), 4);
        assert_eq!(searcher.search(&theirs, &Count).unwrap(), 4);
        let top = |q: &dyn Query| searcher.search(q, &TopDocs::with_limit(10)).unwrap();
        let (x, y) = (top(&ours), top(&theirs));
        assert_eq!(x.len(), y.len());
        for ((sx, dx), (sy, dy)) in x.iter().zip(&y) {
            assert_eq!(dx, dy);
            assert!((sx - sy).abs() < 1e-5, "{sx} {sy}");
        }
    }

    #[test]
    fn seeking_lands_on_the_next_match_and_no_clauses_match_nothing() {
        let (index, a, b) = index();
        let searcher = index.reader().unwrap().searcher();
        let segment = searcher.segment_reader(0);
        let q = SumOf(vec![term(a, "green"), term(b, "green")]);
        let w = q.weight(EnableScoring::enabled_from_searcher(&searcher)).unwrap();
        let mut s = w.scorer(segment, 1.0).unwrap();
        assert_eq!(s.doc(), 2);
        assert_eq!(s.seek(3), 3);
        assert_eq!(s.advance(), TERMINATED);
        let empty = SumOf(Vec::new());
        assert_eq!(searcher.search(&empty, &Count).unwrap(), 0);
        assert!(w.explain(segment, 0).is_err());
        assert!(w.explain(segment, 3).unwrap().value() > 0.0);
    }
}
