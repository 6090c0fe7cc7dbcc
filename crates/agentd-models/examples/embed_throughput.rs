//! A quick throughput check of the local embedder on this machine.
//!
//! `cargo run --release -p agentd-models --example embed_throughput -- MODELS_DIR`
//! embeds sentences of about 20 tokens at batch 1 (one caller at a time) and
//! at batch 32, and prints texts per second for each. MODELS_DIR must hold a
//! fetched all-minilm-l6-v2 (`agentd models fetch`).

use std::time::Instant;

use agentd_models::{Embedder, LocalEmbedder};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let models_dir = std::env::args().nth(1).ok_or("usage: embed_throughput MODELS_DIR")?;
    let embedder = LocalEmbedder::load(models_dir.as_ref())?;
    let texts: Vec<String> = (0..256)
        .map(|i| {
            format!("Sentence number {i} asks how the agent should retrieve document {} for tenant {}.", i * 3, i % 7)
        })
        .collect();
    embedder.embed(&texts[..32]).await?; // warm-up

    let start = Instant::now();
    for text in &texts[..64] {
        embedder.embed_one(text).await?;
    }
    let single = 64.0 / start.elapsed().as_secs_f64();

    let start = Instant::now();
    for batch in texts.chunks(32) {
        embedder.embed(batch).await?;
    }
    let batched = texts.len() as f64 / start.elapsed().as_secs_f64();

    println!("batch 1:  {single:.0} texts/s");
    println!("batch 32: {batched:.0} texts/s");
    Ok(())
}
