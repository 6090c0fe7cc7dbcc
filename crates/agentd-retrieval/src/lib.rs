//! agentd-retrieval: the knowledge half of agentd.
//!
//! Documents are parsed into structural [`Block`]s (headings, paragraphs,
//! code), cut into [`Chunk`]s sized in the embedding model's tokens,
//! embedded, stored, and indexed twice: by meaning (an HNSW vector index)
//! and by words (a BM25 keyword index), one pair of indexes per tenant.
//! Searches fuse both rankings. Ingestion runs as jobs of the store's
//! durable queue; the indexes follow the store's chunk change log, so the
//! store stays the one source of truth. This crate knows nothing of HTTP.

pub mod boilerplate;
mod chunk;
pub mod eval;
pub mod fusion;
pub mod indexes;
pub mod ingest;
mod keyword;
pub mod metrics;
pub mod parse;
pub mod search;
mod service;
pub mod submit;
pub mod vector;
pub mod worker;

pub use chunk::{Block, BlockKind, Chunk, ChunkOptions, TokenCounter, chunk_blocks};
pub use eval::{EvalQuestion, EvalReport, evaluate, read_eval_set};
pub use indexes::{IndexError, Indexes};
pub use ingest::{DocumentOutcome, IngestError, IngestOptions, Ingestor, StageTotals};
pub use keyword::{KeywordDoc, KeywordError, KeywordHit, KeywordIndex};
pub use search::{
    FusionWeights, KeywordSearch, SearchError, SearchFilter, SearchMode, SearchRequest, SearchResponse, SearchResult,
    SearchTimings, Searcher, Turn, TurnRole, VectorSearch,
};
pub use service::{Knowledge, KnowledgeOptions};
pub use submit::{Submission, SubmitError, SubmittedDocument, Submitter, Upload};
pub use worker::{IngestQueue, WorkerOptions};
