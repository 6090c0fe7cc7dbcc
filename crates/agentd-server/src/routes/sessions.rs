//! Conversations: create, list, read, delete, and their messages.
//!
//! Admins see every conversation of their tenant; members only their own.
//! An id from another tenant (or another member) answers 404, exactly like
//! an id that does not exist.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use agentd_store::{Message, MessageRole, NewMessage, NewSession, Page, Session, SessionId};

use crate::audit::{self, Event};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::observe::ReqId;
use crate::routes::{PageQuery, SeqPageQuery, metadata_object};
use crate::state::AppState;

/// The longest title accepted, in characters.
const MAX_TITLE: usize = 200;

/// A conversation to start.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// At most 200 characters.
    #[schema(max_length = 200)]
    pub title: Option<String>,
    /// Free-form JSON object kept with the session.
    #[schema(value_type = Option<agentd_store::openapi::Metadata>)]
    pub metadata: Option<Value>,
}

/// A message to append.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendMessage {
    pub role: MessageRole,
    /// Not empty.
    #[schema(min_length = 1)]
    pub content: String,
    /// Free-form JSON object kept with the message.
    #[schema(value_type = Option<agentd_store::openapi::Metadata>)]
    pub metadata: Option<Value>,
}

/// Start a conversation owned by the caller.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", security(("bearer" = [])), request_body = CreateSession, responses(
    (status = 201, body = Session), (status = 422, body = crate::error::ErrorBody),
))]
pub async fn create_session(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateSession>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    if body.title.as_ref().is_some_and(|t| t.chars().count() > MAX_TITLE) {
        return Err(ApiError::invalid(format!("title must be at most {MAX_TITLE} characters")));
    }
    let session = state
        .store
        .sessions()
        .create(NewSession {
            tenant_id: caller.tenant_id,
            owner_id: caller.actor_id(),
            title: body.title,
            metadata: metadata_object(body.metadata)?,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(session)))
}

/// List conversations, newest first.
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, body = Page<Session>),
))]
pub async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Session>>, ApiError> {
    let sessions = state.store.sessions();
    Ok(Json(sessions.list(caller.tenant_id, caller.owner_filter(), page.limit()?, page.cursor.as_deref()).await?))
}

/// One conversation.
#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), responses(
    (status = 200, body = Session), (status = 404, body = crate::error::ErrorBody),
))]
pub async fn get_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<SessionId>,
) -> Result<Json<Session>, ApiError> {
    Ok(Json(state.store.sessions().get(caller.tenant_id, caller.owner_filter(), id).await?))
}

/// Delete a conversation and its messages.
#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), responses(
    (status = 204, description = "Deleted"), (status = 404, body = crate::error::ErrorBody),
))]
pub async fn delete_session(
    State(state): State<AppState>,
    caller: Caller,
    request_id: ReqId,
    Path(id): Path<SessionId>,
) -> Result<StatusCode, ApiError> {
    state.store.sessions().delete(caller.tenant_id, caller.owner_filter(), id).await?;
    let event = Event { action: "session.delete", target: Some(id.to_string()), details: json!({}) };
    audit::by_caller(&state, &caller, &request_id, event).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Append a message to a conversation.
#[utoipa::path(post, path = "/v1/sessions/{id}/messages", tag = "sessions", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = AppendMessage, responses(
    (status = 201, body = Message), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody),
))]
pub async fn append_message(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<SessionId>,
    Json(body): Json<AppendMessage>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    if body.content.is_empty() {
        return Err(ApiError::invalid("content must not be empty"));
    }
    let new = NewMessage { role: body.role, content: body.content, metadata: metadata_object(body.metadata)? };
    let message = state.store.sessions().append_message(caller.tenant_id, caller.owner_filter(), id, new).await?;
    Ok((StatusCode::CREATED, Json(message)))
}

/// A conversation's messages, oldest first.
#[utoipa::path(get, path = "/v1/sessions/{id}/messages", tag = "sessions", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), SeqPageQuery), responses(
    (status = 200, body = Page<Message>), (status = 404, body = crate::error::ErrorBody),
))]
pub async fn list_messages(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<SessionId>,
    Query(page): Query<SeqPageQuery>,
) -> Result<Json<Page<Message>>, ApiError> {
    let sessions = state.store.sessions();
    let owner = caller.owner_filter();
    let limit = crate::routes::page_limit(page.limit)?;
    Ok(Json(sessions.messages(caller.tenant_id, owner, id, limit, page.cursor.as_deref()).await?))
}
