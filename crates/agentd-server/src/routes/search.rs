//! `POST /v1/search`: the tenant's chunks ranked for a query.
//!
//! Hybrid (vector and keyword fused), vector only or keyword only, with
//! filters on documents and their metadata, optional MMR diversity and one
//! result per document; with `debug`, the time each stage took.

use axum::extract::State;

use agentd_retrieval::{SearchError, SearchRequest, SearchResponse};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::Json;
use crate::routes::documents::knowledge;
use crate::state::AppState;

impl From<SearchError> for ApiError {
    fn from(err: SearchError) -> Self {
        match err {
            SearchError::Invalid(message) => ApiError::invalid(message),
            SearchError::Store(e) => e.into(),
            SearchError::Embed(message) => {
                tracing::warn!(error = %message, "embedding a search query failed");
                ApiError::unavailable("the embedding model is unavailable")
            }
            SearchError::Index(e) => ApiError::internal(e),
        }
    }
}

/// Search the tenant's documents.
#[utoipa::path(post, path = "/v1/search", tag = "documents", security(("bearer" = [])), request_body = SearchRequest,
    responses(
        (status = 200, body = SearchResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody),
))]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<SearchRequest>,
) -> Result<Json<SearchResponse>, ApiError> {
    let knowledge = knowledge(&state)?;
    Ok(Json(knowledge.search(caller.tenant_id, &request).await?))
}
