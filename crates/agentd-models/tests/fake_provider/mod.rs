//! A real HTTP server on 127.0.0.1 that plays a model provider from a
//! script, and remembers what it was asked.
//!
//! The remote providers are tested against this rather than against mocks of
//! their HTTP client: the bytes go through a socket, so timeouts, split
//! chunks, retries and cancelled connections behave as they do in
//! production.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::{Value, json};

/// What the fake provider answers to one request.
#[derive(Clone)]
pub enum Reply {
    /// This status and headers, then the body in these pieces, each written
    /// separately, then what `then` says.
    Body { status: u16, headers: Vec<(&'static str, String)>, chunks: Vec<Vec<u8>>, then: Then },
    /// Accepts the request and never answers.
    Hang,
    /// An embeddings response computed from the request (see [`fake_vector`]),
    /// its items in reverse order.
    Embeddings { dimension: usize },
}

/// How a streamed body ends.
#[derive(Clone)]
pub enum Then {
    /// The body ends.
    End,
    /// The connection stays open and nothing more is sent.
    Stall,
    /// An SSE comment every 20 ms, forever; the flag is raised when the
    /// server drops the body, which it does once the client has gone.
    PingUntilDropped(Arc<AtomicBool>),
}

impl Reply {
    /// A 200 SSE response, its body written in the pieces given.
    pub fn sse(chunks: Vec<Vec<u8>>) -> Reply {
        Reply::Body {
            status: 200,
            headers: vec![("content-type", "text/event-stream".into())],
            chunks,
            then: Then::End,
        }
    }

    /// A JSON response with this status.
    pub fn json(status: u16, body: Value) -> Reply {
        Reply::Body {
            status,
            headers: vec![("content-type", "application/json".into())],
            chunks: vec![body.to_string().into_bytes()],
            then: Then::End,
        }
    }

    /// The same reply with one more header.
    pub fn with_header(mut self, name: &'static str, value: &str) -> Reply {
        if let Reply::Body { headers, .. } = &mut self {
            headers.push((name, value.to_owned()));
        }
        self
    }

    /// The same reply, ending as `then` says.
    pub fn then(mut self, how: Then) -> Reply {
        if let Reply::Body { then, .. } = &mut self {
            *then = how;
        }
        self
    }
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

struct Script {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
}

/// A running fake provider; it stops with the test's runtime.
pub struct FakeProvider {
    pub addr: SocketAddr,
    script: Arc<Script>,
}

impl FakeProvider {
    /// Starts a server answering requests with `replies` in turn; the last
    /// reply answers every request after it.
    pub async fn start(replies: Vec<Reply>) -> FakeProvider {
        assert!(!replies.is_empty());
        let script = Arc::new(Script { replies: Mutex::new(replies.into()), requests: Mutex::default() });
        let app = Router::new().fallback(answer).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeProvider { addr, script }
    }

    /// `http://127.0.0.1:port` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.script.requests.lock().unwrap().clone()
    }
}

async fn answer(State(script): State<Arc<Script>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    script.requests.lock().unwrap().push(Recorded { path: uri.path().to_owned(), headers, body: body.clone() });
    let reply = {
        let mut replies = script.replies.lock().unwrap();
        if replies.len() > 1 { replies.pop_front().unwrap() } else { replies[0].clone() }
    };
    match reply {
        Reply::Hang => std::future::pending().await,
        Reply::Embeddings { dimension } => embeddings(&body, dimension),
        Reply::Body { status, headers, chunks, then } => {
            let pieces = stream::iter(chunks).map(|chunk| Ok::<_, Infallible>(Bytes::from(chunk)));
            let body: BoxStream<'static, Result<Bytes, Infallible>> = match then {
                Then::End => pieces.boxed(),
                Then::Stall => pieces.chain(stream::pending()).boxed(),
                Then::PingUntilDropped(flag) => pieces.chain(pings(RaiseOnDrop(flag))).boxed(),
            };
            let mut response = Response::builder().status(StatusCode::from_u16(status).unwrap());
            for (name, value) in headers {
                response = response.header(name, value);
            }
            response.body(Body::from_stream(body)).unwrap()
        }
    }
}

struct RaiseOnDrop(Arc<AtomicBool>);

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn pings(guard: RaiseOnDrop) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send {
    stream::unfold(guard, |guard| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Some((Ok(Bytes::from_static(b": ping\n\n")), guard))
    })
}

/// The fake model's vector of a text `"text N"`: `[N + 1, 1, 2, …]`, not of
/// unit length, so that the client has to normalise it.
pub fn fake_vector(text: &str, dimension: usize) -> Vec<f32> {
    let n: f32 = text.trim_start_matches("text ").parse().unwrap();
    (0..dimension).map(|j| if j == 0 { n + 1.0 } else { j as f32 }).collect()
}

fn embeddings(request: &Value, dimension: usize) -> Response {
    let inputs = request["input"].as_array().unwrap();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(index, text)| {
            json!({"object": "embedding", "index": index, "embedding": fake_vector(text.as_str().unwrap(), dimension)})
        })
        .collect();
    let body = json!({"object": "list", "data": data, "model": request["model"], "usage": {"prompt_tokens": 1, "total_tokens": 1}});
    Response::builder().header("content-type", "application/json").body(Body::from(body.to_string())).unwrap()
}

/// `data: {json}` events, one string per event.
pub fn data_events(events: &[Value]) -> Vec<String> {
    events.iter().map(|event| format!("data: {event}\n\n")).collect()
}

/// Anthropic's `event: {type}` + `data: {json}` events, one string per event.
pub fn named_events(events: &[Value]) -> Vec<String> {
    events.iter().map(|event| format!("event: {}\ndata: {event}\n\n", event["type"].as_str().unwrap())).collect()
}

/// Each event written as its own piece.
pub fn one_chunk_per_event(events: Vec<String>) -> Vec<Vec<u8>> {
    events.into_iter().map(String::into_bytes).collect()
}

/// The events written in pieces of `size` bytes, cutting through lines,
/// field names and characters.
pub fn pieces_of(events: Vec<String>, size: usize) -> Vec<Vec<u8>> {
    events.concat().into_bytes().chunks(size).map(<[u8]>::to_vec).collect()
}
