//! Searching a tenant's chunks: by meaning, by words, or both fused.
//!
//! A hybrid search asks both indexes for a generous list of candidates,
//! fuses the two rankings by reciprocal rank (so neither score scale has to
//! be calibrated against the other), optionally spreads the results with
//! MMR so near-duplicates do not crowd the top, optionally keeps only the
//! best chunk of each document, and finally reads the winners' text and
//! spans from the store. With `debug`, the response says how long each
//! stage took.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use agentd_models::Embedder;
use agentd_store::{ChunkId, DocumentId, Store, TenantId};
use serde::{Deserialize, Serialize};

use crate::fusion::{Ranked, collapse, mmr, reciprocal_rank_fusion};
use crate::indexes::{IndexError, Indexes};
use crate::vector::{ExactIndex, VectorIndex};

/// The most results one search returns.
pub const MAX_K: usize = 100;
/// The longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// Below this many allowed chunks, a filtered vector search scans them
/// exactly instead of walking the graph for rare matches.
const EXACT_BELOW: usize = 4096;

/// How to rank.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SearchMode {
    /// Vector and keyword rankings fused.
    #[default]
    Hybrid,
    /// By embedding similarity only.
    Vector,
    /// By BM25 only.
    Keyword,
}

impl SearchMode {
    pub const ALL: [SearchMode; 3] = [SearchMode::Hybrid, SearchMode::Vector, SearchMode::Keyword];

    pub fn name(self) -> &'static str {
        match self {
            SearchMode::Hybrid => "hybrid",
            SearchMode::Vector => "vector",
            SearchMode::Keyword => "keyword",
        }
    }
}

/// Which chunks a search may return.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchFilter {
    /// Only chunks of these documents.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>))]
    pub document_ids: Option<Vec<DocumentId>>,
    /// Only chunks of documents whose metadata has every one of these keys
    /// with an equal value.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// How much each ranking counts in a hybrid search.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FusionWeights {
    pub vector: f32,
    pub keyword: f32,
}

impl Default for FusionWeights {
    fn default() -> Self {
        FusionWeights { vector: 1.0, keyword: 1.0 }
    }
}

fn default_k() -> usize {
    10
}

/// A search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchRequest {
    pub query: String,
    /// How many results (1–100, default 10).
    #[serde(default = "default_k")]
    pub k: usize,
    #[serde(default)]
    pub mode: SearchMode,
    #[serde(default)]
    pub filter: Option<SearchFilter>,
    /// Keep only the best chunk of each document.
    #[serde(default)]
    pub collapse: bool,
    /// Diversify with maximal marginal relevance: 1 is pure relevance, 0
    /// pure novelty. Off when absent.
    #[serde(default)]
    pub mmr: Option<f32>,
    /// Weights of the rankings in a hybrid search.
    #[serde(default)]
    pub weights: Option<FusionWeights>,
    /// Include the time each stage took.
    #[serde(default)]
    pub debug: bool,
}

impl SearchRequest {
    /// A plain search for `query`.
    pub fn new(query: impl Into<String>, k: usize, mode: SearchMode) -> Self {
        SearchRequest {
            query: query.into(),
            k,
            mode,
            filter: None,
            collapse: false,
            mmr: None,
            weights: None,
            debug: false,
        }
    }

    /// Why the request cannot be served, if it cannot.
    pub fn validate(&self) -> Result<(), SearchError> {
        let invalid = |m: &str| Err(SearchError::Invalid(m.to_string()));
        if self.query.trim().is_empty() {
            return invalid("query must not be empty");
        }
        if self.query.len() > MAX_QUERY_BYTES {
            return Err(SearchError::Invalid(format!("query is longer than {MAX_QUERY_BYTES} bytes")));
        }
        if self.k == 0 || self.k > MAX_K {
            return Err(SearchError::Invalid(format!("k must be between 1 and {MAX_K}")));
        }
        if let Some(lambda) = self.mmr
            && !(0.0..=1.0).contains(&lambda)
        {
            return invalid("mmr must be between 0 and 1");
        }
        if let Some(w) = self.weights
            && (!w.vector.is_finite() || !w.keyword.is_finite() || w.vector < 0.0 || w.keyword < 0.0)
        {
            return invalid("weights must be finite and not negative");
        }
        Ok(())
    }
}

