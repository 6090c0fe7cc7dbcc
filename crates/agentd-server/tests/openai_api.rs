//! The OpenAI-compatible endpoints through the real router, with a
//! scripted chat model and a small deterministic embedder: request and
//! response shapes, streaming, and every way a request can be refused.
//! (The end-to-end test with the official Python client and the real local
//! models is in the `agentd` crate.)

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::StatusCode;
use base64::Engine;
use serde_json::{Value, json};

use agentd_models::{
    ChatError, ChatEvent, ChatRole, EmbedError, Embedder, FinishReason, ModelRegistry, Provider, ScriptedChatModel,
    ToolCall, Usage,
};
use common::{TestApp, TestTenant, assert_error_shape};

/// Vectors that depend on the text only: a one-hot of its length.
struct LengthEmbedder;

#[async_trait]
impl Embedder for LengthEmbedder {
    fn model_name(&self) -> &str {
        "length-embedder"
    }
    fn dimension(&self) -> usize {
        8
    }
    fn max_tokens(&self) -> usize {
        64
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0.0; 8];
                v[t.chars().count() % 8] = 1.0;
                v
            })
            .collect())
    }
}

async fn app() -> (TestApp, Arc<ScriptedChatModel>, TestTenant) {
    let chat = Arc::new(ScriptedChatModel::new("scripted"));
    let models = ModelRegistry::empty("scripted", "length-embedder")
        .with_chat(chat.clone(), Provider::Local)
        .with_embedder(Arc::new(LengthEmbedder), Provider::Local);
    let app = TestApp::with_models(models).await;
    let tenant = app.tenant("acme").await;
    (app, chat, tenant)
}

fn usage(prompt: u32, completion: u32) -> Usage {
    Usage { prompt_tokens: prompt, completion_tokens: completion }
}

/// The `data:` payloads of an event stream, in order.
fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .collect()
}

