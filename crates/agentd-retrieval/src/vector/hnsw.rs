//! The approximate index: an HNSW graph, the embedded default for vectors.
//!
//! The graph is agentd's own ([`graph`](super::graph)), chosen by
//! measurement over usearch (C++) and FAISS's `IndexHNSWFlat`: on GloVe
//! vectors it answers more queries a second than either at the same recall
//! and builds faster (`bench/README.md` has the figures). `hnsw_rs`, the
//! other pure-Rust candidate, cannot delete and was ten times slower to
//! build and to search. Vectors are stored normalised and compared by inner
//! product, which on unit vectors is the cosine similarity.
//!
//! This type maps keys to the graph's slots and decides what runs at once:
//!
//! - Inserts, removals and searches share a read lock and run in parallel
//!   (the graph is built for that); growing the arrays, saving and changing
//!   parameters take the write lock.
//! - An upsert writes the new vector to a fresh slot, links it, and then,
//!   under the key map's mutex, retires the old slot and makes the new one
//!   visible: a search sees the old vector or the new one, never both.
//! - A lock per stripe of keys keeps two upserts or removals of one key
//!   from interleaving.
//! - A removed vector's node stays in the graph as a waypoint; its slot is
//!   not reused. [`HnswIndex::compact`] rebuilds the graph without them
//!   (the indexes of a tenant do so once they outnumber the live vectors).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use super::file::{self, ENGINE_HNSW, Header};
use super::graph::{Graph, Shape};
use super::{VectorError, VectorHit, VectorIndex, VectorKey, unit};

/// The HNSW graph's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Neighbours kept per node on the upper layers ("M"); layer 0 keeps
    /// twice as many. More gives better recall for more memory and slower
    /// inserts.
    pub connectivity: usize,
    /// Candidates considered while linking a new vector ("efConstruction").
    pub expansion_add: usize,
    /// Candidates considered while searching ("ef"); at least `k` are
    /// always considered. Higher is slower and more accurate.
    pub expansion_search: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams { connectivity: 16, expansion_add: 128, expansion_search: 64 }
    }
}

impl HnswParams {
    fn check(&self) -> Result<(), VectorError> {
        if !(2..=1024).contains(&self.connectivity) {
            return Err(VectorError::InvalidParams(format!(
                "connectivity must be between 2 and 1024, not {}",
                self.connectivity
            )));
        }
        if self.expansion_add == 0 || self.expansion_search == 0 {
            return Err(VectorError::InvalidParams("expansion values must be at least 1".into()));
        }
        Ok(())
    }
}

/// Stripes of the key space, each with a lock held across an upsert or removal.
const KEY_STRIPES: usize = 64;
/// The capacity reserved when the first vector arrives.
const MIN_CAPACITY: usize = 1024;
/// Largest dimension accepted (and believed when reading a file).
const MAX_DIMENSION: usize = 1 << 16;

/// An approximate [`VectorIndex`] on an HNSW graph, safe to share between
/// threads; see the module documentation for what runs in parallel.
pub struct HnswIndex {
    dimension: usize,
    expansion_search: AtomicUsize,
    graph: RwLock<Graph>,
    /// The slot of each present key.
    slots: Mutex<HashMap<VectorKey, u32>>,
    key_stripes: Box<[Mutex<()>]>,
}

impl HnswIndex {
    /// An empty index of `dimension`-dimensional vectors.
    pub fn new(dimension: usize, params: HnswParams) -> Result<Self, VectorError> {
        params.check()?;
        if dimension == 0 || dimension > MAX_DIMENSION {
            return Err(VectorError::InvalidParams(format!(
                "the dimension must be between 1 and {MAX_DIMENSION}, not {dimension}"
            )));
        }
        let shape = Shape { dimension, connectivity: params.connectivity, expansion_add: params.expansion_add };
        Ok(Self::around(Graph::new(shape, 0), HashMap::new(), params.expansion_search))
    }

