//! This node's search indexes, kept in step with the SQL store.
//!
//! Each tenant has its own pair of indexes (vectors in HNSW, words in
//! tantivy) in its own directory: a search can only ever read its tenant's
//! chunks, because no other tenant's chunks are in the index it reads.
//!
//! The store is the source of truth. Workers anywhere write chunks there,
//! with an entry per chunk added or removed in the commit-ordered change
//! log; this module applies the log to the indexes from where they stopped.
//! That one mechanism covers every case: a worker of this process (which
//! nudges the indexes at once), a worker on another machine (seen at the
//! next poll), a restart (the snapshot on disk says how far it got, the
//! rest of the log is replayed) and a crash mid-write (the snapshot is
//! older than the log, or unreadable and rebuilt from the store's vectors).
//!
//! A tenant's changes are applied under its write lock and searches take
//! its read lock, so a search sees a new version of a document entirely or
//! not at all.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agentd_store::{ChunkChange, ChunkId, DocumentId, IndexableChunk, Store, StoreError, TenantId};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};

use crate::keyword::{KeywordDoc, KeywordIndex};
use crate::vector::{HnswIndex, HnswParams, VectorIndex};

/// Change log entries read per query.
const LOG_PAGE: i64 = 10_000;
/// Chunks fetched from the store per query when applying or rebuilding.
const FETCH_PAGE: usize = 500;
/// How long a search may go without checking the log for other
/// processes' writes.
const FRESHNESS: Duration = Duration::from_millis(250);

