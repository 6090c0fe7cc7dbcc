//! A chat model that answers from a script: for tests of whatever drives
//! chat models (endpoints, the agent loop), where a real model's answers
//! would be slow and not exactly predictable.
//!
//! Each call to `chat` takes the next scripted answer, a list of events,
//! and records the request it was given, so a test can check both what its
//! code sent to the model and what it made of the answer.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::chat::{ChatError, ChatEvent, ChatModel, ChatRequest, ChatStream, FinishReason, ToolCall, Usage};

/// One scripted answer: events, or an error partway.
pub type ScriptedAnswer = Vec<Result<ChatEvent, ChatError>>;

/// A chat model replaying scripted answers in order.
pub struct ScriptedChatModel {
    name: String,
    supports_tools: bool,
    answers: Mutex<VecDeque<ScriptedAnswer>>,
    requests: Mutex<Vec<ChatRequest>>,
}

impl ScriptedChatModel {
    /// A model called `name` with no answers yet.
    pub fn new(name: impl Into<String>) -> Self {
        ScriptedChatModel {
            name: name.into(),
            supports_tools: true,
            answers: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
        }
    }

    /// Makes the model refuse tools, as a model without tool calling does.
    pub fn without_tools(mut self) -> Self {
        self.supports_tools = false;
        self
    }

    /// Queues an answer of arbitrary events.
    pub fn push_answer(&self, answer: ScriptedAnswer) {
        self.answers.lock().unwrap_or_else(|e| e.into_inner()).push_back(answer);
    }

    /// Queues an answer made of `pieces` of text, ending with `Stop`.
    pub fn push_text(&self, pieces: &[&str], usage: Usage) {
        let mut events: ScriptedAnswer = pieces.iter().map(|p| Ok(ChatEvent::Text { text: (*p).to_owned() })).collect();
        events.push(Ok(ChatEvent::Finished { reason: FinishReason::Stop, usage }));
        self.push_answer(events);
    }

    /// Queues an answer calling `calls`, ending with `ToolCalls`.
    pub fn push_calls(&self, calls: Vec<ToolCall>, usage: Usage) {
        let mut events: ScriptedAnswer = calls.into_iter().map(|call| Ok(ChatEvent::ToolCall { call })).collect();
        events.push(Ok(ChatEvent::Finished { reason: FinishReason::ToolCalls, usage }));
        self.push_answer(events);
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait]
impl ChatModel for ScriptedChatModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn supports_tools(&self) -> bool {
        self.supports_tools
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatStream, ChatError> {
        if !self.supports_tools && !request.tools.is_empty() {
            return Err(ChatError::InvalidRequest(format!("model {} cannot call tools", self.name)));
        }
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).push(request);
        let answer = self.answers.lock().unwrap_or_else(|e| e.into_inner()).pop_front().ok_or_else(|| {
            ChatError::Provider { provider: self.name.clone(), message: "the script has no more answers".into() }
        })?;
        Ok(Box::pin(futures::stream::iter(answer)))
    }
}
