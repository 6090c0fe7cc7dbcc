//! `agentd-bench`: the benchmarks that print this machine's figures next to
//! the engines a Python service would use (reference engines run as Python
//! subprocesses). Kept out of the `agentd` binary, which holds what users
//! run; it reads the same configuration (file, `AGENTD_*` environment).
//!
//! `cargo run --release -p agentd-bench -- models` and `-- retrieval`; see
//! `bench/README.md`.

mod models;
mod retrieval;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use agentd::logging;

/// Measure this machine's speed (prints a table).
#[derive(Debug, Parser)]
#[command(name = "agentd-bench", version, about)]
struct Cli {
    #[command(flatten)]
    global: agentd::program::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Local embeddings and chat models against their reference engines, and serve's memory.
    Models(models::ModelsBench),
    /// Ingestion throughput and search latency on real documentation.
    Retrieval(retrieval::RetrievalBench),
}

fn main() -> ExitCode {
    agentd::program::exit_code(run(Cli::parse()))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.global.load_config()?;
    match cli.command {
        Command::Models(args) => models::models(&config, &args).await,
        Command::Retrieval(args) => {
            logging::init_quiet(&config)?;
            retrieval::retrieval(&config, &args).await
        }
    }
}
