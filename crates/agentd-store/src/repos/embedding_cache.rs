//! Embeddings already computed, by the hash of the text they embed.
//!
//! Embedding is the costly step of ingestion. A job retried after a crash,
//! a document re-uploaded with one paragraph changed, or two documents
//! sharing boilerplate must not pay for it again: each chunk's vector is
//! kept under (tenant, model, SHA-256 of its text). The cache is per tenant
//! so that even how fast an upload goes tells one tenant nothing about
//! another's texts.

use std::collections::HashMap;

use crate::db::{Store, on_pool};
use crate::error::StoreError;
use crate::ids::TenantId;
use crate::knowledge::{vector_from_bytes, vector_to_bytes};

/// Repository of cached embeddings.
pub struct EmbeddingCache<'a> {
    pub(crate) store: &'a Store,
}

/// Hashes looked up per statement.
const BATCH: usize = 400;

impl EmbeddingCache<'_> {
    /// The cached vectors among `hashes`, by hash.
    pub async fn get_many(
        &self,
        tenant: TenantId,
        model: &str,
        hashes: &[[u8; 32]],
    ) -> Result<HashMap<[u8; 32], Vec<f32>>, StoreError> {
        let mut found = HashMap::new();
        for batch in hashes.chunks(BATCH) {
            let list = (0..batch.len()).map(|i| format!("${}", i + 3)).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "SELECT text_hash, embedding FROM embedding_cache \
                 WHERE tenant_id = $1 AND model = $2 AND text_hash IN ({list})"
            );
            let rows = on_pool!(self.store, pool => {
                let mut query = sqlx::query_as::<_, (Vec<u8>, Vec<u8>)>(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(model);
                for hash in batch {
                    query = query.bind(hash.as_slice());
                }
                query.fetch_all(pool).await?
            });
            for (hash, vector) in rows {
                let (Ok(hash), Some(vector)) = (<[u8; 32]>::try_from(hash.as_slice()), vector_from_bytes(&vector))
                else {
                    return Err(StoreError::Corrupt("embedding cache entry".into()));
                };
                found.insert(hash, vector);
            }
        }
        Ok(found)
    }

    /// Caches vectors by text hash; entries already cached are kept.
    pub async fn put_many(
        &self,
        tenant: TenantId,
        model: &str,
        entries: &[([u8; 32], &[f32])],
    ) -> Result<(), StoreError> {
        for batch in entries.chunks(BATCH) {
            let rows = (0..batch.len())
                .map(|i| format!("($1, $2, ${}, ${})", 3 + 2 * i, 4 + 2 * i))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO embedding_cache (tenant_id, model, text_hash, embedding) VALUES {rows} \
                 ON CONFLICT (tenant_id, model, text_hash) DO NOTHING"
            );
            on_pool!(self.store, pool => {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(model);
                for (hash, vector) in batch {
                    query = query.bind(hash.as_slice()).bind(vector_to_bytes(vector));
                }
                query.execute(pool).await?;
            });
        }
        Ok(())
    }
}
