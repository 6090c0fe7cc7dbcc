//! Chunks and the change log the search indexes follow.
//!
//! A document's chunks are replaced as one set, in one transaction that also
//! marks the document ready and appends a "removed" entry for every old
//! chunk and an "added" entry for every new one to `chunk_changes`. Each
//! node's indexes apply that log from where they stopped, so they converge
//! on the store whatever crashed where, and a reader never sees half of a
//! new version.
//!
//! The log is only useful if its order is commit order: a node that has
//! read up to entry 10 must never later find an entry 9 committed behind
//! it. SQLite has one writer at a time, so that holds by itself; on
//! PostgreSQL every transaction that writes the log first takes one
//! transaction-scoped advisory lock, so they commit one after another.

use crate::db::{Store, on_pool};
use crate::error::StoreError;
use crate::ids::{ChunkId, DocumentId, JobId, TenantId};
use crate::knowledge::{ChunkChange, IndexableChunk, NewChunk, StoredChunk, vector_from_bytes, vector_to_bytes};
use crate::repos::vectors::vector_literal;
use crate::repos::{lock_change_log, stored_time};

/// Repository of chunks and their change log.
pub struct Chunks<'a> {
    pub(crate) store: &'a Store,
}

/// How a replacement of a document's chunks ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkReplacement {
    /// The chunks are stored and the document is ready.
    Replaced { chunks: usize },
    /// The document was deleted or has a newer version: nothing written.
    Superseded,
    /// The job no longer holds its lease (another worker took it over):
    /// nothing written.
    LeaseLost,
}

/// Rows inserted per statement: well under both backends' limits on bound
/// parameters.
const INSERT_BATCH: usize = 400;

