//! Turns a streamed HTTP response into a [`ChatStream`]: bytes → SSE events
//! → the provider's decoder → chat events.
//!
//! The driver owns the response, so dropping the stream drops the response
//! and the connection with it: the provider sees the request cancelled and
//! stops generating. It also enforces the idle timeout (a stalled server
//! ends the stream with an error instead of hanging the run) and makes sure
//! events decoded before a failure still reach the consumer, in order,
//! before the error does.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use reqwest::Response;

use super::http::describe;
use super::sse::{SseEvent, SseParser};
use crate::chat::{ChatError, ChatEvent, ChatStream};

/// A provider's wire format, as a state machine over SSE events.
pub(crate) trait Decoder: Send + 'static {
    /// Handles one event, pushing what it completes to `out`. Returns true
    /// once the answer is complete (its `Finished` event pushed).
    fn event(&mut self, event: SseEvent, out: &mut VecDeque<ChatEvent>) -> Result<bool, String>;

    /// The body ended before [`Decoder::event`] returned true: push the
    /// `Finished` event if the answer can be considered complete, else fail.
    fn end(&mut self, out: &mut VecDeque<ChatEvent>) -> Result<(), String>;
}

struct Driver<D> {
    /// The response body; dropping it closes the connection.
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    parser: SseParser,
    decoder: D,
    /// Events decoded and not yet handed on.
    ready: VecDeque<ChatEvent>,
    /// The failure to hand on once `ready` is empty.
    failure: Option<String>,
    /// Nothing more is read: the answer is complete, or failed.
    done: bool,
    idle: Duration,
}

/// The answer streamed in `response`, decoded by `decoder`; failures are
/// attributed to `provider`.
pub(crate) fn chat_stream<D: Decoder>(
    response: Response,
    provider: Arc<str>,
    idle: Duration,
    decoder: D,
) -> ChatStream {
    let driver = Driver {
        body: response.bytes_stream().boxed(),
        parser: SseParser::new(),
        decoder,
        ready: VecDeque::new(),
        failure: None,
        done: false,
        idle,
    };
    let events = stream::unfold(driver, move |mut driver| {
        let provider = provider.clone();
        async move {
            loop {
                if let Some(event) = driver.ready.pop_front() {
                    return Some((Ok(event), driver));
                }
                if let Some(message) = driver.failure.take() {
                    driver.done = true;
                    return Some((Err(ChatError::Provider { provider: provider.to_string(), message }), driver));
                }
                if driver.done {
                    return None;
                }
                if let Err(message) = driver.step().await {
                    driver.failure = Some(message);
                }
            }
        }
    });
    Box::pin(events)
}

impl<D: Decoder> Driver<D> {
    /// Reads one piece of the body and decodes the events it completes.
    async fn step(&mut self) -> Result<(), String> {
        let chunk = match tokio::time::timeout(self.idle, self.body.next()).await {
            Err(_) => return Err(format!("timed out: the stream stalled, nothing received for {:?}", self.idle)),
            Ok(Some(Err(e))) => return Err(format!("the stream broke off: {}", describe(&e))),
            Ok(Some(Ok(chunk))) => chunk,
            Ok(None) => {
                self.done = true;
                let last = self.parser.finish().map_err(malformed)?;
                if let Some(event) = last
                    && self.decoder.event(event, &mut self.ready)?
                {
                    return Ok(());
                }
                return self.decoder.end(&mut self.ready);
            }
        };
        for event in self.parser.push(chunk.as_ref()).map_err(malformed)? {
            if self.decoder.event(event, &mut self.ready)? {
                self.done = true;
                break;
            }
        }
        Ok(())
    }
}

fn malformed(error: impl std::fmt::Display) -> String {
    format!("malformed stream: {error}")
}
