//! The remote providers against a real local HTTP server playing vLLM /
//! OpenAI, Anthropic and an embeddings server: what they send, how they
//! assemble streamed answers, and how they fail.

mod fake_provider;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agentd_models::{
    AnthropicChat, AnthropicConfig, ChatError, ChatEvent, ChatMessage, ChatModel, ChatRequest, ChatStream, EmbedError,
    Embedder, FinishReason, OpenAiChat, OpenAiChatConfig, OpenAiEmbedder, OpenAiEmbedderConfig, RemoteOptions,
    Sampling, ToolCall, ToolSpec, Usage,
};
use fake_provider::{
    FakeProvider, Reply, Then, data_events, fake_vector, named_events, one_chunk_per_event, pieces_of,
};
use futures::StreamExt;
use serde_json::{Value, json};

const API_KEY: &str = "sk-test-secret-4242";

/// Quick retries, patient timeouts: tests that need short timeouts set them.
fn options() -> RemoteOptions {
    RemoteOptions {
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(5),
        total_timeout: None,
        max_attempts: 3,
        backoff_base: Duration::from_millis(10),
        max_backoff: Duration::from_secs(5),
    }
}

fn openai(server: &FakeProvider, options: RemoteOptions) -> OpenAiChat {
    let mut config = OpenAiChatConfig::new("qwen", server.url("/v1"), "Qwen/Qwen2.5-7B-Instruct");
    config.api_key = Some(API_KEY.into());
    config.options = options;
    OpenAiChat::new(config).unwrap()
}

fn anthropic(server: &FakeProvider) -> AnthropicChat {
    let mut config = AnthropicConfig::new("claude", "claude-sonnet-4-5", API_KEY);
    config.base_url = server.url("");
    config.options = options();
    AnthropicChat::new(config).unwrap()
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest { messages: vec![ChatMessage::user(text)], ..ChatRequest::default() }
}

/// Every item of a stream, errors as their message.
async fn drain(mut stream: ChatStream) -> Vec<Result<ChatEvent, String>> {
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push(item.map_err(|e| e.to_string()));
    }
    items
}

/// The events of an answer that must not fail.
async fn events(model: &dyn ChatModel, request: ChatRequest) -> Vec<ChatEvent> {
    let stream = model.chat(request).await.unwrap();
    drain(stream).await.into_iter().map(|item| item.unwrap()).collect()
}

fn text(text: &str) -> ChatEvent {
    ChatEvent::Text { text: text.into() }
}

fn tool_call(id: &str, name: &str, arguments: Value) -> ChatEvent {
    ChatEvent::ToolCall { call: ToolCall { id: id.into(), name: name.into(), arguments } }
}

fn finished(reason: FinishReason, prompt_tokens: u32, completion_tokens: u32) -> ChatEvent {
    ChatEvent::Finished { reason, usage: Usage { prompt_tokens, completion_tokens } }
}

/// An OpenAI chunk whose only choice carries `delta`, and maybe a finish reason.
fn chunk(delta: Value, finish_reason: Option<&str>) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "Qwen/Qwen2.5-7B-Instruct",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    })
}

fn usage_chunk(prompt_tokens: u32, completion_tokens: u32) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    })
}

/// A streamed OpenAI answer, `[DONE]` included.
fn openai_stream(chunks: &[Value]) -> Vec<String> {
    let mut events = data_events(chunks);
    events.push("data: [DONE]\n\n".into());
    events
}

fn hello_stream() -> Vec<String> {
    openai_stream(&[
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": "Hel"}), None),
        chunk(json!({"content": "lo"}), None),
        chunk(json!({"content": ", world ☀"}), None),
        chunk(json!({}), Some("length")),
        usage_chunk(12, 4),
    ])
}

fn hello_events() -> Vec<ChatEvent> {
    vec![text("Hel"), text("lo"), text(", world ☀"), finished(FinishReason::Length, 12, 4)]
}

#[tokio::test]
async fn openai_streams_text_in_order_then_finish_reason_and_usage() {
    let server = FakeProvider::start(vec![Reply::sse(one_chunk_per_event(hello_stream()))]).await;
    let model = openai(&server, options());
    assert_eq!(model.name(), "qwen");
    assert_eq!(events(&model, ask("hi")).await, hello_events());
}

