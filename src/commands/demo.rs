//! `pole-ods demo`: loads the synthetic data set through the store's commit path, then
//! prints a short tour.

use std::collections::VecDeque;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use pole_ods::demo::{DemoConfig, DemoGenerator};
use serde::Serialize;

use crate::config::Config;
use crate::output::{print_json, progress};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many changes to generate (1,000 to 10,000,000)
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1_000..=10_000_000))]
    pub changes: u64,
    /// Seed of the generator: the same seed gives the same data
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Delete the data directory first (only if it is a pole-ods data directory)
    #[arg(long)]
    pub reset: bool,
    /// Load without printing the tour
    #[arg(long)]
    pub no_tour: bool,
    /// Print `ack SEQ CHANGES` on stdout after every durable commit (crash tests)
    #[arg(long, hide = true)]
    pub print_acks: bool,
    /// Exit after loading instead of serving the API over the data
    #[arg(long)]
    pub no_serve: bool,
    /// Where to serve the API after loading (port 0 picks a free port)
    #[arg(long, env = "POLE_BIND", default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub bind: String,
}

#[derive(Debug, Serialize)]
struct LoadView {
    loaded: bool,
    changes: u64,
    transactions: u64,
    rejected: u64,
    /// Refusals other than the planted defects (a generator bug if ever non-zero).
    unexpected_rejections: u64,
    seconds: f64,
    changes_per_second: f64,
}

pub fn run(config: &Config, args: &DemoArgs) -> anyhow::Result<ExitCode> {
    if args.reset && config.data.exists() {
        if !config.data.join("FORMAT").exists() {
            bail!("--reset refuses to delete {}: it is not a pole-ods data directory", config.data.display());
        }
        std::fs::remove_dir_all(&config.data).with_context(|| format!("deleting {}", config.data.display()))?;
    }
    let store = super::open_store(config)?;
    let existing = store.stats()?;
    let load = if existing.transactions > 0 && !args.print_acks {
        if !config.json {
            println!(
                "{} already holds {} transactions; showing the tour without loading (use --reset to reload)\n",
                config.data.display(),
                existing.transactions
            );
        }
        LoadView {
            loaded: false,
            changes: 0,
            transactions: 0,
            rejected: 0,
            unexpected_rejections: 0,
            seconds: 0.0,
            changes_per_second: 0.0,
        }
    } else {
        load(&store, config, args)?
    };
    let stats = store.stats()?;
    let digest = store.digest()?;
    let tour = if args.no_tour || args.print_acks { None } else { Some(super::tour::build(&store)?) };
    if config.json {
        print_json(&serde_json::json!({
            "load": load,
            "stats": { "transactions": stats.transactions, "changes": stats.changes, "entities": stats.entities },
            "digest": digest.to_hex(),
            "tour": tour,
        }))?;
    } else if !args.print_acks {
        if load.loaded {
            println!(
                "loaded {} changes in {} transactions in {:.1}s ({:.0} changes/s durable); {} submissions refused by validation, as real ones are",
                load.changes, load.transactions, load.seconds, load.changes_per_second, load.rejected
            );
        }
        println!(
            "store: {} transactions, {} changes, {} entities; digest {}\n",
            stats.transactions, stats.changes, stats.entities, digest
        );
        if let Some(tour) = &tour {
            print!("{}", super::tour::render(&store, tour));
        }
    }
    if args.no_serve || args.print_acks || config.json {
        store.close()?;
        return Ok(ExitCode::SUCCESS);
    }
    let person = tour.as_ref().and_then(|t| t.person.as_ref()).map(|p| p.entity.clone());
    // A read point at which the person already existed, before the latest changes.
    let earlier = tour
        .as_ref()
        .and_then(|t| t.earlier.as_ref())
        .map(|e| e.as_of_seq)
        .zip(person.as_ref())
        .map(|(seq, p)| seq.max(p.created.seq));
    let serve_args = super::serve::ServeArgs { bind: args.bind.clone(), mllp: None };
    super::serve::serve(config, &serve_args, store, |addrs| {
        let Some(addr) = addrs.first() else { return Ok(()) };
        let tokens = crate::access::demo_tokens(config, person.as_ref().and_then(council_of).unwrap_or("LDS"))
            .map_err(std::io::Error::other)?;
        let pseudonym = match &person {
            Some(p) => Some(crate::access::pseudonym(config, "research", &p.id).map_err(std::io::Error::other)?),
            None => None,
        };
        print!("{}", welcome(*addr, &tokens, person.as_ref(), pseudonym.as_deref(), earlier));
        std::io::Write::flush(&mut std::io::stdout())
    })
}

fn council_of(person: &pole_model::EntityState) -> Option<&str> {
    person.created.council.as_deref()
}

