//! `GET /v1/models`: the models a client may name, as OpenAI lists them.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use agentd_models::{ModelInfo, ModelKind, Provider};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::AppState;

/// One model.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Model {
    /// The name to pass as `model`.
    pub id: String,
    /// Always `model`.
    pub object: String,
    pub created: i64,
    /// `agentd` for local models, else the provider.
    pub owned_by: String,
    /// `chat` or `embedding` (an agentd addition).
    pub kind: String,
    /// Whether requests that name no model use this one (an agentd addition).
    pub default: bool,
}

/// The list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: String,
    pub data: Vec<Model>,
}

fn model(info: ModelInfo) -> Model {
    let owned_by = match info.provider {
        Provider::Local => "agentd",
        Provider::Openai => "openai-compatible",
        Provider::Anthropic => "anthropic",
    };
    let kind = match info.kind {
        ModelKind::Chat => "chat",
        ModelKind::Embedding => "embedding",
        ModelKind::Runtime => "runtime",
    };
    Model {
        id: info.name,
        object: "model".into(),
        created: 0,
        owned_by: owned_by.into(),
        kind: kind.into(),
        default: info.default,
    }
}

/// List the models.
#[utoipa::path(get, path = "/v1/models", tag = "models", security(("bearer" = [])), responses(
    (status = 200, body = ModelList), (status = 401, body = crate::error::ErrorBody),
))]
pub async fn list_models(State(state): State<AppState>, _caller: Caller) -> Json<ModelList> {
    let data = state.models.list().into_iter().map(model).collect();
    Json(ModelList { object: "list".into(), data })
}

/// One model by name.
#[utoipa::path(get, path = "/v1/models/{model}", tag = "models", security(("bearer" = [])),
    params(("model" = String, Path, description = "The model's name")),
    responses((status = 200, body = Model), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_model(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Model>, ApiError> {
    let info = state.models.list().into_iter().find(|m| m.name == name).ok_or_else(|| {
        ApiError::new(axum::http::StatusCode::NOT_FOUND, "model_not_found", format!("no model named {name:?}"))
    })?;
    Ok(Json(model(info)))
}
