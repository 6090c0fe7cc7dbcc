//! OpenAI's chat-completion shapes, and their translation to and from
//! agentd's [`ChatRequest`] and events.
//!
//! Requests are read leniently where clients differ harmlessly (content as
//! a string or as text parts, `max_tokens` or `max_completion_tokens`,
//! `developer` for `system`, fields agentd has no use for) and strictly
//! where a silent difference would mislead (several choices, log
//! probabilities, forced tool choice, JSON modes).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use agentd_store::strict_json::{object, object_opt, objects, whole_opt};

use agentd_models::{ChatMessage, ChatRequest, ChatRole, FinishReason, Sampling, ToolCall, ToolSpec, Usage};

use crate::error::ApiError;

/// Most tokens one answer may ask for.
pub const MAX_TOKENS_LIMIT: u32 = 32_768;

/// A chat completion request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    /// The chat model; `GET /v1/models` lists them.
    pub model: String,
    /// At least one; the fields a message may have depend on its role.
    #[serde(deserialize_with = "objects")]
    #[schema(min_items = 1, value_type = Vec<super::chat_schema::ChatRequestMessage>)]
    pub messages: Vec<WireMessage>,
    #[serde(default, deserialize_with = "objects")]
    pub tools: Vec<WireTool>,
    /// `auto` (default) or `none`.
    #[schema(value_type = Option<super::chat_schema::ToolChoice>)]
    pub tool_choice: Option<Value>,
    /// 0 to 2; 0 is greedy. Default 1.
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    /// Nucleus sampling, (0, 1]. Default 1.
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub top_p: Option<f64>,
    /// Most tokens to generate, 1 to 32,768 (default 1,024); `max_completion_tokens` wins when both are given.
    #[serde(default, deserialize_with = "whole_opt")]
    #[schema(minimum = 1, maximum = 32768)]
    pub max_tokens: Option<u32>,
    #[serde(default, deserialize_with = "whole_opt")]
    #[schema(minimum = 1, maximum = 32768)]
    pub max_completion_tokens: Option<u32>,
    /// Up to 4 texts that end the answer.
    #[schema(value_type = Option<super::chat_schema::StopTexts>)]
    pub stop: Option<Value>,
    #[serde(default, deserialize_with = "whole_opt")]
    pub seed: Option<i64>,
    /// Answer as server-sent events.
    #[serde(default)]
    pub stream: bool,
    #[serde(default, deserialize_with = "object_opt")]
    pub stream_options: Option<StreamOptions>,
    /// Only 1 is supported.
    #[serde(default, deserialize_with = "whole_opt")]
    #[schema(minimum = 1, maximum = 1)]
    pub n: Option<u32>,
    /// Not supported when true.
    #[schema(value_type = Option<super::chat_schema::NoLogprobs>)]
    pub logprobs: Option<bool>,
    /// Only `{"type": "text"}` is supported.
    #[schema(value_type = Option<super::chat_schema::TextFormat>)]
    pub response_format: Option<Value>,
}

/// `stream_options`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with the usage.
    #[serde(default)]
    pub include_usage: bool,
}

/// A message of the conversation; its schema is
/// [`super::chat_schema::ChatRequestMessage`].
#[derive(Debug, Deserialize)]
pub struct WireMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// A string, an array of `{"type": "text", "text": …}` parts, or null.
    pub content: Option<Value>,
    #[serde(default, deserialize_with = "objects")]
    pub tool_calls: Vec<WireToolCall>,
    pub tool_call_id: Option<String>,
    /// Accepted and ignored.
    pub name: Option<String>,
}

/// A tool call, as requests carry them back and responses give them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WireToolCall {
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(deserialize_with = "object")]
    pub function: WireFunctionCall,
}

/// The function of a tool call; `arguments` is a JSON text.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WireFunctionCall {
    pub name: String,
    pub arguments: String,
}

/// A tool the model may call.
#[derive(Debug, Deserialize, ToSchema)]
pub struct WireTool {
    /// Always `function`.
    #[serde(rename = "type")]
    #[schema(pattern = "^function$")]
    pub kind: String,
    #[serde(deserialize_with = "object")]
    pub function: WireFunction,
}

/// A function declaration.
#[derive(Debug, Deserialize, ToSchema)]
pub struct WireFunction {
    #[schema(pattern = "^[a-zA-Z0-9_-]{1,64}$")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the arguments.
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
}

/// The answer message.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AnswerMessage {
    pub role: String,
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub tool_calls: Vec<WireToolCall>,
}

/// One choice (there is only ever one).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Choice {
    pub index: u32,
    pub message: AnswerMessage,
    /// `stop`, `length` or `tool_calls`.
    pub finish_reason: String,
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<Value>,
}

/// Tokens used.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct WireUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

impl From<Usage> for WireUsage {
    fn from(usage: Usage) -> Self {
        WireUsage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.prompt_tokens.saturating_add(usage.completion_tokens),
        }
    }
}

/// A whole (non-streamed) completion.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChatCompletion {
    pub id: String,
    /// Always `chat.completion`.
    pub object: String,
    pub created: i64,
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: WireUsage,
}

/// OpenAI's name of a finish reason.
pub fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
    }
}

