//! The two retrievers a search asks for candidates: one by meaning
//! ([`VectorSearch`]) and one by words ([`KeywordSearch`]).
//!
//! Each is a trait so a search reads the same whatever answers it: this
//! node's HNSW graph or PostgreSQL's pgvector for vectors, this node's
//! tantivy index for words. A retriever returns a ranking of chunk keys,
//! best first, restricted to the documents a filter allows, and names what
//! produced it (for the timings of a debug search).
//!
//! Decisions:
//! - A filter that leaves few chunks is answered by an exact scan of those
//!   chunks' vectors ([`EXACT_BELOW`]): walking a graph for rare matches
//!   visits most of it and may still miss some.
//! - The caller brings the indexes up to date with the store's change log
//!   first ([`Indexes::refresh`]), once per search for both retrievers and
//!   the fusion that reads the same indexes.

use std::collections::HashSet;
use std::sync::Arc;

use agentd_store::{DocumentId, Store, TenantId};
use async_trait::async_trait;

use super::request::SearchError;
use crate::fusion::Ranked;
use crate::indexes::{IndexError, Indexes};
use crate::vector::{ExactIndex, VectorIndex};

/// Below this many allowed chunks, a filtered vector search scans them
/// exactly instead of walking the graph for rare matches.
const EXACT_BELOW: usize = 4096;

/// A retriever's ranking, best first, and what answered it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Candidates {
    pub hits: Vec<Ranked>,
    /// `hnsw`, `exact`, `pgvector` or `bm25`.
    pub backend: &'static str,
}

/// Ranks a tenant's chunks by the similarity of their embedding to a
/// query's.
#[async_trait]
pub trait VectorSearch: Send + Sync {
    /// The `limit` chunks most similar to `query` (cosine, higher first),
    /// of the `allowed` documents only when given.
    async fn nearest(
        &self,
        tenant: TenantId,
        query: &[f32],
        limit: usize,
        allowed: Option<&HashSet<DocumentId>>,
    ) -> Result<Candidates, SearchError>;
}

/// Ranks a tenant's chunks by the words they share with a query.
#[async_trait]
pub trait KeywordSearch: Send + Sync {
    /// The `limit` chunks that best match `query` (BM25, higher first), of
    /// the `allowed` documents only when given.
    async fn matching(
        &self,
        tenant: TenantId,
        query: &str,
        limit: usize,
        allowed: Option<&HashSet<DocumentId>>,
    ) -> Result<Candidates, SearchError>;
}

/// Vectors in this node's HNSW graph.
pub struct LocalVectors(pub Arc<Indexes>);

#[async_trait]
impl VectorSearch for LocalVectors {
    async fn nearest(
        &self,
        tenant: TenantId,
        query: &[f32],
        limit: usize,
        allowed: Option<&HashSet<DocumentId>>,
    ) -> Result<Candidates, SearchError> {
        let indexes = &self.0;
        let index = indexes.tenant(tenant).await?;
        let index = index.read().await;
        let ranked =
            |hits: Vec<crate::vector::VectorHit>| hits.into_iter().map(|h| Ranked { key: h.key, score: h.score });
        let Some(docs) = allowed else {
            let hits = index.vectors.search(query, limit, None).map_err(IndexError::from)?;
            return Ok(Candidates { hits: ranked(hits).collect(), backend: "hnsw" });
        };
        let keys: Vec<u64> = index.documents.iter().filter(|(_, d)| docs.contains(d)).map(|(k, _)| *k).collect();
        if keys.len() < EXACT_BELOW {
            let exact = ExactIndex::new(indexes.dimension()).map_err(IndexError::from)?;
            for key in &keys {
                if let Some(vector) = index.vectors.get(*key) {
                    exact.insert(*key, &vector).map_err(IndexError::from)?;
                }
            }
            let hits = exact.search(query, limit, None).map_err(IndexError::from)?;
            return Ok(Candidates { hits: ranked(hits).collect(), backend: "exact" });
        }
        let filter = |key: u64| index.documents.get(&key).is_some_and(|d| docs.contains(d));
        let hits = index.vectors.search(query, limit, Some(&filter)).map_err(IndexError::from)?;
        Ok(Candidates { hits: ranked(hits).collect(), backend: "hnsw" })
    }
}

/// Vectors in PostgreSQL, ranked by pgvector.
pub struct PgVectors(pub Store);

#[async_trait]
impl VectorSearch for PgVectors {
    async fn nearest(
        &self,
        tenant: TenantId,
        query: &[f32],
        limit: usize,
        allowed: Option<&HashSet<DocumentId>>,
    ) -> Result<Candidates, SearchError> {
        let documents: Option<Vec<DocumentId>> = allowed.map(|d| d.iter().copied().collect());
        let hits = self.0.vectors().search(tenant, query, limit, documents.as_deref(), limit).await?;
        let hits = hits.into_iter().map(|(id, score)| Ranked { key: id.key(), score }).collect();
        Ok(Candidates { hits, backend: "pgvector" })
    }
}

/// Words in this node's tantivy index.
pub struct LocalKeywords(pub Arc<Indexes>);

#[async_trait]
impl KeywordSearch for LocalKeywords {
    async fn matching(
        &self,
        tenant: TenantId,
        query: &str,
        limit: usize,
        allowed: Option<&HashSet<DocumentId>>,
    ) -> Result<Candidates, SearchError> {
        let index = self.0.tenant(tenant).await?;
        let index = index.read().await;
        let documents: Option<Vec<String>> = allowed.map(|d| d.iter().map(|id| id.to_string()).collect());
        let hits = index.keywords.search(query, limit, documents.as_deref()).map_err(IndexError::from)?;
        let hits = hits.into_iter().map(|h| Ranked { key: h.key, score: h.score }).collect();
        Ok(Candidates { hits, backend: "bm25" })
    }
}
