//! Facets of a result set: how many matching messages are in each account and
//! folder, each year, from each sender domain, and with attachments — counted by
//! tantivy's facet collector over the `facet` field, one pass over the matches for
//! the top level and one more for the folders of the accounts shown.

use std::collections::{BTreeMap, HashMap};

use tantivy::collector::FacetCollector;
use tantivy::query::Query;
use tantivy::schema::Facet;
use tantivy::Searcher;

/// The field the facets are in.
pub const FIELD: &str = "facet";

/// Facet roots.
pub const PLACE: &str = "place";
pub const YEAR: &str = "year";
pub const DOMAIN: &str = "domain";
pub const HAS: &str = "has";
/// What text extraction made of the attachments (counted by `stats`, not shown
/// among a search's facets).
pub const EXTRACTION: &str = "extraction";

/// The most sender domains and folders listed.
pub const TOP: usize = 10;

/// The facet of a placement.
pub fn place(account: &str, folder: &str) -> Facet {
    Facet::from_path([PLACE, account, folder])
}

/// The facet of one extracted part: `/extraction/extracted/KIND`,
/// `/extraction/skipped/TYPE-SUBTYPE`, `/extraction/failed/REASON`.
pub fn extraction(p: &crate::extract::PartReport) -> Facet {
    use crate::extract::Outcome;
    let detail = match &p.outcome {
        Outcome::Text { .. } => p.kind.map_or("unknown", |k| k.as_str()).to_string(),
        Outcome::Skipped if p.mime.is_empty() => "unknown".to_string(),
        Outcome::Skipped => p.mime.replace('/', "-"),
        Outcome::Failed(f) => f.code().to_string(),
    };
    Facet::from_path([EXTRACTION, p.outcome.code(), detail.as_str()])
}

/// Messages by what extraction made of their attachments: (outcome, kind or
/// type or reason, messages), for every message in every shard.
pub fn extraction_counts(searchers: &[Searcher]) -> tantivy::Result<Vec<(String, String, u64)>> {
    let outcomes = ["extracted", "skipped", "failed"];
    let roots: Vec<Facet> = outcomes.iter().map(|o| Facet::from_path([EXTRACTION, o])).collect();
    let counts = counted(searchers, &tantivy::query::AllQuery, &roots)?;
    let mut out = Vec::new();
    for (outcome, root) in outcomes.iter().zip(&roots) {
        for (leaf, n) in &counts[root] {
            out.push((outcome.to_string(), leaf.clone(), *n));
        }
    }
    Ok(out)
}

/// Under each of `roots`, the messages `query` matches in every shard per child
/// facet (by its last segment, in facet order).
fn counted(
    searchers: &[Searcher],
    query: &dyn Query,
    roots: &[Facet],
) -> tantivy::Result<HashMap<Facet, BTreeMap<String, u64>>> {
    let mut out: HashMap<Facet, BTreeMap<String, u64>> = roots.iter().map(|r| (r.clone(), BTreeMap::new())).collect();
    for searcher in searchers {
        let mut c = FacetCollector::for_field(FIELD);
        for r in roots {
            c.add_facet(r.clone());
        }
        let counts = searcher.search(query, &c)?;
        for r in roots {
            let children = out.get_mut(r).expect("every root has a map");
            for (facet, n) in counts.get(r.clone()) {
                *children.entry(leaf(facet)).or_default() += n;
            }
        }
    }
    Ok(out)
}

/// The `k` largest of `counts`, the largest first (equal counts by name).
fn top_k(counts: &BTreeMap<String, u64>, k: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.iter().map(|(name, n)| (name.clone(), *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(k);
    v
}

/// Counts for one result set.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Facets {
    /// Messages per account (a message filed in two accounts counts in both).
    pub accounts: Vec<(String, u64)>,
    /// Messages per account and folder, the largest first (at most [`TOP`] per
    /// account).
    pub folders: Vec<(String, String, u64)>,
    /// Messages per year, oldest first (the Date header, else the internal date).
    pub years: Vec<(i32, u64)>,
    /// Messages per sender domain, the largest first (at most [`TOP`]).
    pub domains: Vec<(String, u64)>,
    /// Messages with attachments.
    pub with_attachments: u64,
}

/// The last path segment of a facet.
fn leaf(f: &Facet) -> String {
    f.to_path().last().map(|s| s.to_string()).unwrap_or_default()
}

/// Counts the facets of the messages `query` matches in every shard, folders
/// only for the accounts `want_folders` allows.
pub fn count(
    searchers: &[Searcher],
    query: &dyn Query,
    want_folders: &dyn Fn(&str) -> bool,
) -> tantivy::Result<Facets> {
    let root = |r: &str| Facet::from_path([r]);
    let roots: Vec<Facet> = [PLACE, YEAR, DOMAIN, HAS].into_iter().map(root).collect();
    let counts = counted(searchers, query, &roots)?;
    let mut f = Facets {
        accounts: top_k(&counts[&root(PLACE)], usize::MAX),
        domains: top_k(&counts[&root(DOMAIN)], TOP),
        ..Facets::default()
    };
    let years: BTreeMap<i32, u64> = counts[&root(YEAR)]
        .iter()
        .filter_map(|(y, n)| Some((y.parse().ok()?, *n)))
        .collect();
    f.years = years.into_iter().collect();
    f.with_attachments = counts[&root(HAS)].get("attachment").copied().unwrap_or(0);

    let shown: Vec<Facet> = f
        .accounts
        .iter()
        .map(|(a, _)| a)
        .filter(|a| want_folders(a))
        .take(TOP)
        .map(|a| Facet::from_path([PLACE, a.as_str()]))
        .collect();
    if !shown.is_empty() {
        let per = counted(searchers, query, &shown)?;
        for facet in &shown {
            let account = leaf(facet);
            for (folder, n) in top_k(&per[facet], TOP) {
                f.folders.push((account.clone(), folder, n));
            }
        }
    }
    Ok(f)
}
