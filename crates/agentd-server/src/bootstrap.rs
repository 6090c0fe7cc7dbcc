//! First start: a fresh database has no tenant and so no way in. The server
//! then creates the `default` tenant and an admin API key, and prints the key
//! once, so a new user can call the API right away.

use agentd_store::{Role, Store, StoreError};

use crate::auth::api_keys::{KeySpec, create_api_key};

/// The tenant made on first start.
pub const DEFAULT_TENANT: &str = "default";

/// When the store holds no tenant yet: creates the default tenant and an
/// admin key and returns the key. Otherwise returns `None`.
pub async fn first_start(store: &Store) -> Result<Option<String>, StoreError> {
    if store.tenants().count().await? > 0 {
        return Ok(None);
    }
    let (tenant, _) = store.tenants().get_or_create(DEFAULT_TENANT).await?;
    let spec = KeySpec {
        tenant_id: tenant.id,
        user_id: None,
        name: "first-start admin key".into(),
        role: Role::Admin,
        expires_at: None,
    };
    let (key, _) = create_api_key(store, spec).await?;
    Ok(Some(key))
}