#[tokio::test]
async fn models_are_listed_and_looked_up_behind_auth() {
    let (app, _, tenant) = app().await;
    let listed = app.get("/v1/models", &tenant.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(listed["object"], "list");
    let ids: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["scripted", "length-embedder"]);
    assert_eq!(listed["data"][0]["object"], "model");
    assert_eq!(listed["data"][0]["kind"], "chat");
    assert_eq!(listed["data"][1]["kind"], "embedding");
    assert_eq!(listed["data"][0]["default"], true);

    let one = app.get("/v1/models/scripted", &tenant.admin_key).await.expect_json(StatusCode::OK);
    assert_eq!(one["id"], "scripted");
    app.get("/v1/models/gpt-5", &tenant.admin_key).await.expect_error(StatusCode::NOT_FOUND, "model_not_found");

    let anonymous = app.send(common::req(axum::http::Method::GET, "/v1/models")).await;
    let error = anonymous.expect_error(StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(error["type"], "authentication_error");
}

#[tokio::test]
async fn a_completion_has_openai_shape_and_the_model_gets_the_translated_request() {
    let (app, chat, tenant) = app().await;
    chat.push_text(&["Hello", " there"], usage(12, 2));
    let body = json!({
        "model": "scripted",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "you"}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"x\"}"}},
                {"id": "c2", "type": "function", "function": {"name": "lookup", "arguments": "{oops"}}
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "found"},
        ],
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "Look up",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
        "temperature": 0.2, "top_p": 0.9, "max_tokens": 33.0, "stop": "END", "seed": 7,
        "user": "someone", "presence_penalty": 0,
    });
    let got = app.post("/v1/chat/completions", &tenant.admin_key, body).await.expect_json(StatusCode::OK);
    assert!(got["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(got["object"], "chat.completion");
    assert_eq!(got["model"], "scripted");
    assert_eq!(got["choices"][0]["message"], json!({"role": "assistant", "content": "Hello there"}));
    assert_eq!(got["choices"][0]["finish_reason"], "stop");
    assert_eq!(got["usage"], json!({"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}));

    let sent = &chat.requests()[0];
    let roles: Vec<ChatRole> = sent.messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [ChatRole::System, ChatRole::User, ChatRole::Assistant, ChatRole::Tool]);
    assert_eq!(sent.messages[1].content, "Hi you");
    assert_eq!(sent.messages[2].tool_calls[0].arguments, json!({"q": "x"}));
    // Arguments a model wrote that are not JSON come back as the text they were.
    assert_eq!(sent.messages[2].tool_calls[1].arguments, json!("{oops"));
    assert_eq!(sent.messages[3].tool_call_id.as_deref(), Some("c1"));
    assert_eq!(sent.tools[0].name, "lookup");
    assert_eq!(sent.sampling.max_tokens, 33);
    assert_eq!(sent.sampling.stop, ["END"]);
    assert_eq!(sent.sampling.seed, Some(7));
    assert!((sent.sampling.temperature - 0.2).abs() < 1e-6);
}

#[tokio::test]
async fn tool_calls_come_back_as_openai_tool_calls() {
    let (app, chat, tenant) = app().await;
    let call = ToolCall { id: "call_9".into(), name: "lookup".into(), arguments: json!({"q": "rust"}) };
    chat.push_calls(vec![call], usage(5, 9));
    let body = json!({"model": "scripted", "messages": [{"role": "user", "content": "find rust"}],
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]});
    let got = app.post("/v1/chat/completions", &tenant.admin_key, body).await.expect_json(StatusCode::OK);
    let message = &got["choices"][0]["message"];
    assert_eq!(message["content"], Value::Null);
    assert_eq!(
        message["tool_calls"],
        json!([{"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"rust\"}"}}])
    );
    assert_eq!(got["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn tool_choice_none_hides_the_tools_from_the_model() {
    let (app, chat, tenant) = app().await;
    chat.push_text(&["ok"], usage(1, 1));
    let body = json!({"model": "scripted", "messages": [{"role": "user", "content": "hi"}], "tool_choice": "none",
        "tools": [{"type": "function", "function": {"name": "lookup"}}]});
    app.post("/v1/chat/completions", &tenant.admin_key, body).await.expect_json(StatusCode::OK);
    assert!(chat.requests()[0].tools.is_empty());
}

#[tokio::test]
async fn a_streamed_completion_is_role_deltas_finish_usage_and_done() {
    let (app, chat, tenant) = app().await;
    chat.push_answer(vec![
        Ok(ChatEvent::Text { text: "Let me".into() }),
        Ok(ChatEvent::Text { text: " look.".into() }),
        Ok(ChatEvent::ToolCall { call: ToolCall { id: "a".into(), name: "lookup".into(), arguments: json!({}) } }),
        Ok(ChatEvent::ToolCall {
            call: ToolCall { id: "b".into(), name: "lookup".into(), arguments: json!({"q": 1}) },
        }),
        Ok(ChatEvent::Finished { reason: FinishReason::ToolCalls, usage: usage(10, 4) }),
    ]);
    let body = json!({"model": "scripted", "messages": [{"role": "user", "content": "hi"}], "stream": true,
        "stream_options": {"include_usage": true}});
    let response = app.post("/v1/chat/completions", &tenant.admin_key, body).await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.header("content-type").unwrap().starts_with("text/event-stream"));
    // The document says both answers this operation gives.
    let doc = app.get("/openapi.json", &tenant.admin_key).await.expect_json(StatusCode::OK);
    let content = &doc["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["content"];
    assert!(content["text/event-stream"].is_object() && content["application/json"].is_object(), "{content}");
    let data = sse_data(&response.text());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(chunks.iter().all(|c| c["id"] == id && c["object"] == "chat.completion.chunk" && c["model"] == "scripted"));
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
    assert_eq!(chunks[1]["choices"][0]["delta"], json!({"content": "Let me"}));
    assert_eq!(chunks[2]["choices"][0]["delta"], json!({"content": " look."}));
    let first_call = &chunks[3]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(first_call["index"], 0);
    assert_eq!(first_call["id"], "a");
    assert_eq!(first_call["function"]["arguments"], "{}");
    assert_eq!(chunks[4]["choices"][0]["delta"]["tool_calls"][0]["index"], 1);
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks[5]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[6]["choices"], json!([]));
    assert_eq!(chunks[6]["usage"]["total_tokens"], 14);
    assert_eq!(chunks.len(), 7);
}

#[tokio::test]
async fn without_include_usage_no_usage_chunk_is_sent() {
    let (app, chat, tenant) = app().await;
    chat.push_text(&["x"], usage(1, 1));
    let body = json!({"model": "scripted", "messages": [{"role": "user", "content": "hi"}], "stream": true});
    let data = sse_data(&app.post("/v1/chat/completions", &tenant.admin_key, body).await.text());
    assert_eq!(data.len(), 4, "{data:?}"); // role, text, finish, [DONE]
    assert!(data.iter().all(|d| !d.contains("\"usage\"")));
}

#[tokio::test]
async fn a_failure_mid_stream_is_an_error_chunk_before_done() {
    let (app, chat, tenant) = app().await;
    chat.push_answer(vec![
        Ok(ChatEvent::Text { text: "partial".into() }),
        Err(ChatError::Provider { provider: "upstream".into(), message: "connection reset".into() }),
    ]);
    let body = json!({"model": "scripted", "messages": [{"role": "user", "content": "hi"}], "stream": true});
    let data = sse_data(&app.post("/v1/chat/completions", &tenant.admin_key, body).await.text());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let error: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(error["error"]["code"], "model_failed");
    assert!(error["error"]["message"].as_str().unwrap().contains("connection reset"));
}

#[tokio::test]
async fn a_model_failure_before_the_answer_is_a_502() {
    let (app, _chat, tenant) = app().await; // the script is empty: the model fails
    let body = json!({"model": "scripted", "messages": [{"role": "user", "content": "hi"}]});
    let error = app
        .post("/v1/chat/completions", &tenant.admin_key, body)
        .await
        .expect_error(StatusCode::BAD_GATEWAY, "model_failed");
    assert_eq!(error["type"], "server_error");
}

#[tokio::test]
async fn bad_chat_requests_are_refused_with_openai_errors() {
    let (app, chat, tenant) = app().await;
    let user = json!([{"role": "user", "content": "hi"}]);
    let cases = [
        (json!({"model": "scripted", "messages": []}), StatusCode::BAD_REQUEST, "invalid_request"),
        (json!({"model": "scripted", "messages": user, "n": 2}), StatusCode::BAD_REQUEST, "invalid_request"),
        (json!({"model": "scripted", "messages": user, "temperature": 3}), StatusCode::BAD_REQUEST, "invalid_request"),
        (json!({"model": "scripted", "messages": user, "top_p": 0}), StatusCode::BAD_REQUEST, "invalid_request"),
        (json!({"model": "scripted", "messages": user, "max_tokens": 0}), StatusCode::BAD_REQUEST, "invalid_request"),
        (
            json!({"model": "scripted", "messages": user, "max_tokens": 10_000_000}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"model": "scripted", "messages": user, "stop": ["a", "b", "c", "d", "e"]}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (json!({"model": "scripted", "messages": user, "logprobs": true}), StatusCode::BAD_REQUEST, "invalid_request"),
        (
            json!({"model": "scripted", "messages": user, "tool_choice": "required"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"model": "scripted", "messages": user, "response_format": {"type": "json_object"}}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"model": "scripted", "messages": [{"role": "wizard", "content": "hi"}]}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"model": "scripted", "messages": [{"role": "tool", "content": "x"}]}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"model": "scripted", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"model": "scripted", "messages": user, "max_tokens": 0, "max_completion_tokens": 5}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"model": "scripted", "messages": user, "max_tokens": 5.5}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"model": "scripted", "messages": user, "tools": [{"type": "function", "function": {"name": "bad name!"}}]}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"model": "scripted", "messages": user, "tools": [{"type": "retrieval", "function": {"name": "f"}}]}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (json!({"model": "no-such-model", "messages": user}), StatusCode::NOT_FOUND, "model_not_found"),
        (json!({"model": "length-embedder", "messages": user}), StatusCode::BAD_REQUEST, "invalid_model"),
        (json!({"messages": user}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        (json!({"model": "scripted", "messages": "hi"}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
    ];
    for (body, status, code) in cases {
        let response = app.post("/v1/chat/completions", &tenant.admin_key, body.clone()).await;
        assert_eq!(response.status, status, "{body}: {}", response.text());
        let error = assert_error_shape(&response.json());
        assert_eq!(error["code"], code, "{body}");
    }
    let malformed = app
        .send(
            common::req(axum::http::Method::POST, "/v1/chat/completions")
                .bearer(&tenant.admin_key)
                .raw(Some("application/json"), "{\"model\":"),
        )
        .await;
    malformed.expect_error(StatusCode::BAD_REQUEST, "malformed_json");
    assert!(chat.requests().is_empty(), "no refused request reached the model");
}

#[tokio::test]
async fn a_model_without_tools_refuses_a_request_with_tools() {
    let chat = Arc::new(ScriptedChatModel::new("plain").without_tools());
    let app = TestApp::with_models(ModelRegistry::empty("plain", "none").with_chat(chat, Provider::Local)).await;
    let tenant = app.tenant("acme").await;
    let body = json!({"model": "plain", "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f"}}]});
    let error = app
        .post("/v1/chat/completions", &tenant.admin_key, body)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_request");
    assert!(error["message"].as_str().unwrap().contains("cannot call tools"));
}