/// Why the indexes could not be read or updated.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("vector index: {0}")]
    Vector(#[from] crate::vector::VectorError),
    #[error("keyword index: {0}")]
    Keyword(#[from] crate::keyword::KeywordError),
    #[error("index directory {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// What the vector snapshot on disk holds, written after the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct SnapshotInfo {
    /// Every change log entry up to this one is in the snapshot.
    applied_seq: i64,
    dimension: usize,
}

/// One tenant's indexes.
pub struct TenantIndex {
    pub vectors: HnswIndex,
    pub keywords: KeywordIndex,
    /// The document of every indexed chunk, for filters.
    pub documents: HashMap<u64, DocumentId>,
    /// The last change log entry applied to both indexes.
    applied_seq: i64,
    /// The entry the vector snapshot on disk is at.
    saved_seq: i64,
}

impl TenantIndex {
    /// How many chunks are indexed.
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The indexes of every tenant this node has searched or ingested for.
pub struct Indexes {
    store: Store,
    /// Where indexes persist; `None` keeps them in memory (tests, eval).
    dir: Option<PathBuf>,
    dimension: usize,
    params: HnswParams,
    tenants: RwLock<HashMap<TenantId, Arc<RwLock<TenantIndex>>>>,
    /// The log entry every loaded tenant has caught up to; held while
    /// applying, so the log is applied by one task at a time.
    cursor: Mutex<i64>,
    /// Set by local workers when they wrote chunks.
    dirty: AtomicBool,
    last_sync: std::sync::Mutex<Instant>,
}

impl Indexes {
    /// Indexes for vectors of `dimension`, persisted under `dir` (one
    /// folder per tenant) or, with `None`, in memory. Tenants are loaded on
    /// first use.
    pub async fn open(
        store: Store,
        dir: Option<PathBuf>,
        dimension: usize,
        params: HnswParams,
    ) -> Result<Arc<Self>, IndexError> {
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).map_err(|source| IndexError::Io { path: dir.clone(), source })?;
        }
        let cursor = store.chunks().last_change().await?;
        Ok(Arc::new(Indexes {
            store,
            dir,
            dimension,
            params,
            tenants: RwLock::new(HashMap::new()),
            cursor: Mutex::new(cursor),
            dirty: AtomicBool::new(false),
            last_sync: std::sync::Mutex::new(Instant::now()),
        }))
    }

    /// The dimension of the vectors indexed.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Tells the indexes that this process wrote chunks, so the next search
    /// applies them first.
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// A tenant's indexes, loaded (and caught up with the store) if this
    /// is their first use.
    pub async fn tenant(&self, tenant: TenantId) -> Result<Arc<RwLock<TenantIndex>>, IndexError> {
        if let Some(index) = self.tenants.read().await.get(&tenant) {
            return Ok(index.clone());
        }
        let cursor = self.cursor.lock().await;
        if let Some(index) = self.tenants.read().await.get(&tenant) {
            return Ok(index.clone());
        }
        let index = Arc::new(RwLock::new(self.load(tenant, *cursor).await?));
        self.tenants.write().await.insert(tenant, index.clone());
        Ok(index)
    }

    /// The document of each of `keys` that the tenant's index holds.
    pub async fn documents_of(&self, tenant: TenantId, keys: &[u64]) -> Result<HashMap<u64, DocumentId>, IndexError> {
        let index = self.tenant(tenant).await?;
        let index = index.read().await;
        Ok(keys.iter().filter_map(|key| index.documents.get(key).map(|d| (*key, *d))).collect())
    }

    /// The embedding of each of `keys` that the tenant's index holds.
    pub async fn vectors_of(&self, tenant: TenantId, keys: &[u64]) -> Result<HashMap<u64, Vec<f32>>, IndexError> {
        let index = self.tenant(tenant).await?;
        let index = index.read().await;
        Ok(keys.iter().filter_map(|key| index.vectors.get(*key).map(|v| (*key, v))).collect())
    }

    /// Applies what the change log holds beyond what was applied, if this
    /// process wrote chunks or the last check is older than a moment.
    pub async fn refresh(&self) -> Result<(), IndexError> {
        let stale = self.last_sync.lock().map(|t| t.elapsed() >= FRESHNESS).unwrap_or(true);
        if stale || self.dirty.load(Ordering::Acquire) {
            self.sync().await?;
        }
        Ok(())
    }

    /// Applies every change log entry beyond the cursor to the tenants
    /// loaded (the others catch up when loaded).
    pub async fn sync(&self) -> Result<(), IndexError> {
        let mut cursor = self.cursor.lock().await;
        self.dirty.store(false, Ordering::Release);
        let mut changes = Vec::new();
        loop {
            let page = self.store.chunks().changes_after(*cursor, LOG_PAGE).await?;
            let Some(last) = page.last() else { break };
            *cursor = last.seq;
            changes.extend(page);
        }
        if let Ok(mut at) = self.last_sync.lock() {
            *at = Instant::now();
        }
        if changes.is_empty() {
            return Ok(());
        }
        let mut by_tenant: HashMap<TenantId, Vec<ChunkChange>> = HashMap::new();
        for change in changes {
            by_tenant.entry(change.tenant_id).or_default().push(change);
        }
        let loaded = self.tenants.read().await.clone();
        for (tenant, changes) in by_tenant {
            if let Some(index) = loaded.get(&tenant) {
                let mut index = index.write().await;
                self.apply(tenant, &mut index, &changes).await?;
            }
        }
        Ok(())
    }

    /// Writes every tenant's vector snapshot that is behind its indexes.
    pub async fn persist(&self) -> Result<(), IndexError> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let loaded = self.tenants.read().await.clone();
        for (tenant, index) in loaded {
            let index = index.read().await;
            if index.saved_seq == index.applied_seq {
                continue;
            }
            let folder = dir.join(tenant.to_string());
            let applied_seq = index.applied_seq;
            let dimension = self.dimension;
            // Saving is blocking file work; the read lock keeps writers out
            // (searches go on) so the snapshot is exactly `applied_seq`.
            tokio::task::block_in_place(|| {
                save_snapshot(&folder, &index.vectors, SnapshotInfo { applied_seq, dimension })
            })?;
            drop(index);
            if let Some(index) = self.tenants.read().await.get(&tenant) {
                index.write().await.saved_seq = applied_seq;
            }
        }
        Ok(())
    }

    /// Loads a tenant's indexes from disk, replays the log entries they
    /// lack up to `cursor`, and rebuilds either from the store if it is
    /// unreadable or does not match the store.
    async fn load(&self, tenant: TenantId, cursor: i64) -> Result<TenantIndex, IndexError> {
        let folder = self.dir.as_ref().map(|d| d.join(tenant.to_string()));
        let (vectors, vector_seq) = match &folder {
            Some(folder) => match load_snapshot(folder, self.dimension, self.params) {
                Ok(Some(loaded)) => loaded,
                Ok(None) => (HnswIndex::new(self.dimension, self.params)?, 0),
                Err(reason) => {
                    tracing::warn!(%tenant, %reason, "vector index unreadable; rebuilding it from the store");
                    (HnswIndex::new(self.dimension, self.params)?, 0)
                }
            },
            None => (HnswIndex::new(self.dimension, self.params)?, 0),
        };
        let keywords = match &folder {
            Some(folder) => open_keywords(&folder.join("keywords"))?,
            None => KeywordIndex::in_memory()?,
        };
        let keyword_seq = keywords.applied_seq() as i64;
        let documents = self.store.chunks().keys_of_tenant(tenant).await?;
        let mut index = TenantIndex {
            vectors,
            keywords,
            documents: HashMap::new(),
            applied_seq: vector_seq.min(keyword_seq),
            saved_seq: vector_seq,
        };
        let from = index.applied_seq;
        // A snapshot ahead of the store's log belongs to another database.
        if from == 0 || vector_seq.max(keyword_seq) > cursor {
            self.rebuild(tenant, &mut index, cursor).await?;
        } else {
            let mut replay = Vec::new();
            let mut after = from;
            loop {
                let page = self.store.chunks().tenant_changes_after(tenant, after, LOG_PAGE).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                replay.extend(page.into_iter().filter(|c| c.seq <= cursor));
            }
            self.apply(tenant, &mut index, &replay).await?;
            index.applied_seq = cursor;
            let expected = documents.len();
            if index.vectors.len() != expected || index.keywords.len() as usize != expected {
                tracing::warn!(
                    %tenant,
                    vectors = index.vectors.len(),
                    keywords = index.keywords.len(),
                    chunks = expected,
                    "indexes disagree with the store; rebuilding them"
                );
                self.rebuild(tenant, &mut index, cursor).await?;
            }
        }
        index.documents = documents.into_iter().map(|(chunk, doc)| (chunk.key(), doc)).collect();
        Ok(index)
    }

    /// Empties a tenant's indexes and fills them from the store's chunks.
    async fn rebuild(&self, tenant: TenantId, index: &mut TenantIndex, cursor: i64) -> Result<(), IndexError> {
        index.vectors = HnswIndex::new(self.dimension, self.params)?;
        index.keywords.delete_all()?;
        index.documents.clear();
        let mut after = ChunkId(0);
        loop {
            let page = self.store.chunks().indexable_page(tenant, after, FETCH_PAGE as i64).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            add_chunks(index, &page)?;
        }
        index.keywords.commit(cursor as u64)?;
        index.applied_seq = cursor;
        index.saved_seq = 0;
        Ok(())
    }

    /// Applies log entries (in order) to one tenant's indexes, then commits
    /// the keyword index.
    async fn apply(
        &self,
        tenant: TenantId,
        index: &mut TenantIndex,
        changes: &[ChunkChange],
    ) -> Result<(), IndexError> {
        let Some(last) = changes.last() else { return Ok(()) };
        // Only the last entry of each chunk matters.
        let mut final_op: HashMap<ChunkId, bool> = HashMap::new();
        for change in changes.iter().filter(|c| c.seq > index.applied_seq) {
            final_op.insert(change.chunk, change.added);
        }
        let removed: Vec<u64> = final_op.iter().filter(|(_, added)| !**added).map(|(c, _)| c.key()).collect();
        let mut added: Vec<ChunkId> = final_op.iter().filter(|(_, added)| **added).map(|(c, _)| *c).collect();
        added.sort_unstable();
        for key in &removed {
            index.vectors.remove(*key)?;
            index.documents.remove(key);
        }
        index.keywords.delete(&removed)?;
        for batch in added.chunks(FETCH_PAGE) {
            // A chunk added and since deleted is no longer in the store;
            // its removal is further on in the log.
            let chunks = self.store.chunks().indexable(tenant, batch).await?;
            add_chunks(index, &chunks)?;
        }
        index.keywords.commit(last.seq.max(index.applied_seq) as u64)?;
        index.applied_seq = last.seq.max(index.applied_seq);
        let (live, retired) = (index.vectors.len(), index.vectors.retired());
        if worth_compacting(live, retired) {
            // Searches of this tenant wait meanwhile (the write lock is
            // held): about a second per 10,000 vectors, once per as many
            // replacements as there are live vectors.
            let started = Instant::now();
            index.vectors.compact()?;
            tracing::info!(%tenant, live, retired, elapsed_ms = started.elapsed().as_millis() as u64, "vector index compacted");
        }
        Ok(())
    }
}

