//! API keys of the caller's tenant: create (shown once), list, revoke.
//! Admins only. Revocation deletes the key from the bus cache, so it stops
//! working on every node at once (on a shared bus) or within the cache
//! lifetime (in-process).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use agentd_store::{ApiKey, ApiKeyId, Page, Role, UserId};

use crate::audit::{self, Event};
use crate::auth::Caller;
use crate::auth::api_keys::{KeySpec, create_api_key, revoke_api_key};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::observe::ReqId;
use crate::routes::PageQuery;
use crate::state::AppState;

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A label, e.g. what the key is for (1 to 100 characters).
    #[schema(
        max_length = 100,
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub name: String,
    /// Defaults to `member`.
    pub role: Option<Role>,
    /// Make the key act as this user of the tenant.
    pub user_id: Option<UserId>,
    /// When the key stops working; never when absent.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A new key: `key` is shown this once and never again.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    pub key: String,
    pub api_key: ApiKey,
}

/// Create an API key in the caller's tenant.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", security(("bearer" = [])), request_body = CreateKey, responses(
    (status = 201, body = CreatedKey), (status = 403, body = crate::error::ErrorBody),
    (status = 404, description = "`user_id` names no user of the tenant", body = crate::error::ErrorBody),
    (status = 422, body = crate::error::ErrorBody),
))]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    request_id: ReqId,
    Json(body): Json<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    caller.require_admin()?;
    let name = body.name.trim();
    if name.is_empty() || body.name.chars().count() > 100 {
        return Err(ApiError::invalid("name must be 1 to 100 characters"));
    }
    if body.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(ApiError::invalid("expires_at must be in the future"));
    }
    let role = body.role.unwrap_or(Role::Member);
    if let Some(user_id) = body.user_id {
        let user = state.store.users().get(caller.tenant_id, user_id).await?;
        if user.role == Role::Member && role == Role::Admin {
            return Err(ApiError::invalid("a key cannot have more rights than the user it acts as"));
        }
    }
    let spec = KeySpec {
        tenant_id: caller.tenant_id,
        user_id: body.user_id,
        name: name.to_string(),
        role,
        expires_at: body.expires_at,
    };
    let (key, api_key) = create_api_key(&state.store, spec).await?;
    let event = Event {
        action: "api_key.create",
        target: Some(api_key.id.to_string()),
        details: json!({ "name": api_key.name, "role": api_key.role, "prefix": api_key.prefix }),
    };
    audit::by_caller(&state, &caller, &request_id, event).await;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, api_key })))
}

/// List the tenant's API keys, newest first (no secrets).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, body = Page<ApiKey>), (status = 403, body = crate::error::ErrorBody),
))]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<ApiKey>>, ApiError> {
    caller.require_admin()?;
    Ok(Json(state.store.api_keys().list(caller.tenant_id, page.limit()?, page.cursor.as_deref()).await?))
}

/// Revoke an API key of the tenant; it stops working at once.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The key's id")), responses(
    (status = 200, body = ApiKey), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
))]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    request_id: ReqId,
    Path(id): Path<ApiKeyId>,
) -> Result<Json<ApiKey>, ApiError> {
    caller.require_admin()?;
    let key = revoke_api_key(&state.store, &state.bus, caller.tenant_id, id).await?;
    let event =
        Event { action: "api_key.revoke", target: Some(id.to_string()), details: json!({ "prefix": key.prefix }) };
    audit::by_caller(&state, &caller, &request_id, event).await;
    Ok(Json(key))
}
