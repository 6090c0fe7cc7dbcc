//! Making API keys: `agd_` followed by 43 URL-safe characters (256 random
//! bits). Only the SHA-256 of the whole key is stored; the key is shown once.

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use agentd_store::{ApiKey, ApiKeyId, Bus, NewApiKey, Role, Store, StoreError, TenantId, UserId};

/// What every agentd API key starts with.
pub const KEY_PREFIX: &str = "agd_";

/// How many characters of a key are kept to recognise it in listings.
const DISPLAY_PREFIX_LEN: usize = 12;

/// The stored form of a key: lower-case hex SHA-256.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new random key.
fn generate_key() -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    format!("{KEY_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret))
}

/// What a new key is for.
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub tenant_id: TenantId,
    pub user_id: Option<UserId>,
    pub name: String,
    pub role: Role,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Creates and stores a key; returns the key itself (to show once) and its
/// record.
pub async fn create_api_key(store: &Store, spec: KeySpec) -> Result<(String, ApiKey), StoreError> {
    let key = generate_key();
    let record = store
        .api_keys()
        .create(NewApiKey {
            tenant_id: spec.tenant_id,
            user_id: spec.user_id,
            name: spec.name,
            prefix: key[..DISPLAY_PREFIX_LEN].to_string(),
            key_hash: hash_key(&key),
            role: spec.role,
            expires_at: spec.expires_at,
        })
        .await?;
    Ok((key, record))
}

/// Revokes a key of `tenant` and drops it from the bus cache, so that
/// servers sharing the bus stop accepting it at once. A cache that cannot be
/// reached only delays that until the cached entry expires.
pub async fn revoke_api_key(store: &Store, bus: &Bus, tenant: TenantId, id: ApiKeyId) -> Result<ApiKey, StoreError> {
    let hash = store.api_keys().hash_of(tenant, id).await?;
    let key = store.api_keys().revoke(tenant, id, Utc::now()).await?;
    if let Err(e) = bus.cache().delete(&super::api_key_cache_key(&hash)).await {
        tracing::warn!(error = %e, "revoked key stays cached until its entry expires");
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_long_and_distinct() {
        let a = generate_key();
        let b = generate_key();
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 43);
        assert_ne!(a, b);
        assert_ne!(hash_key(&a), hash_key(&b));
        assert_eq!(hash_key(&a), hash_key(&a.clone()));
    }
}