/// Fewer retired nodes than this are never worth a rebuild.
const COMPACT_MIN_RETIRED: usize = 64;

/// Whether the nodes that removals and replacements left behind are worth
/// rebuilding the graph for: once they outnumber the live vectors, searches
/// spend more time walking dead nodes than the rebuild costs.
fn worth_compacting(live: usize, retired: usize) -> bool {
    retired >= COMPACT_MIN_RETIRED && retired >= live
}

fn add_chunks(index: &mut TenantIndex, chunks: &[IndexableChunk]) -> Result<(), IndexError> {
    let documents: Vec<String> = chunks.iter().map(|c| c.document_id.to_string()).collect();
    let docs: Vec<KeywordDoc<'_>> = chunks
        .iter()
        .zip(&documents)
        .map(|(c, document_id)| KeywordDoc {
            key: c.id.key(),
            document_id,
            title: &c.title,
            heading_path: &c.heading_path,
            text: &c.text,
        })
        .collect();
    index.keywords.upsert(&docs)?;
    for chunk in chunks {
        index.vectors.insert(chunk.id.key(), &chunk.embedding)?;
        index.documents.insert(chunk.id.key(), chunk.document_id);
    }
    Ok(())
}

fn open_keywords(dir: &Path) -> Result<KeywordIndex, IndexError> {
    match KeywordIndex::open(dir) {
        Ok(index) => Ok(index),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "keyword index unreadable; rebuilding it from the store");
            std::fs::remove_dir_all(dir).map_err(|source| IndexError::Io { path: dir.to_owned(), source })?;
            Ok(KeywordIndex::open(dir)?)
        }
    }
}