/// Where a result's text is in its document's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Span {
    pub byte_start: i64,
    pub byte_end: i64,
    pub char_start: i64,
    pub char_end: i64,
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResult {
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub chunk_id: ChunkId,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub document_id: DocumentId,
    pub title: String,
    pub text: String,
    /// Cosine similarity (vector), BM25 (keyword) or fused reciprocal-rank
    /// score (hybrid); higher is better.
    pub score: f32,
    pub heading_path: Vec<String>,
    pub span: Span,
    /// The chunk's place in its document, from 0.
    pub position: i64,
}

/// How long each stage took, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchTimings {
    pub sync_ms: f64,
    pub filter_ms: f64,
    pub embed_ms: f64,
    pub vector_ms: f64,
    pub keyword_ms: f64,
    pub fusion_ms: f64,
    pub fetch_ms: f64,
    pub total_ms: f64,
    /// What answered the vector ranking: `hnsw` (this node's index),
    /// `exact` (a scan of a filter's few chunks) or `pgvector`.
    pub vector_backend: String,
    /// Candidates each index returned.
    pub vector_candidates: usize,
    pub keyword_candidates: usize,
}

/// The answer to a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResponse {
    pub results: Vec<SearchResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<SearchTimings>,
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The request is wrong; the message says how.
    #[error("{0}")]
    Invalid(String),
    #[error("embedding the query failed: {0}")]
    Embed(String),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Store(#[from] agentd_store::StoreError),
}

/// Searches tenants' chunks.
#[derive(Clone)]
pub struct Searcher {
    store: Store,
    indexes: Arc<Indexes>,
    embedder: Arc<dyn Embedder>,
    /// Rank by vectors in PostgreSQL with pgvector, not this node's index.
    pgvector: bool,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

impl Searcher {
    pub fn new(store: Store, indexes: Arc<Indexes>, embedder: Arc<dyn Embedder>) -> Self {
        Searcher { store, indexes, embedder, pgvector: false }
    }

    /// The same searcher ranking vectors with pgvector.
    pub fn with_pgvector(mut self, on: bool) -> Self {
        self.pgvector = on;
        self
    }

    /// Whether vectors are ranked with pgvector.
    pub fn uses_pgvector(&self) -> bool {
        self.pgvector
    }

    /// The indexes searched.
    pub fn indexes(&self) -> &Arc<Indexes> {
        &self.indexes
    }

