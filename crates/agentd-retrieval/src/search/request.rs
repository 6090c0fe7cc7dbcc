//! What a search asks for and what it answers: the request with its
//! validation, the results, the stage timings and the errors.

use agentd_store::{ChunkId, DocumentId};
use serde::{Deserialize, Serialize};

use crate::indexes::IndexError;

/// The most results one search returns.
pub const MAX_K: usize = 100;
/// The longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 8 * 1024;

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
    pub document_ids: Option<Vec<DocumentId>>,
    /// Only chunks of documents whose metadata has every one of these keys
    /// with an equal value.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<agentd_store::openapi::Metadata>))]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// How much each ranking counts in a hybrid search. By default the keyword
/// ranking counts half as much as the vector one: on `bench/eval`, equal
/// weights let BM25's misses pull hybrid search below vector search alone
/// (MRR@10 0.712 against 0.734), while half weight lifts it above (0.738).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FusionWeights {
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub vector: f64,
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub keyword: f64,
}

impl FusionWeights {
    /// The same weights scaled so the larger is 1 (only their ratio counts;
    /// this keeps any finite pair within `f32`).
    pub fn relative(self) -> (f32, f32) {
        let top = self.vector.max(self.keyword);
        if top > 0.0 { ((self.vector / top) as f32, (self.keyword / top) as f32) } else { (0.0, 0.0) }
    }
}

impl Default for FusionWeights {
    fn default() -> Self {
        FusionWeights { vector: 1.0, keyword: 0.5 }
    }
}

/// Who said an earlier message of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TurnRole {
    User,
    Assistant,
}

/// An earlier message of the conversation a query comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Turn {
    pub role: TurnRole,
    pub content: String,
}

/// The most earlier messages a search reads.
pub const MAX_HISTORY_TURNS: usize = 50;
/// The most bytes of earlier messages a search accepts.
pub const MAX_HISTORY_BYTES: usize = 64 * 1024;

fn default_k() -> usize {
    10
}

/// A search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchRequest {
    /// Not blank; at most 8,192 characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 8192,
            pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
        )
    )]
    pub query: String,
    /// How many results (1–100, default 10).
    #[serde(default = "default_k", deserialize_with = "agentd_store::strict_json::whole")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub k: usize,
    #[serde(default)]
    pub mode: SearchMode,
    #[serde(default, deserialize_with = "agentd_store::strict_json::object_opt")]
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub filter: Option<SearchFilter>,
    /// One result per document: its best chunk.
    #[serde(default)]
    pub collapse: bool,
    /// Diversify with maximal marginal relevance: 1 is pure relevance, 0
    /// pure novelty. Off when absent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1))]
    pub mmr: Option<f64>,
    /// Weights of the rankings in a hybrid search.
    #[serde(default, deserialize_with = "agentd_store::strict_json::object_opt")]
    pub weights: Option<FusionWeights>,
    /// Include the time each stage took.
    #[serde(default)]
    pub debug: bool,
    /// Earlier messages of the conversation, oldest first: a follow-up
    /// such as "and for folders?" is searched together with what the
    /// conversation was about.
    #[serde(default, deserialize_with = "agentd_store::strict_json::objects")]
    #[cfg_attr(feature = "openapi", schema(max_items = 50))]
    pub history: Vec<Turn>,
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
            history: Vec::new(),
        }
    }

    /// Why the request cannot be served, if it cannot.
    pub fn validate(&self) -> Result<(), SearchError> {
        let invalid = |m: &str| Err(SearchError::Invalid(m.to_string()));
        if self.query.trim().is_empty() {
            return invalid("query must not be empty");
        }
        if self.query.chars().count() > MAX_QUERY_CHARS {
            return Err(SearchError::Invalid(format!("query is longer than {MAX_QUERY_CHARS} characters")));
        }
        if self.k == 0 || self.k > MAX_K {
            return Err(SearchError::Invalid(format!("k must be between 1 and {MAX_K}")));
        }
        if self.history.len() > MAX_HISTORY_TURNS {
            return Err(SearchError::Invalid(format!("history has more than {MAX_HISTORY_TURNS} messages")));
        }
        if self.history.iter().map(|t| t.content.len()).sum::<usize>() > MAX_HISTORY_BYTES {
            return Err(SearchError::Invalid(format!("history is longer than {MAX_HISTORY_BYTES} bytes")));
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
