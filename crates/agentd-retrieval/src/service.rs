//! The knowledge service: everything a process needs to take documents in
//! and search them, built once and shared.
//!
//! `agentd serve` builds it with in-process workers and a maintenance task
//! that keeps the indexes in step with the store and writes their
//! snapshots; `agentd ingest` and `agentd worker` build it without
//! searching; tests build it with indexes in memory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentd_models::Embedder;
use agentd_store::{Document, DocumentId, Job, JobId, Page, Store, StoreError, TenantId};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::indexes::{IndexError, Indexes};
use crate::ingest::{IngestOptions, Ingestor};
use crate::search::{SearchError, SearchRequest, SearchResponse, Searcher};
use crate::submit::{Submission, SubmitError, Submitter, Upload};
use crate::vector::HnswParams;
use crate::worker::{IngestQueue, Worker, WorkerOptions};

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct KnowledgeOptions {
    /// Where indexes persist; `None` keeps them in memory.
    pub index_dir: Option<PathBuf>,
    pub hnsw: HnswParams,
    pub ingest: IngestOptions,
    pub worker: WorkerOptions,
    /// The largest document accepted, in bytes.
    pub max_document_bytes: usize,
    /// How often the indexes check the store for other processes' writes
    /// and save their snapshots.
    pub maintenance_every: Duration,
    /// On PostgreSQL with the pgvector extension, rank vectors there
    /// (every node searches every vector without an index of its own).
    pub pgvector: bool,
}

impl Default for KnowledgeOptions {
    fn default() -> Self {
        KnowledgeOptions {
            index_dir: None,
            hnsw: HnswParams::default(),
            ingest: IngestOptions::default(),
            worker: WorkerOptions::default(),
            max_document_bytes: 64 * 1024 * 1024,
            maintenance_every: Duration::from_secs(5),
            pgvector: true,
        }
    }
}

/// Documents in, search results out: what a caller may do with a tenant's
/// knowledge, each operation keeping the store and the indexes in step.
#[derive(Clone)]
pub struct Knowledge {
    store: Store,
    submitter: Submitter,
    searcher: Searcher,
    queue: IngestQueue,
    ingestor: Ingestor,
    options: KnowledgeOptions,
}

impl Knowledge {
    /// Opens the indexes (loaded per tenant on first use) and wires the
    /// rest.
    pub async fn open(
        store: Store,
        embedder: Arc<dyn Embedder>,
        options: KnowledgeOptions,
    ) -> Result<Arc<Self>, IndexError> {
        let indexes =
            Indexes::open(store.clone(), options.index_dir.clone(), embedder.dimension(), options.hnsw).await?;
        let queue = IngestQueue::new(store.clone(), options.worker.max_attempts);
        let pgvector = options.pgvector && prepare_pgvector(&store, embedder.dimension()).await;
        Ok(Arc::new(Knowledge {
            submitter: Submitter::new(store.clone(), queue.clone(), options.max_document_bytes),
            searcher: Searcher::new(store.clone(), indexes, embedder.clone()).with_pgvector(pgvector),
            ingestor: Ingestor::new(store.clone(), embedder, options.ingest),
            queue,
            store,
            options,
        }))
    }

    /// Stores documents and queues them for ingestion.
    pub async fn submit(&self, tenant: TenantId, uploads: Vec<Upload>) -> Result<Submission, SubmitError> {
        self.submitter.submit(tenant, uploads).await
    }

    /// Replaces a document with a new version; its old chunks stay
    /// searchable until the new ones replace them.
    pub async fn replace(&self, tenant: TenantId, id: DocumentId, upload: Upload) -> Result<Submission, SubmitError> {
        self.submitter.replace(tenant, id, upload).await
    }

    /// The largest document accepted, in bytes.
    pub fn max_document_bytes(&self) -> usize {
        self.submitter.max_document_bytes()
    }

