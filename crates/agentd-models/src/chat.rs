//! The chat-model seam: what every chat model, local or remote, takes and
//! gives back.
//!
//! A request is a conversation (system, user, assistant and tool messages),
//! the tools the model may call (JSON Schema), and sampling parameters. The
//! answer is a stream: text pieces and tool calls as they are decided, then
//! one final event with the finish reason and token usage. Dropping the
//! stream is how a consumer says it is no longer listening; implementations
//! stop generating promptly when that happens.

use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;
use serde::{Deserialize, Serialize};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    System,
    User,
    Assistant,
    Tool,
}

/// A tool invocation decided by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Unique within the conversation; tool results refer to it.
    pub id: String,
    /// The tool's name, as declared in [`ToolSpec::name`].
    pub name: String,
    /// The arguments, a JSON object.
    pub arguments: serde_json::Value,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: ChatRole,
    /// The text; may be empty for an assistant message that only calls tools.
    pub content: String,
    /// Tool calls made by an assistant message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a tool message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A message with text only.
    pub fn new(role: ChatRole, content: impl Into<String>) -> Self {
        ChatMessage { role, content: content.into(), tool_calls: Vec::new(), tool_call_id: None }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(ChatRole::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(ChatRole::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(ChatRole::Assistant, content)
    }

    /// A tool's result, answering call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage { tool_call_id: Some(tool_call_id.into()), ..Self::new(ChatRole::Tool, content) }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// How to sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// 0 means greedy.
    pub temperature: f32,
    pub top_p: f32,
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Texts that end the answer when generated (not included in it).
    pub stop: Vec<String>,
    /// For reproducible sampling.
    pub seed: Option<u64>,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling { temperature: 0.7, top_p: 0.95, max_tokens: 512, stop: Vec::new(), seed: None }
    }
}

/// What to ask a chat model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
    pub sampling: Sampling,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its turn, or a stop text was generated.
    Stop,
    /// `max_tokens` (or the context window) was reached.
    Length,
    /// The model called tools and waits for their results.
    ToolCalls,
}

/// Tokens consumed by one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// One event of a chat answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatEvent {
    /// A piece of the answer's text.
    Text { text: String },
    /// A complete tool call.
    ToolCall { call: ToolCall },
    /// The last event: why it ended and what it cost.
    Finished { reason: FinishReason, usage: Usage },
}

/// What can go wrong asking a chat model.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The request cannot be served as asked (e.g. the prompt does not fit).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The model has more requests waiting than it accepts; try again later.
    #[error("{0}")]
    Busy(String),
    /// The model (local engine or remote provider) failed.
    #[error("{provider} failed: {message}")]
    Provider { provider: String, message: String },
}

/// The events of one answer, in order, ending with [`ChatEvent::Finished`]
/// (unless an error ends it first).
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<ChatEvent, ChatError>> + Send>>;

/// A chat model: a conversation in, a stream of events out.
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// The name the model is configured and listed under.
    fn name(&self) -> &str;

    /// Whether the model can be given tools. One that cannot refuses a
    /// request with tools instead of ignoring them.
    fn supports_tools(&self) -> bool {
        true
    }

    /// Starts answering `request`. Errors found before generation starts
    /// are returned here; later ones arrive on the stream.
    async fn chat(&self, request: ChatRequest) -> Result<ChatStream, ChatError>;
}

/// A whole answer, gathered from a stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatAnswer {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<FinishReason>,
    pub usage: Usage,
}

impl ChatAnswer {
    /// Reads `stream` to its end.
    pub async fn collect(mut stream: ChatStream) -> Result<ChatAnswer, ChatError> {
        use futures::StreamExt;
        let mut answer = ChatAnswer::default();
        while let Some(event) = stream.next().await {
            match event? {
                ChatEvent::Text { text } => answer.text.push_str(&text),
                ChatEvent::ToolCall { call } => answer.tool_calls.push(call),
                ChatEvent::Finished { reason, usage } => {
                    answer.finish_reason = Some(reason);
                    answer.usage = usage;
                }
            }
        }
        Ok(answer)
    }
}
