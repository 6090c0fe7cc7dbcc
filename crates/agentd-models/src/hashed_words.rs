//! A deterministic embedder for tests of what sits on top of embeddings.
//!
//! Retrieval, ingestion and search tests need vectors where texts sharing
//! words are close and texts sharing none are far, without loading a model.
//! Each lowercased word is hashed into one of `dimension` buckets; the
//! vector is the normalised bucket counts. It is a bag of words, not a
//! language model: tests built on it check the machinery, not meaning.

use async_trait::async_trait;

use crate::embed::{EmbedError, Embedder};

/// Words hashed into buckets; see the module documentation.
#[derive(Debug, Clone)]
pub struct HashedWordsEmbedder {
    dimension: usize,
}

impl HashedWordsEmbedder {
    pub fn new(dimension: usize) -> Self {
        HashedWordsEmbedder { dimension: dimension.max(2) }
    }

    /// The vector of one text.
    pub fn vector(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0.0f32; self.dimension];
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            // FNV-1a: stable across runs and platforms.
            let hash = word
                .to_lowercase()
                .bytes()
                .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
            v[(hash % self.dimension as u64) as usize] += 1.0;
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm == 0.0 {
            // Texts with no word still get a unit vector.
            v[0] = 1.0;
        } else {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }
}

#[async_trait]
impl Embedder for HashedWordsEmbedder {
    fn model_name(&self) -> &str {
        "hashed-words"
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn max_tokens(&self) -> usize {
        256
    }

    fn count_tokens(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| self.vector(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn shared_words_are_closer_than_none() {
        let e = HashedWordsEmbedder::new(256);
        let a = e.vector("the cat sat on the mat");
        let b = e.vector("a cat on a mat");
        let c = e.vector("quarterly revenue grew");
        // Three shared words of norms sqrt(8) and sqrt(7): 3 / sqrt(56).
        assert!((cosine(&a, &b) - 3.0 / 56f32.sqrt()).abs() < 1e-5);
        assert!(cosine(&a, &c) < 0.1);
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-5);
        assert_eq!(e.vector("").len(), 256);
        assert_eq!(e.vector("Cat"), e.vector("cat"));
    }
}
