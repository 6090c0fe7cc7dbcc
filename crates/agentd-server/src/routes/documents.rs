//! Documents: upload (files or JSON text), list, read, replace, delete; and
//! the jobs that ingest them.
//!
//! An upload answers 202 at once with the documents' ids and the job that
//! ingests them; `GET /v1/documents/{id}` and `GET /v1/jobs/{id}` tell how
//! far it got. A file the server cannot read fails alone, with a reason;
//! a file over the size limit refuses the whole request (413) before
//! anything is stored.

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use agentd_retrieval::parse::Format;
use agentd_retrieval::{Knowledge, Submission, SubmitError, Upload};
use agentd_store::{Document, DocumentId, Job, JobId, Page};

use crate::audit::{self, Event};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::observe::ReqId;
use crate::routes::metadata_object;
use crate::state::AppState;

/// The longest title accepted, in characters.
const MAX_TITLE: usize = 500;

/// A text document sent as JSON.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextDocument {
    /// 1 to 500 characters, not all blank.
    #[schema(
        max_length = 500,
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub title: String,
    /// The text; Markdown headings are kept as structure.
    pub text: String,
    /// Free-form JSON object kept with the document; searches can filter on it.
    #[schema(value_type = Option<agentd_store::openapi::Metadata>)]
    pub metadata: Option<Value>,
}

/// The multipart form of an upload. `POST` may repeat `file` (then without
/// `title`); `files` and `files[]` are read as `file`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // describes the form; `read_uploads` reads its parts
pub struct DocumentForm {
    /// The file; its name is the title unless `title` is given.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// 1 to 500 characters, not all blank.
    #[schema(
        max_length = 500,
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    #[serde(default)]
    title: String,
    /// A JSON object kept with the document.
    #[serde(default)]
    #[schema(value_type = agentd_store::openapi::Metadata)]
    metadata: Value,
}

/// `?limit=&cursor=&metadata=` of the document listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DocumentQuery {
    /// Items per page (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page; empty is the same as none.
    #[param(pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$")]
    pub cursor: Option<String>,
    /// A JSON object: only documents whose metadata has each of its keys with an equal value.
    // Documented as JSON content by `describe_metadata_filter`.
    pub metadata: Option<String>,
}

/// Says in the document that the listing's `metadata` parameter is a JSON
/// object serialized into the query, which `IntoParams` cannot say.
pub(crate) fn describe_metadata_filter(openapi: &mut utoipa::openapi::OpenApi) {
    let Some(list) = openapi.paths.paths.get_mut("/v1/documents").and_then(|item| item.get.as_mut()) else {
        return;
    };
    for parameter in list.parameters.iter_mut().flatten().filter(|p| p.name == "metadata") {
        parameter.schema = None;
        let content = json!({"application/json": {"schema": {"$ref": "#/components/schemas/Metadata"}}});
        parameter.extensions.get_or_insert_with(Default::default).insert("content".into(), content);
    }
}

pub(crate) fn knowledge(state: &AppState) -> Result<&Knowledge, ApiError> {
    state
        .knowledge
        .as_deref()
        .ok_or_else(|| ApiError::unavailable("document ingestion and search are not enabled on this server"))
}

impl From<SubmitError> for ApiError {
    fn from(err: SubmitError) -> Self {
        match err {
            SubmitError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", err.to_string())
            }
            SubmitError::Invalid(message) => ApiError::invalid(message),
            SubmitError::Store(e) => e.into(),
        }
    }
}

fn check_title(title: &str) -> Result<(), ApiError> {
    if title.contains('\0') {
        return Err(ApiError::invalid("title must not contain NUL characters"));
    }
    if title.trim().is_empty() {
        return Err(ApiError::invalid("title must not be empty"));
    }
    if title.chars().count() > MAX_TITLE {
        return Err(ApiError::invalid(format!("title must be at most {MAX_TITLE} characters")));
    }
    Ok(())
}

fn is_multipart(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the upload is larger than this server accepts",
        );
    }
    ApiError::bad_request("invalid_multipart", e.body_text())
}

/// Reads the uploads of a request: multipart files (fields `file` or
/// `files`, with optional `title` and `metadata` fields) or one JSON text
/// document.
async fn read_uploads(state: &AppState, request: Request) -> Result<Vec<Upload>, ApiError> {
    if !is_multipart(&request) {
        let Json(body) = Json::<TextDocument>::from_request(request, state).await?;
        check_title(&body.title)?;
        return Ok(vec![Upload {
            title: Some(body.title),
            file_name: None,
            content_type: Some("text/markdown".into()),
            format: Some(Format::Markdown),
            metadata: metadata_object(body.metadata)?,
            bytes: body.text.into_bytes(),
        }]);
    }
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|e| ApiError::bad_request("invalid_multipart", e.body_text()))?;
    let mut uploads = Vec::new();
    let mut title = None;
    let mut metadata = None;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "file" | "files" | "files[]" => {
                let file_name = field.file_name().map(str::to_string);
                let content_type = field.content_type().map(str::to_string);
                let bytes = field.bytes().await.map_err(multipart_error)?;
                uploads.push(Upload {
                    title: None,
                    file_name: Some(file_name.filter(|n| !n.is_empty()).unwrap_or_else(|| "upload".into())),
                    content_type,
                    format: None,
                    metadata: json!({}),
                    bytes: bytes.to_vec(),
                });
            }
            "title" => title = Some(field.text().await.map_err(multipart_error)?),
            "metadata" => {
                let text = field.text().await.map_err(multipart_error)?;
                let value: Value = serde_json::from_str(&text)
                    .map_err(|e| ApiError::bad_request("malformed_json", format!("metadata is not JSON: {e}")))?;
                if crate::extract::has_nul_escape(text.as_bytes()) {
                    return Err(ApiError::invalid("metadata must not contain NUL characters"));
                }
                metadata = Some(metadata_object(Some(value))?);
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_multipart",
                    format!(
                        "unexpected field {other:?}: send files as \"file\", and optionally \"title\" and \"metadata\""
                    ),
                ));
            }
        }
    }
    if uploads.is_empty() {
        return Err(ApiError::bad_request("invalid_multipart", "no file in the upload (send it as field \"file\")"));
    }
    if let Some(title) = title {
        if uploads.len() > 1 {
            return Err(ApiError::invalid("title applies to a single file; several were sent"));
        }
        check_title(&title)?;
        uploads[0].title = Some(title);
    }
    let metadata = metadata.unwrap_or_else(|| json!({}));
    for upload in &mut uploads {
        upload.metadata = metadata.clone();
    }
    Ok(uploads)
}

