//! Repositories: one per aggregate, each a thin borrow of the [`Store`].
//!
//! `store.sessions().get(tenant, owner, id)` reads better than a free
//! function with a pool argument, and keeps every query of one table in one
//! file next to the SQL it runs.

mod api_keys;
mod audit;
mod block_prints;
mod chunks;
mod documents;
mod embedding_cache;
mod jobs;
mod sessions;
mod tenants;
mod users;
mod vectors;

pub use api_keys::ApiKeys;
pub use audit::Audit;
pub use block_prints::BlockPrints;
pub use chunks::{ChunkReplacement, Chunks};
pub use documents::{Documents, content_hash};
pub use embedding_cache::EmbeddingCache;
pub use jobs::Jobs;
pub use sessions::Sessions;
pub use tenants::Tenants;
pub use users::Users;
pub use vectors::Vectors;

use chrono::{DateTime, SubsecRound, Utc};

use crate::db::Store;

impl Store {
    /// Tenants: create, look up by name or id.
    pub fn tenants(&self) -> Tenants<'_> {
        Tenants { store: self }
    }

    /// Users of a tenant.
    pub fn users(&self) -> Users<'_> {
        Users { store: self }
    }

    /// API keys (hashes only).
    pub fn api_keys(&self) -> ApiKeys<'_> {
        ApiKeys { store: self }
    }

    /// Conversations and their messages.
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions { store: self }
    }

    /// The audit log.
    pub fn audit(&self) -> Audit<'_> {
        Audit { store: self }
    }

    /// Uploaded documents and their bytes.
    pub fn documents(&self) -> Documents<'_> {
        Documents { store: self }
    }

    /// Chunks of documents and the change log indexes follow.
    pub fn chunks(&self) -> Chunks<'_> {
        Chunks { store: self }
    }

    /// Which documents share a text block (boilerplate detection).
    pub fn block_prints(&self) -> BlockPrints<'_> {
        BlockPrints { store: self }
    }

    /// Embeddings by text hash.
    pub fn embedding_cache(&self) -> EmbeddingCache<'_> {
        EmbeddingCache { store: self }
    }

    /// Chunk vectors for pgvector (PostgreSQL with the extension only).
    pub fn vectors(&self) -> Vectors<'_> {
        Vectors { store: self }
    }

    /// The durable job queue.
    pub fn jobs(&self) -> Jobs<'_> {
        Jobs { store: self }
    }
}

/// Makes the transaction `$tx` the only writer of the chunk change log
/// until it ends, so log entries are numbered in commit order (PostgreSQL;
/// SQLite has a single writer anyway). Take it before any other lock.
macro_rules! lock_change_log {
    ($backend:expr, $tx:ident) => {
        if $backend == "postgres" {
            sqlx::query("SELECT pg_advisory_xact_lock(7386010417)").execute(&mut *$tx).await?;
        }
    };
}
pub(crate) use lock_change_log;

/// The most rows one page may hold, whatever the caller asks for.
pub const MAX_PAGE: u32 = 200;

/// Clamps a requested page size into `1..=MAX_PAGE` and returns it with the
/// `LIMIT` to query (one more, to learn whether a next page exists).
pub(crate) fn page_limit(limit: u32) -> (u32, i64) {
    let limit = limit.clamp(1, MAX_PAGE);
    (limit, i64::from(limit) + 1)
}

/// Parses an id cursor handed out by an earlier page. A cursor that is not
/// one of ours is an error rather than the first page; an empty one is no
/// cursor.
pub(crate) fn id_cursor(cursor: Option<&str>) -> Result<Option<uuid::Uuid>, crate::StoreError> {
    cursor
        .filter(|c| !c.is_empty())
        .map(|c| uuid::Uuid::parse_str(c).map_err(|_| crate::StoreError::InvalidCursor))
        .transpose()
}

/// A timestamp as both backends keep it: PostgreSQL stores microseconds, so
/// a record returned by a write must not carry nanoseconds that a later read
/// of the same row would lack.
pub(crate) fn stored_time(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}