#[tokio::test]
async fn openai_stream_written_byte_by_byte_with_crlf_gives_the_same_answer() {
    let crlf = hello_stream().into_iter().map(|event| event.replace('\n', "\r\n")).collect();
    let server = FakeProvider::start(vec![Reply::sse(pieces_of(crlf, 1))]).await;
    assert_eq!(events(&openai(&server, options()), ask("hi")).await, hello_events());
}

#[tokio::test]
async fn openai_assembles_interleaved_tool_calls_from_fragments() {
    let fragment = |index: u32, first: Option<(&str, &str)>, arguments: &str| {
        let mut call = json!({"index": index, "function": {"arguments": arguments}});
        if let Some((id, name)) = first {
            call["id"] = json!(id);
            call["type"] = json!("function");
            call["function"]["name"] = json!(name);
        }
        chunk(json!({"tool_calls": [call]}), None)
    };
    let stream = openai_stream(&[
        chunk(json!({"role": "assistant", "content": "Let me check."}), None),
        fragment(0, Some(("call_a", "get_weather")), ""),
        fragment(1, Some(("call_b", "search")), "{\"q\":"),
        fragment(0, None, "{\"city\": \"Par"),
        fragment(1, None, " \"rust sse\", \"limit\": 3}"),
        fragment(0, None, "is\"}"),
        chunk(json!({}), Some("tool_calls")),
        usage_chunk(40, 22),
    ]);
    let server = FakeProvider::start(vec![Reply::sse(pieces_of(stream, 7))]).await;
    assert_eq!(
        events(&openai(&server, options()), ask("weather?")).await,
        vec![
            text("Let me check."),
            tool_call("call_a", "get_weather", json!({"city": "Paris"})),
            tool_call("call_b", "search", json!({"q": "rust sse", "limit": 3})),
            finished(FinishReason::ToolCalls, 40, 22),
        ]
    );
}

#[tokio::test]
async fn openai_arguments_that_are_not_json_are_kept_as_a_string() {
    let call = json!({"index": 0, "id": "call_x", "function": {"name": "f", "arguments": "{\"a\": tru"}});
    let stream = openai_stream(&[chunk(json!({"tool_calls": [call]}), Some("tool_calls"))]);
    let server = FakeProvider::start(vec![Reply::sse(one_chunk_per_event(stream))]).await;
    assert_eq!(
        events(&openai(&server, options()), ask("go")).await,
        vec![tool_call("call_x", "f", json!("{\"a\": tru")), finished(FinishReason::ToolCalls, 0, 0)]
    );
}

#[tokio::test]
async fn openai_request_has_the_openai_shape() {
    let stream = openai_stream(&[chunk(json!({"content": "ok"}), Some("stop"))]);
    let server = FakeProvider::start(vec![Reply::sse(one_chunk_per_event(stream))]).await;
    let mut assistant = ChatMessage::assistant("");
    assistant.tool_calls = vec![
        ToolCall { id: "call_1".into(), name: "get_weather".into(), arguments: json!({"city": "Paris"}) },
        ToolCall { id: "call_2".into(), name: "broken".into(), arguments: json!("{\"a\": tru") },
    ];
    let weather_schema = json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    let request = ChatRequest {
        messages: vec![
            ChatMessage::system("You are terse."),
            ChatMessage::user("Weather in Paris?"),
            assistant,
            ChatMessage::tool("call_1", "18 °C"),
            ChatMessage::tool("call_2", "error: bad arguments"),
            ChatMessage::assistant("It is 18 °C."),
            ChatMessage::user("Thanks"),
        ],
        tools: vec![ToolSpec {
            name: "get_weather".into(),
            description: "Current weather".into(),
            parameters: weather_schema.clone(),
        }],
        sampling: Sampling { temperature: 0.25, top_p: 0.5, max_tokens: 100, stop: vec!["END".into()], seed: Some(7) },
    };
    assert_eq!(events(&openai(&server, options()), request).await.len(), 2);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].headers["authorization"], format!("Bearer {API_KEY}"));
    assert_eq!(
        requests[0].body,
        json!({
            "model": "Qwen/Qwen2.5-7B-Instruct",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function",
                     "function": {"name": "broken", "arguments": "{\"a\": tru"}},
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18 °C"},
                {"role": "tool", "tool_call_id": "call_2", "content": "error: bad arguments"},
                {"role": "assistant", "content": "It is 18 °C."},
                {"role": "user", "content": "Thanks"},
            ],
            "tools": [{"type": "function", "function": {
                "name": "get_weather", "description": "Current weather", "parameters": weather_schema,
            }}],
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": 0.25,
            "top_p": 0.5,
            "max_tokens": 100,
            "stop": ["END"],
            "seed": 7,
        })
    );
}

