//! Embedding throughput of agentd's local engines, comparable with the
//! Python reference in `bench/reference/embed_onnxruntime.py`.
//!
//! ```sh
//! cargo run --release -p agentd-models --example embed_bench -- \
//!     --models MODELS_DIR --sentences bench/sentences.txt [--engine onnx|candle|all] \
//!     [--threads 2] [--spin-wait] [--limit N]
//! ```
//!
//! Embeds every sentence (or the first N) at batch 1 (one caller, one text
//! at a time) and at batch 32 (one caller, 32 texts a call), through the
//! public [`Embedder`] API, so tokenizing, queueing, batching, pooling and
//! normalising are all counted, and prints one JSON object per engine:
//! `{"engine": "...", "batch1_per_s": ..., "batch32_per_s": ..., "texts": N}`.
//! MODELS_DIR must hold the fetched models (`agentd models fetch embedding`).

use std::path::PathBuf;
use std::time::Instant;

use agentd_models::{
    Embedder, LocalEmbedder, LocalEmbedderEngine, LocalEmbedderOptions, OnnxEmbedder, OnnxEmbedderOptions,
};

const USAGE: &str = "usage: embed_bench --models DIR --sentences FILE [--engine onnx|candle|all] [--threads N] [--spin-wait] [--limit N]";

struct Args {
    models: PathBuf,
    sentences: PathBuf,
    engines: Vec<LocalEmbedderEngine>,
    threads: usize,
    spin_wait: bool,
    limit: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let (mut models, mut sentences, mut engines, mut threads, mut limit) = (None, None, None, 2, None);
    let mut spin_wait = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--models" => models = Some(PathBuf::from(value()?)),
            "--sentences" => sentences = Some(PathBuf::from(value()?)),
            "--engine" => {
                engines = Some(match value()?.as_str() {
                    "all" => LocalEmbedderEngine::ALL.to_vec(),
                    one => vec![one.parse().map_err(|e| format!("{e}"))?],
                })
            }
            "--threads" => threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--spin-wait" => spin_wait = true,
            "--limit" => limit = Some(value()?.parse().map_err(|e| format!("--limit: {e}"))?),
            _ => return Err(format!("unknown argument {flag:?}\n{USAGE}")),
        }
    }
    Ok(Args {
        models: models.ok_or(USAGE)?,
        sentences: sentences.ok_or(USAGE)?,
        engines: engines.unwrap_or_else(|| vec![LocalEmbedderEngine::Onnx]),
        threads,
        spin_wait,
        limit,
    })
}

/// Texts per second embedding `texts` in calls of `batch`, one call at a time.
async fn texts_per_second(
    embedder: &dyn Embedder,
    texts: &[String],
    batch: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let start = Instant::now();
    for chunk in texts.chunks(batch) {
        embedder.embed(chunk).await?;
    }
    Ok(texts.len() as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let text = std::fs::read_to_string(&args.sentences).map_err(|e| format!("{}: {e}", args.sentences.display()))?;
    let mut texts: Vec<String> = text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect();
    if let Some(limit) = args.limit {
        texts.truncate(limit);
    }

    for engine in args.engines {
        let (embedder, label): (Box<dyn Embedder>, String) = match engine {
            LocalEmbedderEngine::Onnx => {
                let options = OnnxEmbedderOptions {
                    threads: args.threads,
                    spin_wait: args.spin_wait,
                    ..OnnxEmbedderOptions::default()
                };
                let spin = if args.spin_wait { ", spin-wait" } else { "" };
                let label = format!("agentd onnx ({} threads{spin})", args.threads);
                (Box::new(OnnxEmbedder::load_with(&args.models, options)?), label)
            }
            // Candle sizes its thread pool from the machine (RAYON_NUM_THREADS).
            LocalEmbedderEngine::Candle => {
                let embedder = LocalEmbedder::load_with(&args.models, LocalEmbedderOptions::default())?;
                (Box::new(embedder), "agentd candle f32".to_owned())
            }
        };
        embedder.embed(&texts[..texts.len().min(32)]).await?; // warm-up: first-run allocations
        let batch1 = texts_per_second(embedder.as_ref(), &texts, 1).await?;
        let batch32 = texts_per_second(embedder.as_ref(), &texts, 32).await?;
        let result = serde_json::json!({
            "engine": label,
            "batch1_per_s": (batch1 * 10.0).round() / 10.0,
            "batch32_per_s": (batch32 * 10.0).round() / 10.0,
            "texts": texts.len(),
        });
        println!("{result}");
    }
    Ok(())
}
