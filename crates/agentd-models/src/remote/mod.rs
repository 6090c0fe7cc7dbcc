//! Models served by someone else: OpenAI-compatible chat and embedding
//! servers (vLLM, llama.cpp, Ollama, OpenAI) and Anthropic's Messages API.
//!
//! Each provider is a thin translation between our types and its wire
//! format; what they share (the HTTP client, timeouts, retries, error
//! wording, the SSE parser and the driving of a streamed answer) lives in
//! the private modules beside them, so every provider fails the same way.

mod anthropic;
mod embeddings;
mod http;
mod openai;
mod sse;
mod stream;

use std::time::Duration;

pub use anthropic::{AnthropicChat, AnthropicConfig};
pub use embeddings::{OpenAiEmbedder, OpenAiEmbedderConfig};
pub use openai::{OpenAiChat, OpenAiChatConfig};

/// How patiently a remote provider is called. The defaults suit a model
/// server on the same network as well as a public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteOptions {
    /// Opening the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// From sending a request to its response headers; for a response that
    /// is not streamed (embeddings, error bodies), to the end of its body.
    pub response_timeout: Duration,
    /// The longest silence allowed between two pieces of a streamed answer.
    /// Models that think before answering may need more.
    pub idle_timeout: Duration,
    /// An upper bound on a whole request, streamed body included; `None`
    /// lets a long answer stream as long as it keeps making progress.
    pub total_timeout: Option<Duration>,
    /// Tries per request, the first included (0 counts as 1). Connection
    /// failures, timeouts before the response, 408, 429 and 5xx are retried;
    /// nothing is retried once a response has been accepted, so a consumer
    /// never sees an event twice.
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles with each further one,
    /// and a random part of it is dropped (jitter) so that clients do not
    /// retry in lockstep.
    pub backoff_base: Duration,
    /// The longest wait between two tries. A server asking (`Retry-After`)
    /// for a longer wait than this is not retried: its error is returned.
    pub max_backoff: Duration,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(120),
            total_timeout: None,
            max_attempts: 3,
            backoff_base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}
