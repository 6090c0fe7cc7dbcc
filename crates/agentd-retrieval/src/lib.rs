//! agentd-retrieval: the knowledge half of agentd.
//!
//! Documents are parsed into structural [`Block`]s (headings, paragraphs,
//! code), cut into [`Chunk`]s sized in the embedding model's tokens, and
//! (next) indexed for vector and keyword search. This crate knows nothing
//! of HTTP or of the SQL of other domains; it is given a way to count
//! tokens rather than a model.

mod chunk;
pub mod parse;

pub use chunk::{Block, BlockKind, Chunk, ChunkOptions, TokenCounter, chunk_blocks};
