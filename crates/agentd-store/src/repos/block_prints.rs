//! Which documents of a tenant share a text block: the evidence that a
//! block is boilerplate (a navigation bar, a header, a footer) rather than
//! a document's own text.
//!
//! Ingestion records a fingerprint of the blocks at each end of a document
//! and asks, for a new document, in how many other documents each of its
//! blocks already appears. Fingerprints are 64-bit hashes of normalized
//! text; the text itself is never kept here. Rows go with their document
//! (deleted by cascade).

use std::collections::HashMap;

use crate::db::{Store, on_pool};
use crate::error::StoreError;
use crate::ids::{DocumentId, TenantId};

/// Repository of block fingerprints.
pub struct BlockPrints<'a> {
    pub(crate) store: &'a Store,
}

/// Fingerprints per statement.
const BATCH: usize = 400;

impl BlockPrints<'_> {
    /// For each of `prints`, how many documents of the tenant other than
    /// `except` hold it; fingerprints no other document holds are absent.
    pub async fn others_holding(
        &self,
        tenant: TenantId,
        except: DocumentId,
        prints: &[i64],
    ) -> Result<HashMap<i64, i64>, StoreError> {
        let mut counts = HashMap::new();
        for batch in prints.chunks(BATCH) {
            let list = (0..batch.len()).map(|i| format!("${}", i + 3)).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "SELECT fingerprint, COUNT(*) FROM block_prints \
                 WHERE tenant_id = $1 AND document_id <> $2 AND fingerprint IN ({list}) GROUP BY fingerprint"
            );
            let rows = on_pool!(self.store, pool => {
                let mut query = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(except);
                for print in batch {
                    query = query.bind(*print);
                }
                query.fetch_all(pool).await?
            });
            counts.extend(rows);
        }
        Ok(counts)
    }

    /// Replaces the fingerprints recorded for a document. A document deleted
    /// meanwhile (while it was being ingested) gets none, without an error.
    pub async fn replace(&self, tenant: TenantId, document: DocumentId, prints: &[i64]) -> Result<(), StoreError> {
        let mut unique = prints.to_vec();
        unique.sort_unstable();
        unique.dedup();
        on_pool!(self.store, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM block_prints WHERE tenant_id = $1 AND document_id = $2")
                .bind(tenant)
                .bind(document)
                .execute(&mut *tx)
                .await?;
            for batch in unique.chunks(BATCH) {
                let rows = (0..batch.len()).map(|i| format!("($1, ${}, $2)", i + 3)).collect::<Vec<_>>().join(", ");
                let sql = format!("INSERT INTO block_prints (tenant_id, fingerprint, document_id) VALUES {rows}");
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(document);
                for print in batch {
                    query = query.bind(*print);
                }
                match query.execute(&mut *tx).await {
                    Ok(_) => {}
                    Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                        tx.rollback().await?;
                        return Ok(());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
