//! The search page: the query, sorted and paged results, facets beside them and a
//! chart of matches per year above them.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::{html, Nav, PageError, Viewer};
use crate::index::Hit;
use crate::web::{reads, AppState};

/// Results on one search page.
pub const PAGE_SIZE: usize = 50;
/// The last page a search shows.
pub const MAX_PAGE: usize = crate::web::api::MAX_OFFSET / PAGE_SIZE;

/// One result line.
pub struct Row {
    pub id: String,
    pub date: String,
    pub from: String,
    pub subject: String,
    pub folders: String,
    pub attachments: usize,
}

impl Row {
    pub(super) fn of(h: Hit) -> Row {
        let date = chrono::DateTime::from_timestamp(h.date, 0)
            .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let subject = if h.subject.trim().is_empty() {
            "(no subject)".to_string()
        } else {
            h.subject
        };
        let folders = h
            .placements
            .iter()
            .map(|p| format!("{}/{}", p.account, p.folder))
            .collect::<Vec<_>>()
            .join(", ");
        Row {
            id: h.id,
            date,
            from: h.from.join(", "),
            subject,
            folders,
            attachments: h.attachments.len(),
        }
    }
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage<'a> {
    nav: Option<Nav>,
    q: &'a str,
    sort: &'a str,
    sorts: &'a [(&'a str, &'a str)],
    problem: Option<String>,
    total: usize,
    first: usize,
    last: usize,
    rows: Vec<Row>,
    prev: Option<String>,
    next: Option<String>,
    /// The query string exporting every result (the format is added).
    export: Option<String>,
    /// Admins may place a hold on the results.
    admin: bool,
    facets: Option<FacetView>,
}

/// One facet value: what it narrows to, and how many match.
pub struct FacetLink {
    pub label: String,
    pub count: u64,
    /// The search narrowed to it (query string).
    pub href: String,
}

/// One bar of the chart of matches over time.
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub height: u32,
    pub label: String,
    pub count: u64,
    pub href: String,
}

/// The facets beside the results, and the chart above them.
pub struct FacetView {
    pub accounts: Vec<FacetLink>,
    pub folders: Vec<FacetLink>,
    pub years: Vec<FacetLink>,
    pub domains: Vec<FacetLink>,
    pub attachments: Option<FacetLink>,
    pub bars: Vec<Bar>,
    pub bar_width: u32,
}

/// The chart's drawing area, in SVG units.
pub const CHART_WIDTH: u32 = 640;
pub const CHART_HEIGHT: u32 = 80;
/// Years before this are left off the chart (a message without any date sorts to 1970).
const CHART_FROM_YEAR: i32 = 1980;

fn narrowed(q: &str, sort: &str, term: &str) -> String {
    page_link(&format!("{q} {term}"), sort, 0)
}

/// Bars for `years` (gaps filled with empty years), scaled to the chart.
fn chart(q: &str, sort: &str, years: &[(i32, u64)]) -> (Vec<Bar>, u32) {
    let shown: Vec<(i32, u64)> = years.iter().copied().filter(|(y, _)| *y >= CHART_FROM_YEAR).collect();
    let (Some(first), Some(last)) = (shown.first(), shown.last()) else {
        return (Vec::new(), 0);
    };
    let span = (last.0 - first.0 + 1) as u32;
    let width = (CHART_WIDTH / span).max(2);
    let most = shown.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
    let bars = (first.0..=last.0)
        .enumerate()
        .map(|(i, year)| {
            let count = shown.iter().find(|(y, _)| *y == year).map_or(0, |(_, n)| *n);
            let height = ((count as f64 / most as f64) * CHART_HEIGHT as f64).round() as u32;
            Bar {
                x: i as u32 * width,
                y: CHART_HEIGHT - height,
                height,
                label: year.to_string(),
                count,
                href: narrowed(q, sort, &format!("date:{year}")),
            }
        })
        .collect();
    (bars, width.saturating_sub(1).max(1))
}

fn facet_view(q: &str, sort: &str, f: &crate::index::facets::Facets) -> FacetView {
    let link = |label: String, count: u64, term: String| FacetLink {
        label,
        count,
        href: narrowed(q, sort, &term),
    };
    let (bars, bar_width) = chart(q, sort, &f.years);
    FacetView {
        accounts: f
            .accounts
            .iter()
            .map(|(a, n)| link(a.clone(), *n, term("account", a)))
            .collect(),
        folders: f
            .folders
            .iter()
            .map(|(a, fo, n)| {
                link(
                    format!("{a}/{fo}"),
                    *n,
                    format!("{} {}", term("account", a), term("folder", fo)),
                )
            })
            .collect(),
        years: f
            .years
            .iter()
            .rev()
            .map(|(y, n)| link(y.to_string(), *n, format!("date:{y}")))
            .collect(),
        domains: f
            .domains
            .iter()
            .map(|(d, n)| link(d.clone(), *n, term("from", d)))
            .collect(),
        attachments: (f.with_attachments > 0)
            .then(|| link("has attachments".into(), f.with_attachments, "has:attachment".into())),
        bars,
        bar_width,
    }
}

const SORTS: &[(&str, &str)] = &[
    ("newest", "Newest first"),
    ("oldest", "Oldest first"),
    ("relevance", "Best match"),
];

#[derive(Debug, Default, Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    q: String,
    #[serde(default)]
    sort: crate::web::api::SortParam,
    #[serde(default)]
    page: usize,
    // The simple filter fields (not flattened: a flattened struct makes the query
    // string's numbers unreadable to serde_urlencoded).
    #[serde(default)]
    from: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    after: String,
    #[serde(default)]
    before: String,
    #[serde(default)]
    attachment: Option<String>,
}

