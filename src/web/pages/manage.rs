//! Exports, legal holds and the overview.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::search::term;
use super::{html, Nav, PageError, Viewer};
use crate::web::error::{Code, WebError};
use crate::web::export::WebExportFormat;
use crate::web::{reads, AppState};

/// `GET /export?q=…&format=mbox`, or `?id=…&id=…` (a selection from a results
/// page): one mboxrd file, streamed.
pub async fn export(
    State(state): State<AppState>,
    v: Viewer,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, PageError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or_default())
        .map_err(|e| WebError::api(Code::BadRequest, format!("the export's parameters: {e}")))?;
    let mut p = crate::web::export::ExportParams::default();
    let mut ids = Vec::new();
    for (k, val) in pairs {
        match (k.as_str(), val.as_str()) {
            ("q", _) => p.q = Some(val),
            ("id" | "ids", _) => ids.push(val),
            ("format", "mbox") => p.format = WebExportFormat::Mbox,
            ("format", "zip") => p.format = WebExportFormat::Zip,
            ("format", other) => {
                return Err(WebError::api(
                    Code::BadRequest,
                    format!("format {other:?}: the web exports mbox or zip"),
                )
                .into())
            }
            _ => {}
        }
    }
    if !ids.is_empty() {
        p.ids = Some(ids.join(","));
    }
    let what = p.selection(&v.who)?;
    let (lib, who) = (state.library.clone(), v.who.clone());
    let e = crate::web::blocking(move || reads::export(&lib, &who, &what)).await?;
    Ok(crate::web::export::response(p.format, e.snap, e.items))
}

#[derive(Template)]
#[template(path = "holds.html")]
struct HoldsPage<'a> {
    nav: Option<Nav>,
    holds: Vec<crate::web::holds::Hold>,
    admin: bool,
    csrf: &'a str,
    query: &'a str,
}

#[derive(Debug, Default, Deserialize)]
pub struct HoldsParams {
    /// A query to place a hold on (from a results page).
    #[serde(default)]
    q: String,
}

/// `GET /holds`: every legal hold (admins and auditors); admins also place and
/// release them here.
pub async fn holds(
    State(state): State<AppState>,
    v: Viewer,
    Query(p): Query<HoldsParams>,
) -> Result<Response, PageError> {
    if !v.who.may_audit() {
        return Err(WebError::api(Code::Forbidden, "only admins and auditors see legal holds").into());
    }
    let lib = state.library.clone();
    let holds = crate::web::blocking(move || crate::web::holds::list(&lib)).await?;
    html(HoldsPage {
        nav: v.nav(),
        holds,
        admin: v.who.may_manage(),
        csrf: &v.session.csrf,
        query: &p.q,
    })
}

#[derive(Deserialize)]
pub struct HoldForm {
    #[serde(default)]
    csrf: String,
    name: String,
    query: String,
    #[serde(default)]
    reason: String,
}

/// `POST /holds`: place a hold (admins).
pub async fn place_hold(
    State(state): State<AppState>,
    v: Viewer,
    Form(f): Form<HoldForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&f.csrf)?;
    let h = crate::web::holds::NewHold {
        name: f.name,
        query: f.query,
        reason: f.reason,
    };
    let (lib, who) = (state.library.clone(), v.who.clone());
    crate::web::blocking(move || crate::web::holds::place(&lib, &who, &h)).await?;
    Ok(Redirect::to("/holds").into_response())
}

#[derive(Deserialize)]
pub struct ReleaseForm {
    #[serde(default)]
    csrf: String,
    name: String,
}

/// `POST /holds/release`: release a hold (admins).
pub async fn release_hold(
    State(state): State<AppState>,
    v: Viewer,
    Form(f): Form<ReleaseForm>,
) -> Result<Response, PageError> {
    v.check_csrf(&f.csrf)?;
    let (lib, who) = (state.library.clone(), v.who.clone());
    crate::web::blocking(move || crate::web::holds::release(&lib, &who, &f.name)).await?;
    Ok(Redirect::to("/holds").into_response())
}

/// Archive-wide figures, for people.
pub struct TotalsView {
    pub messages: u64,
    pub placements: u64,
    pub raw: String,
    pub dedup: String,
    pub stored: String,
    pub percent: String,
    pub disk: String,
}

/// A folder line, for people.
pub struct FolderView {
    pub account: String,
    pub folder: String,
    pub query: String,
    pub messages: u64,
    pub size: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    nav: Option<Nav>,
    totals: Option<TotalsView>,
    folders: Vec<FolderView>,
    jobs: Vec<crate::web::overview::JobLine>,
}

/// `GET /overview`
pub async fn overview(State(state): State<AppState>, v: Viewer) -> Result<Response, PageError> {
    let (lib, who) = (state.library.clone(), v.who.clone());
    let o = crate::web::blocking(move || crate::web::overview::overview(&lib, &who)).await?;
    let hb = crate::output::human_bytes;
    html(OverviewPage {
        nav: v.nav(),
        totals: o.totals.map(|t| TotalsView {
            messages: t.messages,
            placements: t.placements,
            raw: hb(t.raw_bytes),
            dedup: hb(t.dedup_saved_bytes),
            stored: hb(t.stored_bytes),
            percent: format!("{:.1} %", t.ratio * 100.0),
            disk: hb(t.disk_bytes),
        }),
        folders: o
            .folders
            .into_iter()
            .map(|f| FolderView {
                query: format!("{} {}", term("account", &f.account), term("folder", &f.folder)),
                size: hb(f.bytes),
                account: f.account,
                folder: f.folder,
                messages: f.messages,
            })
            .collect(),
        jobs: o.jobs,
    })
}
