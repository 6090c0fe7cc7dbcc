//! `GET /v1/me`: who the credentials belong to. Handy to check a key.

use serde::Serialize;
use utoipa::ToSchema;

use agentd_store::{Role, TenantId};

use crate::auth::{Caller, Subject};
use crate::extract::Json;

/// The authenticated caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub tenant_id: TenantId,
    pub role: Role,
    /// `user` or `api_key`.
    pub kind: &'static str,
    /// The user's or the key's id.
    pub id: uuid::Uuid,
}

/// The caller's tenant, role and identity.
#[utoipa::path(get, path = "/v1/me", tag = "auth", security(("bearer" = [])), responses(
    (status = 200, body = Me), (status = 401, body = crate::error::ErrorBody),
))]
pub async fn me(caller: Caller) -> Json<Me> {
    let kind = match caller.subject {
        Subject::User(_) => "user",
        Subject::ApiKey(_) => "api_key",
    };
    Json(Me { tenant_id: caller.tenant_id, role: caller.role, kind, id: caller.actor_id() })
}
