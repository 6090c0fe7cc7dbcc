//! API keys. Only a SHA-256 hash of each key is stored: keys are long random
//! strings, so a fast hash is as safe as a slow one and lets authentication
//! look a key up by its hash in one indexed query.

use chrono::{DateTime, Utc};

use crate::db::{Store, on_pool};
use crate::error::StoreError;
use crate::ids::{ApiKeyId, TenantId};
use crate::records::{ApiKey, NewApiKey, Page};
use crate::repos::{id_cursor, page_limit, stored_time};

/// Repository of API keys.
pub struct ApiKeys<'a> {
    pub(crate) store: &'a Store,
}

/// The columns an [`ApiKey`] is read from.
macro_rules! columns {
    () => {
        "id, tenant_id, user_id, name, prefix, role, created_at, expires_at, revoked_at"
    };
}

impl ApiKeys<'_> {
    /// Stores a new key's hash and returns the key's record.
    pub async fn create(&self, new: NewApiKey) -> Result<ApiKey, StoreError> {
        let key = ApiKey {
            id: ApiKeyId::new(),
            tenant_id: new.tenant_id,
            user_id: new.user_id,
            name: new.name,
            prefix: new.prefix,
            role: new.role,
            created_at: stored_time(self.store.now()),
            expires_at: new.expires_at.map(stored_time),
            revoked_at: None,
        };
        let sql = concat!(
            "INSERT INTO api_keys (",
            columns!(),
            ", key_hash) ",
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        on_pool!(self.store, pool => {
            sqlx::query(sql)
                .bind(key.id)
                .bind(key.tenant_id)
                .bind(key.user_id)
                .bind(&key.name)
                .bind(&key.prefix)
                .bind(key.role.as_str())
                .bind(key.created_at)
                .bind(key.expires_at)
                .bind(key.revoked_at)
                .bind(&new.key_hash)
                .execute(pool)
                .await
                .map_err(|e| StoreError::conflict_on_unique(e, "an API key with this hash already exists"))?;
        });
        Ok(key)
    }

    /// The key whose hash this is, in any tenant, revoked or not: the caller
    /// decides what an inactive key means.
    pub async fn find_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let sql = concat!("SELECT ", columns!(), " FROM api_keys WHERE key_hash = $1");
        on_pool!(self.store, pool => {
            Ok(sqlx::query_as::<_, ApiKey>(sql).bind(key_hash).fetch_optional(pool).await?)
        })
    }

    /// The key with this id in this tenant.
    pub async fn get(&self, tenant: TenantId, id: ApiKeyId) -> Result<ApiKey, StoreError> {
        let sql = concat!("SELECT ", columns!(), " FROM api_keys WHERE tenant_id = $1 AND id = $2");
        on_pool!(self.store, pool => {
            sqlx::query_as::<_, ApiKey>(sql)
                .bind(tenant)
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound("api key"))
        })
    }

    /// A page of the tenant's keys, newest first, revoked ones included.
    pub async fn list(&self, tenant: TenantId, limit: u32, cursor: Option<&str>) -> Result<Page<ApiKey>, StoreError> {
        let (limit, fetch) = page_limit(limit);
        let cursor = id_cursor(cursor)?;
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM api_keys WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2) ",
            "ORDER BY id DESC LIMIT $3"
        );
        let rows = on_pool!(self.store, pool => {
            sqlx::query_as::<_, ApiKey>(sql).bind(tenant).bind(cursor).bind(fetch).fetch_all(pool).await?
        });
        Ok(Page::from_rows(rows, limit, |k| k.id.to_string()))
    }

    /// Revokes a key of this tenant and returns it. Revoking twice keeps the
    /// first revocation time.
    pub async fn revoke(&self, tenant: TenantId, id: ApiKeyId, at: DateTime<Utc>) -> Result<ApiKey, StoreError> {
        on_pool!(self.store, pool => {
            sqlx::query(
                "UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
            )
            .bind(tenant)
            .bind(id)
            .bind(at)
            .execute(pool)
            .await?;
        });
        self.get(tenant, id).await
    }

    /// The hash of a key of this tenant, so that caches keyed by hash can
    /// be invalidated when the key is revoked.
    pub async fn hash_of(&self, tenant: TenantId, id: ApiKeyId) -> Result<String, StoreError> {
        on_pool!(self.store, pool => {
            sqlx::query_scalar::<_, String>("SELECT key_hash FROM api_keys WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound("api key"))
        })
    }
}
