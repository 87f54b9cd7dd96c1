//! `mailvault web`: the web server (so far the JSON API) over the archive.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use mailvault::web::library::Library;
use mailvault::web::AppState;

use super::Cli;

#[derive(Args, Debug)]
pub struct WebArgs {
    /// Address to listen on (loopback only for now; port 0 picks a free one)
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
}

/// Until SIGINT or SIGTERM.
async fn stopped() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

pub fn web(cli: &Cli, a: &WebArgs) -> Result<ExitCode> {
    mailvault::web::check_listen(&a.listen)?;
    let dir = super::existing_archive_dir(cli)?;
    let secret = super::secret::for_archive(&cli.secret, &dir)?;
    let library = Library::open(&dir, secret).with_context(|| format!("opening archive {}", dir.display()))?;
    let state = AppState::new(library, false);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .with_context(|| format!("listening on {}", a.listen))?;
        let addr = listener.local_addr()?;
        eprintln!("mailvault web: listening on http://{addr}/ (API at http://{addr}/api/v1/openapi.json)");
        mailvault::web::serve(listener, state, stopped()).await?;
        eprintln!("mailvault web: stopped");
        Ok(ExitCode::SUCCESS)
    })
}
