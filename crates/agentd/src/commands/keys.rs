//! `agentd keys create|list|revoke`: API keys from the command line, for the
//! first key of a tenant and for operators without an admin key at hand.
//! What is done here is audited like the same action through the API.

use chrono::Utc;
use serde_json::json;

use agentd_server::auth::api_keys::{KeySpec, create_api_key, revoke_api_key};
use agentd_store::{ApiKeyId, Role};

use crate::config::Config;
use crate::wiring;

/// Creates the tenant if needed and a key in it; the key alone is printed
/// on the last line of standard output.
pub async fn create(config: &Config, tenant: &str, role: Role, name: &str) -> anyhow::Result<()> {
    let tenant = tenant.trim();
    anyhow::ensure!(!tenant.is_empty(), "the tenant name must not be empty");
    let store = wiring::store(config).await?;
    let (tenant, created) = store.tenants().get_or_create(tenant).await?;
    let spec = KeySpec { tenant_id: tenant.id, user_id: None, name: name.to_string(), role, expires_at: None };
    let (key, record) = create_api_key(&store, spec).await?;
    let details = json!({ "name": record.name, "role": record.role, "prefix": record.prefix });
    wiring::audit_cli_action(&store, tenant.id, "api_key.create", record.id.to_string(), details).await?;
    if created {
        eprintln!("created tenant {:?} ({})", tenant.name, tenant.id);
    }
    eprintln!("created {role} API key {} in tenant {:?}; it is shown once:", record.id, tenant.name);
    println!("{key}");
    Ok(())
}

/// Lists a tenant's keys, one a line, newest first.
pub async fn list(config: &Config, tenant: &str) -> anyhow::Result<()> {
    let store = wiring::store(config).await?;
    let tenant = wiring::existing_tenant(&store, tenant).await?;
    let (store, tenant) = (&store, tenant.id);
    wiring::for_each_item(
        |cursor| async move { store.api_keys().list(tenant, 200, cursor.as_deref()).await },
        |key| {
            let state = if key.is_active(Utc::now()) { "active" } else { "inactive" };
            println!("{}\t{}\t{}\t{}\t{}", key.id, key.prefix, key.role, state, key.name);
        },
    )
    .await
}

/// Revokes a key; see [`revoke_api_key`] for how servers learn of it.
pub async fn revoke(config: &Config, tenant: &str, id: uuid::Uuid) -> anyhow::Result<()> {
    let store = wiring::store(config).await?;
    let tenant = wiring::existing_tenant(&store, tenant).await?;
    let id = ApiKeyId(id);
    let bus = wiring::bus(config).await?;
    let key = revoke_api_key(&store, &bus, tenant.id, id).await?;
    wiring::audit_cli_action(&store, tenant.id, "api_key.revoke", id.to_string(), json!({ "prefix": key.prefix }))
        .await?;
    println!("revoked {id}");
    Ok(())
}
