//! The rows of the knowledge half: documents, their chunks, the chunk change
//! log, and jobs.
//!
//! Kept apart from `records` because these rows have a life cycle of their
//! own: a document goes queued → processing → ready (or failed), its chunks
//! are replaced as one set per version, and every chunk added or removed is
//! written to a change log in commit order, which the search indexes of
//! every node follow.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ChunkId, DocumentId, JobId, TenantId};

/// Where a document is in its ingestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DocumentStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker is parsing, chunking or embedding it.
    Processing,
    /// Its chunks are searchable.
    Ready,
    /// It could not be ingested; `error` says why.
    Failed,
}

impl DocumentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentStatus::Queued => "queued",
            DocumentStatus::Processing => "processing",
            DocumentStatus::Ready => "ready",
            DocumentStatus::Failed => "failed",
        }
    }

    /// Whether ingestion has ended, one way or the other.
    pub fn is_final(self) -> bool {
        matches!(self, DocumentStatus::Ready | DocumentStatus::Failed)
    }
}

impl TryFrom<String> for DocumentStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.as_str() {
            "queued" => Ok(DocumentStatus::Queued),
            "processing" => Ok(DocumentStatus::Processing),
            "ready" => Ok(DocumentStatus::Ready),
            "failed" => Ok(DocumentStatus::Failed),
            other => Err(format!("unknown document status {other:?}")),
        }
    }
}

/// A document as the API shows it (its bytes are kept apart).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Document {
    pub id: DocumentId,
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub title: String,
    /// The file name or path it was uploaded as, if any.
    pub source: Option<String>,
    /// The detected format (`markdown`, `pdf`, `code:rust`, …).
    pub format: Option<String>,
    pub content_type: Option<String>,
    /// SHA-256 of the bytes, hex.
    pub content_hash: String,
    pub byte_size: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: sqlx::types::Json<serde_json::Value>,
    #[sqlx(try_from = "String")]
    pub status: DocumentStatus,
    /// Why ingestion failed.
    pub error: Option<String>,
    /// Starts at 1; each replacement of the content adds one.
    pub version: i64,
    pub chunk_count: i64,
    /// The job that ingests (or last ingested) it.
    pub job_id: Option<JobId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What it takes to add a document.
#[derive(Debug, Clone)]
pub struct NewDocument {
    pub tenant_id: TenantId,
    pub title: String,
    pub source: Option<String>,
    pub format: Option<String>,
    pub content_type: Option<String>,
    pub metadata: serde_json::Value,
    pub bytes: Vec<u8>,
    /// Set when the document is refused before any worker sees it (an
    /// unknown format, say): it is stored as failed with this reason.
    pub failure: Option<String>,
}

/// A new version of a document's content.
#[derive(Debug, Clone)]
pub struct DocumentReplacement {
    pub title: Option<String>,
    pub source: Option<String>,
    pub format: Option<String>,
    pub content_type: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub bytes: Vec<u8>,
    pub failure: Option<String>,
}

/// The outcome of adding a document.
#[derive(Debug, Clone, PartialEq)]
pub struct AddedDocument {
    pub document: Document,
    /// The tenant already had a document with the same bytes; that one is
    /// returned and nothing new was stored.
    pub duplicate: bool,
}

/// A chunk ready to be stored, with its embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChunk {
    pub position: i64,
    pub text: String,
    pub heading_path: Vec<String>,
    pub byte_span: (i64, i64),
    pub char_span: (i64, i64),
    pub tokens: i64,
    pub embedding: Vec<f32>,
}

/// A stored chunk with the title of its document: what a search hit shows.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct StoredChunk {
    pub id: ChunkId,
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub document_id: DocumentId,
    pub title: String,
    pub version: i64,
    pub position: i64,
    pub text: String,
    pub heading_path: sqlx::types::Json<Vec<String>>,
    pub byte_start: i64,
    pub byte_end: i64,
    pub char_start: i64,
    pub char_end: i64,
    pub tokens: i64,
}

/// A chunk as an index needs it: its key, document, words and vector.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexableChunk {
    pub id: ChunkId,
    pub document_id: DocumentId,
    pub title: String,
    pub heading_path: Vec<String>,
    pub text: String,
    pub embedding: Vec<f32>,
}

/// One entry of the chunk change log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkChange {
    /// Commit-ordered position in the log.
    pub seq: i64,
    pub tenant_id: TenantId,
    pub chunk: ChunkId,
    /// Added (true) or removed (false).
    pub added: bool,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum JobStatus {
    /// Waiting to run (first time, or again after a failed attempt).
    Queued,
    /// A worker holds it.
    Running,
    Succeeded,
    /// Failed in a way that retrying cannot mend.
    Failed,
    /// Failed on every allowed attempt.
    Dead,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Dead => "dead",
        }
    }

    /// Whether the job has ended and will not run again.
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed | JobStatus::Dead)
    }
}

impl TryFrom<String> for JobStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.as_str() {
            "queued" => Ok(JobStatus::Queued),
            "running" => Ok(JobStatus::Running),
            "succeeded" => Ok(JobStatus::Succeeded),
            "failed" => Ok(JobStatus::Failed),
            "dead" => Ok(JobStatus::Dead),
            other => Err(format!("unknown job status {other:?}")),
        }
    }
}

/// A job of the durable queue.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Job {
    pub id: JobId,
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub kind: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: sqlx::types::Json<serde_json::Value>,
    #[sqlx(try_from = "String")]
    pub status: JobStatus,
    /// Attempts started so far.
    pub attempts: i64,
    pub max_attempts: i64,
    /// Units of work done and in all (chunks, for ingestion).
    pub progress_done: i64,
    pub progress_total: i64,
    pub last_error: Option<String>,
    #[serde(skip)]
    pub locked_by: Option<String>,
    /// Until when the worker's claim holds (Unix milliseconds): its
    /// heartbeat pushes this forward while the job runs.
    #[serde(skip)]
    pub locked_until_ms: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What it takes to enqueue a job.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub tenant_id: TenantId,
    pub kind: String,
    pub payload: serde_json::Value,
    pub max_attempts: u32,
}

/// Writes a vector as the bytes the store keeps (little-endian `f32`s).
pub fn vector_to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Reads a vector back; `None` if the byte count is not a whole number of
/// `f32`s.
pub fn vector_from_bytes(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_through_bytes() {
        let v = vec![0.5, -1.25, f32::MIN_POSITIVE, 3.0e7];
        assert_eq!(vector_from_bytes(&vector_to_bytes(&v)), Some(v));
        assert_eq!(vector_from_bytes(&[1, 2, 3]), None);
    }
}