/// `$from, $from+1, …` for an `IN (…)` list of `count` values.
fn placeholders(from: usize, count: usize) -> String {
    (from..from + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

type IndexableRow = (ChunkId, DocumentId, String, sqlx::types::Json<Vec<String>>, String, Vec<u8>);

fn indexable(rows: Vec<IndexableRow>) -> Result<Vec<IndexableChunk>, StoreError> {
    rows.into_iter()
        .map(|(id, document_id, title, heading_path, text, embedding)| {
            let embedding =
                vector_from_bytes(&embedding).ok_or_else(|| StoreError::Corrupt(format!("embedding of chunk {id}")))?;
            Ok(IndexableChunk { id, document_id, title, heading_path: heading_path.0, text, embedding })
        })
        .collect()
}

const INDEXABLE_COLUMNS: &str = "c.key, c.document_id, d.title, c.heading_path, c.text, c.embedding";

impl Chunks<'_> {
    /// Replaces the chunks of version `version` of a document with
    /// `chunks`, marks it ready, and logs the change, all in one
    /// transaction. With `lease`, writes only while that job is still held
    /// by that worker, so a worker that lost its job to another cannot
    /// write a second copy.
    pub async fn replace_for_document(
        &self,
        tenant: TenantId,
        document: DocumentId,
        version: i64,
        chunks: &[NewChunk],
        lease: Option<(JobId, &str)>,
    ) -> Result<ChunkReplacement, StoreError> {
        let now = stored_time(self.store.now());
        let backend = self.store.backend();
        let touch = "UPDATE documents SET updated_at = $4 WHERE tenant_id = $1 AND id = $2 AND version = $3";
        let hold = "UPDATE jobs SET updated_at = $3 WHERE id = $1 AND locked_by = $2 AND status = 'running'";
        let log_removed = "INSERT INTO chunk_changes (tenant_id, chunk_key, op) \
                           SELECT tenant_id, key, 0 FROM chunks WHERE document_id = $1 ORDER BY key";
        let delete = "DELETE FROM chunks WHERE document_id = $1";
        let ready = "UPDATE documents SET status = 'ready', error = NULL, chunk_count = $2, updated_at = $3 \
                     WHERE id = $1";
        on_pool!(self.store, pool => {
            let mut tx = pool.begin().await?;
            lock_change_log!(backend, tx);
            let current = sqlx::query(touch).bind(tenant).bind(document).bind(version).bind(now).execute(&mut *tx).await?;
            // Rolled back explicitly: a dropped transaction stays open (and
            // keeps the log's lock) until its connection is used again.
            if current.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(ChunkReplacement::Superseded);
            }
            if let Some((job, worker)) = lease {
                let held = sqlx::query(hold).bind(job).bind(worker).bind(now).execute(&mut *tx).await?;
                if held.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(ChunkReplacement::LeaseLost);
                }
            }
            // pgvector rows go in with their chunks, where the table exists.
            let pgvector = backend == "postgres"
                && sqlx::query_scalar::<_, bool>("SELECT to_regclass('chunk_vectors') IS NOT NULL")
                    .fetch_one(&mut *tx)
                    .await?;
            sqlx::query(log_removed).bind(document).execute(&mut *tx).await?;
            sqlx::query(delete).bind(document).execute(&mut *tx).await?;
            for batch in chunks.chunks(INSERT_BATCH) {
                let rows = (0..batch.len())
                    .map(|i| format!("($1, $2, $3, {})", placeholders(4 + i * 9, 9)))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "INSERT INTO chunks (tenant_id, document_id, version, position, text, heading_path, byte_start, \
                     byte_end, char_start, char_end, tokens, embedding) VALUES {rows} RETURNING key"
                );
                let mut query =
                    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(document).bind(version);
                for chunk in batch {
                    query = query
                        .bind(chunk.position)
                        .bind(&chunk.text)
                        .bind(sqlx::types::Json(&chunk.heading_path))
                        .bind(chunk.byte_span.0)
                        .bind(chunk.byte_span.1)
                        .bind(chunk.char_span.0)
                        .bind(chunk.char_span.1)
                        .bind(chunk.tokens)
                        .bind(vector_to_bytes(&chunk.embedding));
                }
                let mut keys = query.fetch_all(&mut *tx).await?;
                // Keys are drawn in the order of the rows inserted.
                keys.sort_unstable();
                if pgvector {
                    let rows = (0..keys.len())
                        .map(|i| format!("(${}, $1, $2, ${}::vector)", 3 + 2 * i, 4 + 2 * i))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let sql = format!("INSERT INTO chunk_vectors (chunk_key, tenant_id, document_id, embedding) VALUES {rows}");
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(document);
                    for (key, chunk) in keys.iter().zip(batch) {
                        query = query.bind(key).bind(vector_literal(&chunk.embedding));
                    }
                    query.execute(&mut *tx).await?;
                }
                let log = format!(
                    "INSERT INTO chunk_changes (tenant_id, chunk_key, op) VALUES {}",
                    (0..keys.len()).map(|i| format!("($1, ${}, 1)", i + 2)).collect::<Vec<_>>().join(", ")
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(log)).bind(tenant);
                for key in &keys {
                    query = query.bind(key);
                }
                query.execute(&mut *tx).await?;
            }
            sqlx::query(ready).bind(document).bind(chunks.len() as i64).bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(ChunkReplacement::Replaced { chunks: chunks.len() })
    }

    /// Up to `limit` change log entries after `after`, of every tenant, in
    /// order.
    pub async fn changes_after(&self, after: i64, limit: i64) -> Result<Vec<ChunkChange>, StoreError> {
        let sql = "SELECT seq, tenant_id, chunk_key, op FROM chunk_changes WHERE seq > $1 ORDER BY seq LIMIT $2";
        let rows = on_pool!(self.store, pool => {
            sqlx::query_as::<_, (i64, TenantId, i64, i64)>(sql).bind(after).bind(limit).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(change).collect())
    }

    /// Up to `limit` change log entries of one tenant after `after`, in
    /// order.
    pub async fn tenant_changes_after(
        &self,
        tenant: TenantId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ChunkChange>, StoreError> {
        let sql = "SELECT seq, tenant_id, chunk_key, op FROM chunk_changes \
                   WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";
        let rows = on_pool!(self.store, pool => {
            sqlx::query_as::<_, (i64, TenantId, i64, i64)>(sql)
                .bind(tenant)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(change).collect())
    }

    /// The position of the newest change log entry (0 when empty).
    pub async fn last_change(&self) -> Result<i64, StoreError> {
        let sql = "SELECT COALESCE(MAX(seq), 0) FROM chunk_changes";
        Ok(on_pool!(self.store, pool => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await?))
    }

    /// The chunks with these ids that still exist, as an index needs them.
    pub async fn indexable(&self, tenant: TenantId, ids: &[ChunkId]) -> Result<Vec<IndexableChunk>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for batch in ids.chunks(INSERT_BATCH) {
            let sql = format!(
                "SELECT {INDEXABLE_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.document_id \
                 WHERE c.tenant_id = $1 AND c.key IN ({}) ORDER BY c.key",
                placeholders(2, batch.len())
            );
            let rows = on_pool!(self.store, pool => {
                let mut query = sqlx::query_as::<_, IndexableRow>(sqlx::AssertSqlSafe(sql)).bind(tenant);
                for id in batch {
                    query = query.bind(id);
                }
                query.fetch_all(pool).await?
            });
            out.extend(indexable(rows)?);
        }
        Ok(out)
    }

    /// Up to `limit` of the tenant's chunks with ids above `after`, in id
    /// order: how an index is rebuilt from the store.
    pub async fn indexable_page(
        &self,
        tenant: TenantId,
        after: ChunkId,
        limit: i64,
    ) -> Result<Vec<IndexableChunk>, StoreError> {
        let sql = format!(
            "SELECT {INDEXABLE_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.document_id \
             WHERE c.tenant_id = $1 AND c.key > $2 ORDER BY c.key LIMIT $3"
        );
        let rows = on_pool!(self.store, pool => {
            sqlx::query_as::<_, IndexableRow>(sqlx::AssertSqlSafe(sql))
                .bind(tenant)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        indexable(rows)
    }

    /// The chunks with these ids that exist and belong to the tenant, with
    /// their documents' titles, in no particular order.
    pub async fn get_many(&self, tenant: TenantId, ids: &[ChunkId]) -> Result<Vec<StoredChunk>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for batch in ids.chunks(INSERT_BATCH) {
            let sql = format!(
                "SELECT c.key AS id, c.tenant_id, c.document_id, d.title, c.version, c.position, c.text, \
                 c.heading_path, c.byte_start, c.byte_end, c.char_start, c.char_end, c.tokens \
                 FROM chunks c JOIN documents d ON d.id = c.document_id \
                 WHERE c.tenant_id = $1 AND c.key IN ({})",
                placeholders(2, batch.len())
            );
            let rows = on_pool!(self.store, pool => {
                let mut query = sqlx::query_as::<_, StoredChunk>(sqlx::AssertSqlSafe(sql)).bind(tenant);
                for id in batch {
                    query = query.bind(id);
                }
                query.fetch_all(pool).await?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    /// The ids of a tenant's chunks with the documents they belong to.
    pub async fn keys_of_tenant(&self, tenant: TenantId) -> Result<Vec<(ChunkId, DocumentId)>, StoreError> {
        let sql = "SELECT key, document_id FROM chunks WHERE tenant_id = $1 ORDER BY key";
        Ok(on_pool!(self.store, pool => {
            sqlx::query_as::<_, (ChunkId, DocumentId)>(sql).bind(tenant).fetch_all(pool).await?
        }))
    }

    /// How many chunks the tenant has.
    pub async fn count(&self, tenant: TenantId) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM chunks WHERE tenant_id = $1";
        Ok(on_pool!(self.store, pool => sqlx::query_scalar::<_, i64>(sql).bind(tenant).fetch_one(pool).await?))
    }
}

fn change((seq, tenant_id, key, op): (i64, TenantId, i64, i64)) -> ChunkChange {
    ChunkChange { seq, tenant_id, chunk: ChunkId(key), added: op == 1 }
}
