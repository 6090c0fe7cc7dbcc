//! A chat model on any OpenAI-compatible server: vLLM, llama.cpp's server,
//! Ollama, OpenAI itself.
//!
//! Answers are always streamed (`stream: true`, with
//! `stream_options.include_usage` so the last chunk reports token usage).
//! Tool calls arrive in fragments keyed by `index`: the first carries the
//! call's id and name, later ones pieces of its JSON arguments, and several
//! calls may interleave. They are assembled here and handed on whole, when
//! the server gives its finish reason. Servers differ in small ways, and the
//! decoder is lenient where that costs nothing: a missing call id is
//! generated, arguments sent as an object are accepted, arguments that are
//! not valid JSON are kept as a JSON string, a server that reports no usage
//! reports zeros, and `finish_reason: "stop"` after tool calls (older Ollama)
//! is read as [`FinishReason::ToolCalls`].

use std::collections::{BTreeMap, VecDeque};
use std::hash::{BuildHasher, RandomState};

use async_trait::async_trait;
use reqwest::Url;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::RemoteOptions;
use super::http::{BaseUrl, Endpoint, json_error_message, secret_header};
use super::sse::SseEvent;
use super::stream::{Decoder, chat_stream};
use crate::chat::{
    ChatError, ChatEvent, ChatMessage, ChatModel, ChatRequest, ChatRole, ChatStream, FinishReason, ToolCall, Usage,
};

/// Where and what to ask on an OpenAI-compatible server.
#[derive(Clone)]
pub struct OpenAiChatConfig {
    /// The name agentd lists the model under.
    pub name: String,
    /// The API's base URL, up to and including `/v1`, e.g.
    /// `http://gpu-1:8000/v1`; requests go to `{base_url}/chat/completions`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …`; local servers usually need none.
    pub api_key: Option<String>,
    /// The model id the server knows, sent as `model`.
    pub model: String,
    /// Timeouts and retries.
    pub options: RemoteOptions,
}

impl OpenAiChatConfig {
    /// A configuration without an API key and with default options.
    pub fn new(name: impl Into<String>, base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiChatConfig {
            name: name.into(),
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            options: RemoteOptions::default(),
        }
    }
}

/// Never prints the API key.
impl std::fmt::Debug for OpenAiChatConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiChatConfig")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("options", &self.options)
            .finish()
    }
}

/// A chat model served by an OpenAI-compatible server.
#[derive(Debug)]
pub struct OpenAiChat {
    name: String,
    model: String,
    url: Url,
    endpoint: Endpoint,
}

impl OpenAiChat {
    /// Checks the configuration and builds the HTTP client; nothing is sent yet.
    pub fn new(config: OpenAiChatConfig) -> Result<OpenAiChat, ChatError> {
        let failed = |provider: String| move |message| ChatError::Provider { provider, message };
        let base = BaseUrl::parse(&config.base_url)
            .map_err(failed(format!("OpenAI-compatible chat model {:?}", config.name)))?;
        let label = format!("OpenAI-compatible chat model {:?} at {}", config.name, base.redacted());
        let mut headers = HeaderMap::new();
        if let Some(key) = config.api_key.as_deref().filter(|k| !k.is_empty()) {
            let (name, value) =
                secret_header("authorization", &format!("Bearer {key}")).map_err(failed(label.clone()))?;
            headers.insert(name, value);
        }
        let endpoint = Endpoint::new(label.clone(), headers, config.options).map_err(failed(label))?;
        Ok(OpenAiChat { name: config.name, model: config.model, url: base.join("chat/completions"), endpoint })
    }

    /// The JSON body of a request.
    fn body(&self, request: &ChatRequest) -> Value {
        let sampling = &request.sampling;
        let mut body = json!({
            "model": self.model,
            "messages": request.messages.iter().map(message).collect::<Vec<_>>(),
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        });
        if !sampling.stop.is_empty() {
            body["stop"] = json!(sampling.stop);
        }
        if let Some(seed) = sampling.seed {
            body["seed"] = json!(seed);
        }
        if !request.tools.is_empty() {
            let tools = request.tools.iter().map(|tool| {
                json!({
                    "type": "function",
                    "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
                })
            });
            body["tools"] = Value::Array(tools.collect());
        }
        body
    }
}

