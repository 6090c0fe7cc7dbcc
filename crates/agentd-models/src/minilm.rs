//! all-MiniLM-L6-v2 as sentence-transformers defines it, on candle.
//!
//! The model is a 6-layer BERT; a sentence's vector is the mean of its token
//! states over the attention mask, L2-normalised. This module is synchronous
//! and single-owner: it turns one forward pass of token ids into vectors and
//! knows nothing about tokenizing, threads or requests
//! ([`crate::sentence_tokenizer`] and [`crate::batching`] do that).
//!
//! Padding is done by hand per forward pass, to the longest text of that
//! pass, with a mask that keeps padding out of the attention and out of the
//! mean.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

use crate::batching::TokenEmbedder;
use crate::embed::EmbedError;
use crate::sentence_tokenizer::SentenceTokenizer;

/// The loaded model.
pub struct MiniLm {
    model: BertModel,
    pad_id: u32,
    dimension: usize,
    device: Device,
}

impl MiniLm {
    /// Loads `model.safetensors` and `config.json` from `dir`, for texts
    /// cut by `tokenizer` (whose limit must fit the position embeddings).
    pub fn load(dir: &Path, tokenizer: &SentenceTokenizer) -> Result<MiniLm, EmbedError> {
        let load_err = |reason: String| EmbedError::Load { path: dir.to_owned(), reason };
        let config_text =
            std::fs::read_to_string(dir.join("config.json")).map_err(|e| load_err(format!("config.json: {e}")))?;
        let config: Config = serde_json::from_str(&config_text).map_err(|e| load_err(format!("config.json: {e}")))?;
        let (max_tokens, positions) = (tokenizer.max_tokens(), config.max_position_embeddings);
        if max_tokens > positions {
            return Err(load_err(format!("max_tokens {max_tokens} must be at most {positions}")));
        }

        let device = Device::Cpu;
        // Read into memory rather than memory-mapped: a mapped file changed
        // underneath (say, by a concurrent fetch) would be undefined behaviour.
        let weights =
            std::fs::read(dir.join("model.safetensors")).map_err(|e| load_err(format!("model.safetensors: {e}")))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|e| load_err(format!("model.safetensors: {e}")))?;
        let model = BertModel::load(vb, &config).map_err(|e| load_err(format!("BERT weights: {e}")))?;
        Ok(MiniLm { model, pad_id: tokenizer.pad_id(), dimension: config.hidden_size, device })
    }

    /// The vector length.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    fn forward(&self, ids: Vec<u32>, mask: Vec<u32>, rows: usize, cols: usize) -> candle_core::Result<Vec<Vec<f32>>> {
        let input_ids = Tensor::from_vec(ids, (rows, cols), &self.device)?;
        let attention_mask = Tensor::from_vec(mask, (rows, cols), &self.device)?;
        let token_type_ids = input_ids.zeros_like()?;
        let hidden = self.model.forward(&input_ids, &token_type_ids, Some(&attention_mask))?;

        // Mean over the real tokens only: padded positions weigh zero.
        let mask = attention_mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        mean.broadcast_div(&norms)?.to_vec2::<f32>()
    }
}

impl TokenEmbedder for MiniLm {
    /// As for ONNX Runtime (not measured separately): a small pass mostly
    /// loses efficiency in its smaller matrix products.
    fn pass_overhead_tokens(&self) -> usize {
        32
    }

    /// One forward pass: padded to the longest, mean-pooled over the mask,
    /// L2-normalised.
    fn embed_tokens(&mut self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let longest = batch.iter().map(|ids| ids.len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(batch.len() * longest);
        let mut mask = Vec::with_capacity(batch.len() * longest);
        for tokens in batch {
            ids.extend_from_slice(tokens);
            ids.extend(std::iter::repeat_n(self.pad_id, longest - tokens.len()));
            mask.extend(std::iter::repeat_n(1u32, tokens.len()));
            mask.extend(std::iter::repeat_n(0u32, longest - tokens.len()));
        }
        self.forward(ids, mask, batch.len(), longest).map_err(|e| EmbedError::Inference(e.to_string()))
    }
}
