//! The tokenizer of all-MiniLM-L6-v2, set up for embedding.
//!
//! Both local engines (candle on the F32 weights, ONNX Runtime on the int8
//! model) read the same `tokenizer.json`, and must cut and count tokens the
//! same way for their vectors to be comparable, so the set-up lives here
//! once. The file shipped with the model truncates and pads to 128 tokens;
//! both are replaced: truncation at the configured limit (256, the model's
//! `max_seq_length`), and no padding at all, because the batching worker
//! pads each forward pass by hand to the longest text of that pass.

use std::path::Path;

use tokenizers::{Tokenizer, TruncationParams};

use crate::embed::EmbedError;

/// Turns texts into token ids: `[CLS]`, the text's word pieces, `[SEP]`.
#[derive(Clone)]
pub struct SentenceTokenizer {
    tokenizer: Tokenizer,
    pad_id: u32,
    max_tokens: usize,
}

impl SentenceTokenizer {
    /// Loads `dir/tokenizer.json`, truncating at `max_tokens` (at least 2,
    /// for `[CLS]` and `[SEP]`; the engine checks it fits the model).
    pub fn load(dir: &Path, max_tokens: usize) -> Result<SentenceTokenizer, EmbedError> {
        let load_err = |reason: String| EmbedError::Load { path: dir.to_owned(), reason };
        if max_tokens < 2 {
            return Err(load_err(format!("max_tokens {max_tokens} must be at least 2")));
        }
        let mut tokenizer =
            Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| load_err(format!("tokenizer.json: {e}")))?;
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_tokens, ..TruncationParams::default() }))
            .map_err(|e| load_err(format!("tokenizer truncation: {e}")))?;
        tokenizer.with_padding(None);
        let pad_id = tokenizer.token_to_id("[PAD]").unwrap_or(0);
        Ok(SentenceTokenizer { tokenizer, pad_id, max_tokens })
    }

    /// The id padding positions get (they are masked out, so any id would
    /// do; `[PAD]` is what the model saw in training).
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The truncation limit, special tokens included.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Token ids of each text, truncated, with `[CLS]` and `[SEP]`.
    ///
    /// Character offsets, which embedding never reads, are not computed.
    /// Texts are tokenized one after the other on the calling thread: a
    /// text takes tens of microseconds against milliseconds for its share
    /// of a forward pass, and handing them to a thread pool would wake
    /// threads that compete with the inference threads for the cores.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, EmbedError> {
        texts
            .iter()
            .map(|text| {
                let encoding =
                    self.tokenizer.encode_fast(*text, true).map_err(|e| EmbedError::Tokenize(e.to_string()))?;
                Ok(encoding.get_ids().to_vec())
            })
            .collect()
    }
}
