//! The local MiniLM embedder against an independent reference, and under the
//! ways callers will actually use it: empty input, overlong input, batches,
//! many concurrent callers.
//!
//! The reference vectors in `tests/data/minilm_reference.json` come from
//! `tests/reference/minilm_reference.py`, a numpy BERT that shares nothing
//! with candle but the model files.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use agentd_models::{Embedder, LocalEmbedder, LocalEmbedderOptions, Manifest};
use common::{assert_unit, cosine, reference, sentences};

/// One embedder per test binary: loading reads 90 MB.
fn embedder() -> &'static LocalEmbedder {
    static EMBEDDER: OnceLock<LocalEmbedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| LocalEmbedder::load(&common::models_dir_with_minilm()).unwrap())
}

#[test]
fn the_reference_is_for_the_fetched_model() {
    let reference = reference();
    let manifest = Manifest::builtin();
    let weights = manifest.model(LocalEmbedder::MODEL).unwrap().files.iter().find(|f| f.path == "model.safetensors");
    assert_eq!(reference.model_sha256, weights.unwrap().sha256);
    assert_eq!(reference.max_tokens, embedder().max_tokens());
    assert_eq!(reference.vectors.len(), sentences().len());
}

#[tokio::test]
async fn batched_vectors_match_the_reference() {
    let vectors = embedder().embed(&sentences()).await.unwrap();
    for (i, (got, want)) in vectors.iter().zip(&reference().vectors).enumerate() {
        assert_unit(got);
        let cos = cosine(got, want);
        assert!(cos >= 0.999, "sentence {i}: cosine {cos} with the reference");
    }
}

#[tokio::test]
async fn single_vectors_match_the_reference() {
    for (i, (text, want)) in sentences().iter().zip(&reference().vectors).enumerate() {
        let got = embedder().embed_one(text).await.unwrap();
        let cos = cosine(&got, want);
        assert!(cos >= 0.999, "sentence {i}: cosine {cos} with the reference");
    }
}

#[tokio::test]
async fn padding_does_not_change_vectors() {
    let texts = sentences();
    let batched = embedder().embed(&texts).await.unwrap();
    for (text, in_batch) in texts.iter().zip(&batched) {
        let alone = embedder().embed_one(text).await.unwrap();
        let cos = cosine(&alone, in_batch);
        assert!(cos >= 0.9999, "{text:?}: cosine {cos} between batched and alone");
    }
}

#[tokio::test]
async fn describes_itself() {
    common::check_describes_minilm(embedder());
}

#[tokio::test]
async fn empty_inputs_give_no_vectors_or_a_unit_vector() {
    common::check_empty_inputs(embedder()).await;
}

#[tokio::test]
async fn text_beyond_the_limit_is_truncated() {
    common::check_truncation(embedder()).await;
}

#[tokio::test]
async fn similar_sentences_are_closer_than_unrelated_ones() {
    common::check_similarity(embedder()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_get_their_own_vectors_from_shared_passes() {
    // A long window so that all callers surely land in the same batch.
    let options = LocalEmbedderOptions { batch_window: Duration::from_millis(300), ..LocalEmbedderOptions::default() };
    let embedder = std::sync::Arc::new(LocalEmbedder::load_with(&common::models_dir_with_minilm(), options).unwrap());
    let texts = sentences();
    let expected = embedder.embed(&texts).await.unwrap();
    let passes_before = embedder.stats().forward_passes;

    let tasks: Vec<_> = texts
        .iter()
        .cloned()
        .map(|text| {
            let embedder = embedder.clone();
            tokio::spawn(async move { embedder.embed_one(&text).await })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let got = task.await.unwrap().unwrap();
        let cos = cosine(&got, &expected[i]);
        assert!(cos >= 0.9999, "caller {i} got someone else's vector (cosine {cos})");
    }
    let stats = embedder.stats();
    let passes = stats.forward_passes - passes_before;
    assert!(passes < texts.len() as u64, "{} callers took {passes} forward passes: no batching", texts.len());
    assert_eq!(stats.requests, 1 + texts.len() as u64);
}

#[test]
fn loading_from_an_empty_directory_says_how_to_fix_it() {
    let empty = tempfile::tempdir().unwrap();
    let err = LocalEmbedder::load(empty.path()).err().expect("no model there").to_string();
    assert!(err.contains("model.safetensors") && err.contains("agentd models fetch"), "{err}");
}
