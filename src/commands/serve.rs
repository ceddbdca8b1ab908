//! `pole-ods serve`: the HTTP API over the store.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use pole_api::{create_app, ApiConfig, AppState};

use crate::config::Config;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port)
    #[arg(long, env = "POLE_BIND", default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub bind: String,
    /// Treat every request as an administrator named `dev`. For local exploration only:
    /// never on by default, and announced loudly
    #[arg(long)]
    pub dev_principal: bool,
}

fn announce(addrs: &[std::net::SocketAddr]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for addr in addrs {
        writeln!(out, "listening on http://{addr}")?;
    }
    if let Some(addr) = addrs.first() {
        writeln!(out, "  health:   http://{addr}/health")?;
        writeln!(out, "  entities: http://{addr}/v1/entities?type=person&limit=5")?;
        writeln!(out, "  metrics:  http://{addr}/metrics")?;
    }
    out.flush()
}

pub fn run(config: &Config, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let store = super::open_store(config)?;
    let api_config = ApiConfig { dev_principal: args.dev_principal, ..ApiConfig::default() };
    if args.dev_principal {
        tracing::warn!("--dev-principal: every request is served as the administrator `dev`, without authentication");
        eprintln!("WARNING: --dev-principal is on: every request is treated as an administrator. Never use it with real data.");
    }
    let state = AppState::new(store.clone()).context("setting up metrics")?;
    let served = actix_web::rt::System::new().block_on(async move {
        let app_config = api_config.clone();
        let server = actix_web::HttpServer::new(move || create_app(state.clone(), app_config.clone()))
            .bind(&args.bind)
            .with_context(|| format!("binding {}", args.bind))?;
        let addrs = server.addrs();
        // Best effort: a reader that closed our stdout must not stop the server.
        if let Err(e) = announce(&addrs) {
            tracing::warn!(error = %e, "could not print the listening addresses");
        }
        // actix finishes in-flight requests on SIGINT/SIGTERM before returning.
        server.run().await.context("serving")
    });
    store.close()?;
    served?;
    Ok(ExitCode::SUCCESS)
}
