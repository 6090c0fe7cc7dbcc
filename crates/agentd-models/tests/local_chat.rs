//! The local chat engine on the real GGUF models: SmolLM2-135M (the
//! default) and Qwen2.5-Coder-0.5B (tool calls). Each model is loaded once
//! for the whole binary; answers are short and greedy, so the suite stays
//! quick and the assertions deterministic.

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::OnceCell;

use agentd_models::{
    ChatAnswer, ChatError, ChatEvent, ChatMessage, ChatModel, ChatRequest, ChatTemplate, FinishReason, LocalChatModel,
    LocalChatOptions, Sampling, ToolSpec,
};

async fn load(name: &'static str, file: &'static str, template: ChatTemplate) -> Arc<LocalChatModel> {
    let dir = common::models_dir_with(name);
    let path = dir.join(name).join(file);
    let options = LocalChatOptions { threads: 2, context_tokens: 2048, ..Default::default() };
    tokio::task::spawn_blocking(move || LocalChatModel::load(name, &path, template, options))
        .await
        .expect("the loading task")
        .unwrap_or_else(|e| panic!("{name} did not load: {e}"))
        .into()
}

async fn smollm2() -> Arc<LocalChatModel> {
    static MODEL: OnceCell<Arc<LocalChatModel>> = OnceCell::const_new();
    MODEL
        .get_or_init(|| load("smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf", ChatTemplate::SmolLm2))
        .await
        .clone()
}

async fn qwen() -> Arc<LocalChatModel> {
    static MODEL: OnceCell<Arc<LocalChatModel>> = OnceCell::const_new();
    MODEL
        .get_or_init(|| load("qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-0.5b-instruct.gguf", ChatTemplate::Qwen25))
        .await
        .clone()
}

fn greedy(max_tokens: u32) -> Sampling {
    Sampling { temperature: 0.0, top_p: 1.0, max_tokens, stop: Vec::new(), seed: None }
}

fn ask(question: &str, sampling: Sampling) -> ChatRequest {
    ChatRequest { messages: vec![ChatMessage::user(question)], tools: Vec::new(), sampling }
}

async fn answer(model: &LocalChatModel, request: ChatRequest) -> ChatAnswer {
    let stream = model.chat(request).await.expect("the request is accepted");
    ChatAnswer::collect(stream).await.expect("the answer completes")
}