#[tokio::test]
async fn openai_retries_a_429_after_the_time_it_asks_for() {
    let busy = Reply::json(429, json!({"error": {"message": "Rate limit reached", "type": "rate_limit"}}))
        .with_header("retry-after", "1");
    let stream = openai_stream(&[chunk(json!({"content": "finally"}), Some("stop"))]);
    let server = FakeProvider::start(vec![busy, Reply::sse(one_chunk_per_event(stream))]).await;
    let started = Instant::now();
    let answer = events(&openai(&server, options()), ask("hi")).await;
    assert_eq!(answer, vec![text("finally"), finished(FinishReason::Stop, 0, 0)]);
    assert_eq!(server.requests().len(), 2);
    assert!(started.elapsed() >= Duration::from_millis(950), "waited only {:?}", started.elapsed());
}

#[tokio::test]
async fn openai_gives_up_after_max_attempts_naming_provider_status_and_reason() {
    let broken = Reply::json(500, json!({"error": {"message": "the GPU is on fire", "type": "server_error"}}));
    let server = FakeProvider::start(vec![broken]).await;
    let error = openai(&server, options()).chat(ask("hi")).await.err().expect("the request must fail");
    assert_eq!(server.requests().len(), 3);
    let ChatError::Provider { provider, message } = &error else { panic!("{error:?}") };
    assert!(provider.contains("\"qwen\"") && provider.contains(&server.url("/v1")), "{provider}");
    assert!(message.contains("HTTP 500"), "{message}");
    assert!(message.contains("the GPU is on fire"), "{message}");
    assert!(message.contains("after 3 attempts"), "{message}");
    assert!(!format!("{error} {error:?}").contains(API_KEY));
}

#[tokio::test]
async fn openai_does_not_retry_a_401() {
    let refused = Reply::json(401, json!({"error": {"message": "Incorrect API key provided", "type": "auth"}}));
    let server = FakeProvider::start(vec![refused]).await;
    let error = openai(&server, options()).chat(ask("hi")).await.err().unwrap().to_string();
    assert_eq!(server.requests().len(), 1);
    assert!(error.contains("401") && error.contains("Incorrect API key provided"), "{error}");
    assert!(!error.contains("attempts") && !error.contains(API_KEY), "{error}");
}

#[tokio::test]
async fn openai_times_out_when_the_server_never_answers() {
    let server = FakeProvider::start(vec![Reply::Hang]).await;
    let options = RemoteOptions { response_timeout: Duration::from_millis(300), max_attempts: 2, ..options() };
    let started = Instant::now();
    let error = openai(&server, options).chat(ask("hi")).await.err().unwrap().to_string();
    let elapsed = started.elapsed();
    assert!(error.contains("timed out") && error.contains("after 2 attempts"), "{error}");
    assert_eq!(server.requests().len(), 2);
    // Two attempts of 300 ms each; a hang would never get here.
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
}

#[tokio::test]
async fn openai_refused_connection_is_retried_then_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let mut config = OpenAiChatConfig::new("qwen", base, "m");
    config.options = options();
    let error = OpenAiChat::new(config).unwrap().chat(ask("hi")).await.err().unwrap().to_string();
    assert!(error.contains("could not connect") && error.contains("after 3 attempts"), "{error}");
}

#[tokio::test]
async fn openai_stalled_stream_ends_with_an_idle_timeout_after_what_arrived() {
    let first = data_events(&[chunk(json!({"content": "partial"}), None)]);
    let server = FakeProvider::start(vec![Reply::sse(one_chunk_per_event(first)).then(Then::Stall)]).await;
    let options = RemoteOptions { idle_timeout: Duration::from_millis(300), ..options() };
    let stream = openai(&server, options).chat(ask("hi")).await.unwrap();
    // The server stalls forever: the stream ending at all is the timeout.
    let items = drain(stream).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0], Ok(text("partial")));
    let error = items[1].as_ref().unwrap_err();
    assert!(error.contains("stalled") && error.contains("300ms"), "{error}");
}

