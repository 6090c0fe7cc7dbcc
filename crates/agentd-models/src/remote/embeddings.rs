//! An embedding model on any OpenAI-compatible `/embeddings` endpoint.
//!
//! The [`Embedder`] trait promises unit vectors of a known dimension, in the
//! order of the texts; a server promises less. So texts are sent in batches
//! of at most `max_batch` (servers cap the inputs per request), one batch at
//! a time, the vectors are put back in order by their `index`, every one is
//! checked to have the configured dimension (a mismatch means the server
//! runs a different model than the index was built for, and mixing them
//! would silently ruin retrieval), and every one is L2-normalised.

use async_trait::async_trait;
use reqwest::Url;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::json;

use super::RemoteOptions;
use super::http::{BaseUrl, Endpoint, secret_header};
use crate::embed::{EmbedError, Embedder};

/// Where and what to ask on an OpenAI-compatible embeddings server.
#[derive(Clone)]
pub struct OpenAiEmbedderConfig {
    /// The model's name in agentd, stored next to its vectors.
    pub name: String,
    /// The API's base URL, up to and including `/v1`; requests go to
    /// `{base_url}/embeddings`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …`.
    pub api_key: Option<String>,
    /// The model id the server knows, sent as `model`.
    pub model: String,
    /// The length of the model's vectors; any other length is an error.
    pub dimension: usize,
    /// How many tokens of a text the model reads (for chunk sizing; texts
    /// are sent as they are).
    pub max_tokens: usize,
    /// The most texts in one request (default 64).
    pub max_batch: usize,
    /// Timeouts and retries.
    pub options: RemoteOptions,
}

impl OpenAiEmbedderConfig {
    /// A configuration without an API key, with batches of 64 and default options.
    pub fn new(
        name: impl Into<String>,
        base_url: impl Into<String>,
        model: impl Into<String>,
        dimension: usize,
        max_tokens: usize,
    ) -> Self {
        OpenAiEmbedderConfig {
            name: name.into(),
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            dimension,
            max_tokens,
            max_batch: 64,
            options: RemoteOptions::default(),
        }
    }
}

/// Never prints the API key.
impl std::fmt::Debug for OpenAiEmbedderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEmbedderConfig")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("dimension", &self.dimension)
            .field("max_tokens", &self.max_tokens)
            .field("max_batch", &self.max_batch)
            .field("options", &self.options)
            .finish()
    }
}

/// An embedding model served by an OpenAI-compatible server.
#[derive(Debug)]
pub struct OpenAiEmbedder {
    name: String,
    model: String,
    dimension: usize,
    max_tokens: usize,
    max_batch: usize,
    url: Url,
    endpoint: Endpoint,
}

impl OpenAiEmbedder {
    /// Checks the configuration and builds the HTTP client; nothing is sent yet.
    pub fn new(config: OpenAiEmbedderConfig) -> Result<OpenAiEmbedder, EmbedError> {
        let failed = |provider: String| move |message| EmbedError::Provider { provider, message };
        let unplaced = format!("OpenAI-compatible embedding model {:?}", config.name);
        let base = BaseUrl::parse(&config.base_url).map_err(failed(unplaced.clone()))?;
        if config.dimension == 0 {
            return Err(failed(unplaced)("the dimension must be configured (it is 0)".into()));
        }
        let label = format!("OpenAI-compatible embedding model {:?} at {}", config.name, base.redacted());
        let mut headers = HeaderMap::new();
        if let Some(key) = config.api_key.as_deref().filter(|k| !k.is_empty()) {
            let (name, value) =
                secret_header("authorization", &format!("Bearer {key}")).map_err(failed(label.clone()))?;
            headers.insert(name, value);
        }
        let endpoint = Endpoint::new(label.clone(), headers, config.options).map_err(failed(label))?;
        Ok(OpenAiEmbedder {
            name: config.name,
            model: config.model,
            dimension: config.dimension,
            max_tokens: config.max_tokens,
            max_batch: config.max_batch.max(1),
            url: base.join("embeddings"),
            endpoint,
        })
    }

    /// The vectors of one batch, in order, normalised and checked.
    async fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        let body = json!({"model": self.model, "input": texts, "encoding_format": "float"});
        let response = self.endpoint.post_json(&self.url, &body).await?;
        let response: EmbeddingsResponse = self.endpoint.json(response).await?;
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        for item in response.data {
            let slot = vectors.get_mut(item.index).ok_or_else(|| {
                format!("the response has a vector for input {} but only {} texts were sent", item.index, texts.len())
            })?;
            if slot.replace(item.embedding).is_some() {
                return Err(format!("the response has two vectors for input {}", item.index));
            }
        }
        vectors
            .into_iter()
            .enumerate()
            .map(|(index, vector)| {
                let vector = vector.ok_or_else(|| format!("the response has no vector for input {index}"))?;
                self.normalised(index, vector)
            })
            .collect()
    }

    /// `vector` scaled to unit length, once its dimension is checked.
    fn normalised(&self, index: usize, mut vector: Vec<f32>) -> Result<Vec<f32>, String> {
        if vector.len() != self.dimension {
            return Err(format!(
                "the vector for input {index} has {} dimensions, but the model is configured with {}; \
                 is the server running a different model?",
                vector.len(),
                self.dimension
            ));
        }
        let norm = vector.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
        if !norm.is_finite() || norm == 0.0 {
            return Err(format!("the vector for input {index} cannot be normalised (its length is {norm})"));
        }
        for x in &mut vector {
            *x = (f64::from(*x) / norm) as f32;
        }
        Ok(vector)
    }
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    index: usize,
    embedding: Vec<f32>,
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.max_batch) {
            let batch_vectors = self
                .embed_batch(batch)
                .await
                .map_err(|message| EmbedError::Provider { provider: self.endpoint.label().to_string(), message })?;
            vectors.extend(batch_vectors);
        }
        Ok(vectors)
    }
}