    fn around(graph: Graph, slots: HashMap<VectorKey, u32>, expansion_search: usize) -> Self {
        HnswIndex {
            dimension: graph.shape().dimension,
            expansion_search: AtomicUsize::new(expansion_search),
            graph: RwLock::new(graph),
            slots: Mutex::new(slots),
            key_stripes: (0..KEY_STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Reads an index [`save`](Self::save) wrote. The file decides the
    /// dimension and the connectivity; `params` gives the expansion values.
    ///
    /// A truncated, damaged or foreign file is [`VectorError::Corrupt`]:
    /// rebuild the index from the vectors kept elsewhere.
    pub fn load(path: impl AsRef<Path>, params: HnswParams) -> Result<Self, VectorError> {
        params.check()?;
        let path = path.as_ref();
        let corrupt = |reason: String| VectorError::corrupt(path, reason);
        let (header, payload) = file::load(path)?;
        if header.engine != ENGINE_HNSW {
            return Err(corrupt(format!("written by index engine {}, not HNSW", header.engine)));
        }
        let graph = Graph::from_bytes(&payload, params.expansion_add).map_err(corrupt)?;
        if graph.shape().dimension as u64 != header.dimension {
            return Err(corrupt("the envelope and the graph disagree on the dimension".into()));
        }
        let mut slots = HashMap::with_capacity(header.count as usize);
        for slot in 0..graph.allocated() as u32 {
            if !graph.is_removed(slot) && slots.insert(graph.key(slot), slot).is_some() {
                return Err(corrupt(format!("key {} is stored twice", graph.key(slot))));
            }
        }
        if slots.len() as u64 != header.count {
            return Err(corrupt(format!("{} vectors where the envelope counts {}", slots.len(), header.count)));
        }
        Ok(Self::around(graph, slots, params.expansion_search))
    }

    /// Writes the index to `path` so that a crash leaves either the old file
    /// or the new one (temporary file, flush, rename, flush of the folder).
    /// Inserts and searches wait while the index is serialised (a second or
    /// so a million vectors), not while it is written out.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), VectorError> {
        let (header, payload) = {
            let graph = self.graph.write().unwrap_or_else(PoisonError::into_inner);
            let count = self.lock_slots().len() as u64;
            let header = Header { engine: ENGINE_HNSW, dimension: self.dimension as u64, count };
            (header, graph.to_bytes())
        };
        file::save(path.as_ref(), &header, &payload)
    }

    /// Rebuilds the graph from the present vectors, dropping the nodes
    /// that removals and upserts left behind. Everything else waits
    /// meanwhile; worth it once many vectors have been removed.
    pub fn compact(&self) -> Result<(), VectorError> {
        let mut graph = self.graph.write().unwrap_or_else(PoisonError::into_inner);
        let mut slots = self.lock_slots();
        let fresh = Graph::new(graph.shape(), slots.len().max(1));
        let mut moved = HashMap::with_capacity(slots.len());
        let mut present: Vec<(VectorKey, u32)> = slots.iter().map(|(&key, &slot)| (key, slot)).collect();
        present.sort_unstable_by_key(|&(_, slot)| slot);
        for (key, old) in present {
            let slot = fresh.allocate().expect("capacity for every present vector");
            fresh.insert(slot, key, graph.vector(old));
            fresh.set_removed(slot, false);
            moved.insert(key, slot);
        }
        *graph = fresh;
        *slots = moved;
        Ok(())
    }

    /// Nodes that removals and upserts left in the graph: searches still
    /// walk through them and memory still holds them until [`Self::compact`].
    pub fn retired(&self) -> usize {
        let graph = self.read();
        let slots = self.lock_slots();
        graph.allocated().saturating_sub(slots.len())
    }

    /// Changes how many candidates a search considers ("ef").
    pub fn set_expansion_search(&self, expansion: usize) {
        self.expansion_search.store(expansion.max(1), Ordering::Relaxed);
    }

    /// How many candidates a search considers ("ef").
    pub fn expansion_search(&self) -> usize {
        self.expansion_search.load(Ordering::Relaxed)
    }

    /// The graph's connectivity ("M").
    pub fn connectivity(&self) -> usize {
        self.read().shape().connectivity
    }

    /// Makes room for `capacity` vectors in all, so a bulk load does not
    /// grow the index step by step.
    pub fn reserve(&self, capacity: usize) -> Result<(), VectorError> {
        self.graph.write().unwrap_or_else(PoisonError::into_inner).grow(capacity);
        Ok(())
    }

    /// Bytes held by the graph, the vectors and the key map.
    pub fn memory_usage(&self) -> usize {
        let graph = self.read();
        let slots = self.lock_slots();
        graph.memory_usage() + slots.capacity() * (std::mem::size_of::<(VectorKey, u32)>() + 1)
    }

    /// The SIMD instruction set the distance loops use on this CPU.
    pub fn hardware_acceleration(&self) -> &'static str {
        self.read().isa().name()
    }

    fn read(&self) -> RwLockReadGuard<'_, Graph> {
        self.graph.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_slots(&self) -> MutexGuard<'_, HashMap<VectorKey, u32>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn key_stripe(&self, key: VectorKey) -> MutexGuard<'_, ()> {
        let stripe = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % KEY_STRIPES;
        self.key_stripes[stripe].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl VectorIndex for HnswIndex {
    fn dimension(&self) -> usize {
        self.dimension
    }

    fn len(&self) -> usize {
        self.lock_slots().len()
    }

    fn contains(&self, key: VectorKey) -> bool {
        self.lock_slots().contains_key(&key)
    }

    fn insert(&self, key: VectorKey, vector: &[f32]) -> Result<(), VectorError> {
        let unit = unit::normalized(vector, self.dimension)?;
        let _stripe = self.key_stripe(key);
        loop {
            let graph = self.read();
            let Some(slot) = graph.allocate() else {
                drop(graph);
                let mut graph = self.graph.write().unwrap_or_else(PoisonError::into_inner);
                if graph.allocated() >= graph.capacity() {
                    let capacity = (graph.capacity() * 2).max(MIN_CAPACITY);
                    graph.grow(capacity);
                }
                continue;
            };
            graph.insert(slot, key, &unit);
            let mut slots = self.lock_slots();
            if let Some(old) = slots.insert(key, slot) {
                graph.set_removed(old, true);
            }
            graph.set_removed(slot, false);
            return Ok(());
        }
    }

    fn remove(&self, key: VectorKey) -> Result<bool, VectorError> {
        let _stripe = self.key_stripe(key);
        let graph = self.read();
        let removed = self.lock_slots().remove(&key);
        if let Some(slot) = removed {
            graph.set_removed(slot, true);
        }
        Ok(removed.is_some())
    }

    fn get(&self, key: VectorKey) -> Option<Vec<f32>> {
        let graph = self.read();
        let slot = *self.lock_slots().get(&key)?;
        Some(graph.vector(slot).to_vec())
    }

    /// Approximate: a search considers `max(k, ef)` candidates. With a
    /// filter, vectors that fail it are still walked through but not
    /// returned; when fewer than `k` pass among the candidates, the search
    /// is repeated with eight times as many, up to the whole graph, so a
    /// narrow filter still gets `k` hits when `k` exist.
    fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&(dyn Fn(VectorKey) -> bool + Sync)>,
    ) -> Result<Vec<VectorHit>, VectorError> {
        let query = unit::normalized(query, self.dimension)?;
        let graph = self.read();
        let wanted = k.min(self.len());
        if wanted == 0 {
            return Ok(Vec::new());
        }
        let mut expansion = self.expansion_search();
        let found = match filter {
            None => graph.search(&query, wanted, expansion, &|slot| !graph.is_removed(slot)),
            Some(keep) => {
                let accept = |slot| !graph.is_removed(slot) && keep(graph.key(slot));
                let reach = graph.allocated();
                loop {
                    let found = graph.search(&query, wanted, expansion, &accept);
                    if found.len() >= wanted || expansion >= reach {
                        break found;
                    }
                    expansion = expansion.saturating_mul(8).min(reach);
                }
            }
        };
        Ok(found.into_iter().map(|near| VectorHit { key: graph.key(near.slot), score: -near.distance }).collect())
    }
}
