//! Documents: their rows, their bytes, and their deletion.
//!
//! A document's bytes are kept in the database beside its row, so a worker
//! on any machine can ingest (or re-ingest) it. Identical bytes uploaded
//! twice by one tenant are one document: a unique `(tenant_id,
//! content_hash)` makes that hold even for two uploads racing on two nodes.
//! Deleting a document writes a "removed" entry into the chunk change log
//! for each of its chunks in the same transaction, so every node's indexes
//! drop them too.

use sha2::{Digest, Sha256};

use crate::db::{Store, on_pool};
use crate::error::StoreError;
use crate::ids::{DocumentId, JobId, TenantId};
use crate::knowledge::{AddedDocument, Document, DocumentReplacement, DocumentStatus, NewDocument};
use crate::records::Page;
use crate::repos::{id_cursor, lock_change_log, page_limit, stored_time};

/// Repository of documents.
pub struct Documents<'a> {
    pub(crate) store: &'a Store,
}

/// The columns a [`Document`] is read from.
macro_rules! document_columns {
    () => {
        "id, tenant_id, title, source, format, content_type, content_hash, byte_size, metadata, status, error, \
         version, chunk_count, job_id, created_at, updated_at"
    };
}

/// SHA-256 of `bytes`, as the hex string documents are deduplicated by.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A metadata filter as SQL: every key of the filter object must be present
/// in the document's metadata with an equal value. `$1` is the tenant and
/// `$2` the filter (JSON text, or NULL for none).
///
/// Values compare as JSON values, alike on both backends: numbers by value
/// (1 equals 1.0), `null` only with a `null` that is there, texts, booleans
/// and nested values exactly (not jsonb's `@>`, which would let `[2]` match
/// `[1, 2]`). Keys are compared as text, never built into a JSON path,
/// which breaks on keys holding `"` or `\`.
fn metadata_clause(backend: &str) -> &'static str {
    if backend == "postgres" {
        "($2::jsonb IS NULL OR NOT EXISTS (SELECT 1 FROM jsonb_each($2::jsonb) f \
         WHERE documents.metadata -> f.key IS DISTINCT FROM f.value))"
    } else {
        "($2 IS NULL OR NOT EXISTS (SELECT 1 FROM json_each($2) f WHERE NOT EXISTS (\
         SELECT 1 FROM json_each(documents.metadata) d WHERE d.key = f.key AND (\
         (d.type IN ('integer', 'real') AND f.type IN ('integer', 'real') AND d.atom = f.atom) \
         OR (d.type = f.type AND d.type IN ('null', 'true', 'false')) \
         OR (d.type = f.type AND d.type = 'text' AND d.atom = f.atom) \
         OR (d.type = f.type AND d.type IN ('object', 'array') AND d.value = f.value)))))"
    }
}