/// Upload documents: multipart files, or a JSON `{title, text, metadata}`.
#[utoipa::path(post, path = "/v1/documents", tag = "documents", security(("bearer" = [])),
    request_body(description = "JSON text, or multipart/form-data with fields file (repeatable), title and metadata (a JSON object)",
        content((TextDocument = "application/json"), (DocumentForm = "multipart/form-data"))),
    responses(
        (status = 202, body = Submission, description = "Stored and queued for ingestion"),
        (status = 400, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody),
))]
pub async fn upload_documents(
    State(state): State<AppState>,
    caller: Caller,
    request_id: ReqId,
    request: Request,
) -> Result<(StatusCode, Json<Submission>), ApiError> {
    let knowledge = knowledge(&state)?;
    let uploads = read_uploads(&state, request).await?;
    let submission = knowledge.submit(caller.tenant_id, uploads).await?;
    let ids: Vec<String> = submission.documents.iter().map(|d| d.document.id.to_string()).collect();
    let event = Event { action: "document.upload", target: None, details: json!({ "documents": ids }) };
    audit::by_caller(&state, &caller, &request_id, event).await;
    Ok((StatusCode::ACCEPTED, Json(submission)))
}

/// List documents, newest first, optionally only those with given metadata.
#[utoipa::path(get, path = "/v1/documents", tag = "documents", security(("bearer" = [])), params(DocumentQuery),
    responses((status = 200, body = Page<Document>), (status = 400, body = crate::error::ErrorBody)))]
pub async fn list_documents(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<DocumentQuery>,
) -> Result<Json<Page<Document>>, ApiError> {
    let knowledge = knowledge(&state)?;
    let filter = match &query.metadata {
        None => None,
        Some(text) => {
            let value: Value = serde_json::from_str(text)
                .map_err(|e| ApiError::bad_request("invalid_query", format!("metadata is not JSON: {e}")))?;
            if !value.is_object() {
                return Err(ApiError::bad_request("invalid_query", "metadata must be a JSON object"));
            }
            if crate::extract::has_nul_escape(text.as_bytes()) {
                return Err(ApiError::bad_request("invalid_query", "metadata must not contain NUL characters"));
            }
            Some(value)
        }
    };
    let limit = crate::routes::page_limit(query.limit)?;
    let page = knowledge.documents(caller.tenant_id, filter.as_ref(), limit, query.cursor.as_deref()).await?;
    Ok(Json(page))
}

/// One document: its status (queued, processing, ready, failed with the reason) and chunk count.
#[utoipa::path(get, path = "/v1/documents/{id}", tag = "documents", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Document), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_document(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<DocumentId>,
) -> Result<Json<Document>, ApiError> {
    Ok(Json(knowledge(&state)?.document(caller.tenant_id, id).await?))
}

/// Replace a document with a new version; its old chunks stay searchable until the new ones replace them.
#[utoipa::path(put, path = "/v1/documents/{id}", tag = "documents", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    request_body(description = "JSON text, or multipart/form-data with fields file, title and metadata (a JSON object)",
        content((TextDocument = "application/json"), (DocumentForm = "multipart/form-data"))),
    responses(
        (status = 202, body = Submission), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody),
))]
pub async fn replace_document(
    State(state): State<AppState>,
    caller: Caller,
    request_id: ReqId,
    Path(id): Path<DocumentId>,
    request: Request,
) -> Result<(StatusCode, Json<Submission>), ApiError> {
    let knowledge = knowledge(&state)?;
    let mut uploads = read_uploads(&state, request).await?;
    if uploads.len() != 1 {
        return Err(ApiError::invalid("a document is replaced by exactly one file"));
    }
    let upload = uploads.remove(0);
    let submission = knowledge.replace(caller.tenant_id, id, upload).await?;
    let event = Event { action: "document.replace", target: Some(id.to_string()), details: json!({}) };
    audit::by_caller(&state, &caller, &request_id, event).await;
    Ok((StatusCode::ACCEPTED, Json(submission)))
}

/// Delete a document; its chunks leave every index.
#[utoipa::path(delete, path = "/v1/documents/{id}", tag = "documents", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_document(
    State(state): State<AppState>,
    caller: Caller,
    request_id: ReqId,
    Path(id): Path<DocumentId>,
) -> Result<StatusCode, ApiError> {
    let knowledge = knowledge(&state)?;
    knowledge.delete(caller.tenant_id, id).await?;
    let event = Event { action: "document.delete", target: Some(id.to_string()), details: json!({}) };
    audit::by_caller(&state, &caller, &request_id, event).await;
    Ok(StatusCode::NO_CONTENT)
}

/// A job: status (queued, running, succeeded, failed, dead), attempts and progress in chunks.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "documents", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Job), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<JobId>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(knowledge(&state)?.job(caller.tenant_id, id).await?))
}
