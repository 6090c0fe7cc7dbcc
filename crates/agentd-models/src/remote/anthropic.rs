//! A chat model behind Anthropic's Messages API.
//!
//! The conversation is reshaped the way the API insists on: system messages
//! go to the top-level `system` field; tool results are `tool_result` blocks
//! of a user message; an assistant's tool calls are `tool_use` blocks; roles
//! must alternate, so consecutive messages of one role are merged (a user's
//! tool results first, as the API requires). `max_tokens` is mandatory.
//!
//! Sampling is narrower than OpenAI's: temperature ranges over 0–1 (higher
//! values are clamped), recent models refuse `temperature` and `top_p`
//! together, so only the temperature is sent, and there is no seed.
//!
//! The streamed events are `message_start` (input usage), then per content
//! block a start (text, or `tool_use` with id and name), deltas (`text_delta`,
//! or `input_json_delta` pieces of the arguments) and a stop, then
//! `message_delta` (stop reason, output usage) and `message_stop`. A tool
//! call is handed on when its block stops.

use std::collections::{HashMap, VecDeque};

use async_trait::async_trait;
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::RemoteOptions;
use super::http::{BaseUrl, Endpoint, json_error_message, secret_header};
use super::sse::SseEvent;
use super::stream::{Decoder, chat_stream};
use crate::chat::{
    ChatError, ChatEvent, ChatMessage, ChatModel, ChatRequest, ChatRole, ChatStream, FinishReason, ToolCall, Usage,
};

/// The API version every request declares.
const API_VERSION: &str = "2023-06-01";

/// Where and what to ask on Anthropic's API.
#[derive(Clone)]
pub struct AnthropicConfig {
    /// The name agentd lists the model under.
    pub name: String,
    /// `https://api.anthropic.com` unless a proxy or a test stands in;
    /// requests go to `{base_url}/v1/messages` (a base URL already ending in
    /// `/v1` is not given a second one).
    pub base_url: String,
    /// Sent as `x-api-key`.
    pub api_key: Option<String>,
    /// The model id, e.g. `claude-sonnet-4-5`.
    pub model: String,
    /// Timeouts and retries.
    pub options: RemoteOptions,
}

impl AnthropicConfig {
    /// Anthropic's public API with default options.
    pub fn new(name: impl Into<String>, model: impl Into<String>, api_key: impl Into<String>) -> Self {
        AnthropicConfig {
            name: name.into(),
            base_url: "https://api.anthropic.com".into(),
            api_key: Some(api_key.into()),
            model: model.into(),
            options: RemoteOptions::default(),
        }
    }
}

/// Never prints the API key.
impl std::fmt::Debug for AnthropicConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnthropicConfig")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("options", &self.options)
            .finish()
    }
}

/// A chat model served by Anthropic's Messages API.
#[derive(Debug)]
pub struct AnthropicChat {
    name: String,
    model: String,
    url: Url,
    endpoint: Endpoint,
}

impl AnthropicChat {
    /// Checks the configuration and builds the HTTP client; nothing is sent yet.
    pub fn new(config: AnthropicConfig) -> Result<AnthropicChat, ChatError> {
        let failed = |provider: String| move |message| ChatError::Provider { provider, message };
        let base =
            BaseUrl::parse(&config.base_url).map_err(failed(format!("Anthropic chat model {:?}", config.name)))?;
        let label = format!("Anthropic chat model {:?} at {}", config.name, base.redacted());
        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static("anthropic-version"), HeaderValue::from_static(API_VERSION));
        if let Some(key) = config.api_key.as_deref().filter(|k| !k.is_empty()) {
            let (name, value) = secret_header("x-api-key", key).map_err(failed(label.clone()))?;
            headers.insert(name, value);
        }
        let url = if base.ends_with_segment("v1") { base.join("messages") } else { base.join("v1/messages") };
        let endpoint = Endpoint::new(label.clone(), headers, config.options).map_err(failed(label))?;
        Ok(AnthropicChat { name: config.name, model: config.model, url, endpoint })
    }

    /// The JSON body of a request.
    fn body(&self, request: &ChatRequest) -> Value {
        let sampling = &request.sampling;
        let (system, messages) = conversation(&request.messages);
        let mut body = json!({
            "model": self.model,
            "max_tokens": sampling.max_tokens.max(1),
            "messages": messages,
            "stream": true,
            "temperature": sampling.temperature.clamp(0.0, 1.0),
        });
        if let Some(system) = system {
            body["system"] = json!(system);
        }
        // The API refuses stop sequences that are only whitespace.
        let stop: Vec<&String> = sampling.stop.iter().filter(|s| !s.trim().is_empty()).collect();
        if !stop.is_empty() {
            body["stop_sequences"] = json!(stop);
        }
        if !request.tools.is_empty() {
            let tools = request.tools.iter().map(
                |tool| json!({"name": tool.name, "description": tool.description, "input_schema": tool.parameters}),
            );
            body["tools"] = Value::Array(tools.collect());
        }
        body
    }
}