#[tokio::test]
async fn openai_malformed_chunk_is_an_error() {
    let mut stream = data_events(&[chunk(json!({"content": "a"}), None)]);
    stream.push("data: {\"choices\": [oops\n\n".into());
    let server = FakeProvider::start(vec![Reply::sse(one_chunk_per_event(stream))]).await;
    let items = drain(openai(&server, options()).chat(ask("hi")).await.unwrap()).await;
    assert_eq!(items[0], Ok(text("a")));
    assert!(items[1].as_ref().unwrap_err().contains("malformed stream"), "{items:?}");
    assert_eq!(items.len(), 2);
}

#[tokio::test]
async fn openai_error_sent_inside_the_stream_is_reported() {
    let mut stream = data_events(&[chunk(json!({"content": "a"}), None)]);
    stream.extend(data_events(&[json!({"error": {"message": "maximum context length exceeded", "code": 400}})]));
    let server = FakeProvider::start(vec![Reply::sse(one_chunk_per_event(stream))]).await;
    let items = drain(openai(&server, options()).chat(ask("hi")).await.unwrap()).await;
    assert_eq!(items[0], Ok(text("a")));
    let error = items[1].as_ref().unwrap_err();
    assert!(error.contains("qwen") && error.contains("maximum context length exceeded"), "{error}");
}

#[tokio::test]
async fn openai_stream_cut_before_the_finish_is_an_error() {
    let stream = data_events(&[chunk(json!({"content": "a"}), None)]);
    let server = FakeProvider::start(vec![Reply::sse(one_chunk_per_event(stream))]).await;
    let items = drain(openai(&server, options()).chat(ask("hi")).await.unwrap()).await;
    assert_eq!(items[0], Ok(text("a")));
    assert!(items[1].as_ref().unwrap_err().contains("ended before the answer finished"), "{items:?}");
}

#[tokio::test]
async fn dropping_the_stream_cancels_the_request() {
    let dropped = Arc::new(AtomicBool::new(false));
    let first = data_events(&[chunk(json!({"content": "tok"}), None)]);
    let reply = Reply::sse(one_chunk_per_event(first)).then(Then::PingUntilDropped(dropped.clone()));
    let server = FakeProvider::start(vec![reply]).await;
    let mut stream = openai(&server, options()).chat(ask("hi")).await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap(), text("tok"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!dropped.load(Ordering::SeqCst), "the server stopped streaming while the client listened");
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dropped.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the server still streams to a client that has gone");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn message_start(input_tokens: u32) -> Value {
    json!({"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5",
        "stop_reason": null, "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }})
}

fn anthropic_answer(text: &str, stop_reason: &str) -> Vec<String> {
    named_events(&[
        message_start(9),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": {"output_tokens": 3}}),
        json!({"type": "message_stop"}),
    ])
}

#[tokio::test]
async fn anthropic_streams_text_and_a_tool_use_assembled_from_json_pieces() {
    let delta = |index: u32, delta: Value| json!({"type": "content_block_delta", "index": index, "delta": delta});
    let stream = named_events(&[
        message_start(25),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
        delta(0, json!({"type": "text_delta", "text": "Checking"})),
        delta(0, json!({"type": "text_delta", "text": " the weather."})),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1,
               "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
        delta(1, json!({"type": "input_json_delta", "partial_json": ""})),
        delta(1, json!({"type": "input_json_delta", "partial_json": "{\"city\": \"Pa"})),
        delta(1, json!({"type": "input_json_delta", "partial_json": "ris\", \"days\": 2}"})),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
               "usage": {"output_tokens": 31}}),
        json!({"type": "message_stop"}),
    ]);
    let server = FakeProvider::start(vec![Reply::sse(pieces_of(stream, 5))]).await;
    let model = anthropic(&server);
    assert_eq!(model.name(), "claude");
    assert_eq!(
        events(&model, ask("weather?")).await,
        vec![
            text("Checking"),
            text(" the weather."),
            tool_call("toolu_1", "get_weather", json!({"city": "Paris", "days": 2})),
            finished(FinishReason::ToolCalls, 25, 31),
        ]
    );
}

