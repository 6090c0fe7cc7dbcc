//! agentd-store: everything agentd keeps, and the bus its nodes share.
//!
//! Two halves live here because both are "state outside the process" and both
//! come in an embedded flavour and a scale-out flavour:
//!
//! * the relational store ([`Store`]): SQLite under the data directory by
//!   default, PostgreSQL when a `postgres://` URL is configured. The same
//!   repository functions run on both; where the SQL dialects differ the
//!   function holds one string per backend.
//! * the bus ([`Bus`]): cache and rate limits, in-process by default and on
//!   Redis when a `redis://` URL is configured, so that many stateless API
//!   nodes share one view.
//!
//! Every repository function that reads tenant data takes a [`TenantId`]:
//! isolation is enforced here, once, rather than in each caller.

pub mod bus;
mod clock;
mod db;
mod error;
mod ids;
mod knowledge;
#[cfg(feature = "openapi")]
pub mod openapi;
mod records;
mod repos;
pub mod strict_json;
#[cfg(feature = "testing")]
pub mod testing;

pub use bus::{Bus, BusError, Cache, RateDecision, RateLimiter, RateQuota};
pub use clock::{Clock, ManualClock, SystemClock};
pub use db::{DatabaseTarget, PoolStats, Store, redact_url};
pub use error::StoreError;
pub use ids::{ApiKeyId, AuditId, ChunkId, DocumentId, JobId, MessageId, SessionId, TenantId, UserId};
pub use knowledge::{
    AddedDocument, ChunkChange, Document, DocumentReplacement, DocumentStatus, IndexableChunk, Job, JobStatus,
    NewChunk, NewDocument, NewJob, StoredChunk, vector_from_bytes, vector_to_bytes,
};
pub use records::{
    ApiKey, AuditEntry, Message, MessageRole, NewApiKey, NewAuditEntry, NewMessage, NewSession, NewUser, Page, Role,
    Session, Tenant, User,
};
pub use repos::{
    ApiKeys, Audit, BlockPrints, ChunkReplacement, Chunks, Documents, EmbeddingCache, Jobs, Sessions, Tenants, Users,
    Vectors, content_hash,
};
