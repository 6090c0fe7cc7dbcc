//! Turning a configuration into live parts: the store (connected and
//! migrated) and the bus.

use anyhow::Context;

use std::future::Future;

use agentd_store::{Bus, NewAuditEntry, Page, Store, StoreError, Tenant, TenantId};

use crate::config::Config;

/// Connects to the configured database and applies pending migrations.
pub async fn store(config: &Config) -> anyhow::Result<Store> {
    let target = config.database_target()?;
    let store = Store::connect(&target, config.database_max_connections)
        .await
        .with_context(|| format!("cannot open the {} database", target.backend()))?;
    store.migrate().await.context("cannot apply database migrations")?;
    Ok(store)
}

/// The configured bus: Redis when a URL is set, in-process otherwise.
pub async fn bus(config: &Config) -> anyhow::Result<Bus> {
    match &config.redis_url {
        Some(url) => Bus::redis(url, &config.redis_prefix).await.context("cannot connect to Redis"),
        None => Ok(Bus::in_process()),
    }
}

/// The tenant called `name`; an error naming it when absent.
pub async fn existing_tenant(store: &Store, name: &str) -> anyhow::Result<Tenant> {
    store.tenants().by_name(name).await?.with_context(|| format!("no tenant called {name:?}"))
}

/// Audits an action taken from the command line, like the same action
/// through the API (no actor: the shell user is not an agentd identity).
pub async fn audit_cli_action(
    store: &Store,
    tenant: TenantId,
    action: &str,
    target: String,
    mut details: serde_json::Value,
) -> anyhow::Result<()> {
    if let Some(object) = details.as_object_mut() {
        object.insert("via".into(), "cli".into());
    }
    let entry = NewAuditEntry {
        tenant_id: Some(tenant),
        action: action.into(),
        target: Some(target),
        details,
        ..Default::default()
    };
    store.audit().record(entry).await.context("cannot write the audit entry")?;
    Ok(())
}

/// Walks a keyset-paginated listing to its end, calling `each` on every item.
pub async fn for_each_item<T, Fut>(
    mut page: impl FnMut(Option<String>) -> Fut,
    mut each: impl FnMut(&T),
) -> anyhow::Result<()>
where
    Fut: Future<Output = Result<Page<T>, StoreError>>,
{
    let mut cursor = None;
    loop {
        let Page { items, next_cursor } = page(cursor).await?;
        items.iter().for_each(&mut each);
        match next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}

/// The configured local embedder engine, on `threads` CPU threads.
pub fn local_embedder(
    config: &Config,
    models_dir: &std::path::Path,
    threads: usize,
) -> anyhow::Result<std::sync::Arc<dyn agentd_models::Embedder>> {
    use agentd_models::{LocalEmbedder, LocalEmbedderEngine, OnnxEmbedder, OnnxEmbedderOptions};
    Ok(match config.models_config()?.embedding_engine {
        LocalEmbedderEngine::Onnx => {
            let options = OnnxEmbedderOptions { threads, ..Default::default() };
            std::sync::Arc::new(OnnxEmbedder::load_with(models_dir, options)?)
        }
        LocalEmbedderEngine::Candle => std::sync::Arc::new(LocalEmbedder::load(models_dir)?),
    })
}