/// One message in OpenAI's shape.
fn message(message: &ChatMessage) -> Value {
    match message.role {
        ChatRole::System => json!({"role": "system", "content": message.content}),
        ChatRole::User => json!({"role": "user", "content": message.content}),
        ChatRole::Tool => json!({
            "role": "tool",
            "tool_call_id": message.tool_call_id.as_deref().unwrap_or_default(),
            "content": message.content,
        }),
        ChatRole::Assistant if message.tool_calls.is_empty() => {
            json!({"role": "assistant", "content": message.content})
        }
        ChatRole::Assistant => {
            let calls = message.tool_calls.iter().map(|call| {
                json!({
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": arguments_text(&call.arguments)},
                })
            });
            let content = if message.content.is_empty() { Value::Null } else { json!(message.content) };
            json!({"role": "assistant", "content": content, "tool_calls": calls.collect::<Vec<_>>()})
        }
    }
}

/// Arguments as the JSON text OpenAI expects. A string is arguments that
/// did not parse when they were received: they go back exactly as they came.
fn arguments_text(arguments: &Value) -> String {
    match arguments {
        Value::String(raw) => raw.clone(),
        other => other.to_string(),
    }
}

#[async_trait]
impl ChatModel for OpenAiChat {
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
        Ok(chat_stream(response, provider.clone(), self.endpoint.options().idle_timeout, OpenAiDecoder::default()))
    }
}

/// One `chat.completion.chunk`, with only the fields read.
#[derive(Deserialize)]
struct Chunk {
    choices: Option<Vec<Choice>>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    index: u32,
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    index: Option<usize>,
    id: Option<String>,
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    arguments: Option<Value>,
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

/// A tool call whose fragments are still arriving.
#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// OpenAI's chunk stream as a state machine.
#[derive(Default)]
struct OpenAiDecoder {
    /// Calls being assembled, by their `index`.
    calls: BTreeMap<usize, PartialCall>,
    /// The index the last fragment went to (for servers that omit `index`).
    last_index: usize,
    emitted_calls: bool,
    reason: Option<FinishReason>,
    usage: Usage,
}

impl Decoder for OpenAiDecoder {
    fn event(&mut self, event: SseEvent, out: &mut VecDeque<ChatEvent>) -> Result<bool, String> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.flush_calls(out);
            out.push_back(self.finished(FinishReason::Stop));
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let json: Value = serde_json::from_str(data).map_err(|e| format!("malformed stream: {e} in {data:?}"))?;
        if event.event == "error"
            || json.get("error").is_some_and(|e| !e.is_null())
            || json.get("object").is_some_and(|o| o == "error")
        {
            let message = json_error_message(&json).unwrap_or_else(|| data.to_owned());
            return Err(format!("error in the stream: {message}"));
        }
        let chunk: Chunk = serde_json::from_value(json).map_err(|e| format!("malformed stream: {e} in {data:?}"))?;
        if let Some(usage) = chunk.usage {
            let tokens = |n: Option<u64>| n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
            self.usage = Usage {
                prompt_tokens: tokens(usage.prompt_tokens),
                completion_tokens: tokens(usage.completion_tokens),
            };
        }
        // agentd asks for one choice; a server sending more is ignored past the first.
        for choice in chunk.choices.unwrap_or_default().into_iter().filter(|c| c.index == 0) {
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    out.push_back(ChatEvent::Text { text });
                }
                for fragment in delta.tool_calls.unwrap_or_default() {
                    self.add_fragment(fragment);
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.reason = Some(match reason.as_str() {
                    "length" | "max_tokens" => FinishReason::Length,
                    "tool_calls" | "function_call" => FinishReason::ToolCalls,
                    _ => FinishReason::Stop,
                });
                self.flush_calls(out);
            }
        }
        Ok(false)
    }

    fn end(&mut self, out: &mut VecDeque<ChatEvent>) -> Result<(), String> {
        if self.reason.is_none() {
            return Err("malformed stream: it ended before the answer finished (no finish_reason, no [DONE])".into());
        }
        self.flush_calls(out);
        out.push_back(self.finished(FinishReason::Stop));
        Ok(())
    }
}

