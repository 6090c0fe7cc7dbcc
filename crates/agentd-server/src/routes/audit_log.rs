//! `GET /v1/audit`: the tenant's audit log, newest first. Admins only.

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use agentd_store::{AuditEntry, Page};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{Json, Query};
use crate::state::AppState;

/// `?limit=&cursor=&action=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Items per page (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page; empty is the same as none.
    #[param(pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$")]
    pub cursor: Option<String>,
    /// Only entries with this action, e.g. `api_key.revoke`.
    pub action: Option<String>,
}

/// A page of the tenant's audit log.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", security(("bearer" = [])), params(AuditQuery), responses(
    (status = 200, body = Page<AuditEntry>), (status = 403, body = crate::error::ErrorBody),
))]
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    caller.require_admin()?;
    let limit = crate::routes::page_limit(query.limit)?;
    let page =
        state.store.audit().list(caller.tenant_id, query.action.as_deref(), limit, query.cursor.as_deref()).await?;
    Ok(Json(page))
}
