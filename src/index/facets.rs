//! Facets of a result set: how many matching messages are in each account and
//! folder, each year, from each sender domain, and with attachments — counted by
//! tantivy's facet collector over the `facet` field, one pass over the matches for
//! the top level and one more for the folders of the accounts shown.

use std::collections::BTreeMap;

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
/// type or reason, messages), for every message in the index.
pub fn extraction_counts(searcher: &Searcher) -> tantivy::Result<Vec<(String, String, u64)>> {
    let mut c = FacetCollector::for_field(FIELD);
    for outcome in ["extracted", "skipped", "failed"] {
        c.add_facet(Facet::from_path([EXTRACTION, outcome]));
    }
    let counts = searcher.search(&tantivy::query::AllQuery, &c)?;
    let mut out = Vec::new();
    for outcome in ["extracted", "skipped", "failed"] {
        for (facet, n) in counts.get(&format!("/{EXTRACTION}/{outcome}")) {
            out.push((outcome.to_string(), leaf(facet), n));
        }
    }
    Ok(out)
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

/// Counts the facets of the messages `query` matches, folders only for the
/// accounts `want_folders` allows.
pub fn count(searcher: &Searcher, query: &dyn Query, want_folders: &dyn Fn(&str) -> bool) -> tantivy::Result<Facets> {
    let root = |r: &str| Facet::from_path([r]);
    let mut top = FacetCollector::for_field(FIELD);
    for r in [PLACE, YEAR, DOMAIN, HAS] {
        top.add_facet(root(r));
    }
    let counts = searcher.search(query, &top)?;
    let mut f = Facets::default();
    for (facet, n) in counts.get(root(PLACE)) {
        f.accounts.push((leaf(facet), n));
    }
    f.accounts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut years: BTreeMap<i32, u64> = BTreeMap::new();
    for (facet, n) in counts.get(root(YEAR)) {
        if let Ok(y) = leaf(facet).parse() {
            years.insert(y, n);
        }
    }
    f.years = years.into_iter().collect();
    f.domains = counts
        .top_k(root(DOMAIN), TOP)
        .into_iter()
        .map(|(facet, n)| (leaf(facet), n))
        .collect();
    f.with_attachments = counts
        .get(root(HAS))
        .find(|(facet, _)| leaf(facet) == "attachment")
        .map_or(0, |(_, n)| n);

    let shown: Vec<&String> = f
        .accounts
        .iter()
        .map(|(a, _)| a)
        .filter(|a| want_folders(a))
        .take(TOP)
        .collect();
    if !shown.is_empty() {
        let mut per = FacetCollector::for_field(FIELD);
        for a in &shown {
            per.add_facet(Facet::from_path([PLACE, a.as_str()]));
        }
        let counts = searcher.search(query, &per)?;
        for a in shown {
            for (facet, n) in counts.top_k(Facet::from_path([PLACE, a.as_str()]), TOP) {
                f.folders.push((a.clone(), leaf(facet), n));
            }
        }
    }
    Ok(f)
}
