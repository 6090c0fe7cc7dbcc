//! `agentd eval retrieval FILE.jsonl`: recall, MRR and nDCG of every search
//! mode over a tenant's documents.
//!
//! The indexes are rebuilt in memory from the store, so the command gives
//! the same figures whether or not a server is running beside it.

use std::path::Path;

use anyhow::Context;

use agentd_retrieval::{Knowledge, evaluate, read_eval_set};

use crate::commands::knowledge::{knowledge_options, load_embedder};
use crate::config::Config;
use crate::wiring;

pub async fn retrieval(config: &Config, tenant: &str, file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let questions = read_eval_set(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let store = wiring::store(config).await?;
    let tenant = wiring::existing_tenant(&store, tenant).await?.id;
    let (embedder, _registry) = load_embedder(config).await?;
    let knowledge = Knowledge::open(store, embedder, knowledge_options(config, false)).await?;
    let report = evaluate(knowledge.searcher(), tenant, &questions).await?;
    println!("{} questions from {}", questions.len(), file.display());
    print!("{}", report.table());
    Ok(())
}