#[tokio::test]
async fn embeddings_come_in_input_order_as_floats_or_base64() {
    let (app, _, tenant) = app().await;
    let body = json!({"model": "length-embedder", "input": ["a", "abc", "ab"]});
    let floats = app.post("/v1/embeddings", &tenant.admin_key, body).await.expect_json(StatusCode::OK);
    assert_eq!(floats["object"], "list");
    assert_eq!(floats["model"], "length-embedder");
    let data = floats["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    for (i, item) in data.iter().enumerate() {
        assert_eq!(item["object"], "embedding");
        assert_eq!(item["index"], i);
    }
    assert_eq!(data[1]["embedding"], json!([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]));
    assert!(floats["usage"]["prompt_tokens"].as_u64().unwrap() >= 3);

    let body = json!({"model": "length-embedder", "input": "abc", "encoding_format": "base64"});
    let encoded = app.post("/v1/embeddings", &tenant.admin_key, body).await.expect_json(StatusCode::OK);
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(encoded["data"][0]["embedding"].as_str().unwrap()).unwrap();
    let vector: Vec<f32> = bytes.chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    assert_eq!(vector, [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
}

#[tokio::test]
async fn bad_embedding_requests_are_refused() {
    let (app, _, tenant) = app().await;
    let too_many: Vec<String> = (0..2049).map(|i| format!("t{i}")).collect();
    let cases = [
        (json!({"model": "length-embedder", "input": []}), StatusCode::BAD_REQUEST, "invalid_input"),
        (json!({"model": "length-embedder", "input": ""}), StatusCode::BAD_REQUEST, "invalid_input"),
        (json!({"model": "length-embedder", "input": ["ok", "  "]}), StatusCode::BAD_REQUEST, "invalid_input"),
        (json!({"model": "length-embedder", "input": [1, 2, 3]}), StatusCode::BAD_REQUEST, "invalid_input"),
        (json!({"model": "length-embedder", "input": [[1, 2]]}), StatusCode::BAD_REQUEST, "invalid_input"),
        (json!({"model": "length-embedder", "input": {"text": "x"}}), StatusCode::BAD_REQUEST, "invalid_input"),
        (json!({"model": "length-embedder", "input": too_many}), StatusCode::BAD_REQUEST, "invalid_input"),
        (
            json!({"model": "length-embedder", "input": "x", "dimensions": 4}),
            StatusCode::BAD_REQUEST,
            "invalid_dimensions",
        ),
        (
            json!({"model": "length-embedder", "input": "x", "encoding_format": "int8"}),
            StatusCode::BAD_REQUEST,
            "invalid_encoding_format",
        ),
        (json!({"model": "scripted", "input": "x"}), StatusCode::BAD_REQUEST, "invalid_model"),
        (json!({"model": "nope", "input": "x"}), StatusCode::NOT_FOUND, "model_not_found"),
        (json!({"input": "x"}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
    ];
    for (body, status, code) in cases {
        let response = app.post("/v1/embeddings", &tenant.admin_key, body.clone()).await;
        assert_eq!(response.status, status, "{body}: {}", response.text());
        assert_eq!(assert_error_shape(&response.json())["code"], code, "{body}");
    }
}
