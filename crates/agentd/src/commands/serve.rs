//! `agentd serve`: open the store and the bus, load the default models,
//! create the first admin key on a fresh database, and serve HTTP until SIGINT or SIGTERM, finishing the
//! requests in flight before exiting.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use agentd_models::ModelRegistry;
use agentd_retrieval::{Knowledge, Upload};
use agentd_server::{AppState, bootstrap};
use tokio::sync::watch;

use crate::commands::ingest::collect_files;
use crate::commands::knowledge::knowledge_options;
use crate::config::Config;
use crate::wiring;

pub async fn run(config: &Config, samples: Option<&Path>) -> anyhow::Result<()> {
    let addr = config.listen_addr()?;
    let store = wiring::store(config).await?;
    let bus = wiring::bus(config).await?;
    if config.jwt_secret.is_none() {
        tracing::warn!("AGENTD_JWT_SECRET is not set: tokens from /v1/auth/token will not survive a restart");
    }
    tracing::info!(database = store.backend(), bus = bus.backend(), "store and bus ready");

    let models_dir = config.models_dir();
    let models = ModelRegistry::load(&config.models_config()?, &models_dir)
        .await
        .with_context(|| format!("cannot load the default models from {}", models_dir.display()))?;
    tracing::info!(chat = %config.default_chat_model, embedding = %config.default_embedding_model, "models ready");

    let embedder = models.embedder(None).await?;
    let knowledge = Knowledge::open(store.clone(), embedder, knowledge_options(config, true))
        .await
        .context("cannot open the search indexes")?;
    let (stop, stopped) = watch::channel(false);
    let tasks = knowledge.spawn(config.retrieval.workers, stopped);

    let first_key = bootstrap::first_start(&store).await.context("cannot create the first admin key")?;
    let sample_count = match (&first_key, samples) {
        (Some(_), Some(dir)) => ingest_samples(&store, &knowledge, dir).await?,
        _ => 0,
    };
    let state = AppState::new(store, bus.clone(), config.server_config(bus.is_shared()))
        .with_models(Arc::new(models))
        .with_knowledge(knowledge);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;

    println!("agentd is listening on http://{local}  (API docs: http://{local}/docs)");
    if let Some(key) = first_key {
        println!(
            "First start: created tenant {:?} with this admin API key (shown once, keep it):",
            bootstrap::DEFAULT_TENANT
        );
        println!("{key}");
    }
    if sample_count > 0 {
        println!("Ingesting {sample_count} sample documents into tenant {:?}.", bootstrap::DEFAULT_TENANT);
    }

    agentd_server::serve(listener, agentd_server::app(state), shutdown_signal()).await.context("server failed")?;
    // Workers stop; the maintenance task saves the vector indexes.
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Queues the files of `dir` for ingestion into the default tenant; returns
/// how many were new.
async fn ingest_samples(store: &agentd_store::Store, knowledge: &Knowledge, dir: &Path) -> anyhow::Result<usize> {
    let tenant = wiring::existing_tenant(store, bootstrap::DEFAULT_TENANT).await?.id;
    let mut uploads = Vec::new();
    for file in collect_files(&[dir.to_path_buf()])? {
        let bytes = std::fs::read(&file.path).with_context(|| format!("cannot read {}", file.path.display()))?;
        let upload = Upload::file(file.title, file.path.to_string_lossy(), bytes);
        uploads.push(Upload { metadata: serde_json::json!({"sample": true}), ..upload });
    }
    if uploads.is_empty() {
        return Ok(0);
    }
    let submission = knowledge.submit(tenant, uploads).await?;
    Ok(submission.documents.iter().filter(|d| !d.duplicate).count())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing requests in flight");
}