/// What a newcomer needs once the server listens: a token per role and requests to try.
fn welcome(
    addr: std::net::SocketAddr,
    tokens: &[(String, String)],
    person: Option<&pole_model::EntityState>,
    pseudonym: Option<&str>,
    earlier: Option<u64>,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "\nTokens, valid for 8 hours (mint more with `pole-ods token --role ROLE`):");
    for (label, token) in tokens {
        let var = label.split_whitespace().next().unwrap_or("token").to_uppercase();
        let _ = writeln!(out, "  # {label}\n  export {var}={token}");
    }
    let _ = writeln!(out, "\nGraphiQL: http://{addr}/graphql (add the header Authorization: Bearer <token>)");
    let _ = writeln!(out, "API reference: http://{addr}/docs");
    if let Some(person) = person {
        let id = &person.id;
        let _ = writeln!(out, "\nOne person, as each role sees them:");
        for var in ["ANALYST", "COUNCIL", "AUDITOR"] {
            let _ = writeln!(out, "  curl -s -H \"Authorization: Bearer ${var}\" http://{addr}/v1/entities/{id}");
        }
        let _ = writeln!(
            out,
            "  # every council's and hospital's record of them (same NHS number), and each value's source:\n  curl -s -H \"Authorization: Bearer $ANALYST\" http://{addr}/v1/people/{id}"
        );
        if let Some(pseudonym) = pseudonym {
            let _ = writeln!(
                out,
                "  # a consumer names the same person by its pseudonym under the research agreement:\n  curl -s -H \"Authorization: Bearer $CONSUMER\" http://{addr}/v1/entities/{pseudonym}"
            );
        }
        let as_of = earlier.map(|seq| format!(", asOf: \\\"{seq}\\\"")).unwrap_or_default();
        let _ = writeln!(
            out,
            "\nTheir linked records as of an earlier point, over GraphQL:\n  curl -s -H \"Authorization: Bearer $ANALYST\" -H 'Content-Type: application/json' http://{addr}/graphql \\\n    -d '{{\"query\": \"{{ entity(id: \\\"{id}\\\"{as_of}) {{ id type links {{ role direction entity {{ id type }} }} }} }}\"}}'"
        );
    }
    let _ = writeln!(out, "\nThe consumer reads pseudonymised, minimised data: try  curl -s -H \"Authorization: Bearer $CONSUMER\" 'http://{addr}/v1/entities?type=person&limit=3'");
    let _ = writeln!(out, "Serving until Ctrl-C.");
    out
}

/// Transactions kept in flight: enough for group commit to share each sync among many,
/// few enough that the generator rarely builds on a transaction not yet answered.
const WINDOW: usize = 32;

fn load(store: &pole_store::Store, config: &Config, args: &DemoArgs) -> anyhow::Result<LoadView> {
    let mut generator = DemoGenerator::new(DemoConfig { changes: args.changes, seed: args.seed });
    let bar = progress(args.changes, "loading", config.json || args.print_acks);
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut in_flight = VecDeque::with_capacity(WINDOW);
    let stdout = std::io::stdout();
    loop {
        while in_flight.len() < WINDOW {
            let Some(request) = generator.next_transaction() else { break };
            in_flight.push_back(store.submit(request)?);
        }
        let Some(pending) = in_flight.pop_front() else { break };
        // Durable is enough: the generator only needs the ids, and the writer judges the
        // next transactions against this one while it is applied.
        match pending.wait_durable()? {
            Ok(committed) => {
                tally.changes += committed.changes as u64;
                tally.transactions += 1;
                generator.committed(&committed.refs);
                if args.print_acks {
                    let mut out = stdout.lock();
                    writeln!(out, "ack {} {}", committed.seq, committed.changes)?;
                    out.flush()?;
                }
            }
            Err(rejection) => {
                tally.rejected += 1;
                tracing::debug!(%rejection, "demo submission refused");
                generator.rejected(&rejection);
            }
        }
        bar.set_position(tally.changes);
    }
    // Loaded means readable: the last groups may still be being applied.
    store.wait_readable()?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let unexpected = generator.stats().unexpected_rejections;
    if unexpected > 0 {
        tracing::warn!(unexpected, last = ?generator.stats().last_unexpected_rejection, "demo submissions refused for reasons the generator did not plant");
    }
    Ok(LoadView {
        loaded: true,
        changes: tally.changes,
        transactions: tally.transactions,
        rejected: tally.rejected,
        unexpected_rejections: unexpected,
        seconds,
        changes_per_second: if seconds > 0.0 { tally.changes as f64 / seconds } else { 0.0 },
    })
}

#[derive(Debug, Default)]
struct Tally {
    changes: u64,
    transactions: u64,
    rejected: u64,
}
