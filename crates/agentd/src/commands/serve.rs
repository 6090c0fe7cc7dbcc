//! `agentd serve`: open the store and the bus, load the default models,
//! create the first admin key on a fresh database, and serve HTTP until SIGINT or SIGTERM, finishing the
//! requests in flight before exiting.

use std::sync::Arc;

use anyhow::Context;

use agentd_models::ModelRegistry;
use agentd_server::{AppState, bootstrap};

use crate::config::Config;
use crate::wiring;

pub async fn run(config: &Config) -> anyhow::Result<()> {
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

    let first_key = bootstrap::first_start(&store).await.context("cannot create the first admin key")?;
    let state = AppState::new(store, bus.clone(), config.server_config(bus.is_shared())).with_models(Arc::new(models));
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

    agentd_server::serve(listener, agentd_server::app(state), shutdown_signal()).await.context("server failed")?;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
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
