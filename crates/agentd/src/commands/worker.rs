//! `agentd worker`: ingestion workers without an HTTP server, for machines
//! that only ingest. They share the job queue of the configured database
//! with every other worker, in servers or not, and stop on SIGINT or
//! SIGTERM (a job in progress is taken over by another worker once its
//! lease runs out).

use tokio::sync::watch;

use agentd_retrieval::Knowledge;

use crate::commands::knowledge::{knowledge_options, load_embedder};
use crate::commands::serve::shutdown_signal;
use crate::config::Config;
use crate::wiring;

pub async fn run(config: &Config, workers: usize) -> anyhow::Result<()> {
    let store = wiring::store(config).await?;
    let (embedder, _registry) = load_embedder(config).await?;
    let knowledge = Knowledge::open(store, embedder, knowledge_options(config, false)).await?;
    let (stop, shutdown) = watch::channel(false);
    let tasks: Vec<_> = (0..workers.max(1)).map(|n| tokio::spawn(knowledge.worker(n).run(shutdown.clone()))).collect();
    println!("agentd worker: {} ingestion worker(s) on the {} database", workers.max(1), knowledge.backend());
    shutdown_signal().await;
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}
