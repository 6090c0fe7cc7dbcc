//! Searching a tenant's chunks: by meaning, by words, or both fused.
//!
//! A search takes five steps: validate the request; work out which
//! documents a filter allows; ask both retrievers ([`VectorSearch`],
//! [`KeywordSearch`]) for a generous list of candidates; fuse the rankings;
//! read the winners' text and spans from the store. Fusion is by reciprocal
//! rank (neither score scale has to be calibrated against the other),
//! optionally followed by MMR (near-duplicates do not crowd the top) and a
//! collapse to the best chunk of each document. With `debug`, the response
//! says how long each stage took.

mod backends;
mod query;
mod request;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use agentd_models::Embedder;
use agentd_store::{ChunkId, DocumentId, Store, TenantId};

pub use backends::{Candidates, KeywordSearch, LocalKeywords, LocalVectors, PgVectors, VectorSearch};
pub use request::{
    FusionWeights, MAX_HISTORY_BYTES, MAX_HISTORY_TURNS, MAX_K, MAX_QUERY_CHARS, SearchError, SearchFilter, SearchMode,
    SearchRequest, SearchResponse, SearchResult, SearchTimings, Span, Turn, TurnRole,
};

use crate::fusion::{RRF_K, Ranked, collapse, mmr, reciprocal_rank_fusion};
use crate::indexes::Indexes;

/// Searches tenants' chunks.
#[derive(Clone)]
pub struct Searcher {
    store: Store,
    indexes: Arc<Indexes>,
    embedder: Arc<dyn Embedder>,
    vectors: Arc<dyn VectorSearch>,
    keywords: Arc<dyn KeywordSearch>,
    /// Whether `vectors` is pgvector.
    pgvector: bool,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// What the two retrievers found.
struct Rankings {
    vector: Vec<Ranked>,
    keyword: Vec<Ranked>,
}

impl Searcher {
    /// A searcher over this node's indexes (HNSW and tantivy).
    pub fn new(store: Store, indexes: Arc<Indexes>, embedder: Arc<dyn Embedder>) -> Self {
        Searcher {
            vectors: Arc::new(LocalVectors(indexes.clone())),
            keywords: Arc::new(LocalKeywords(indexes.clone())),
            store,
            indexes,
            embedder,
            pgvector: false,
        }
    }

    /// The same searcher ranking vectors with pgvector (`true`) or this
    /// node's graph (`false`).
    pub fn with_pgvector(mut self, on: bool) -> Self {
        self.vectors =
            if on { Arc::new(PgVectors(self.store.clone())) } else { Arc::new(LocalVectors(self.indexes.clone())) };
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
        let allowed = self.allowed_documents(tenant, request.filter.as_ref(), &mut timings).await?;
        if allowed.as_ref().is_some_and(HashSet::is_empty) {
            return Ok(respond(Vec::new(), request.debug, timings, started));
        }
        let rankings = self.rank(tenant, request, allowed.as_ref(), &mut timings).await?;
        let ranked = self.fuse(tenant, request, rankings, &mut timings).await?;
        let results = self.fetch(tenant, &ranked, &mut timings).await?;
        Ok(respond(results, request.debug, timings, started))
    }

    /// The documents a filter allows (`None`: all).
    async fn allowed_documents(
        &self,
        tenant: TenantId,
        filter: Option<&SearchFilter>,
        timings: &mut SearchTimings,
    ) -> Result<Option<HashSet<DocumentId>>, SearchError> {
        let at = Instant::now();
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
        timings.filter_ms = ms(at);
        Ok(allowed)
    }

    /// Candidates from the retrievers the mode uses.
    async fn rank(
        &self,
        tenant: TenantId,
        request: &SearchRequest,
        allowed: Option<&HashSet<DocumentId>>,
        timings: &mut SearchTimings,
    ) -> Result<Rankings, SearchError> {
        let at = Instant::now();
        self.indexes.refresh().await?;
        timings.sync_ms = ms(at);
        let limit = candidates(request);
        let text = query::contextual_query(&request.query, &request.history);
        let mut rankings = Rankings { vector: Vec::new(), keyword: Vec::new() };
        if request.mode != SearchMode::Keyword {
            let at = Instant::now();
            let query = self.embedder.embed_one(&text).await.map_err(|e| SearchError::Embed(e.to_string()))?;
            timings.embed_ms = ms(at);
            let at = Instant::now();
            let found = self.vectors.nearest(tenant, &query, limit, allowed).await?;
            timings.vector_ms = ms(at);
            timings.vector_backend = found.backend.into();
            rankings.vector = found.hits;
        }
        if request.mode != SearchMode::Vector {
            let at = Instant::now();
            rankings.keyword = self.keywords.matching(tenant, &text, limit, allowed).await?.hits;
            timings.keyword_ms = ms(at);
        }
        timings.vector_candidates = rankings.vector.len();
        timings.keyword_candidates = rankings.keyword.len();
        Ok(rankings)
    }

    /// One ranking of at most `k` chunks from the retrievers' candidates.
    async fn fuse(
        &self,
        tenant: TenantId,
        request: &SearchRequest,
        rankings: Rankings,
        timings: &mut SearchTimings,
    ) -> Result<Vec<Ranked>, SearchError> {
        let at = Instant::now();
        let mut ranked = match request.mode {
            SearchMode::Vector => rankings.vector,
            SearchMode::Keyword => rankings.keyword,
            SearchMode::Hybrid => {
                let (vector, keyword) = request.weights.unwrap_or_default().relative();
                let lists = [(&rankings.vector[..], vector), (&rankings.keyword[..], keyword)];
                reciprocal_rank_fusion(&lists, RRF_K, candidates(request))
            }
        };
        let keys: Vec<u64> = ranked.iter().map(|r| r.key).collect();
        if let Some(lambda) = request.mmr {
            let vectors = self.indexes.vectors_of(tenant, &keys).await?;
            let limit = if request.collapse { ranked.len() } else { request.k };
            ranked = mmr(&ranked, |key| vectors.get(&key), lambda as f32, limit);
        }
        if request.collapse {
            let documents = self.indexes.documents_of(tenant, &keys).await?;
            // A chunk this node has not indexed yet stands for itself.
            ranked = collapse(&ranked, |key| documents.get(&key).copied().ok_or(key), 1);
        }
        ranked.truncate(request.k);
        timings.fusion_ms = ms(at);
        Ok(ranked)
    }

    /// The ranked chunks' text, spans and titles, from the store.
    async fn fetch(
        &self,
        tenant: TenantId,
        ranked: &[Ranked],
        timings: &mut SearchTimings,
    ) -> Result<Vec<SearchResult>, SearchError> {
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
        Ok(results)
    }
}

/// How many candidates each retriever is asked for: more when results are
/// collapsed to documents, so that `k` distinct documents are among them.
fn candidates(request: &SearchRequest) -> usize {
    let per_result = if request.collapse { 20 } else { 5 };
    (request.k * per_result).clamp(50, 1000)
}

fn respond(results: Vec<SearchResult>, debug: bool, mut timings: SearchTimings, started: Instant) -> SearchResponse {
    timings.total_ms = ms(started);
    SearchResponse { results, timings: debug.then_some(timings) }
}
