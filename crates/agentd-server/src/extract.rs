//! Extractors that reject with [`ApiError`] instead of axum's plain-text
//! rejections, so malformed JSON, bad path ids and bad query strings get the
//! same JSON error shape as everything else.
//!
//! They also refuse NUL characters in JSON strings and query values:
//! PostgreSQL cannot store them in `text` or `jsonb`, so they would otherwise
//! fail in the database and be answered 500.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, MissingJsonContentType};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `axum::Json`, rejecting with [`ApiError`]: 400 for malformed JSON, 422 for
/// a body that is not a JSON object, wrong types, missing or unknown fields
/// and NUL characters in strings, 413 for bodies over the limit, 415 without
/// a JSON content type.
///
/// Every request body of the API is an object. serde would also read a
/// struct from an array, field by field in order (`["a title"]` as
/// `{"title": "a title"}`), which no client means: that is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // What `axum::Json` does, keeping the bytes to look at afterwards.
        if !json_content_type(req.headers()) {
            return Err(JsonRejection::from(MissingJsonContentType::default()).into());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(JsonRejection::from)?;
        let object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        let value = match axum::Json::<T>::from_bytes(&bytes) {
            // serde_json reports some type errors (a number where an enum's
            // string goes) as syntax errors: only a body that is not
            // well-formed JSON is malformed.
            Err(JsonRejection::JsonSyntaxError(e)) if !well_formed(&bytes) => {
                return Err(ApiError::bad_request("malformed_json", e.body_text()));
            }
            _ if !object => return Err(ApiError::invalid("the body must be a JSON object")),
            Ok(axum::Json(value)) => value,
            Err(JsonRejection::JsonSyntaxError(e)) => return Err(ApiError::invalid(e.body_text())),
            Err(e) => return Err(e.into()),
        };
        if has_nul_escape(&bytes) {
            return Err(ApiError::invalid("strings must not contain NUL characters (\\u0000)"));
        }
        Ok(Json(value))
    }
}

/// Whether `bytes` are JSON text: UTF-8 and well-formed, whatever they hold.
/// Only asked once a body failed to read, so valid bodies are parsed once.
fn well_formed(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok() && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

/// `application/json`, or any `application/…+json`, as `axum::Json` accepts.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence
        .split_once('/')
        .is_some_and(|(kind, sub)| kind == "application" && (sub == "json" || sub.ends_with("+json")))
}

/// Whether valid JSON text holds a NUL character (also for JSON read from
/// a multipart field or a query value). JSON can only carry one as
/// the escape `\u0000` (a raw control character is a syntax error), and in
/// valid JSON every backslash starts an escape, so skipping escapes pairwise
/// finds exactly the NULs.
pub(crate) fn has_nul_escape(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1..i + 6).is_some_and(|escape| escape.eq_ignore_ascii_case(b"u0000")) {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path`, rejecting with 400 (e.g. an id that is not a UUID).
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// `axum::extract::Query`, rejecting with 400 (also for a NUL character,
/// `%00`, in the query string).
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.query().is_some_and(|q| q.as_bytes().windows(3).any(|w| w.eq_ignore_ascii_case(b"%00"))) {
            return Err(ApiError::bad_request("invalid_query", "query values must not contain NUL characters (%00)"));
        }
        let axum::extract::Query(value) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}