impl OpenAiDecoder {
    fn add_fragment(&mut self, fragment: ToolCallDelta) {
        let index = fragment.index.unwrap_or_else(|| match &fragment.id {
            // Without an index, a new id starts a new call.
            Some(id) if self.calls.get(&self.last_index).is_some_and(|c| !c.id.is_empty() && c.id != *id) => {
                self.calls.keys().next_back().map_or(0, |last| last + 1)
            }
            _ => self.last_index,
        });
        self.last_index = index;
        let call = self.calls.entry(index).or_default();
        if let Some(id) = fragment.id.filter(|id| !id.is_empty())
            && call.id.is_empty()
        {
            call.id = id;
        }
        let Some(function) = fragment.function else { return };
        // Some servers repeat the name in every fragment: the first one counts.
        if let Some(name) = function.name.filter(|n| !n.is_empty())
            && call.name.is_empty()
        {
            call.name = name;
        }
        match function.arguments {
            Some(Value::String(piece)) => call.arguments.push_str(&piece),
            Some(Value::Null) | None => {}
            Some(whole) => call.arguments = whole.to_string(),
        }
    }

    /// Hands on every call assembled so far, in index order.
    fn flush_calls(&mut self, out: &mut VecDeque<ChatEvent>) {
        for (index, call) in std::mem::take(&mut self.calls) {
            self.emitted_calls = true;
            let id = if call.id.is_empty() { generated_id(index) } else { call.id };
            let arguments = match call.arguments.trim() {
                "" => json!({}),
                text => serde_json::from_str(text).unwrap_or(Value::String(call.arguments)),
            };
            out.push_back(ChatEvent::ToolCall { call: ToolCall { id, name: call.name, arguments } });
        }
    }

    /// The last event; `default` is the reason when the server gave none.
    fn finished(&self, default: FinishReason) -> ChatEvent {
        let reason = match self.reason.unwrap_or(default) {
            FinishReason::Stop if self.emitted_calls => FinishReason::ToolCalls,
            reason => reason,
        };
        ChatEvent::Finished { reason, usage: self.usage }
    }
}

/// An id for a call the server sent without one; tool results must refer
/// to something unique in the conversation.
fn generated_id(index: usize) -> String {
    format!("call_{index}_{:016x}", RandomState::new().hash_one(index))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&str]) -> Result<Vec<ChatEvent>, String> {
        let mut decoder = OpenAiDecoder::default();
        let mut out = VecDeque::new();
        for data in chunks {
            if decoder.event(SseEvent { event: String::new(), data: (*data).to_owned() }, &mut out)? {
                return Ok(out.into());
            }
        }
        decoder.end(&mut out)?;
        Ok(out.into())
    }

    #[test]
    fn fragments_without_index_are_told_apart_by_id() {
        let events = decode(&[
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{\"x\":"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"1}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"b","function":{"name":"g","arguments":{"y":2}}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        ])
        .unwrap();
        let call = |id: &str, name: &str, arguments| ChatEvent::ToolCall {
            call: ToolCall { id: id.into(), name: name.into(), arguments },
        };
        assert_eq!(
            events,
            vec![
                call("a", "f", json!({"x": 1})),
                call("b", "g", json!({"y": 2})),
                ChatEvent::Finished { reason: FinishReason::ToolCalls, usage: Usage::default() },
            ]
        );
    }

    #[test]
    fn a_call_without_id_gets_one_and_empty_arguments_are_an_empty_object() {
        let events = decode(&[
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"now"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            "[DONE]",
        ])
        .unwrap();
        let ChatEvent::ToolCall { call } = &events[0] else { panic!("{events:?}") };
        assert!(call.id.starts_with("call_0_"), "{}", call.id);
        assert_eq!(call.arguments, json!({}));
    }

    #[test]
    fn arguments_that_did_not_parse_go_back_verbatim() {
        assert_eq!(arguments_text(&Value::String("{\"a\": tru".into())), "{\"a\": tru");
        assert_eq!(arguments_text(&json!({"a": true})), "{\"a\":true}");
    }
}
