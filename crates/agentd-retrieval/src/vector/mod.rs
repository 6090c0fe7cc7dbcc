//! Vector search: the nearest stored vectors to a query by cosine similarity.
//!
//! [`VectorIndex`] is the seam: the agent retrieves through it without
//! knowing which index answers. Two live here: [`HnswIndex`], the
//! approximate graph index that is the embedded default, and
//! [`ExactIndex`], a scan of every vector, which is exact and serves small
//! sets and tests. Both take vectors of any length (not only unit vectors),
//! store them normalised, and refuse wrong dimensions, NaN, infinities and
//! the zero vector with a [`VectorError`].
//!
//! Keys are the caller's ids (chunk ids); an index maps each key to one
//! vector, and inserting a key again replaces its vector.

mod error;
mod exact;
mod file;
mod graph;
mod hnsw;
mod top;
mod unit;

pub use error::VectorError;
pub use exact::ExactIndex;
pub use hnsw::{HnswIndex, HnswParams};

/// The caller's id for a stored vector.
pub type VectorKey = u64;

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VectorHit {
    pub key: VectorKey,
    /// Cosine similarity to the query, in [-1, 1]; higher is closer.
    pub score: f32,
}

/// A store of vectors searched by cosine similarity. Implementations are
/// shared between threads: every method takes `&self`.
pub trait VectorIndex: Send + Sync {
    /// The length every vector and query must have.
    fn dimension(&self) -> usize;

    /// How many vectors are stored.
    fn len(&self) -> usize;

    /// Whether no vector is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a vector is stored under `key`.
    fn contains(&self, key: VectorKey) -> bool;

    /// Stores `vector` under `key`, replacing the vector stored there before.
    fn insert(&self, key: VectorKey, vector: &[f32]) -> Result<(), VectorError>;

    /// Removes the vector stored under `key`; `false` when there was none.
    fn remove(&self, key: VectorKey) -> Result<bool, VectorError>;

    /// The vector stored under `key`, normalised to length one.
    fn get(&self, key: VectorKey) -> Option<Vec<f32>>;

    /// The (at most) `k` stored vectors most similar to `query`, best first.
    /// With a `filter`, only keys for which it returns `true` are returned,
    /// and the `k` best of those are looked for.
    fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&(dyn Fn(VectorKey) -> bool + Sync)>,
    ) -> Result<Vec<VectorHit>, VectorError>;
}
