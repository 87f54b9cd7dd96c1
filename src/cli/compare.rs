//! `mailvault compare URL_A URL_B`: every difference between two accounts — a
//! message missing or extra, in another folder, with other flags or another
//! INTERNALDATE — with A's folders mapped as a replay from A to B maps them.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::server_args::{FromServerArgs, ToServerArgs};
use mailvault::plan::compare::Kind;
use mailvault::plan::folder_map::{parse_rule, Mapping};
use mailvault::replay::compare::{differences, read_account};

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Account A, what B should hold (e.g. the migration's source): imaps://USER@HOST[:PORT]
    #[arg(value_name = "URL_A")]
    a: String,
    /// Account B (e.g. the migration's target)
    #[arg(value_name = "URL_B")]
    b: String,
    /// Folder rules, as given to replay/migrate (A's FROM goes to B's TO)
    #[arg(long = "map", value_name = "FROM=TO")]
    maps: Vec<String>,
    /// Folders with a SPECIAL-USE role were kept under their own names (as given to
    /// replay/migrate)
    #[arg(long)]
    no_role_map: bool,
    /// Credentials and TLS of A
    #[command(flatten)]
    source: FromServerArgs,
    /// Credentials and TLS of B
    #[command(flatten)]
    target: ToServerArgs,
    /// Seconds to wait for any single network step
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    timeout: u64,
    #[command(flatten)]
    output: super::Output,
}

pub fn compare(a: &CompareArgs) -> Result<ExitCode> {
    let rules = a
        .maps
        .iter()
        .map(|m| parse_rule(m).with_context(|| format!("--map {m}")))
        .collect::<Result<Vec<_>>>()?;
    let ea = a.source.options().endpoint(&a.a)?;
    let eb = a.target.options().endpoint(&a.b)?;
    let oa = a.source.options().connect_options(ea, a.timeout, None)?;
    let ob = a.target.options().connect_options(eb, a.timeout, None)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (ra, rb) = rt.block_on(async { tokio::join!(read_account(&oa), read_account(&ob)) });
    let (acc_a, acc_b) = (ra?, rb?);
    let how = Mapping {
        rules,
        roles: !a.no_role_map,
    };
    let diffs = differences(&acc_a, &acc_b, &how);
    let mut counts: BTreeMap<Kind, usize> = BTreeMap::new();
    for d in &diffs {
        *counts.entry(d.kind).or_default() += 1;
    }
    if a.output.json() {
        let side = |o: &mailvault::remote::ConnectOptions, acc: &mailvault::replay::compare::Account| {
            mailvault::output::CompareSide {
                server: o.endpoint.to_string(),
                messages: acc.messages(),
                folders: acc.folders.len(),
            }
        };
        let v = mailvault::output::CompareReport {
            a: side(&oa, &acc_a),
            b: side(&ob, &acc_b),
            differences: diffs.clone(),
            counts: counts.clone(),
        };
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for d in &diffs {
            let kind = format!("{:?}", d.kind).to_lowercase();
            println!(
                "{kind:<8} {:<28} {}  A: {}  B: {}",
                d.folder,
                &d.message[..16],
                d.a,
                d.b
            );
        }
        println!(
            "A {}: {} messages in {} folders; B {}: {} messages in {} folders",
            oa.endpoint,
            acc_a.messages(),
            acc_a.folders.len(),
            ob.endpoint,
            acc_b.messages(),
            acc_b.folders.len()
        );
        let summary: Vec<String> = counts
            .iter()
            .map(|(k, n)| format!("{n} {}", format!("{k:?}").to_lowercase()))
            .collect();
        if diffs.is_empty() {
            println!("no differences: every message of A is in B once, in its folder, with its flags and date");
        } else {
            println!("{} differences: {}", diffs.len(), summary.join(", "));
        }
    }
    Ok(if diffs.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
