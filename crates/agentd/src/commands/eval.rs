//! `agentd eval retrieval FILE.jsonl`: hit@k, recall@k, MRR and nDCG of
//! every search mode over a tenant's documents, with `--baselines` next to
//! the plain baselines built from the same pages in the same run.
//!
//! The indexes are rebuilt in memory from the store, so the command gives
//! the same figures whether or not a server is running beside it.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use agentd_retrieval::eval::baselines::Baselines;
use agentd_retrieval::{Knowledge, evaluate, read_eval_set};

use crate::commands::knowledge::{knowledge_options, load_embedder};
use crate::config::Config;
use crate::wiring;

pub async fn retrieval(config: &Config, tenant: &str, baselines: bool, file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let questions = read_eval_set(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let store = wiring::store(config).await?;
    let tenant = wiring::existing_tenant(&store, tenant).await?.id;
    let (embedder, _registry) = load_embedder(config).await?;
    let baselines = if baselines {
        let started = Instant::now();
        let built = Baselines::build(&store, tenant, embedder.clone()).await?;
        let (pages, passages) = built.size();
        eprintln!("baselines: {pages} pages, {passages} passages, built in {:.1} s", started.elapsed().as_secs_f64());
        Some(built)
    } else {
        None
    };
    let knowledge = Knowledge::open(store, embedder, knowledge_options(config, false)).await?;
    let report = evaluate(knowledge.searcher(), tenant, &questions, baselines.as_ref()).await?;
    println!("{} questions from {}", questions.len(), file.display());
    print!("{}", report.table());
    Ok(())
}
