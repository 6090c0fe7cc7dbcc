//! Users of the caller's tenant: list and create. Admins only.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use agentd_store::{NewUser, Page, Role, User};

use crate::audit::{self, Event};
use crate::auth::Caller;
use crate::auth::password::{MIN_PASSWORD_LEN, hash_password_async};
use crate::error::ApiError;
use crate::extract::{Json, Query};
use crate::observe::ReqId;
use crate::routes::PageQuery;
use crate::state::AppState;

/// A user to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// An address with an `@`, at most 254 characters.
    #[schema(
        max_length = 254,
        pattern = "^[\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*[^@\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+@[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+[\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$"
    )]
    pub email: String,
    /// At least 8 characters.
    #[schema(min_length = 8)]
    pub password: String,
    /// Defaults to `member`.
    pub role: Option<Role>,
    pub display_name: Option<String>,
}

/// Checks an email and password before anything is stored; shared with the
/// command line.
pub fn validate_new_user(email: &str, password: &str) -> Result<(), String> {
    // Measured before trimming, as the OpenAPI schema states it.
    let too_long = email.chars().count() > 254;
    let email = email.trim();
    let valid_email = !too_long
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(char::is_whitespace);
    if !valid_email {
        return Err(format!("{email:?} is not an email address"));
    }
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!("the password must have at least {MIN_PASSWORD_LEN} characters"));
    }
    Ok(())
}

/// Create a user in the caller's tenant.
#[utoipa::path(post, path = "/v1/users", tag = "users", security(("bearer" = [])), request_body = CreateUser, responses(
    (status = 201, body = User), (status = 403, body = crate::error::ErrorBody),
    (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody),
))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    request_id: ReqId,
    Json(body): Json<CreateUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    caller.require_admin()?;
    validate_new_user(&body.email, &body.password).map_err(ApiError::invalid)?;
    let password_hash = hash_password_async(body.password).await.map_err(ApiError::internal)?;
    let user = state
        .store
        .users()
        .create(NewUser {
            tenant_id: caller.tenant_id,
            email: body.email,
            display_name: body.display_name,
            role: body.role.unwrap_or(Role::Member),
            password_hash,
        })
        .await?;
    let event =
        Event { action: "user.create", target: Some(user.id.to_string()), details: json!({ "email": user.email }) };
    audit::by_caller(&state, &caller, &request_id, event).await;
    Ok((StatusCode::CREATED, Json(user)))
}

/// List the tenant's users, newest first.
#[utoipa::path(get, path = "/v1/users", tag = "users", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, body = Page<User>), (status = 403, body = crate::error::ErrorBody),
))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<User>>, ApiError> {
    caller.require_admin()?;
    Ok(Json(state.store.users().list(caller.tenant_id, page.limit()?, page.cursor.as_deref()).await?))
}
