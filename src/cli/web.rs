//! `mailvault web`: the web interface and the JSON API over the archive.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use mailvault::web::library::Library;
use mailvault::web::{AppState, Transport};

use super::Cli;

#[derive(Args, Debug)]
pub struct WebArgs {
    /// Address to listen on (port 0 picks a free one); an address other than
    /// loopback needs TLS or --insecure-http
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
    #[command(flatten)]
    tls: TlsArgs,
}

/// How the web server speaks: TLS, or plain HTTP (`web` and `serve --web`).
#[derive(Args, Debug)]
pub struct TlsArgs {
    /// Serve HTTPS with this PEM certificate chain
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Serve plain HTTP on a non-loopback address (only behind a TLS-terminating
    /// proxy that is the only way in)
    #[arg(long, conflicts_with = "tls_cert")]
    insecure_http: bool,
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

impl TlsArgs {
    /// How to serve on `addr`: refused when it is not loopback and neither TLS nor
    /// plain HTTP was asked for.
    pub fn transport(&self, addr: &SocketAddr) -> Result<Transport> {
        mailvault::web::check_listen(addr, self.tls_cert.is_some(), self.insecure_http)?;
        Ok(match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Transport::Tls(mailvault::web::tls::server_config(cert, key)?),
            _ => Transport::Plain,
        })
    }
}

/// The archive at `dir` for the web server (opened now, or at the first request
/// when `later`), and `addr` and TLS checked.
pub fn prepare(
    cli: &Cli,
    dir: &std::path::Path,
    addr: &SocketAddr,
    tls: &TlsArgs,
    later: bool,
) -> Result<(Library, Transport)> {
    let transport = tls.transport(addr)?;
    let secret = super::secret::for_archive(&cli.secret, dir)?;
    let library = if later {
        Library::later(dir, secret)
    } else {
        Library::open(dir, secret).with_context(|| format!("opening archive {}", dir.display()))?
    };
    Ok((library, transport))
}

/// Binds `addr` and says where (the tests and people read the line).
pub async fn bind(addr: &SocketAddr, transport: &Transport) -> Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let at = listener.local_addr()?;
    let scheme = match transport {
        Transport::Tls(_) => "https",
        Transport::Plain => "http",
    };
    eprintln!("mailvault web: listening on {scheme}://{at}/ (API at {scheme}://{at}/api/v1/openapi.json)");
    Ok(listener)
}

pub fn web(cli: &Cli, a: &WebArgs) -> Result<ExitCode> {
    let dir = super::existing_archive_dir(cli)?;
    let (library, transport) = prepare(cli, &dir, &a.listen, &a.tls, false)?;
    let state = AppState::new(library, matches!(transport, Transport::Tls(_)));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let listener = bind(&a.listen, &transport).await?;
        mailvault::web::serve(listener, state, transport, stopped()).await?;
        eprintln!("mailvault web: stopped");
        Ok(ExitCode::SUCCESS)
    })
}
