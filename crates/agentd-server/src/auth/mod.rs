//! Who is calling: authentication of `/v1` requests, and the caller that
//! handlers receive.
//!
//! A request carries `Authorization: Bearer <token>`. A token that starts
//! with `agd_` is an API key, looked up by its hash (through the bus cache,
//! so revocation on any node is seen everywhere within a second); anything
//! else must be a JWT issued by `POST /v1/auth/token`. The outcome is a
//! [`Caller`]: tenant, role, and the user or key acting. Every handler scopes
//! its work by that tenant.

pub mod api_keys;
pub mod jwt;
pub mod password;

use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use chrono::Utc;
use uuid::Uuid;

use agentd_store::{ApiKey, ApiKeyId, Role, TenantId, UserId};

use crate::error::ApiError;
use crate::state::AppState;

/// The user or key a request acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    User(UserId),
    ApiKey(ApiKeyId),
}

/// The authenticated caller of a `/v1` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant_id: TenantId,
    pub role: Role,
    pub subject: Subject,
}

impl Caller {
    /// The id recorded as actor and owner: the user's, or the key's when
    /// the key acts for no user.
    pub fn actor_id(&self) -> Uuid {
        match self.subject {
            Subject::User(id) => id.0,
            Subject::ApiKey(id) => id.0,
        }
    }

    /// The owner to filter conversations by: none for admins (they see the
    /// whole tenant), the caller itself for members.
    pub fn owner_filter(&self) -> Option<Uuid> {
        match self.role {
            Role::Admin => None,
            Role::Member => Some(self.actor_id()),
        }
    }

    /// 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Member => Err(ApiError::forbidden("this route is for admins of the tenant")),
        }
    }

    /// The key rate limits are counted under.
    fn rate_key(&self) -> String {
        match self.subject {
            Subject::User(id) => format!("user:{id}"),
            Subject::ApiKey(id) => format!("key:{id}"),
        }
    }

    fn from_api_key(key: &ApiKey) -> Self {
        let subject = match key.user_id {
            Some(user) => Subject::User(user),
            None => Subject::ApiKey(key.id),
        };
        Caller { tenant_id: key.tenant_id, role: key.role, subject }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| ApiError::unauthenticated("missing credentials"))
    }
}

/// Middleware for `/v1`: authenticates, applies the caller's rate limit and
/// hands the [`Caller`] to the handler.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = bearer_token(request.headers())?;
    let caller = if token.starts_with(api_keys::KEY_PREFIX) {
        caller_for_api_key(&state, token).await?
    } else {
        let claims = state.jwt.verify(token).map_err(|e| {
            let reason = match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "token expired",
                _ => "invalid token",
            };
            ApiError::unauthenticated(reason)
        })?;
        Caller { tenant_id: claims.tid, role: claims.role, subject: Subject::User(claims.sub) }
    };

    let mut limit_headers = None;
    if let Some(quota) = state.config.rate_limit {
        match state.bus.limiter().check(&caller.rate_key(), quota).await {
            Ok(decision) if !decision.allowed => {
                return Err(ApiError::rate_limited(decision.retry_after.as_secs_f64().ceil().max(1.0) as u64));
            }
            Ok(decision) => limit_headers = Some((decision.limit, decision.remaining)),
            // A rate limiter that cannot be reached must not take the API down.
            Err(e) => tracing::warn!(error = %e, "rate limiter unavailable; request let through"),
        }
    }

    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    if let Some((limit, remaining)) = limit_headers {
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    }
    Ok(response)
}

/// The token of an `Authorization: Bearer …` header.
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("missing Authorization: Bearer header"))?;
    let value = value.to_str().map_err(|_| ApiError::unauthenticated("malformed Authorization header"))?;
    let (scheme, token) =
        value.split_once(' ').ok_or_else(|| ApiError::unauthenticated("malformed Authorization header"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::unauthenticated("expected Authorization: Bearer <api key or token>"));
    }
    Ok(token)
}

/// The bus cache key of an API key's record.
pub(crate) fn api_key_cache_key(key_hash: &str) -> String {
    format!("apikey:{key_hash}")
}

/// Looks an API key up (cache first) and checks that it is active.
async fn caller_for_api_key(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let hash = api_keys::hash_key(token);
    let cache_key = api_key_cache_key(&hash);
    let cached = match state.bus.cache().get(&cache_key).await {
        Ok(bytes) => bytes.and_then(|b| serde_json::from_slice::<ApiKey>(&b).ok()),
        Err(e) => {
            tracing::warn!(error = %e, "cache unavailable; reading API key from the database");
            None
        }
    };
    let key = match cached {
        Some(key) => key,
        None => {
            let key = state
                .store
                .api_keys()
                .find_by_hash(&hash)
                .await?
                .ok_or_else(|| ApiError::unauthenticated("invalid API key"))?;
            if let Ok(bytes) = serde_json::to_vec(&key) {
                let ttl = cache_ttl(state, &key);
                if let Err(e) = state.bus.cache().set(&cache_key, &bytes, ttl).await {
                    tracing::warn!(error = %e, "could not cache API key");
                }
            }
            key
        }
    };
    if !key.is_active(Utc::now()) {
        return Err(ApiError::unauthenticated(if key.revoked_at.is_some() {
            "API key revoked"
        } else {
            "API key expired"
        }));
    }
    Ok(Caller::from_api_key(&key))
}

/// A cached key never outlives its expiry.
fn cache_ttl(state: &AppState, key: &ApiKey) -> Duration {
    let ttl = state.config.api_key_cache_ttl;
    match key.expires_at.map(|at| (at - Utc::now()).to_std()) {
        Some(Ok(left)) => ttl.min(left),
        Some(Err(_)) => Duration::from_millis(1),
        None => ttl,
    }
}
