//! The seam every embedding model sits behind.
//!
//! Retrieval embeds chunks at ingestion and questions at query time, and must
//! not care whether the vectors come from the local MiniLM or from a remote
//! server. What it does need to know is the vector's dimension (to size the
//! index), how much text the model reads (to size chunks), and the model's
//! name (vectors of different models must never be mixed in one index).

use std::path::PathBuf;

use async_trait::async_trait;

use crate::error::FetchError;

/// Turns texts into unit-length vectors (L2 norm 1, so a dot product is the
/// cosine similarity).
#[async_trait]
pub trait Embedder: Send + Sync {
    /// The model's name, e.g. `all-minilm-l6-v2`; stored next to vectors.
    fn model_name(&self) -> &str;

    /// The length of every vector this embedder returns.
    fn dimension(&self) -> usize;

    /// How many tokens of a text the model reads; the rest is ignored.
    fn max_tokens(&self) -> usize;

    /// How many tokens the model reads of `text` (for usage reports).
    /// Embedders without their tokenizer at hand estimate four bytes a token.
    fn count_tokens(&self, text: &str) -> usize {
        text.len().div_ceil(4).min(self.max_tokens())
    }

    /// One vector per text, in order. An empty batch gives an empty result.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;

    /// The vector of a single text.
    async fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let mut vectors = self.embed(&[text.to_owned()]).await?;
        vectors.pop().ok_or_else(|| EmbedError::Inference("the model returned no vector".into()))
    }
}

/// Embedding text failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model's files are missing or damaged.
    #[error(transparent)]
    Model(#[from] FetchError),
    /// The model's files are present but could not be loaded.
    #[error("could not load embedding model from {}: {reason}", path.display())]
    Load { path: PathBuf, reason: String },
    /// The tokenizer rejected the input.
    #[error("tokenizer failed: {0}")]
    Tokenize(String),
    /// The forward pass failed.
    #[error("embedding inference failed: {0}")]
    Inference(String),
    /// The inference thread has stopped (it panicked or the embedder is shutting down).
    #[error("the embedding worker has stopped")]
    WorkerGone,
    /// A remote embedding server failed, or answered something unusable.
    /// `provider` names the model and server (never the API key).
    #[error("{provider} failed: {message}")]
    Provider { provider: String, message: String },
}
