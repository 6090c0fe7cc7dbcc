//! What the document commands (`ingest`, `worker`, `eval`) and `serve`
//! share: the knowledge service's options from the configuration, and the
//! configured embedder.

use std::sync::Arc;

use anyhow::Context;

use agentd_models::{Embedder, ModelRegistry};
use agentd_retrieval::vector::HnswParams;
use agentd_retrieval::{ChunkOptions, IngestOptions, KnowledgeOptions, WorkerOptions};

use crate::config::Config;

/// The service's options; `persist` keeps the indexes under the data dir
/// (only `serve` does: one process owns them).
pub fn knowledge_options(config: &Config, persist: bool) -> KnowledgeOptions {
    let r = &config.retrieval;
    KnowledgeOptions {
        index_dir: persist.then(|| config.data_dir.join("index")),
        hnsw: HnswParams {
            connectivity: r.hnsw_connectivity,
            expansion_add: r.hnsw_expansion_add,
            expansion_search: r.hnsw_expansion_search,
        },
        ingest: IngestOptions {
            chunk: ChunkOptions {
                max_tokens: r.chunk_tokens,
                overlap_tokens: r.chunk_overlap_tokens,
                min_tokens: r.chunk_min_tokens,
            },
            embed_headings: r.embed_headings,
            drop_boilerplate: r.drop_boilerplate,
            ..IngestOptions::default()
        },
        worker: WorkerOptions {
            max_attempts: r.job_attempts,
            lease: std::time::Duration::from_secs(r.job_lease_secs),
            ..WorkerOptions::default()
        },
        max_document_bytes: r.max_document_bytes,
        ..KnowledgeOptions::default()
    }
}

/// The configured embedding model, loaded without the chat models.
pub async fn load_embedder(config: &Config) -> anyhow::Result<(Arc<dyn Embedder>, Arc<ModelRegistry>)> {
    let models_dir = config.models_dir();
    let registry = Arc::new(ModelRegistry::describe(&config.models_config()?, &models_dir)?);
    let embedder = registry
        .embedder(None)
        .await
        .with_context(|| format!("cannot load the embedding model from {}", models_dir.display()))?;
    Ok((embedder, registry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_gives_the_retrieval_crates_own_defaults() {
        let (from_config, own) = (knowledge_options(&Config::default(), false), KnowledgeOptions::default());
        assert_eq!(from_config.max_document_bytes, own.max_document_bytes);
        assert_eq!(from_config.hnsw, own.hnsw);
        assert_eq!(from_config.ingest.chunk, own.ingest.chunk);
        assert_eq!(
            (from_config.ingest.embed_headings, from_config.ingest.drop_boilerplate),
            (own.ingest.embed_headings, own.ingest.drop_boilerplate)
        );
        assert_eq!(
            (from_config.worker.max_attempts, from_config.worker.lease),
            (own.worker.max_attempts, own.worker.lease)
        );
    }
}