/// The system text and the messages in Anthropic's shape.
fn conversation(messages: &[ChatMessage]) -> (Option<String>, Vec<Value>) {
    let mut system = Vec::new();
    let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
    for message in messages {
        let text = || (!message.content.is_empty()).then(|| json!({"type": "text", "text": message.content}));
        let (role, blocks): (&str, Vec<Value>) = match message.role {
            ChatRole::System => {
                if !message.content.is_empty() {
                    system.push(message.content.as_str());
                }
                continue;
            }
            ChatRole::User => ("user", text().into_iter().collect()),
            ChatRole::Assistant => {
                let calls = message.tool_calls.iter().map(|call| {
                    json!({"type": "tool_use", "id": call.id, "name": call.name, "input": tool_input(&call.arguments)})
                });
                ("assistant", text().into_iter().chain(calls).collect())
            }
            ChatRole::Tool => {
                let id = message.tool_call_id.as_deref().unwrap_or_default();
                ("user", vec![json!({"type": "tool_result", "tool_use_id": id, "content": message.content})])
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, content)) if *last == role => content.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages = turns
        .into_iter()
        .map(|(role, mut content)| {
            content.sort_by_key(|block| block["type"] != "tool_result");
            json!({"role": role, "content": content})
        })
        .collect();
    let system = (!system.is_empty()).then(|| system.join("\n\n"));
    (system, messages)
}

/// A call's arguments as a `tool_use` input, which must be an object:
/// anything else (arguments that did not parse when received from another
/// provider) is wrapped as `{"arguments": …}` so the model still sees it.
fn tool_input(arguments: &Value) -> Value {
    match arguments {
        Value::Object(_) => arguments.clone(),
        Value::String(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(parsed @ Value::Object(_)) => parsed,
            _ => json!({"arguments": raw}),
        },
        other => json!({"arguments": other}),
    }
}

#[async_trait]
impl ChatModel for AnthropicChat {
    fn name(&self) -> &str {
        &self.name
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatStream, ChatError> {
        let provider = self.endpoint.label();
        let response = self
            .endpoint
            .post_json(&self.url, &self.body(&request))
            .await
            .map_err(|message| ChatError::Provider { provider: provider.to_string(), message })?;
        Ok(chat_stream(response, provider.clone(), self.endpoint.options().idle_timeout, AnthropicDecoder::default()))
    }
}

/// A `tool_use` block whose input is still arriving.
struct PartialToolUse {
    id: String,
    name: String,
    /// The input given at the block's start (normally `{}`).
    initial: Value,
    json: String,
}

/// Anthropic's event stream as a state machine.
#[derive(Default)]
struct AnthropicDecoder {
    /// Open `tool_use` blocks, by content block index.
    tools: HashMap<u64, PartialToolUse>,
    reason: Option<FinishReason>,
    usage: Usage,
}

impl Decoder for AnthropicDecoder {
    fn event(&mut self, event: SseEvent, out: &mut VecDeque<ChatEvent>) -> Result<bool, String> {
        if event.data.trim().is_empty() {
            return Ok(false);
        }
        let json: Value = serde_json::from_str(&event.data)
            .map_err(|e| format!("malformed stream: {e} in {:?}", event.data.trim()))?;
        let kind = json["type"].as_str().unwrap_or(&event.event);
        let index = json["index"].as_u64().unwrap_or_default();
        match kind {
            "message_start" => self.read_usage(&json["message"]["usage"]),
            "content_block_start" => {
                let block = &json["content_block"];
                match block["type"].as_str() {
                    Some("text") => push_text(out, &block["text"]),
                    Some("tool_use") => {
                        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                        let tool = PartialToolUse {
                            id: text(&block["id"]),
                            name: text(&block["name"]),
                            initial: block.get("input").cloned().unwrap_or_else(|| json!({})),
                            json: String::new(),
                        };
                        self.tools.insert(index, tool);
                    }
                    // Thinking and server-side tool blocks are not part of the answer.
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = &json["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => push_text(out, &delta["text"]),
                    Some("input_json_delta") => {
                        if let Some(tool) = self.tools.get_mut(&index) {
                            tool.json.push_str(delta["partial_json"].as_str().unwrap_or_default());
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(tool) = self.tools.remove(&index) {
                    out.push_back(tool_call(tool));
                }
            }
            "message_delta" => {
                if let Some(reason) = json["delta"]["stop_reason"].as_str() {
                    self.reason = Some(match reason {
                        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
                        "tool_use" => FinishReason::ToolCalls,
                        // end_turn, stop_sequence, and refusal or pause_turn
                        _ => FinishReason::Stop,
                    });
                }
                self.read_usage(&json["usage"]);
            }
            "message_stop" => {
                self.finish(out);
                return Ok(true);
            }
            "error" => {
                let message = json_error_message(&json).unwrap_or_else(|| event.data.trim().to_owned());
                return Err(format!("error in the stream: {message}"));
            }
            // ping, and event types added after this was written
            _ => {}
        }
        Ok(false)
    }

    fn end(&mut self, out: &mut VecDeque<ChatEvent>) -> Result<(), String> {
        if self.reason.is_none() {
            return Err("malformed stream: it ended before the message did (no stop_reason, no message_stop)".into());
        }
        self.finish(out);
        Ok(())
    }
}

impl AnthropicDecoder {
    /// Usage from `message_start` or `message_delta`: counts given replace
    /// earlier ones (they are cumulative); cached input counts as input.
    fn read_usage(&mut self, usage: &Value) {
        let count = |field: &str| usage[field].as_u64().map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        if let Some(input) = count("input_tokens") {
            let cached = ["cache_creation_input_tokens", "cache_read_input_tokens"].map(|f| count(f).unwrap_or(0));
            self.usage.prompt_tokens = cached.into_iter().fold(input, u32::saturating_add);
        }
        if let Some(output) = count("output_tokens") {
            self.usage.completion_tokens = output;
        }
    }

    fn finish(&mut self, out: &mut VecDeque<ChatEvent>) {
        let mut open: Vec<_> = self.tools.drain().collect();
        open.sort_by_key(|(index, _)| *index);
        out.extend(open.into_iter().map(|(_, tool)| tool_call(tool)));
        out.push_back(ChatEvent::Finished { reason: self.reason.unwrap_or(FinishReason::Stop), usage: self.usage });
    }
}

fn push_text(out: &mut VecDeque<ChatEvent>, text: &Value) {
    if let Some(text) = text.as_str().filter(|t| !t.is_empty()) {
        out.push_back(ChatEvent::Text { text: text.to_owned() });
    }
}

/// A finished `tool_use` block as a call; input that does not parse is kept
/// as a JSON string.
fn tool_call(tool: PartialToolUse) -> ChatEvent {
    let arguments = match tool.json.trim() {
        "" => tool.initial,
        text => serde_json::from_str(text).unwrap_or(Value::String(tool.json)),
    };
    ChatEvent::ToolCall { call: ToolCall { id: tool.id, name: tool.name, arguments } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_input_is_always_an_object() {
        assert_eq!(tool_input(&json!({"a": 1})), json!({"a": 1}));
        assert_eq!(tool_input(&json!("{\"a\": 1}")), json!({"a": 1}));
        assert_eq!(tool_input(&json!("{\"a\": ")), json!({"arguments": "{\"a\": "}));
        assert_eq!(tool_input(&json!([1])), json!({"arguments": [1]}));
    }

    #[test]
    fn tool_results_come_first_in_a_merged_user_turn() {
        let (system, messages) = conversation(&[
            ChatMessage::user("first"),
            ChatMessage::tool("t1", "42"),
            ChatMessage::system(""),
            ChatMessage::user(""),
        ]);
        assert_eq!(system, None);
        assert_eq!(
            messages,
            vec![json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "42"},
                {"type": "text", "text": "first"},
            ]})]
        );
    }
}
