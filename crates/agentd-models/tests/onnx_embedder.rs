//! MiniLM on ONNX Runtime (the int8 export's graph, F32 weights) against the
//! same independent reference as the candle engine
//! (`tests/reference/minilm_reference.py`, a numpy BERT in float64), and
//! under the ways callers use it: empty input, overlong input, many
//! concurrent callers, a missing runtime.
//!
//! The graph, the weights and the runtime library are fetched through this
//! crate into the shared models directory (see `common`), so this also
//! proves the runtime's manifest entry.

mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use agentd_models::{Embedder, LocalEmbedder, OnnxEmbedder, OnnxEmbedderOptions};
use common::{assert_unit, cosine, reference, sentences};

/// The least cosine allowed with the reference (agentd requires 0.999).
/// Measured: 0.9999999 at the least, every sentence (1.0 within f32
/// rounding), since the weights are the F32 ones. With the int8 weights the
/// export ships, the same graph gave 0.99634 for the empty text, 0.99787
/// for "Why?" and 0.9992 to 0.9997 for the others.
const MIN_COSINE: f32 = 0.9999;

/// One embedder per test binary: loading optimises the graph.
fn embedder() -> &'static OnnxEmbedder {
    static EMBEDDER: OnceLock<OnnxEmbedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| OnnxEmbedder::load(&common::models_dir_with_minilm_int8()).unwrap())
}

#[tokio::test]
async fn batched_vectors_match_the_reference() {
    let reference = reference();
    assert_eq!(reference.max_tokens, embedder().max_tokens());
    let vectors = embedder().embed(&sentences()).await.unwrap();
    assert_eq!(vectors.len(), reference.vectors.len());
    let cosines: Vec<f32> = vectors.iter().zip(&reference.vectors).map(|(got, want)| cosine(got, want)).collect();
    for (i, (got, cos)) in vectors.iter().zip(&cosines).enumerate() {
        assert_unit(got);
        assert!(*cos >= MIN_COSINE, "sentence {i}: cosine {cos} with the reference, below {MIN_COSINE}");
    }
}

#[tokio::test]
async fn single_vectors_match_the_reference() {
    for (i, (text, want)) in sentences().iter().zip(&reference().vectors).enumerate() {
        let got = embedder().embed_one(text).await.unwrap();
        assert_unit(&got);
        let cos = cosine(&got, want);
        assert!(cos >= MIN_COSINE, "sentence {i}: cosine {cos} with the reference");
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
    // A long window so that all callers surely land in the same round.
    let options = OnnxEmbedderOptions { batch_window: Duration::from_millis(300), ..OnnxEmbedderOptions::default() };
    let embedder = Arc::new(OnnxEmbedder::load_with(&common::models_dir_with_minilm_int8(), options).unwrap());
    // Texts of every length, each caller sending a few of them.
    let texts: Vec<String> =
        sentences().into_iter().cycle().take(40).enumerate().map(|(i, s)| format!("{s} {i}")).collect();
    let expected = {
        let mut sequential = Vec::new();
        for text in &texts {
            sequential.push(embedder.embed_one(text).await.unwrap());
        }
        sequential
    };
    let before = embedder.stats();

    let callers: Vec<_> = texts
        .chunks(2)
        .map(|pair| {
            let (embedder, pair) = (embedder.clone(), pair.to_vec());
            tokio::spawn(async move { embedder.embed(&pair).await })
        })
        .collect();
    let mut got = Vec::new();
    for caller in callers {
        got.extend(caller.await.unwrap().unwrap());
    }
    for (i, (got, want)) in got.iter().zip(&expected).enumerate() {
        let cos = cosine(got, want);
        assert!(cos >= 0.9999, "text {i} got someone else's vector (cosine {cos})");
    }
    let stats = embedder.stats();
    let (requests, passes) = (stats.requests - before.requests, stats.forward_passes - before.forward_passes);
    assert_eq!(requests, 20);
    assert!(passes < requests, "{requests} concurrent callers took {passes} forward passes: no batching");
}

#[tokio::test]
async fn same_vectors_as_the_candle_engine() {
    let candle = LocalEmbedder::load(&common::models_dir_with_minilm_int8()).unwrap();
    let texts = sentences();
    let (onnx, candle) = (embedder().embed(&texts).await.unwrap(), candle.embed(&texts).await.unwrap());
    for (i, (a, b)) in onnx.iter().zip(&candle).enumerate() {
        let cos = cosine(a, b);
        assert!(cos >= 0.9999, "sentence {i}: cosine {cos} between the engines");
    }
}

#[test]
fn a_missing_runtime_says_how_to_fix_it() {
    // The graph and the weights in place (linked), the runtime library not.
    let models = common::models_dir_with_minilm_int8();
    let dir = tempfile::tempdir().unwrap();
    for model in [OnnxEmbedder::GRAPH, OnnxEmbedder::MODEL] {
        std::os::unix::fs::symlink(models.join(model), dir.path().join(model)).unwrap();
    }
    let err = OnnxEmbedder::load(dir.path()).err().expect("no runtime there").to_string();
    assert!(err.contains("libonnxruntime.so") && err.contains("agentd models fetch"), "{err}");
}

#[test]
fn loading_from_an_empty_directory_says_how_to_fix_it() {
    let empty = tempfile::tempdir().unwrap();
    let err = OnnxEmbedder::load(empty.path()).err().expect("no model there").to_string();
    assert!(err.contains("model.onnx") && err.contains("agentd models fetch"), "{err}");
}

#[test]
fn tokens_are_counted_with_the_model_s_own_tokenizer_and_its_limit() {
    let embedder = embedder();
    // [CLS] hello world [SEP]
    assert_eq!(embedder.count_tokens("hello world"), 4);
    assert_eq!(embedder.count_tokens(&"word ".repeat(1000)), embedder.max_tokens());
}