impl SearchForm {
    fn filters(&self) -> Filters {
        Filters {
            from: self.from.clone(),
            subject: self.subject.clone(),
            after: self.after.clone(),
            before: self.before.clone(),
            attachment: self.attachment.clone(),
        }
    }
}

/// The search form's simple fields, for those who do not write the query language.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Filters {
    from: String,
    subject: String,
    /// `YYYY-MM-DD`.
    after: String,
    /// `YYYY-MM-DD`.
    before: String,
    /// A checkbox: present when ticked.
    attachment: Option<String>,
}

impl Filters {
    /// `q` with a term for each field filled in (the query box then shows the
    /// whole query, so the query language stays the one truth).
    fn compose(&self, q: &str) -> String {
        let mut terms: Vec<String> = Vec::new();
        if !q.trim().is_empty() {
            terms.push(q.trim().to_string());
        }
        for (field, value) in [("from", &self.from), ("subject", &self.subject)] {
            if !value.trim().is_empty() {
                terms.push(term(field, value.trim()));
            }
        }
        for (op, value) in [("after", &self.after), ("before", &self.before)] {
            let v = value.trim();
            if !v.is_empty() {
                // A date the form's date input gives; anything else goes to the
                // parser as written, which names what is wrong with it.
                terms.push(format!("{op}:{}", v.replace(char::is_whitespace, "")));
            }
        }
        if self.attachment.is_some() {
            terms.push("has:attachment".into());
        }
        terms.join(" ")
    }
}

fn sort_name(s: crate::web::api::SortParam) -> &'static str {
    match s {
        crate::web::api::SortParam::Newest => "newest",
        crate::web::api::SortParam::Oldest => "oldest",
        crate::web::api::SortParam::Relevance => "relevance",
    }
}

fn page_link(q: &str, sort: &str, page: usize) -> String {
    serde_urlencoded::to_string([("q", q), ("sort", sort), ("page", &page.to_string())]).unwrap_or_default()
}

/// `GET /search?q=…&sort=…&page=…`
pub async fn search(
    State(state): State<AppState>,
    v: Viewer,
    Query(f): Query<SearchForm>,
) -> Result<Response, PageError> {
    let sort = sort_name(f.sort);
    let page_no = f.page.min(MAX_PAGE);
    let composed = f.filters().compose(&f.q);
    let mut page = SearchPage {
        nav: v.nav(),
        q: &composed,
        sort,
        sorts: SORTS,
        problem: None,
        total: 0,
        first: 0,
        last: 0,
        rows: Vec::new(),
        prev: None,
        next: None,
        export: None,
        admin: v.who.may_manage(),
        facets: None,
    };
    if composed.is_empty() {
        return html(page);
    }
    let expr = match crate::query::parse(&composed) {
        Ok(e) => crate::readers::restrict(&v.who, e),
        Err(e) => {
            page.problem = Some(e.to_string());
            return html(page);
        }
    };
    let (lib, who, q) = (state.library.clone(), v.who.clone(), composed.clone());
    let offset = page_no * PAGE_SIZE;
    let sort_by = f.sort.into();
    let found = crate::web::blocking(move || {
        let ask = reads::Ask {
            q: &q,
            expr: &expr,
            sort: sort_by,
            limit: PAGE_SIZE,
            offset,
            facets: true,
        };
        reads::search(&lib, &who, &ask)
    })
    .await?;
    page.facets = found.facets.as_ref().map(|x| facet_view(&composed, sort, x));
    page.total = found.total;
    page.first = offset + 1;
    page.last = offset + found.hits.len();
    page.rows = found.hits.into_iter().map(Row::of).collect();
    page.export = Some(serde_urlencoded::to_string([("q", composed.as_str())]).unwrap_or_default());
    page.prev = (page_no > 0).then(|| page_link(&composed, sort, page_no - 1));
    page.next = (page.last < page.total && page_no < MAX_PAGE).then(|| page_link(&composed, sort, page_no + 1));
    html(page)
}

/// A query term for a value: quoted when it holds anything but plain characters.
pub(super) fn term(field: &str, value: &str) -> String {
    if value.chars().all(|c| c.is_alphanumeric() || "._-@/".contains(c)) && !value.is_empty() {
        format!("{field}:{value}")
    } else {
        format!("{field}:\"{}\"", value.replace('"', ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_fields_become_terms_of_the_query() {
        let f = Filters {
            from: " ann@example.com ".into(),
            subject: "quarterly report".into(),
            after: "2020-01-01".into(),
            before: "".into(),
            attachment: Some("on".into()),
        };
        assert_eq!(
            f.compose("invoice"),
            "invoice from:ann@example.com subject:\"quarterly report\" after:2020-01-01 has:attachment"
        );
        assert_eq!(Filters::default().compose("  x  "), "x");
        assert_eq!(Filters::default().compose(""), "");
        for q in [f.compose(""), f.compose("invoice")] {
            assert!(crate::query::parse(&q).is_ok(), "{q}");
        }
    }

    #[test]
    fn overview_links_quote_values_that_need_it() {
        assert_eq!(term("folder", "INBOX"), "folder:INBOX");
        assert_eq!(term("folder", "Sent Items"), "folder:\"Sent Items\"");
        assert_eq!(term("account", "a@b.org"), "account:a@b.org");
        assert_eq!(term("folder", ""), "folder:\"\"");
    }
}
