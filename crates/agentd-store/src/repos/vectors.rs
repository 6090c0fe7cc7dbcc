//! Chunk vectors in PostgreSQL for pgvector, where the extension exists.
//!
//! Every chunk's vector is always in `chunks.embedding` (bytes, on both
//! backends), which is what a node rebuilds its own index from. When the
//! database has pgvector, `chunk_vectors` also holds each vector as a
//! `vector(d)` under an HNSW index, so any node can search every vector in
//! the database without an index of its own. The table is created at run
//! time, because its dimension is the embedding model's; rows are written
//! in the same transaction as their chunks (see `Chunks`) and leave with
//! them (a foreign key cascades).

use crate::db::{Pool, Store};
use crate::error::StoreError;
use crate::ids::{ChunkId, DocumentId, TenantId};
use crate::knowledge::vector_from_bytes;

/// Repository of pgvector rows.
pub struct Vectors<'a> {
    pub(crate) store: &'a Store,
}

/// Rows backfilled per statement.
const BACKFILL_BATCH: i64 = 500;

/// pgvector's text form of a vector: `[0.1,0.2,…]`.
pub(crate) fn vector_literal(vector: &[f32]) -> String {
    let mut text = String::with_capacity(vector.len() * 10 + 2);
    text.push('[');
    for (i, v) in vector.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&v.to_string());
    }
    text.push(']');
    text
}

impl Vectors<'_> {
    /// Makes pgvector search available for vectors of `dimension`: the
    /// extension, the table and its indexes, then the vectors of chunks
    /// written before. Returns `false` (changing nothing) on SQLite or when
    /// the server has no pgvector; an error when the table exists for
    /// another dimension.
    pub async fn prepare(&self, dimension: usize) -> Result<bool, StoreError> {
        let Pool::Postgres(pool) = &self.store.pool else { return Ok(false) };
        let available: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')")
                .fetch_one(pool)
                .await?;
        if !available {
            return Ok(false);
        }
        let mut tx = pool.begin().await?;
        // Nodes starting together must not race to create the same objects.
        sqlx::query("SELECT pg_advisory_xact_lock(7386010418)").execute(&mut *tx).await?;
        sqlx::query("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public").execute(&mut *tx).await?;
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
             WHERE a.attrelid = to_regclass('chunk_vectors') AND a.attname = 'embedding'",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let wanted = format!("vector({dimension})");
        match existing {
            Some(found) if found != wanted => {
                tx.rollback().await?;
                return Err(StoreError::Conflict(format!(
                    "chunk_vectors holds {found} but the embedding model makes {wanted}; \
                     drop the table (and re-ingest) to change models"
                )));
            }
            Some(_) => {}
            None => {
                let create = format!(
                    "CREATE TABLE chunk_vectors (\
                     chunk_key BIGINT PRIMARY KEY REFERENCES chunks(key) ON DELETE CASCADE, \
                     tenant_id UUID NOT NULL, document_id UUID NOT NULL, embedding {wanted} NOT NULL)"
                );
                sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut *tx).await?;
                sqlx::query("CREATE INDEX chunk_vectors_tenant ON chunk_vectors (tenant_id)").execute(&mut *tx).await?;
                sqlx::query(
                    "CREATE INDEX chunk_vectors_embedding ON chunk_vectors \
                     USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)",
                )
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        self.backfill().await?;
        Ok(true)
    }

    /// Writes the pgvector rows of chunks that lack one (written before the
    /// table existed, or by a process that did not know of it).
    pub async fn backfill(&self) -> Result<u64, StoreError> {
        let Pool::Postgres(pool) = &self.store.pool else { return Ok(0) };
        let mut written = 0;
        loop {
            let rows: Vec<(i64, TenantId, DocumentId, Vec<u8>)> = sqlx::query_as(
                "SELECT c.key, c.tenant_id, c.document_id, c.embedding FROM chunks c \
                 WHERE NOT EXISTS (SELECT 1 FROM chunk_vectors v WHERE v.chunk_key = c.key) ORDER BY c.key LIMIT $1",
            )
            .bind(BACKFILL_BATCH)
            .fetch_all(pool)
            .await?;
            if rows.is_empty() {
                return Ok(written);
            }
            for (key, tenant, document, bytes) in rows {
                let vector = vector_from_bytes(&bytes)
                    .ok_or_else(|| StoreError::Corrupt(format!("embedding of chunk {key}")))?;
                sqlx::query(
                    "INSERT INTO chunk_vectors (chunk_key, tenant_id, document_id, embedding) \
                     SELECT $1, $2, $3, $4::vector WHERE EXISTS (SELECT 1 FROM chunks WHERE key = $1) \
                     ON CONFLICT (chunk_key) DO NOTHING",
                )
                .bind(key)
                .bind(tenant)
                .bind(document)
                .bind(vector_literal(&vector))
                .execute(pool)
                .await?;
                written += 1;
            }
        }
    }

    /// The `k` chunks of the tenant (of `documents` only, when given) most
    /// similar to `query` by cosine, best first, with their similarity.
    /// `expansion` is HNSW's candidate list (`hnsw.ef_search`); filtered
    /// searches keep scanning until `k` rows pass the filter.
    pub async fn search(
        &self,
        tenant: TenantId,
        query: &[f32],
        k: usize,
        documents: Option<&[DocumentId]>,
        expansion: usize,
    ) -> Result<Vec<(ChunkId, f32)>, StoreError> {
        let Pool::Postgres(pool) = &self.store.pool else { return Ok(Vec::new()) };
        let mut tx = pool.begin().await?;
        let ef = expansion.clamp(k.max(1), 1000);
        sqlx::query(sqlx::AssertSqlSafe(format!("SET LOCAL hnsw.ef_search = {ef}"))).execute(&mut *tx).await?;
        sqlx::query("SET LOCAL hnsw.iterative_scan = relaxed_order").execute(&mut *tx).await?;
        let documents: Option<Vec<uuid::Uuid>> = documents.map(|d| d.iter().map(|id| id.0).collect());
        let rows: Vec<(ChunkId, f64)> = sqlx::query_as(
            "SELECT chunk_key, 1 - (embedding <=> $2::vector) AS score FROM chunk_vectors \
             WHERE tenant_id = $1 AND ($3::uuid[] IS NULL OR document_id = ANY($3)) \
             ORDER BY embedding <=> $2::vector LIMIT $4",
        )
        .bind(tenant)
        .bind(vector_literal(query))
        .bind(documents)
        .bind(k as i64)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        // relaxed_order may return near-ties out of order.
        let mut hits: Vec<(ChunkId, f32)> = rows.into_iter().map(|(id, score)| (id, score as f32)).collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(hits)
    }

    /// How many pgvector rows the tenant has (0 without pgvector).
    pub async fn count(&self, tenant: TenantId) -> Result<i64, StoreError> {
        let Pool::Postgres(pool) = &self.store.pool else { return Ok(0) };
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass('chunk_vectors') IS NOT NULL").fetch_one(pool).await?;
        if !exists {
            return Ok(0);
        }
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM chunk_vectors WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(pool)
            .await?)
    }
}