/// A tool call as OpenAI writes it.
pub fn wire_call(call: &ToolCall) -> WireToolCall {
    WireToolCall {
        id: call.id.clone(),
        kind: "function".into(),
        function: WireFunctionCall { name: call.name.clone(), arguments: call.arguments.to_string() },
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_request", message)
}

/// The text of a message's `content`.
fn content_text(content: Option<Value>, index: usize) -> Result<String, ApiError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for part in parts {
                match (part.get("type").and_then(Value::as_str), part.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(piece)) => text.push_str(piece),
                    (kind, _) => {
                        return Err(invalid(format!(
                            "messages[{index}]: content parts of type {} are not supported; only text",
                            kind.unwrap_or("(none)")
                        )));
                    }
                }
            }
            Ok(text)
        }
        Some(_) => Err(invalid(format!("messages[{index}].content must be a string or an array of text parts"))),
    }
}

fn message(wire: WireMessage, index: usize) -> Result<ChatMessage, ApiError> {
    let role = match wire.role.as_str() {
        "system" | "developer" => ChatRole::System,
        "user" => ChatRole::User,
        "assistant" => ChatRole::Assistant,
        "tool" => ChatRole::Tool,
        other => {
            return Err(invalid(format!(
                "messages[{index}].role {other:?} is not one of system, developer, user, assistant, tool"
            )));
        }
    };
    let content = content_text(wire.content, index)?;
    let mut message = ChatMessage::new(role, content);
    match role {
        ChatRole::Tool => {
            let id = wire.tool_call_id.filter(|id| !id.is_empty());
            message.tool_call_id =
                Some(id.ok_or_else(|| invalid(format!("messages[{index}]: a tool message needs tool_call_id")))?);
        }
        ChatRole::Assistant => {
            for call in wire.tool_calls {
                // Models sometimes write arguments that are not JSON, and
                // clients send the conversation back as it was: kept as
                // the text they are rather than refusing the conversation.
                let arguments =
                    serde_json::from_str(&call.function.arguments).unwrap_or(Value::String(call.function.arguments));
                message.tool_calls.push(ToolCall { id: call.id, name: call.function.name, arguments });
            }
        }
        _ if !wire.tool_calls.is_empty() => {
            return Err(invalid(format!("messages[{index}]: only assistant messages carry tool_calls")));
        }
        _ => {}
    }
    Ok(message)
}

fn tool(wire: WireTool, index: usize) -> Result<ToolSpec, ApiError> {
    if wire.kind != "function" {
        return Err(invalid(format!("tools[{index}].type must be function")));
    }
    let name = wire.function.name;
    let valid_name =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        return Err(invalid(format!("tools[{index}].function.name must be 1 to 64 of a-z, A-Z, 0-9, _ and -")));
    }
    let parameters =
        wire.function.parameters.unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}}));
    if !parameters.is_object() {
        return Err(invalid(format!("tools[{index}].function.parameters must be a JSON Schema object")));
    }
    Ok(ToolSpec { name, description: wire.function.description, parameters })
}

fn stops(stop: Option<Value>) -> Result<Vec<String>, ApiError> {
    let stops = match stop {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => vec![text],
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(text) => Ok(text),
                _ => Err(invalid("stop must be a string or an array of strings")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid("stop must be a string or an array of strings")),
    };
    if stops.len() > 4 {
        return Err(invalid("at most 4 stop sequences"));
    }
    Ok(stops)
}

impl ChatCompletionRequest {
    /// The agentd request this asks for, or why it cannot be served.
    pub fn into_chat_request(self) -> Result<ChatRequest, ApiError> {
        if self.messages.is_empty() {
            return Err(invalid("messages must not be empty"));
        }
        if self.n.is_some_and(|n| n != 1) {
            return Err(invalid("only n=1 is supported"));
        }
        if self.logprobs == Some(true) {
            return Err(invalid("logprobs are not supported"));
        }
        if let Some(format) = &self.response_format
            && format.get("type").and_then(Value::as_str) != Some("text")
        {
            return Err(invalid("only response_format {\"type\": \"text\"} is supported"));
        }
        let temperature = self.temperature.unwrap_or(1.0);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(invalid("temperature must be between 0 and 2"));
        }
        let top_p = self.top_p.unwrap_or(1.0);
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(invalid("top_p must be greater than 0 and at most 1"));
        }
        for given in [self.max_tokens, self.max_completion_tokens].into_iter().flatten() {
            if given == 0 || given > MAX_TOKENS_LIMIT {
                return Err(invalid(format!("max_tokens must be between 1 and {MAX_TOKENS_LIMIT}")));
            }
        }
        let max_tokens = self.max_completion_tokens.or(self.max_tokens).unwrap_or(1024);
        let use_tools = match self.tool_choice.as_ref() {
            None => true,
            Some(Value::String(choice)) if choice == "auto" => true,
            Some(Value::String(choice)) if choice == "none" => false,
            Some(_) => {
                return Err(invalid("tool_choice must be \"auto\" or \"none\"; forcing a tool is not supported"));
            }
        };
        let messages =
            self.messages.into_iter().enumerate().map(|(i, m)| message(m, i)).collect::<Result<Vec<_>, _>>()?;
        let tools = self.tools.into_iter().enumerate().map(|(i, t)| tool(t, i)).collect::<Result<Vec<_>, _>>()?;
        // Checked as the f64s JSON numbers are; a top_p too small for an
        // f32 is still the smallest nucleus there is, not none.
        let (temperature, top_p) = (temperature as f32, (top_p as f32).max(f32::MIN_POSITIVE));
        let sampling =
            Sampling { temperature, top_p, max_tokens, stop: stops(self.stop)?, seed: self.seed.map(|s| s as u64) };
        Ok(ChatRequest { messages, tools: if use_tools { tools } else { Vec::new() }, sampling })
    }
}
