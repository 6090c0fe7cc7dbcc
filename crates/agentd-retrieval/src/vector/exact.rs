//! Brute-force search: every stored vector is compared with the query.
//!
//! It is exact, so tests and benchmarks measure the approximate index
//! against it, and it is the right index for small sets (a few thousand
//! vectors, or the candidates a filter leaves), where a graph would cost
//! more to build than the scan it saves. The unit vectors lie in one
//! contiguous array, row after row, so a scan streams through memory and the
//! dot products run as SIMD code ([`unit::dot_rows`]).

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use super::top::TopHits;
use super::{VectorError, VectorHit, VectorIndex, VectorKey, unit};

/// Rows scored at a time: 256 rows of 384 dimensions fill 384 KiB, so a
/// block stays in the L2 cache while the queries of a batch pass over it.
const BLOCK_ROWS: usize = 256;

/// An exact [`VectorIndex`] that scans every vector.
pub struct ExactIndex {
    dimension: usize,
    rows: RwLock<Rows>,
}

#[derive(Default)]
struct Rows {
    keys: Vec<VectorKey>,
    /// `keys.len() * dimension` values: the unit vector of `keys[i]` at `i * dimension`.
    values: Vec<f32>,
    slot_of: HashMap<VectorKey, usize>,
}

impl ExactIndex {
    /// An empty index of `dimension`-dimensional vectors.
    pub fn new(dimension: usize) -> Result<Self, VectorError> {
        if dimension == 0 {
            return Err(VectorError::InvalidParams("the dimension must be at least 1".into()));
        }
        Ok(ExactIndex { dimension, rows: RwLock::default() })
    }

    /// Makes room for `additional` more vectors.
    pub fn reserve(&self, additional: usize) {
        let mut rows = self.rows.write().unwrap_or_else(PoisonError::into_inner);
        rows.keys.reserve(additional);
        rows.values.reserve(additional * self.dimension);
        rows.slot_of.reserve(additional);
    }

    /// The `k` nearest neighbours of each query in `queries` (rows of
    /// [`dimension`](VectorIndex::dimension) values, one after another),
    /// in one pass over the stored vectors: much faster than one
    /// [`search`](VectorIndex::search) per query when there are many.
    pub fn search_batch(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<VectorHit>>, VectorError> {
        if !queries.len().is_multiple_of(self.dimension) {
            return Err(VectorError::DimensionMismatch {
                expected: self.dimension,
                actual: queries.len() % self.dimension,
            });
        }
        let mut units = queries.to_vec();
        for query in units.chunks_exact_mut(self.dimension) {
            unit::normalize(query, self.dimension)?;
        }
        let rows = self.rows.read().unwrap_or_else(PoisonError::into_inner);
        let mut tops: Vec<TopHits> = units.chunks_exact(self.dimension).map(|_| TopHits::new(k)).collect();
        let mut scores = vec![0.0f32; BLOCK_ROWS];
        for (block, keys) in rows.values.chunks(BLOCK_ROWS * self.dimension).zip(rows.keys.chunks(BLOCK_ROWS)) {
            let scores = &mut scores[..keys.len()];
            for (query, top) in units.chunks_exact(self.dimension).zip(tops.iter_mut()) {
                unit::dot_rows(query, block, scores);
                for (&key, &score) in keys.iter().zip(scores.iter()) {
                    if top.admits(score) {
                        top.push(key, score);
                    }
                }
            }
        }
        Ok(tops.into_iter().map(TopHits::into_sorted).collect())
    }
}

impl VectorIndex for ExactIndex {
    fn dimension(&self) -> usize {
        self.dimension
    }

    fn len(&self) -> usize {
        self.rows.read().unwrap_or_else(PoisonError::into_inner).keys.len()
    }

    fn contains(&self, key: VectorKey) -> bool {
        self.rows.read().unwrap_or_else(PoisonError::into_inner).slot_of.contains_key(&key)
    }

    fn insert(&self, key: VectorKey, vector: &[f32]) -> Result<(), VectorError> {
        let unit = unit::normalized(vector, self.dimension)?;
        let mut rows = self.rows.write().unwrap_or_else(PoisonError::into_inner);
        let dimension = self.dimension;
        match rows.slot_of.get(&key) {
            Some(&slot) => rows.values[slot * dimension..(slot + 1) * dimension].copy_from_slice(&unit),
            None => {
                let slot = rows.keys.len();
                rows.keys.push(key);
                rows.values.extend_from_slice(&unit);
                rows.slot_of.insert(key, slot);
            }
        }
        Ok(())
    }

    fn remove(&self, key: VectorKey) -> Result<bool, VectorError> {
        let mut rows = self.rows.write().unwrap_or_else(PoisonError::into_inner);
        let Some(slot) = rows.slot_of.remove(&key) else {
            return Ok(false);
        };
        // Move the last row into the hole, keeping the rows contiguous.
        let last = rows.keys.len() - 1;
        let dimension = self.dimension;
        if slot != last {
            let moved = rows.keys[last];
            rows.keys[slot] = moved;
            rows.values.copy_within(last * dimension.., slot * dimension);
            rows.slot_of.insert(moved, slot);
        }
        rows.keys.truncate(last);
        rows.values.truncate(last * dimension);
        Ok(true)
    }

    fn get(&self, key: VectorKey) -> Option<Vec<f32>> {
        let rows = self.rows.read().unwrap_or_else(PoisonError::into_inner);
        let slot = *rows.slot_of.get(&key)?;
        Some(rows.values[slot * self.dimension..(slot + 1) * self.dimension].to_vec())
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&(dyn Fn(VectorKey) -> bool + Sync)>,
    ) -> Result<Vec<VectorHit>, VectorError> {
        let query = unit::normalized(query, self.dimension)?;
        let rows = self.rows.read().unwrap_or_else(PoisonError::into_inner);
        let mut top = TopHits::new(k.min(rows.keys.len()));
        let mut scores = vec![0.0f32; BLOCK_ROWS];
        for (block, keys) in rows.values.chunks(BLOCK_ROWS * self.dimension).zip(rows.keys.chunks(BLOCK_ROWS)) {
            let scores = &mut scores[..keys.len()];
            unit::dot_rows(&query, block, scores);
            for (&key, &score) in keys.iter().zip(scores.iter()) {
                // The filter is asked only about vectors that would make the cut.
                if top.admits(score) && filter.is_none_or(|keep| keep(key)) {
                    top.push(key, score);
                }
            }
        }
        Ok(top.into_sorted())
    }
}