#[tokio::test(flavor = "multi_thread")]
async fn smollm2_answers_and_reports_usage() {
    let model = smollm2().await;
    let got = answer(&model, ask("What is the capital of France?", greedy(40))).await;
    // A 135M model at 4 bits knows little (llama.cpp's own binding gives the
    // same odd first words for this prompt); what matters here is the engine.
    assert!(!got.text.trim().is_empty(), "{:?}", got.text);
    assert!(!got.text.contains("<|im_end|>"), "end markers are not part of the answer: {:?}", got.text);
    let prompt =
        model.tokenize(&ChatTemplate::SmolLm2.render(&[ChatMessage::user("What is the capital of France?")], &[]));
    assert_eq!(got.usage.prompt_tokens as usize, prompt.len());
    assert!(got.usage.completion_tokens > 0 && got.usage.completion_tokens <= 40);
    assert!(got.finish_reason.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn greedy_answers_repeat_exactly_whatever_the_cache_holds() {
    let model = smollm2().await;
    let request = ask("Name three colours.", greedy(24));
    let first = answer(&model, request.clone()).await;
    // Something else in between, so the second run starts from another cache.
    answer(&model, ask("Say hello.", greedy(8))).await;
    let second = answer(&model, request).await;
    assert_eq!(first.text, second.text);
    assert_eq!(first.usage, second.usage);
}

#[tokio::test(flavor = "multi_thread")]
async fn max_tokens_ends_the_answer_with_length() {
    let model = smollm2().await;
    let got = answer(&model, ask("Write a long story about a dragon.", greedy(5))).await;
    assert_eq!(got.finish_reason, Some(FinishReason::Length));
    assert_eq!(got.usage.completion_tokens, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_text_ends_the_answer_and_is_left_out() {
    let model = smollm2().await;
    let unstopped = answer(&model, ask("Count from 1 to 10, separated by commas.", greedy(40))).await;
    assert!(unstopped.text.contains('5'), "the model counts: {:?}", unstopped.text);
    let mut sampling = greedy(40);
    sampling.stop = vec!["5".into()];
    let stopped = answer(&model, ask("Count from 1 to 10, separated by commas.", sampling)).await;
    assert_eq!(stopped.finish_reason, Some(FinishReason::Stop));
    assert!(!stopped.text.contains('5'), "{:?}", stopped.text);
    let cut = unstopped.text.find('5').unwrap();
    assert_eq!(stopped.text, unstopped.text[..cut]);
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_stream_stops_generation() {
    // A model of its own: its token count is this test's alone.
    let model = load("smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf", ChatTemplate::SmolLm2).await;
    let essay = || ask("Write a very long essay about the sea.", greedy(800));
    // Left alone, the model writes to its budget: a stop can be told apart.
    let whole = answer(&model, essay()).await;
    assert_eq!(whole.finish_reason, Some(FinishReason::Length), "the prompt must not end by itself: {:?}", whole.text);

    let before = model.tokens_generated();
    let mut stream = model.chat(essay()).await.unwrap();
    for _ in 0..3 {
        assert!(matches!(stream.next().await, Some(Ok(ChatEvent::Text { .. }))));
    }
    drop(stream);
    // The inference thread takes one job at a time: once the next answer
    // is complete, the abandoned one has ended, however busy the machine.
    let next = answer(&model, ask("Say yes.", greedy(4))).await;
    assert!(next.usage.completion_tokens > 0);
    let abandoned = model.tokens_generated() - before - u64::from(next.usage.completion_tokens);
    // It may run ahead of its reader by the event buffer (256), then
    // notices the reader left within a token.
    assert!(
        abandoned < 300,
        "generation went on after the consumer left: {abandoned} of {} tokens",
        whole.usage.completion_tokens
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prompts_beyond_the_context_window_are_refused_up_front() {
    let model = smollm2().await;
    let huge = "word ".repeat(5000);
    let err = model.chat(ask(&huge, greedy(10))).await.err().expect("refused");
    match err {
        ChatError::InvalidRequest(message) => assert!(message.contains("2048"), "{message}"),
        other => panic!("expected InvalidRequest, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_without_tool_support_refuses_tools() {
    let model = smollm2().await;
    assert!(!model.supports_tools());
    let mut request = ask("hi", greedy(4));
    request.tools = vec![weather_tool()];
    assert!(matches!(model.chat(request).await, Err(ChatError::InvalidRequest(_))));
}

#[tokio::test(flavor = "multi_thread")]
async fn our_turns_match_the_template_stored_in_each_gguf() {
    let messages = [
        ChatMessage::system("You are terse."),
        ChatMessage::user("Hi!"),
        ChatMessage::assistant("Hello."),
        ChatMessage::user("What is 2+2?"),
    ];
    for (model, template) in [(smollm2().await, ChatTemplate::SmolLm2), (qwen().await, ChatTemplate::Qwen25)] {
        let embedded = model.render_with_embedded_template(&messages).expect("llama.cpp renders the GGUF template");
        assert_eq!(template.render(&messages, &[]), embedded, "{}", model.name());
    }
    // Without a system message each model's Jinja template adds its own default.
    let smollm2_jinja = smollm2().await.embedded_template().expect("SmolLM2's GGUF carries its template");
    assert!(smollm2_jinja.contains("You are a helpful AI assistant named SmolLM, trained by Hugging Face"));
    let qwen_jinja = qwen().await.embedded_template().expect("Qwen's GGUF carries its template");
    assert!(qwen_jinja.contains("You are Qwen, created by Alibaba Cloud. You are a helpful assistant."));
    assert!(qwen_jinja.contains("<tool_call>"));
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: "Get the current weather in a city".into(),
        parameters: serde_json::json!({
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city's name"}},
            "required": ["city"],
        }),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn qwen_calls_a_tool_and_uses_its_result() {
    let model = qwen().await;
    let mut request = ask("What is the weather in Paris right now?", greedy(80));
    request.tools = vec![weather_tool()];
    let got = answer(&model, request.clone()).await;
    assert_eq!(got.finish_reason, Some(FinishReason::ToolCalls), "{got:?}");
    assert_eq!(got.tool_calls.len(), 1, "{got:?}");
    let call = &got.tool_calls[0];
    assert_eq!(call.name, "get_weather");
    assert_eq!(call.arguments["city"].as_str().map(str::to_lowercase).as_deref(), Some("paris"));
    assert!(!got.text.contains("<tool_call>"), "the call is not left in the text: {:?}", got.text);

    // The result goes back; the model answers from it.
    let mut assistant = ChatMessage::assistant(got.text.clone());
    assistant.tool_calls = got.tool_calls.clone();
    request.messages.push(assistant);
    request.messages.push(ChatMessage::tool(call.id.clone(), r#"{"temperature_c": 17, "sky": "cloudy"}"#));
    let followed = answer(&model, request).await;
    assert_eq!(followed.finish_reason, Some(FinishReason::Stop), "{followed:?}");
    assert!(followed.text.contains("17"), "{:?}", followed.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_beyond_the_waiting_limit_are_refused_as_busy() {
    // A model of its own: the shared one must not turn busy for the other tests.
    let path =
        common::models_dir_with("smollm2-135m-instruct").join("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    let options = LocalChatOptions { threads: 2, context_tokens: 512, max_waiting: 2, ..Default::default() };
    let model = tokio::task::spawn_blocking(move || {
        LocalChatModel::load("smollm2-135m-instruct", &path, ChatTemplate::SmolLm2, options)
    })
    .await
    .unwrap()
    .expect("loads");
    let mut accepted = Vec::new();
    let mut busy = 0;
    // Enqueueing takes microseconds, answering milliseconds: the queue fills.
    for _ in 0..10 {
        match model.chat(ask("Write a poem.", greedy(20))).await {
            Ok(stream) => accepted.push(stream),
            Err(ChatError::Busy(message)) => {
                assert!(message.contains("smollm2-135m-instruct"), "{message}");
                busy += 1;
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert!(accepted.len() <= 3, "at most one running and two waiting, got {}", accepted.len());
    assert!(busy >= 7, "{busy} refused");
    drop(accepted);
    // Abandoned requests leave the queue, and the model answers again.
    let mut waited = 0;
    loop {
        match model.chat(ask("Say yes.", greedy(3))).await {
            Ok(stream) => {
                assert!(ChatAnswer::collect(stream).await.is_ok());
                break;
            }
            Err(ChatError::Busy(_)) if waited < 100 => {
                waited += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(other) => panic!("the model did not recover: {other}"),
        }
    }
}
