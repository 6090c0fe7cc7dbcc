//! The `/v1` API, assembled in one place, with its OpenAPI document.
//!
//! Each file holds the handlers of one resource. [`v1`] joins them: the
//! token endpoint is open, everything else sits behind
//! [`crate::auth::authenticate`].

pub mod audit_log;
pub mod documents;
pub mod health;
pub mod keys;
pub mod links;
pub mod me;
pub mod openai;
pub mod search;
pub mod sessions;
pub mod shared_responses;
pub mod string_rules;
pub mod token;
pub mod users;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use serde::Deserialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;

/// The parts of the OpenAPI document not derived from handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "agentd", description = "Self-hosted AI agent server: the REST API under /v1."),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Tokens for users"),
        (name = "keys", description = "API keys of the tenant (admins)"),
        (name = "users", description = "Users of the tenant (admins)"),
        (name = "sessions", description = "Conversations and their messages"),
        (name = "audit", description = "The tenant's audit log (admins)"),
        (name = "documents", description = "Documents, their ingestion jobs, and search"),
        (name = "models", description = "OpenAI-compatible models, embeddings and chat completions"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

/// Declares the bearer scheme every `/v1` route (but the token one) uses.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key (agd_…) or a JWT from /v1/auth/token"))
                    .build(),
            ),
        );
    }
}

/// `?limit=&cursor=` of every listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page; empty is the same as none.
    #[param(pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$")]
    pub cursor: Option<String>,
}

/// `?limit=&cursor=` of a conversation's messages, whose cursors are
/// sequence numbers.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SeqPageQuery {
    /// Items per page (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page; empty is the same as none.
    #[param(pattern = "^[0-9]{0,18}$")]
    pub cursor: Option<String>,
}

/// `metadata` of a body: a JSON object when given, `{}` when not.
pub(crate) fn metadata_object(metadata: Option<serde_json::Value>) -> Result<serde_json::Value, ApiError> {
    match metadata {
        None => Ok(serde_json::json!({})),
        Some(value @ serde_json::Value::Object(_)) => Ok(value),
        Some(_) => Err(ApiError::invalid("metadata must be a JSON object")),
    }
}

impl PageQuery {
    /// The page size to ask the store for.
    pub fn limit(&self) -> Result<u32, ApiError> {
        page_limit(self.limit)
    }
}

/// The most items a page holds.
pub const MAX_PAGE: u32 = 200;

/// A listing's `limit`: 50 when absent, refused outside 1 to [`MAX_PAGE`]
/// (silently clamping would hand a client fewer or more items than it
/// asked for without saying so).
pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_request("invalid_query", format!("limit must be 1 to {MAX_PAGE}, not {n}"))),
    }
}

/// Every operation of `openapi`, to complete what handlers declared.
pub(crate) fn operations_mut(
    openapi: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch].into_iter().flatten()
    })
}

/// Every `/v1` route, with the OpenAPI operations they declare.
pub fn v1(state: AppState) -> OpenApiRouter<AppState> {
    // Uploads may be larger than the JSON bodies every other route takes.
    let uploads = OpenApiRouter::new()
        .routes(routes!(documents::upload_documents))
        .routes(routes!(documents::replace_document))
        .layer(DefaultBodyLimit::max(state.config.upload_body_limit));
    let protected = OpenApiRouter::new()
        .routes(routes!(me::me))
        .routes(routes!(keys::create_key, keys::list_keys))
        .routes(routes!(keys::revoke_key))
        .routes(routes!(users::create_user, users::list_users))
        .routes(routes!(sessions::create_session, sessions::list_sessions))
        .routes(routes!(sessions::get_session, sessions::delete_session))
        .routes(routes!(sessions::append_message, sessions::list_messages))
        .routes(routes!(audit_log::list_audit))
        .routes(routes!(openai::models::list_models))
        .routes(routes!(openai::models::get_model))
        .routes(routes!(openai::embeddings::create_embeddings))
        .routes(routes!(openai::chat::create_chat_completion))
        .routes(routes!(documents::list_documents))
        .routes(routes!(documents::get_document, documents::delete_document))
        .routes(routes!(documents::get_job))
        .routes(routes!(search::search))
        .merge(uploads)
        .layer(middleware::from_fn_with_state(state, crate::auth::authenticate));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(token::issue_token))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(crate::observe::metrics_endpoint))
        .merge(protected)
}
