//! `POST /v1/embeddings`: texts in, unit vectors out, in OpenAI's shape.
//!
//! The official Python client asks for `encoding_format: "base64"` unless
//! told otherwise (little-endian f32s, base64-encoded, a quarter of the
//! JSON), so both encodings are served.

use axum::extract::State;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use agentd_models::ModelKind;

use super::{embed_error, registry_error, wrong_kind};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

/// The most texts one request may embed (OpenAI's limit too).
pub const MAX_INPUTS: usize = 2048;

/// What to embed.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbeddingRequest {
    /// The embedding model; `GET /v1/models` lists them.
    pub model: String,
    /// A text or an array of 1 to 2,048 texts, none blank (token arrays are not accepted).
    #[schema(value_type = EmbeddingInput)]
    pub input: Value,
    /// `float` (default) or `base64`.
    #[schema(pattern = "^(float|base64)$")]
    pub encoding_format: Option<String>,
    /// Must equal the model's dimension when given (vectors are not shortened).
    #[serde(default, deserialize_with = "agentd_store::strict_json::whole_opt")]
    #[schema(minimum = 1, maximum = 65536)]
    pub dimensions: Option<usize>,
    /// Accepted and ignored.
    pub user: Option<String>,
}

/// `input`: a text, or 1 to [`MAX_INPUTS`] texts; none blank.
pub struct EmbeddingInput;

impl utoipa::PartialSchema for EmbeddingInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
        let text = || ObjectBuilder::new().schema_type(Type::String).pattern(Some(agentd_store::openapi::NON_BLANK));
        OneOfBuilder::new()
            .item(text())
            .item(ArrayBuilder::new().items(text()).min_items(Some(1)).max_items(Some(MAX_INPUTS)))
            .into()
    }
}

impl ToSchema for EmbeddingInput {}

/// `embedding`: the floats, or their little-endian bytes in base64.
pub struct EmbeddingVector;

impl utoipa::PartialSchema for EmbeddingVector {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::Number)))
            .item(ObjectBuilder::new().schema_type(Type::String).content_encoding("base64"))
            .into()
    }
}

impl ToSchema for EmbeddingVector {}

/// One vector.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EmbeddingData {
    /// Always `embedding`.
    pub object: String,
    /// The input's position.
    pub index: usize,
    /// An array of floats, or a base64 string of little-endian f32s.
    #[schema(value_type = EmbeddingVector)]
    pub embedding: Value,
}

/// Tokens read.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EmbeddingUsage {
    pub prompt_tokens: usize,
    pub total_tokens: usize,
}

/// The vectors, in input order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EmbeddingResponse {
    /// Always `list`.
    pub object: String,
    pub data: Vec<EmbeddingData>,
    pub model: String,
    pub usage: EmbeddingUsage,
}

/// The texts of `input`, or why it is not acceptable.
fn texts(input: Value) -> Result<Vec<String>, ApiError> {
    let bad = |message: &str| ApiError::bad_request("invalid_input", message);
    let texts = match input {
        Value::String(text) => vec![text],
        Value::Array(items) => {
            if items.iter().any(|item| item.is_number() || item.is_array()) {
                return Err(bad("token arrays are not accepted as input; send the texts"));
            }
            items
                .into_iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text),
                    _ => Err(bad("input must be a string or an array of strings")),
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        _ => return Err(bad("input must be a string or an array of strings")),
    };
    if texts.is_empty() {
        return Err(bad("input must not be an empty array"));
    }
    if texts.len() > MAX_INPUTS {
        return Err(bad(&format!("at most {MAX_INPUTS} inputs per request; got {}", texts.len())));
    }
    if let Some(i) = texts.iter().position(|t| t.trim().is_empty()) {
        return Err(bad(&format!("input {i} is empty")));
    }
    Ok(texts)
}

/// Embed texts.
#[utoipa::path(post, path = "/v1/embeddings", tag = "models", security(("bearer" = [])), request_body = EmbeddingRequest,
    responses((status = 200, body = EmbeddingResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn create_embeddings(
    State(state): State<AppState>,
    _caller: Caller,
    Json(body): Json<EmbeddingRequest>,
) -> Result<Json<EmbeddingResponse>, ApiError> {
    let base64 = match body.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_encoding_format",
                format!("encoding_format must be float or base64, not {other:?}"),
            ));
        }
    };
    if state.models.kind_of(&body.model) == Some(ModelKind::Chat) {
        return Err(wrong_kind(&body.model, ModelKind::Embedding));
    }
    let texts = texts(body.input)?;
    let embedder = state.models.embedder(Some(&body.model)).await.map_err(registry_error)?;
    if let Some(dimensions) = body.dimensions
        && dimensions != embedder.dimension()
    {
        return Err(ApiError::bad_request(
            "invalid_dimensions",
            format!(
                "model {} gives {}-dimensional vectors; dimensions={dimensions} cannot be served",
                body.model,
                embedder.dimension()
            ),
        ));
    }
    let tokens: usize = texts.iter().map(|t| embedder.count_tokens(t)).sum();
    let vectors = embedder.embed(&texts).await.map_err(embed_error)?;
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Value::from(vector)
            };
            EmbeddingData { object: "embedding".into(), index, embedding }
        })
        .collect();
    Ok(Json(EmbeddingResponse {
        object: "list".into(),
        data,
        model: body.model,
        usage: EmbeddingUsage { prompt_tokens: tokens, total_tokens: tokens },
    }))
}