#[tokio::test]
async fn anthropic_stop_reasons_map_to_finish_reasons() {
    let cases = [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("tool_use", FinishReason::ToolCalls),
    ];
    let replies = cases.iter().map(|(reason, _)| Reply::sse(one_chunk_per_event(anthropic_answer("x", reason))));
    let server = FakeProvider::start(replies.collect()).await;
    let model = anthropic(&server);
    for (reason, expected) in cases {
        let answer = events(&model, ask("hi")).await;
        assert_eq!(answer, vec![text("x"), finished(expected, 9, 3)], "stop_reason {reason}");
    }
}

#[tokio::test]
async fn anthropic_request_has_the_messages_api_shape() {
    let server = FakeProvider::start(vec![Reply::sse(one_chunk_per_event(anthropic_answer("ok", "end_turn")))]).await;
    let mut assistant = ChatMessage::assistant("Let me look.");
    assistant.tool_calls = vec![
        ToolCall { id: "toolu_1".into(), name: "get_weather".into(), arguments: json!({"city": "Paris"}) },
        ToolCall { id: "toolu_2".into(), name: "get_weather".into(), arguments: json!({"city": "Oslo"}) },
    ];
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    let request = ChatRequest {
        messages: vec![
            ChatMessage::system("Be brief."),
            ChatMessage::user("Weather in Paris and Oslo?"),
            assistant,
            ChatMessage::tool("toolu_1", "18 °C"),
            ChatMessage::tool("toolu_2", "3 °C"),
            ChatMessage::user("Which is warmer?"),
            ChatMessage::system("Answer in French."),
        ],
        tools: vec![ToolSpec {
            name: "get_weather".into(),
            description: "Weather now".into(),
            parameters: schema.clone(),
        }],
        sampling: Sampling {
            temperature: 1.5,
            top_p: 0.9,
            max_tokens: 256,
            stop: vec!["\n\nHuman:".into(), " ".into()],
            seed: Some(3),
        },
    };
    assert_eq!(events(&anthropic(&server), request).await, vec![text("ok"), finished(FinishReason::Stop, 9, 3)]);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.headers["x-api-key"], API_KEY);
    assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
    assert!(sent.headers.get("authorization").is_none());
    assert_eq!(
        sent.body,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 256,
            "system": "Be brief.\n\nAnswer in French.",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Oslo?"}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Oslo"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 °C"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "3 °C"},
                    {"type": "text", "text": "Which is warmer?"},
                ]},
            ],
            "tools": [{"name": "get_weather", "description": "Weather now", "input_schema": schema}],
            "stop_sequences": ["\n\nHuman:"],
            "temperature": 1.0,
            "stream": true,
        })
    );
}

#[tokio::test]
async fn anthropic_error_event_is_reported_after_what_arrived() {
    let mut stream = named_events(&[
        message_start(5),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "Hi"}}),
    ]);
    stream.extend(named_events(&[
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ]));
    let server = FakeProvider::start(vec![Reply::sse(one_chunk_per_event(stream))]).await;
    let items = drain(anthropic(&server).chat(ask("hi")).await.unwrap()).await;
    assert_eq!(items[0], Ok(text("Hi")));
    let error = items[1].as_ref().unwrap_err();
    assert!(error.contains("Anthropic") && error.contains("claude") && error.contains("Overloaded"), "{error}");
    assert_eq!(items.len(), 2);
}

#[tokio::test]
async fn anthropic_overload_status_is_retried() {
    let overloaded =
        Reply::json(529, json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}));
    let answer = Reply::sse(one_chunk_per_event(anthropic_answer("fine", "end_turn")));
    let server = FakeProvider::start(vec![overloaded, answer]).await;
    assert_eq!(events(&anthropic(&server), ask("hi")).await, vec![text("fine"), finished(FinishReason::Stop, 9, 3)]);
    assert_eq!(server.requests().len(), 2);
}

fn embedder(server: &FakeProvider, dimension: usize) -> OpenAiEmbedder {
    let mut config =
        OpenAiEmbedderConfig::new("bge-small", server.url("/v1"), "BAAI/bge-small-en-v1.5", dimension, 512);
    config.api_key = Some(API_KEY.into());
    config.options = options();
    OpenAiEmbedder::new(config).unwrap()
}

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("text {i}")).collect()
}

