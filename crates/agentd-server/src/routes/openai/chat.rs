//! `POST /v1/chat/completions`: one answer from a chat model, whole or as
//! server-sent events.
//!
//! A streamed answer is a chunk announcing the assistant's role, a chunk
//! per text piece or tool call as the model decides them, a chunk with the
//! finish reason, the usage chunk when `stream_options.include_usage` asks
//! for it, and `data: [DONE]`. A failure after the first byte can no longer
//! change the status, so it arrives as a chunk `{"error": …}` (which the
//! official clients raise) before `[DONE]`. A client that disconnects drops
//! the stream, which stops the model.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt, stream};
use serde_json::{Value, json};
use uuid::Uuid;

use agentd_models::{ChatAnswer, ChatError, ChatEvent, ChatStream, ModelKind, Usage};

use super::chat_wire::{
    AnswerMessage, ChatCompletion, ChatCompletionRequest, Choice, WireUsage, finish_reason, wire_call,
};
use super::{chat_error, registry_error, unix_now, wrong_kind};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

/// Create a chat completion (set `stream: true` for server-sent events).
#[utoipa::path(post, path = "/v1/chat/completions", tag = "models", security(("bearer" = [])),
    request_body = ChatCompletionRequest,
    responses((status = 200, description = "A completion, or with `stream: true` server-sent events: one `data:` line per chunk (`chat.completion.chunk`), then `data: [DONE]`",
            content((ChatCompletion = "application/json"), (String = "text/event-stream"))),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 502, body = crate::error::ErrorBody)))]
pub async fn create_chat_completion(
    State(state): State<AppState>,
    _caller: Caller,
    Json(body): Json<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    let model_name = body.model.clone();
    let stream_answer = body.stream;
    let include_usage = body.stream_options.as_ref().is_some_and(|o| o.include_usage);
    if state.models.kind_of(&model_name) == Some(ModelKind::Embedding) {
        return Err(wrong_kind(&model_name, ModelKind::Chat));
    }
    let request = body.into_chat_request()?;
    let model = state.models.chat(Some(&model_name)).await.map_err(registry_error)?;
    let events = model.chat(request).await.map_err(chat_error)?;
    let id = format!("chatcmpl-{}", Uuid::new_v4().simple());
    if stream_answer {
        let chunks = Chunks { id, created: unix_now(), model: model_name, include_usage };
        Ok(Sse::new(chunks.stream(events)).keep_alive(KeepAlive::default()).into_response())
    } else {
        let answer = ChatAnswer::collect(events).await.map_err(chat_error)?;
        count_tokens(&model_name, answer.usage);
        Ok(Json(completion(id, model_name, answer)).into_response())
    }
}

fn completion(id: String, model: String, answer: ChatAnswer) -> ChatCompletion {
    let tool_calls: Vec<_> = answer.tool_calls.iter().map(wire_call).collect();
    let content = if answer.text.is_empty() && !tool_calls.is_empty() { None } else { Some(answer.text) };
    ChatCompletion {
        id,
        object: "chat.completion".into(),
        created: unix_now(),
        model,
        choices: vec![Choice {
            index: 0,
            message: AnswerMessage { role: "assistant".into(), content, tool_calls },
            finish_reason: finish_reason(answer.finish_reason.unwrap_or(agentd_models::FinishReason::Stop)).into(),
            logprobs: None,
        }],
        usage: answer.usage.into(),
    }
}

/// Counts tokens per model for `/metrics`.
fn count_tokens(model: &str, usage: Usage) {
    let model = model.to_owned();
    metrics::counter!("agentd_model_tokens_total", "model" => model.clone(), "kind" => "prompt")
        .increment(u64::from(usage.prompt_tokens));
    metrics::counter!("agentd_model_tokens_total", "model" => model, "kind" => "completion")
        .increment(u64::from(usage.completion_tokens));
}

/// What every chunk of one streamed answer shares.
struct Chunks {
    id: String,
    created: i64,
    model: String,
    include_usage: bool,
}

/// Where a streamed answer is.
struct Progress {
    events: ChatStream,
    tool_calls: usize,
    done: bool,
}

impl Chunks {
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Event {
        self.event(json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish, "logprobs": null }],
        }))
    }

    fn event(&self, value: Value) -> Event {
        Event::default().data(value.to_string())
    }

    /// The chunks of one event of the model.
    fn on_event(&self, progress: &mut Progress, event: Result<ChatEvent, ChatError>) -> Vec<Event> {
        match event {
            Ok(ChatEvent::Text { text }) => vec![self.chunk(json!({ "content": text }), None)],
            Ok(ChatEvent::ToolCall { call }) => {
                let index = progress.tool_calls;
                progress.tool_calls += 1;
                let mut call = serde_json::to_value(wire_call(&call)).unwrap_or(Value::Null);
                call["index"] = json!(index);
                vec![self.chunk(json!({ "tool_calls": [call] }), None)]
            }
            Ok(ChatEvent::Finished { reason, usage }) => {
                count_tokens(&self.model, usage);
                progress.done = true;
                let mut out = vec![self.chunk(json!({}), Some(finish_reason(reason)))];
                if self.include_usage {
                    out.push(self.event(json!({
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "choices": [],
                        "usage": WireUsage::from(usage),
                    })));
                }
                out
            }
            Err(err) => {
                progress.done = true;
                let api = chat_error(err);
                vec![self.event(json!({ "error": {
                    "message": api.message, "type": "server_error", "param": null, "code": api.code,
                }}))]
            }
        }
    }

    fn stream(self, events: ChatStream) -> impl Stream<Item = Result<Event, Infallible>> + Send {
        let head = self.chunk(json!({ "role": "assistant", "content": "" }), None);
        let progress = Progress { events, tool_calls: 0, done: false };
        let body = stream::unfold((self, progress), |(chunks, mut progress)| async move {
            if progress.done {
                return None;
            }
            let out = match progress.events.next().await {
                Some(event) => chunks.on_event(&mut progress, event),
                None => {
                    // The model's stream ended without saying why.
                    progress.done = true;
                    chunks.on_event(
                        &mut progress,
                        Err(ChatError::Provider {
                            provider: chunks.model.clone(),
                            message: "the answer ended unexpectedly".into(),
                        }),
                    )
                }
            };
            Some((stream::iter(out), (chunks, progress)))
        })
        .flatten();
        stream::once(async { head }).chain(body).chain(stream::once(async { Event::default().data("[DONE]") })).map(Ok)
    }
}
