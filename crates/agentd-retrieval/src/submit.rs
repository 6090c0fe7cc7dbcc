//! Taking documents in: uploads become stored documents and one job.
//!
//! The HTTP API and `agentd ingest` both come through here, so both apply
//! the same rules: a file too large is refused before anything is stored;
//! a file whose format is unknown, or that is empty, is stored as a failed
//! document with the reason (the rest of the batch goes on); bytes the
//! tenant already has are the existing document (nothing is embedded
//! again); everything else is queued under a single job.

use agentd_store::{
    Document, DocumentId, DocumentReplacement, DocumentStatus, Job, NewDocument, Store, StoreError, TenantId,
};
use serde::Serialize;

use crate::parse::Format;
use crate::worker::{IngestQueue, JobDocument};

/// One file or text to ingest.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The title; defaults to the file name.
    pub title: Option<String>,
    /// The file's name or path, used to detect the format.
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    /// The format, when the caller knows it (text sent as JSON is
    /// Markdown); otherwise detected from the name, type and bytes.
    pub format: Option<Format>,
    pub metadata: serde_json::Value,
    pub bytes: Vec<u8>,
}

impl Upload {
    /// A file's bytes titled `title`, its format detected from `file_name`
    /// and the bytes, with no metadata.
    pub fn file(title: impl Into<String>, file_name: impl Into<String>, bytes: Vec<u8>) -> Upload {
        Upload {
            title: Some(title.into()),
            file_name: Some(file_name.into()),
            content_type: None,
            format: None,
            metadata: serde_json::json!({}),
            bytes,
        }
    }
}

/// A submitted document and whether it was already there.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubmittedDocument {
    #[serde(flatten)]
    pub document: Document,
    /// The tenant already had these bytes; this is that document.
    pub duplicate: bool,
}

/// What a submission stored and queued.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Submission {
    pub documents: Vec<SubmittedDocument>,
    /// The job ingesting the new documents; absent when nothing needed
    /// ingesting (all duplicates or failed).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub job_id: Option<agentd_store::JobId>,
}

/// Why a submission was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// A document is over the size limit; nothing was stored.
    #[error("{name} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { name: String, size: usize, limit: usize },
    /// The request is wrong; nothing was stored.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores uploads and queues their ingestion.
#[derive(Clone)]
pub struct Submitter {
    store: Store,
    queue: IngestQueue,
    max_document_bytes: usize,
}

impl Submitter {
    pub fn new(store: Store, queue: IngestQueue, max_document_bytes: usize) -> Self {
        Submitter { store, queue, max_document_bytes }
    }

    /// The largest document accepted, in bytes.
    pub fn max_document_bytes(&self) -> usize {
        self.max_document_bytes
    }

    /// Stores `uploads` for `tenant` and queues one job for the new ones.
    pub async fn submit(&self, tenant: TenantId, uploads: Vec<Upload>) -> Result<Submission, SubmitError> {
        if uploads.is_empty() {
            return Err(SubmitError::Invalid("no documents given".into()));
        }
        for upload in &uploads {
            self.check(upload)?;
        }
        let mut documents = Vec::with_capacity(uploads.len());
        let mut queued = Vec::new();
        for upload in uploads {
            let (format, failure) = classify(&upload);
            let title = title_of(&upload);
            let added = self
                .store
                .documents()
                .add(NewDocument {
                    tenant_id: tenant,
                    title,
                    source: upload.file_name.clone(),
                    format: format.map(|f| f.name().to_string()),
                    content_type: upload.content_type.clone(),
                    metadata: upload.metadata,
                    bytes: upload.bytes,
                    failure,
                })
                .await?;
            if !added.duplicate && added.document.status == DocumentStatus::Queued {
                queued.push(JobDocument { id: added.document.id, version: added.document.version });
            }
            documents.push(added);
        }
        let job = self.enqueue(tenant, queued).await?;
        let job_id = job.as_ref().map(|j| j.id);
        let documents = documents
            .into_iter()
            .map(|added| {
                let mut document = added.document;
                if job_id.is_some() && !added.duplicate && document.status == DocumentStatus::Queued {
                    document.job_id = job_id;
                }
                SubmittedDocument { document, duplicate: added.duplicate }
            })
            .collect();
        Ok(Submission { documents, job_id })
    }

    /// Replaces a document's content with `upload` and queues it again.
    pub async fn replace(&self, tenant: TenantId, id: DocumentId, upload: Upload) -> Result<Submission, SubmitError> {
        self.check(&upload)?;
        let (format, failure) = classify(&upload);
        let metadata = (!upload.metadata.as_object().is_some_and(|m| m.is_empty()) && !upload.metadata.is_null())
            .then_some(upload.metadata.clone());
        let document = self
            .store
            .documents()
            .replace(
                tenant,
                id,
                DocumentReplacement {
                    title: upload.title.clone().or_else(|| upload.file_name.clone()),
                    source: upload.file_name.clone(),
                    format: format.map(|f| f.name().to_string()),
                    content_type: upload.content_type.clone(),
                    metadata,
                    bytes: upload.bytes,
                    failure,
                },
            )
            .await?;
        let mut job_id = None;
        let mut document = document;
        if document.status == DocumentStatus::Queued {
            let job = self.enqueue(tenant, vec![JobDocument { id, version: document.version }]).await?;
            job_id = job.map(|j| j.id);
            document.job_id = job_id;
        }
        Ok(Submission { documents: vec![SubmittedDocument { document, duplicate: false }], job_id })
    }

    fn check(&self, upload: &Upload) -> Result<(), SubmitError> {
        if upload.bytes.len() > self.max_document_bytes {
            return Err(SubmitError::TooLarge {
                name: upload
                    .file_name
                    .clone()
                    .or_else(|| upload.title.clone())
                    .unwrap_or_else(|| "the document".into()),
                size: upload.bytes.len(),
                limit: self.max_document_bytes,
            });
        }
        if !upload.metadata.is_object() && !upload.metadata.is_null() {
            return Err(SubmitError::Invalid("metadata must be a JSON object".into()));
        }
        Ok(())
    }

    async fn enqueue(&self, tenant: TenantId, documents: Vec<JobDocument>) -> Result<Option<Job>, StoreError> {
        if documents.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.queue.enqueue(tenant, documents).await?))
    }
}

/// The upload's format, or why it cannot be ingested.
fn classify(upload: &Upload) -> (Option<Format>, Option<String>) {
    if upload.bytes.is_empty() {
        return (None, Some("the file is empty".into()));
    }
    if let Some(format) = upload.format {
        return (Some(format), None);
    }
    let name = upload.file_name.as_deref().unwrap_or("");
    match Format::detect(name, upload.content_type.as_deref(), &upload.bytes) {
        Some(format) => (Some(format), None),
        None => {
            let what = if name.is_empty() { "the document".to_string() } else { name.to_string() };
            (None, Some(format!("unsupported format: {what} is not text, Markdown, HTML, PDF, code, JSON or CSV")))
        }
    }
}

fn title_of(upload: &Upload) -> String {
    upload
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| upload.file_name.clone())
        .unwrap_or_else(|| "untitled".into())
}