#[tokio::test]
async fn embeddings_come_back_in_order_normalised_in_batches_of_64() {
    let server = FakeProvider::start(vec![Reply::Embeddings { dimension: 4 }]).await;
    let embedder = embedder(&server, 4);
    assert_eq!((embedder.model_name(), embedder.dimension(), embedder.max_tokens()), ("bge-small", 4, 512));
    let texts = texts(150);
    let vectors = embedder.embed(&texts).await.unwrap();

    let requests = server.requests();
    let batches: Vec<&Vec<Value>> = requests.iter().map(|r| r.body["input"].as_array().unwrap()).collect();
    assert_eq!(batches.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![64, 64, 22]);
    assert_eq!((batches[1][0].as_str(), batches[2][21].as_str()), (Some("text 64"), Some("text 149")));
    assert_eq!(requests[0].path, "/v1/embeddings");
    assert_eq!(requests[0].body["model"], "BAAI/bge-small-en-v1.5");
    assert_eq!(requests[0].headers["authorization"], format!("Bearer {API_KEY}"));

    assert_eq!(vectors.len(), 150);
    for (text, vector) in texts.iter().zip(&vectors) {
        let raw = fake_vector(text, 4);
        let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
        for (got, want) in vector.iter().zip(&raw) {
            assert!((got - want / norm).abs() < 1e-6, "{text}: {vector:?} is not {raw:?} normalised");
        }
        let length = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((length - 1.0).abs() < 1e-6, "{text}: length {length}");
    }
    assert_eq!(embedder.embed_one("text 7").await.unwrap(), vectors[7]);
}

#[tokio::test]
async fn embeddings_of_the_wrong_dimension_are_refused() {
    let server = FakeProvider::start(vec![Reply::Embeddings { dimension: 3 }]).await;
    let error = embedder(&server, 4).embed(&texts(2)).await.unwrap_err();
    let EmbedError::Provider { provider, message } = &error else { panic!("{error:?}") };
    assert!(provider.contains("bge-small") && provider.contains(&server.url("/v1")), "{provider}");
    assert!(message.contains("3 dimensions") && message.contains("configured with 4"), "{message}");
}

#[tokio::test]
async fn embeddings_response_missing_a_vector_is_refused() {
    let partial = json!({"data": [{"index": 0, "embedding": [1.0, 0.0]}]});
    let server = FakeProvider::start(vec![Reply::json(200, partial)]).await;
    let error = embedder(&server, 2).embed(&texts(2)).await.unwrap_err().to_string();
    assert!(error.contains("no vector for input 1"), "{error}");
}

#[tokio::test]
async fn embeddings_server_errors_name_the_provider() {
    let server =
        FakeProvider::start(vec![Reply::json(400, json!({"object": "error", "message": "input too long"}))]).await;
    let error = embedder(&server, 2).embed(&texts(1)).await.unwrap_err().to_string();
    assert!(error.contains("bge-small") && error.contains("HTTP 400") && error.contains("input too long"), "{error}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn no_texts_no_request() {
    let server = FakeProvider::start(vec![Reply::Embeddings { dimension: 2 }]).await;
    assert!(embedder(&server, 2).embed(&[]).await.unwrap().is_empty());
    assert!(server.requests().is_empty());
}

#[test]
fn configurations_never_show_api_keys_and_bad_base_urls_are_refused() {
    let mut chat = OpenAiChatConfig::new("qwen", "http://localhost:8000/v1", "m");
    chat.api_key = Some(API_KEY.into());
    let anthropic = AnthropicConfig::new("claude", "claude-sonnet-4-5", API_KEY);
    let mut embed = OpenAiEmbedderConfig::new("e", "http://localhost:8000/v1", "m", 8, 512);
    embed.api_key = Some(API_KEY.into());
    for debug in [format!("{chat:?}"), format!("{anthropic:?}"), format!("{embed:?}")] {
        assert!(!debug.contains(API_KEY) && debug.contains("<redacted>"), "{debug}");
    }

    chat.base_url = "localhost:8000".into();
    let error = OpenAiChat::new(chat).unwrap_err().to_string();
    assert!(error.contains("qwen") && error.contains("http"), "{error}");
    embed.dimension = 0;
    assert!(OpenAiEmbedder::new(embed).unwrap_err().to_string().contains("dimension"));
}
