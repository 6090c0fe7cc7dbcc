//! Tenants: the unit of isolation. Created by the command line (`agentd keys
//! create --tenant NAME`) or on first start; never listed to API callers.

use crate::db::{Store, on_pool};
use crate::error::StoreError;
use crate::ids::TenantId;
use crate::records::Tenant;
use crate::repos::stored_time;

/// Repository of tenants.
pub struct Tenants<'a> {
    pub(crate) store: &'a Store,
}

/// The columns a [`Tenant`] is read from.
macro_rules! columns {
    () => {
        "id, name, created_at"
    };
}

impl Tenants<'_> {
    /// Creates a tenant; a taken name is a conflict.
    pub async fn create(&self, name: &str) -> Result<Tenant, StoreError> {
        let tenant = Tenant { id: TenantId::new(), name: name.to_string(), created_at: stored_time(self.store.now()) };
        on_pool!(self.store, pool => {
            sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(tenant.id)
                .bind(&tenant.name)
                .bind(tenant.created_at)
                .execute(pool)
                .await
                .map_err(|e| StoreError::conflict_on_unique(e, format!("tenant {name:?} already exists")))?;
        });
        Ok(tenant)
    }

    /// Returns the tenant called `name`, creating it if absent; the flag
    /// says whether it was created. Safe under concurrent callers.
    pub async fn get_or_create(&self, name: &str) -> Result<(Tenant, bool), StoreError> {
        if let Some(tenant) = self.by_name(name).await? {
            return Ok((tenant, false));
        }
        match self.create(name).await {
            Ok(tenant) => Ok((tenant, true)),
            Err(StoreError::Conflict(_)) => {
                let tenant = self.by_name(name).await?.ok_or(StoreError::NotFound("tenant"))?;
                Ok((tenant, false))
            }
            Err(e) => Err(e),
        }
    }

    /// The tenant called `name`, if any.
    pub async fn by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let sql = concat!("SELECT ", columns!(), " FROM tenants WHERE name = $1");
        on_pool!(self.store, pool => {
            Ok(sqlx::query_as::<_, Tenant>(sql).bind(name).fetch_optional(pool).await?)
        })
    }

    /// The tenant with this id.
    pub async fn get(&self, id: TenantId) -> Result<Tenant, StoreError> {
        let sql = concat!("SELECT ", columns!(), " FROM tenants WHERE id = $1");
        on_pool!(self.store, pool => {
            sqlx::query_as::<_, Tenant>(sql)
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound("tenant"))
        })
    }

    /// How many tenants exist; zero means this is a first start.
    pub async fn count(&self) -> Result<i64, StoreError> {
        on_pool!(self.store, pool => {
            Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM tenants").fetch_one(pool).await?)
        })
    }
}
