//! The one error type of the vector indexes.
//!
//! Callers act on three kinds of failure differently: a bad vector or query
//! (the request is wrong: answer 400), a saved index that cannot be read
//! (rebuild it from the stored chunks), and the disk failing (retry or
//! report). The variants keep those apart, and the messages say
//! what was expected next to what was found.

use std::io;
use std::path::PathBuf;

/// What went wrong in a [`VectorIndex`](super::VectorIndex) operation.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// A vector or query of another length than the index's dimension.
    #[error("the vector has {actual} dimensions but the index holds {expected}-dimensional vectors")]
    DimensionMismatch { expected: usize, actual: usize },

    /// A NaN or an infinity, which no similarity can be computed with.
    #[error("the vector has a non-finite value ({value}) at position {position}")]
    NonFinite { position: usize, value: f32 },

    /// The zero vector has no direction, so its cosine similarity is undefined.
    #[error("the vector is all zeros; cosine similarity is undefined for it")]
    ZeroVector,

    /// Parameters no index can be built with (a zero dimension, a connectivity below 2, ...).
    #[error("invalid vector index parameters: {0}")]
    InvalidParams(String),

    /// Reading or writing an index file failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A saved index that is truncated, damaged or of another format: rebuild it.
    #[error("{path} is not a usable vector index ({reason}); rebuild it from the stored vectors")]
    Corrupt { path: PathBuf, reason: String },
}

impl VectorError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        VectorError::Io { action, path: path.into(), source }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        VectorError::Corrupt { path: path.into(), reason: reason.into() }
    }
}