impl Documents<'_> {
    /// Stores a new document (row and bytes) as queued, or as failed when
    /// `new.failure` is set. If the tenant already has a document with the
    /// same bytes, returns that one instead, marked as a duplicate.
    pub async fn add(&self, new: NewDocument) -> Result<AddedDocument, StoreError> {
        let now = stored_time(self.store.now());
        let hash = content_hash(&new.bytes);
        let (status, error) = match &new.failure {
            Some(reason) => (DocumentStatus::Failed, Some(reason.clone())),
            None => (DocumentStatus::Queued, None),
        };
        let id = DocumentId::new();
        let insert = concat!(
            "INSERT INTO documents (",
            document_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, 0, NULL, $12, $12)"
        );
        let content = "INSERT INTO document_contents (document_id, version, bytes) VALUES ($1, 1, $2)";
        let inserted = on_pool!(self.store, pool => {
            let mut tx = pool.begin().await?;
            let row = sqlx::query(insert)
                .bind(id)
                .bind(new.tenant_id)
                .bind(&new.title)
                .bind(&new.source)
                .bind(&new.format)
                .bind(&new.content_type)
                .bind(&hash)
                .bind(new.bytes.len() as i64)
                .bind(sqlx::types::Json(&new.metadata))
                .bind(status.as_str())
                .bind(&error)
                .bind(now)
                .execute(&mut *tx)
                .await;
            match row {
                Ok(_) => {
                    sqlx::query(content).bind(id).bind(&new.bytes).execute(&mut *tx).await?;
                    tx.commit().await?;
                    true
                }
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    tx.rollback().await?;
                    false
                }
                Err(e) => return Err(StoreError::Database(e)),
            }
        });
        if inserted {
            return Ok(AddedDocument { document: self.get(new.tenant_id, id).await?, duplicate: false });
        }
        let existing = self.by_hash(new.tenant_id, &hash).await?.ok_or(StoreError::NotFound("document"))?;
        Ok(AddedDocument { document: existing, duplicate: true })
    }

    /// The tenant's document with these bytes, if any.
    pub async fn by_hash(&self, tenant: TenantId, hash: &str) -> Result<Option<Document>, StoreError> {
        let sql = concat!("SELECT ", document_columns!(), " FROM documents WHERE tenant_id = $1 AND content_hash = $2");
        Ok(on_pool!(self.store, pool => {
            sqlx::query_as::<_, Document>(sql).bind(tenant).bind(hash).fetch_optional(pool).await?
        }))
    }

    /// The document with this id, if it belongs to the tenant.
    pub async fn get(&self, tenant: TenantId, id: DocumentId) -> Result<Document, StoreError> {
        let sql = concat!("SELECT ", document_columns!(), " FROM documents WHERE tenant_id = $1 AND id = $2");
        on_pool!(self.store, pool => {
            sqlx::query_as::<_, Document>(sql)
                .bind(tenant)
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound("document"))
        })
    }

    /// A page of the tenant's documents, newest first, optionally only
    /// those whose metadata contains every key and value of `metadata`.
    pub async fn list(
        &self,
        tenant: TenantId,
        metadata: Option<&serde_json::Value>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Document>, StoreError> {
        let (limit, fetch) = page_limit(limit);
        let cursor = id_cursor(cursor)?;
        let sql = format!(
            "SELECT {} FROM documents WHERE tenant_id = $1 AND {} AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
            document_columns!(),
            metadata_clause(self.store.backend())
        );
        let filter = metadata.map(|m| m.to_string());
        let rows = on_pool!(self.store, pool => {
            sqlx::query_as::<_, Document>(sqlx::AssertSqlSafe(sql))
                .bind(tenant)
                .bind(filter)
                .bind(cursor)
                .bind(fetch)
                .fetch_all(pool)
                .await?
        });
        Ok(Page::from_rows(rows, limit, |d| d.id.to_string()))
    }

    /// The ids of the tenant's documents whose metadata contains every key
    /// and value of `metadata`: what a search filter narrows to.
    pub async fn matching(
        &self,
        tenant: TenantId,
        metadata: &serde_json::Value,
    ) -> Result<Vec<DocumentId>, StoreError> {
        let sql =
            format!("SELECT id FROM documents WHERE tenant_id = $1 AND {}", metadata_clause(self.store.backend()));
        let filter = metadata.to_string();
        Ok(on_pool!(self.store, pool => {
            sqlx::query_scalar::<_, DocumentId>(sqlx::AssertSqlSafe(sql))
                .bind(tenant)
                .bind(filter)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Replaces a document's content with a new version and queues it
    /// again; its current chunks stay searchable until the new version's
    /// replace them. Bytes identical to another document of the tenant are
    /// a conflict.
    pub async fn replace(
        &self,
        tenant: TenantId,
        id: DocumentId,
        new: DocumentReplacement,
    ) -> Result<Document, StoreError> {
        let now = stored_time(self.store.now());
        let hash = content_hash(&new.bytes);
        let (status, error) = match &new.failure {
            Some(reason) => (DocumentStatus::Failed, Some(reason.clone())),
            None => (DocumentStatus::Queued, None),
        };
        let update = "UPDATE documents SET version = version + 1, content_hash = $3, byte_size = $4, \
             title = COALESCE($5, title), source = COALESCE($6, source), format = $7, content_type = $8, \
             metadata = COALESCE($9, metadata), status = $10, error = $11, job_id = NULL, updated_at = $12 \
             WHERE tenant_id = $1 AND id = $2 RETURNING version";
        let content = "UPDATE document_contents SET version = $2, bytes = $3 WHERE document_id = $1";
        let metadata = new.metadata.as_ref().map(sqlx::types::Json);
        on_pool!(self.store, pool => {
            let mut tx = pool.begin().await?;
            let version = sqlx::query_scalar::<_, i64>(update)
                .bind(tenant)
                .bind(id)
                .bind(&hash)
                .bind(new.bytes.len() as i64)
                .bind(&new.title)
                .bind(&new.source)
                .bind(&new.format)
                .bind(&new.content_type)
                .bind(metadata)
                .bind(status.as_str())
                .bind(&error)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| StoreError::conflict_on_unique(e, "another document of this tenant has identical content"))?;
            // Rolled back explicitly: a dropped transaction stays open (and
            // keeps its locks) until its connection is used again.
            let Some(version) = version else {
                tx.rollback().await?;
                return Err(StoreError::NotFound("document"));
            };
            sqlx::query(content).bind(id).bind(version).bind(&new.bytes).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        self.get(tenant, id).await
    }

    /// Records the job that ingests these documents.
    pub async fn attach_job(&self, tenant: TenantId, ids: &[DocumentId], job: JobId) -> Result<(), StoreError> {
        let sql = "UPDATE documents SET job_id = $3 WHERE tenant_id = $1 AND id = $2";
        on_pool!(self.store, pool => {
            let mut tx = pool.begin().await?;
            for id in ids {
                sqlx::query(sql).bind(tenant).bind(id).bind(job).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The current version of a document and its bytes, for a worker.
    pub async fn content(&self, tenant: TenantId, id: DocumentId) -> Result<(i64, Vec<u8>), StoreError> {
        let sql = "SELECT c.version, c.bytes FROM document_contents c JOIN documents d ON d.id = c.document_id \
                   WHERE d.tenant_id = $1 AND d.id = $2";
        on_pool!(self.store, pool => {
            sqlx::query_as::<_, (i64, Vec<u8>)>(sql)
                .bind(tenant)
                .bind(id)
                .fetch_optional(pool)
                .await?
                .ok_or(StoreError::NotFound("document"))
        })
    }

    /// Sets the status (and failure reason) of a version of a document.
    /// Returns false, changing nothing, when the document is gone or has a
    /// newer version: the caller's work is stale.
    pub async fn set_status(
        &self,
        tenant: TenantId,
        id: DocumentId,
        version: i64,
        status: DocumentStatus,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let now = stored_time(self.store.now());
        let sql = "UPDATE documents SET status = $4, error = $5, updated_at = $6 \
                   WHERE tenant_id = $1 AND id = $2 AND version = $3";
        let updated = on_pool!(self.store, pool => {
            sqlx::query(sql)
                .bind(tenant)
                .bind(id)
                .bind(version)
                .bind(status.as_str())
                .bind(error)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(updated > 0)
    }

    /// Deletes a document, its bytes and its chunks, logging the chunks'
    /// removal for the indexes in the same transaction.
    pub async fn delete(&self, tenant: TenantId, id: DocumentId) -> Result<(), StoreError> {
        let log = "INSERT INTO chunk_changes (tenant_id, chunk_key, op) \
                   SELECT tenant_id, key, 0 FROM chunks WHERE tenant_id = $1 AND document_id = $2 ORDER BY key";
        let delete = "DELETE FROM documents WHERE tenant_id = $1 AND id = $2";
        let backend = self.store.backend();
        on_pool!(self.store, pool => {
            let mut tx = pool.begin().await?;
            lock_change_log!(backend, tx);
            sqlx::query(log).bind(tenant).bind(id).execute(&mut *tx).await?;
            let deleted = sqlx::query(delete).bind(tenant).bind(id).execute(&mut *tx).await?.rows_affected();
            if deleted == 0 {
                tx.rollback().await?;
                return Err(StoreError::NotFound("document"));
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
