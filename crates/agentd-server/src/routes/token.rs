//! `POST /v1/auth/token`: email and password in, JWT out.
//!
//! Failures all read "invalid email or password", take about as long
//! whether or not the email exists, and are rate limited per email, so the
//! endpoint tells a guesser nothing. Successes and failures are audited.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::audit::{self, Event};
use crate::auth::password::{verify_password, verify_password_async};
use crate::error::ApiError;
use crate::extract::Json;
use crate::observe::ReqId;
use crate::state::AppState;

/// Credentials to exchange for a token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub email: String,
    pub password: String,
    /// The tenant's name; needed only when the email exists in several.
    pub tenant: Option<String>,
}

/// A bearer token for `/v1`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// A PHC hash of a random password, verified against when the email is
/// unknown so that unknown emails cost the same time as wrong passwords.
static DECOY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    crate::auth::password::hash_password("decoy password that matches nothing").unwrap_or_else(|_| {
        "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()
    })
});

/// Exchange email and password for a JWT.
#[utoipa::path(post, path = "/v1/auth/token", tag = "auth", request_body = TokenRequest, responses(
    (status = 200, description = "A token", body = TokenResponse),
    (status = 401, description = "Wrong email or password", body = crate::error::ErrorBody),
    (status = 429, description = "Too many attempts for this email", body = crate::error::ErrorBody),
))]
pub async fn issue_token(
    State(state): State<AppState>,
    request_id: ReqId,
    Json(body): Json<TokenRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let email = body.email.trim().to_lowercase();
    if let Some(quota) = state.config.login_rate_limit {
        match state.bus.limiter().check(&format!("login:{email}"), quota).await {
            Ok(d) if !d.allowed => {
                return Err(ApiError::rate_limited(d.retry_after.as_secs_f64().ceil().max(1.0) as u64));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "login rate limiter unavailable"),
        }
    }

    let mut candidates = state.store.users().find_by_email(&email).await?;
    if let Some(tenant) = &body.tenant {
        let tenant = state.store.tenants().by_name(tenant).await?;
        candidates.retain(|u| tenant.as_ref().is_some_and(|t| t.id == u.tenant_id));
    }

    let mut matched = Vec::new();
    if candidates.is_empty() {
        let decoy = DECOY_HASH.clone();
        let password = body.password.clone();
        let _ = tokio::task::spawn_blocking(move || verify_password(&password, &decoy)).await;
    }
    for user in &candidates {
        if verify_password_async(body.password.clone(), user.password_hash.clone()).await {
            matched.push(user);
        }
    }

    let user = match matched.as_slice() {
        [user] => *user,
        [] => {
            let tenant_id = (candidates.len() == 1).then(|| candidates[0].tenant_id);
            let event = Event { action: "auth.login_failed", target: Some(email.clone()), details: json!({}) };
            audit::write(&state, tenant_id, None, &request_id, event).await;
            return Err(ApiError::unauthenticated("invalid email or password"));
        }
        _ => {
            return Err(ApiError::bad_request(
                "tenant_required",
                "this email belongs to several tenants; add \"tenant\" to the request",
            ));
        }
    };

    let (token, expires_in) = state.jwt.issue(user.id, user.tenant_id, user.role).map_err(ApiError::internal)?;
    let event = Event { action: "auth.login", target: Some(user.id.to_string()), details: json!({ "email": email }) };
    audit::write(&state, Some(user.tenant_id), Some(user.id.0), &request_id, event).await;
    Ok(Json(TokenResponse { access_token: token, token_type: "Bearer".into(), expires_in }))
}