    /// A page of the tenant's documents, newest first, optionally only those
    /// whose metadata has every key of `metadata` with an equal value.
    pub async fn documents(
        &self,
        tenant: TenantId,
        metadata: Option<&serde_json::Value>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Document>, StoreError> {
        self.store.documents().list(tenant, metadata, limit, cursor).await
    }

    /// One document, with its status and chunk count.
    pub async fn document(&self, tenant: TenantId, id: DocumentId) -> Result<Document, StoreError> {
        self.store.documents().get(tenant, id).await
    }

    /// Deletes a document; its chunks leave this node's indexes before its
    /// next search, and other nodes' at their next look at the change log.
    pub async fn delete(&self, tenant: TenantId, id: DocumentId) -> Result<(), StoreError> {
        self.store.documents().delete(tenant, id).await?;
        self.indexes().mark_dirty();
        Ok(())
    }

    /// An ingestion job: its status, attempts and progress.
    pub async fn job(&self, tenant: TenantId, id: JobId) -> Result<Job, StoreError> {
        self.store.jobs().get(tenant, id).await
    }

    /// Searches the tenant's chunks.
    pub async fn search(&self, tenant: TenantId, request: &SearchRequest) -> Result<SearchResponse, SearchError> {
        self.searcher.search(tenant, request).await
    }

    /// The searcher, for callers that run many searches (evaluation).
    pub fn searcher(&self) -> &Searcher {
        &self.searcher
    }

    /// Whether vectors are ranked with pgvector rather than this node's graph.
    pub fn uses_pgvector(&self) -> bool {
        self.searcher.uses_pgvector()
    }

    /// Which database holds the documents (`sqlite` or `postgres`).
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Where this process's ingestion time went so far.
    pub fn ingest_stage_totals(&self) -> crate::ingest::StageTotals {
        self.ingestor.stage_totals()
    }

    /// The indexes searched.
    pub fn indexes(&self) -> &Arc<Indexes> {
        self.searcher.indexes()
    }

    /// A worker of this process, named after the host, the process and
    /// `n`; documents it finishes are applied to the indexes at once.
    pub fn worker(&self, n: usize) -> Worker {
        let name = format!("{}:{}:{:04x}:{n}", hostname(), std::process::id(), rand::random::<u16>());
        let indexes = self.indexes().clone();
        Worker::new(name, self.ingestor.clone(), &self.queue, self.options.worker)
            .on_ready(Arc::new(move |_| indexes.mark_dirty()))
    }

    /// Starts `count` workers and the maintenance task; they stop when
    /// `shutdown` turns true (the indexes' snapshots are written then).
    pub fn spawn(self: &Arc<Self>, count: usize, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        let mut tasks: Vec<JoinHandle<()>> =
            (0..count).map(|n| tokio::spawn(self.worker(n).run(shutdown.clone()))).collect();
        let this = self.clone();
        let mut stop = shutdown;
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(this.options.maintenance_every) => {}
                    _ = stop.changed() => {
                        if let Err(e) = this.indexes().persist().await {
                            tracing::error!(error = %e, "could not save the vector index");
                        }
                        return;
                    }
                }
                if let Err(e) = this.indexes().sync().await {
                    tracing::warn!(error = %e, "could not update the indexes from the store");
                }
                if let Err(e) = this.indexes().persist().await {
                    tracing::warn!(error = %e, "could not save the vector index");
                }
            }
        }));
        tasks
    }
}

/// Sets pgvector up where the database has it; says whether it is in use.
async fn prepare_pgvector(store: &Store, dimension: usize) -> bool {
    match store.vectors().prepare(dimension).await {
        Ok(true) => {
            tracing::info!(dimension, "vectors are searched with pgvector");
            true
        }
        Ok(false) => false,
        Err(e) => {
            tracing::warn!(error = %e, "pgvector cannot be used; vectors are searched with this node's index");
            false
        }
    }
}

/// This machine's name, for naming workers.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