const SNAPSHOT: &str = "vectors.hnsw";
const SNAPSHOT_INFO: &str = "vectors.json";

/// The vector snapshot in `folder`, if there is one that fits.
fn load_snapshot(folder: &Path, dimension: usize, params: HnswParams) -> Result<Option<(HnswIndex, i64)>, String> {
    let info_path = folder.join(SNAPSHOT_INFO);
    let info = match std::fs::read(&info_path) {
        Ok(bytes) => {
            serde_json::from_slice::<SnapshotInfo>(&bytes).map_err(|e| format!("{}: {e}", info_path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", info_path.display())),
    };
    if info.dimension != dimension {
        return Err(format!("snapshot holds {}-dimensional vectors, the model makes {dimension}", info.dimension));
    }
    let index = HnswIndex::load(folder.join(SNAPSHOT), params).map_err(|e| e.to_string())?;
    Ok(Some((index, info.applied_seq)))
}

/// Writes the vector snapshot, then the note of how far it goes. A crash
/// between the two leaves an older note beside a newer snapshot, which
/// only makes the next start replay entries the snapshot already has
/// (applying an entry twice changes nothing).
fn save_snapshot(folder: &Path, vectors: &HnswIndex, info: SnapshotInfo) -> Result<(), IndexError> {
    let io = |source| IndexError::Io { path: folder.to_owned(), source };
    std::fs::create_dir_all(folder).map_err(io)?;
    vectors.save(folder.join(SNAPSHOT))?;
    let bytes = serde_json::to_vec(&info).unwrap_or_default();
    let tmp = folder.join(format!("{SNAPSHOT_INFO}.tmp"));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io)?;
    std::fs::rename(&tmp, folder.join(SNAPSHOT_INFO)).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_waits_for_dead_nodes_to_outnumber_live_ones() {
        assert!(!worth_compacting(0, 0));
        assert!(!worth_compacting(0, COMPACT_MIN_RETIRED - 1));
        assert!(worth_compacting(0, COMPACT_MIN_RETIRED));
        assert!(!worth_compacting(10_000, 9_999));
        assert!(worth_compacting(10_000, 10_000));
    }
}