    /// Runs a search for `tenant`.
    pub async fn search(&self, tenant: TenantId, request: &SearchRequest) -> Result<SearchResponse, SearchError> {
        request.validate()?;
        let started = Instant::now();
        let mut timings = SearchTimings::default();

        let at = Instant::now();
        self.indexes.refresh().await?;
        timings.sync_ms = ms(at);

        let at = Instant::now();
        let allowed = self.allowed_documents(tenant, request.filter.as_ref()).await?;
        timings.filter_ms = ms(at);
        if allowed.as_ref().is_some_and(HashSet::is_empty) {
            return Ok(respond(Vec::new(), request.debug, timings, started));
        }

        let wants_vector = request.mode != SearchMode::Keyword;
        let query_vector = if wants_vector {
            let at = Instant::now();
            let vector =
                self.embedder.embed_one(&request.query).await.map_err(|e| SearchError::Embed(e.to_string()))?;
            timings.embed_ms = ms(at);
            Some(vector)
        } else {
            None
        };

        let candidates = (request.k * 5).clamp(50, 1000);
        let mut vector_hits = Vec::new();
        if let (true, true, Some(query)) = (wants_vector, self.pgvector, &query_vector) {
            let at = Instant::now();
            let documents: Option<Vec<DocumentId>> = allowed.as_ref().map(|d| d.iter().copied().collect());
            let hits = self.store.vectors().search(tenant, query, candidates, documents.as_deref(), candidates).await?;
            vector_hits = hits.into_iter().map(|(id, score)| Ranked { key: id.key(), score }).collect();
            timings.vector_backend = "pgvector".into();
            timings.vector_ms = ms(at);
        }
        let index = self.indexes.tenant(tenant).await?;
        let index = index.read().await;
        if let (true, false, Some(query)) = (wants_vector, self.pgvector, &query_vector) {
            let at = Instant::now();
            let hits = match &allowed {
                None => {
                    timings.vector_backend = "hnsw".into();
                    index.vectors.search(query, candidates, None).map_err(IndexError::from)?
                }
                Some(docs) => {
                    let keys: Vec<u64> =
                        index.documents.iter().filter(|(_, d)| docs.contains(d)).map(|(k, _)| *k).collect();
                    if keys.len() < EXACT_BELOW {
                        timings.vector_backend = "exact".into();
                        let exact = ExactIndex::new(self.indexes.dimension()).map_err(IndexError::from)?;
                        for key in &keys {
                            if let Some(vector) = index.vectors.get(*key) {
                                exact.insert(*key, &vector).map_err(IndexError::from)?;
                            }
                        }
                        exact.search(query, candidates, None).map_err(IndexError::from)?
                    } else {
                        timings.vector_backend = "hnsw".into();
                        let filter = |key: u64| index.documents.get(&key).is_some_and(|d| docs.contains(d));
                        index.vectors.search(query, candidates, Some(&filter)).map_err(IndexError::from)?
                    }
                }
            };
            vector_hits = hits.into_iter().map(|h| Ranked { key: h.key, score: h.score }).collect();
            timings.vector_ms = ms(at);
        }
        let mut keyword_hits = Vec::new();
        if request.mode != SearchMode::Vector {
            let at = Instant::now();
            let documents: Option<Vec<String>> = allowed.as_ref().map(|d| d.iter().map(|id| id.to_string()).collect());
            let hits =
                index.keywords.search(&request.query, candidates, documents.as_deref()).map_err(IndexError::from)?;
            keyword_hits = hits.into_iter().map(|h| Ranked { key: h.key, score: h.score }).collect();
            timings.keyword_ms = ms(at);
        }
        timings.vector_candidates = vector_hits.len();
        timings.keyword_candidates = keyword_hits.len();

        let at = Instant::now();
        let mut ranked = match request.mode {
            SearchMode::Vector => vector_hits,
            SearchMode::Keyword => keyword_hits,
            SearchMode::Hybrid => {
                let weights = request.weights.unwrap_or_default();
                reciprocal_rank_fusion(
                    &[(&vector_hits, weights.vector), (&keyword_hits, weights.keyword)],
                    60.0,
                    candidates,
                )
            }
        };
        if let Some(lambda) = request.mmr {
            let limit = if request.collapse { ranked.len() } else { request.k };
            ranked = mmr(&ranked, |key| index.vectors.get(key), lambda, limit);
        }
        if request.collapse {
            ranked = collapse(&ranked, |key| index.documents.get(&key).copied(), 1);
        }
        ranked.truncate(request.k);
        drop(index);
        timings.fusion_ms = ms(at);

        let at = Instant::now();
        let ids: Vec<ChunkId> = ranked.iter().map(|r| ChunkId::from_key(r.key)).collect();
        let mut chunks: HashMap<ChunkId, _> =
            self.store.chunks().get_many(tenant, &ids).await?.into_iter().map(|c| (c.id, c)).collect();
        let results = ranked
            .iter()
            .filter_map(|r| {
                // A chunk deleted since the index was read is skipped.
                let chunk = chunks.remove(&ChunkId::from_key(r.key))?;
                Some(SearchResult {
                    chunk_id: chunk.id,
                    document_id: chunk.document_id,
                    title: chunk.title,
                    text: chunk.text,
                    score: r.score,
                    heading_path: chunk.heading_path.0,
                    span: Span {
                        byte_start: chunk.byte_start,
                        byte_end: chunk.byte_end,
                        char_start: chunk.char_start,
                        char_end: chunk.char_end,
                    },
                    position: chunk.position,
                })
            })
            .collect();
        timings.fetch_ms = ms(at);
        Ok(respond(results, request.debug, timings, started))
    }

    /// The documents a filter allows (`None`: all).
    async fn allowed_documents(
        &self,
        tenant: TenantId,
        filter: Option<&SearchFilter>,
    ) -> Result<Option<HashSet<DocumentId>>, SearchError> {
        let Some(filter) = filter else { return Ok(None) };
        let mut allowed: Option<HashSet<DocumentId>> =
            filter.document_ids.as_ref().map(|ids| ids.iter().copied().collect());
        if let Some(metadata) = filter.metadata.as_ref().filter(|m| !m.is_empty()) {
            let matching: HashSet<DocumentId> = self
                .store
                .documents()
                .matching(tenant, &serde_json::Value::Object(metadata.clone()))
                .await?
                .into_iter()
                .collect();
            allowed = Some(match allowed {
                Some(ids) => ids.intersection(&matching).copied().collect(),
                None => matching,
            });
        }
        Ok(allowed)
    }
}

fn respond(results: Vec<SearchResult>, debug: bool, mut timings: SearchTimings, started: Instant) -> SearchResponse {
    timings.total_ms = ms(started);
    SearchResponse { results, timings: debug.then_some(timings) }
}
