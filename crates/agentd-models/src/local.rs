//! The local embedder on candle: all-MiniLM-L6-v2's F32 weights on the CPU.
//!
//! This is the exact model (its vectors match the sentence-transformers
//! reference to a cosine of 0.9999+), in pure Rust, and slow: about 45 texts
//! a second at batch 1 and 100 at batch 32 on two cores. [`crate::OnnxEmbedder`]
//! gives the same vectors on ONNX Runtime two to three times faster; see
//! [`crate::LocalEmbedderEngine`] for how one is chosen. Threading and
//! batching are [`crate::batching`]'s.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;

use crate::batching::{BatchOptions, BatchingEmbedder, EmbedderStats};
use crate::embed::{EmbedError, Embedder};
use crate::manifest::Selection;
use crate::minilm::MiniLm;
use crate::sentence_tokenizer::SentenceTokenizer;

/// How the local embedder truncates and batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalEmbedderOptions {
    /// Tokens read per text, `[CLS]` and `[SEP]` included (the model was
    /// trained with 256; at most 512).
    pub max_tokens: usize,
    /// The most texts in one forward pass, and the queue length at which the
    /// thread stops waiting for more requests.
    pub max_batch: usize,
    /// How long the thread waits for more requests after the first one.
    /// Zero (the default) embeds at once whatever is queued: requests that
    /// arrive during a forward pass still share the next one.
    pub batch_window: Duration,
}

impl Default for LocalEmbedderOptions {
    fn default() -> Self {
        LocalEmbedderOptions { max_tokens: 256, max_batch: 32, batch_window: Duration::ZERO }
    }
}

/// all-MiniLM-L6-v2 (F32) running on this machine's CPU with candle.
///
/// Dropping the embedder stops its thread once queued requests are done.
pub struct LocalEmbedder {
    batcher: BatchingEmbedder,
    dimension: usize,
    max_tokens: usize,
}

impl LocalEmbedder {
    /// The model's name, also its directory under the models directory.
    pub const MODEL: &'static str = "all-minilm-l6-v2";

    /// Loads the model from `models_dir/all-minilm-l6-v2` with the default
    /// options. Blocking (it reads 90 MB); from async code call it through
    /// `tokio::task::spawn_blocking`. A missing or damaged model is an error
    /// naming the file and `agentd models fetch`.
    pub fn load(models_dir: &Path) -> Result<LocalEmbedder, EmbedError> {
        LocalEmbedder::load_with(models_dir, LocalEmbedderOptions::default())
    }

    /// [`LocalEmbedder::load`] with explicit options.
    pub fn load_with(models_dir: &Path, options: LocalEmbedderOptions) -> Result<LocalEmbedder, EmbedError> {
        crate::fetch::verify(models_dir, &Selection::model(Self::MODEL))?;
        let dir = models_dir.join(Self::MODEL);
        let tokenizer = SentenceTokenizer::load(&dir, options.max_tokens)?;
        let model = MiniLm::load(&dir, &tokenizer)?;
        let (dimension, max_tokens) = (model.dimension(), tokenizer.max_tokens());
        let batching = BatchOptions { max_batch: options.max_batch, batch_window: options.batch_window };
        let batcher = BatchingEmbedder::spawn("agentd-embedder", model, tokenizer, batching)
            .map_err(|e| EmbedError::Load { path: dir.clone(), reason: format!("could not start thread: {e}") })?;
        Ok(LocalEmbedder { batcher, dimension, max_tokens })
    }

    /// What the inference thread has done so far.
    pub fn stats(&self) -> EmbedderStats {
        self.batcher.stats()
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model_name(&self) -> &str {
        Self::MODEL
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.batcher.count_tokens(text)
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.batcher.embed(texts).await
    }
}
