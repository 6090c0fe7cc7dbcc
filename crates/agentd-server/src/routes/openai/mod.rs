//! The OpenAI-compatible model endpoints: `/v1/models`, `/v1/embeddings`
//! and `/v1/chat/completions`.
//!
//! They follow OpenAI's request and response shapes closely enough that the
//! official clients (and whatever is built on them, such as LangChain's
//! `ChatOpenAI`) work unchanged with `base_url` pointed at agentd and an
//! agentd API key as the key. Where agentd cannot do what a request asks
//! (several choices, log-probabilities, token arrays as input) it says so
//! with a 400 instead of quietly doing something else.

pub mod chat;
pub mod chat_schema;
pub mod chat_wire;
pub mod embeddings;
pub mod models;

use agentd_models::{ChatError, EmbedError, ModelKind, RegistryError};
use axum::http::StatusCode;

use crate::error::ApiError;

/// Seconds since the Unix epoch, OpenAI's `created`.
pub(crate) fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The answer to a model that cannot be had.
pub(crate) fn registry_error(err: RegistryError) -> ApiError {
    match err {
        RegistryError::Unknown { kind, name } => ApiError::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!("no {kind} model named {name:?}; GET /v1/models lists them"),
        ),
        RegistryError::Chat(e) => chat_error(e),
        RegistryError::Embed(e) => embed_error(e),
        RegistryError::Config(message) => ApiError::unavailable(message),
    }
}

/// A chat model's failure: the request's fault, or the model's.
pub(crate) fn chat_error(err: ChatError) -> ApiError {
    match err {
        ChatError::InvalidRequest(message) => ApiError::bad_request("invalid_request", message),
        ChatError::Busy(message) => {
            let mut busy = ApiError::unavailable(message);
            busy.code = "model_busy";
            busy
        }
        ChatError::Provider { .. } => {
            tracing::warn!(error = %err, "chat model failed");
            ApiError::new(StatusCode::BAD_GATEWAY, "model_failed", err.to_string())
        }
    }
}

/// An embedder's failure.
pub(crate) fn embed_error(err: EmbedError) -> ApiError {
    tracing::warn!(error = %err, "embedding failed");
    ApiError::new(StatusCode::BAD_GATEWAY, "model_failed", err.to_string())
}

/// A model named in a request exists, but is of the other kind.
pub(crate) fn wrong_kind(name: &str, wanted: ModelKind) -> ApiError {
    ApiError::bad_request("invalid_model", format!("model {name:?} is not a {wanted} model"))
}
