//! The audit log: who did what to which thing, when, in which request.
//! Entries are only ever appended; admins read their tenant's entries.

use crate::db::{Store, on_pool};
use crate::error::StoreError;
use crate::ids::{AuditId, TenantId};
use crate::records::{AuditEntry, NewAuditEntry, Page};
use crate::repos::{id_cursor, page_limit, stored_time};

/// Repository of audit entries.
pub struct Audit<'a> {
    pub(crate) store: &'a Store,
}

/// The columns an [`AuditEntry`] is read from.
macro_rules! columns {
    () => {
        "id, tenant_id, actor_id, action, target, request_id, details, created_at"
    };
}

impl Audit<'_> {
    /// Appends an entry.
    pub async fn record(&self, new: NewAuditEntry) -> Result<AuditEntry, StoreError> {
        let entry = AuditEntry {
            id: AuditId::new(),
            tenant_id: new.tenant_id,
            actor_id: new.actor_id,
            action: new.action,
            target: new.target,
            request_id: new.request_id,
            details: sqlx::types::Json(if new.details.is_null() { serde_json::json!({}) } else { new.details }),
            created_at: stored_time(self.store.now()),
        };
        let sql = concat!("INSERT INTO audit_log (", columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
        on_pool!(self.store, pool => {
            sqlx::query(sql)
                .bind(entry.id)
                .bind(entry.tenant_id)
                .bind(entry.actor_id)
                .bind(&entry.action)
                .bind(&entry.target)
                .bind(&entry.request_id)
                .bind(&entry.details)
                .bind(entry.created_at)
                .execute(pool)
                .await?;
        });
        Ok(entry)
    }

    /// A page of the tenant's entries, newest first, optionally only one
    /// action.
    pub async fn list(
        &self,
        tenant: TenantId,
        action: Option<&str>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<AuditEntry>, StoreError> {
        let (limit, fetch) = page_limit(limit);
        let cursor = id_cursor(cursor)?;
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM audit_log ",
            "WHERE tenant_id = $1 AND ($2 IS NULL OR action = $2) AND ($3 IS NULL OR id < $3) ",
            "ORDER BY id DESC LIMIT $4"
        );
        let rows = on_pool!(self.store, pool => {
            sqlx::query_as::<_, AuditEntry>(sql)
                .bind(tenant)
                .bind(action)
                .bind(cursor)
                .bind(fetch)
                .fetch_all(pool)
                .await?
        });
        Ok(Page::from_rows(rows, limit, |e| e.id.to_string()))
    }
}
