//! Generation speed of candle's quantized models next to llama.cpp (the
//! engine agentd runs), on the same GGUF file, prompt and thread count:
//! the measurement behind the choice of the local chat engine.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release -p agentd-models --example chat_engines -- MODELS_DIR
//! ```
//!
//! Prints, per model and engine, prompt tokens/s and generated tokens/s
//! (greedy, 64 tokens, the end-of-turn token not honoured, so both engines
//! do the same work).

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use futures::StreamExt;

use agentd_models::{
    ChatEvent, ChatMessage, ChatModel, ChatRequest, ChatTemplate, LocalChatModel, LocalChatOptions, Sampling,
};

const TOKENS: usize = 64;

enum Weights {
    Llama(candle_transformers::models::quantized_llama::ModelWeights),
    Qwen2(candle_transformers::models::quantized_qwen2::ModelWeights),
}

impl Weights {
    fn forward(&mut self, x: &Tensor, pos: usize) -> candle_core::Result<Tensor> {
        match self {
            Weights::Llama(m) => m.forward(x, pos),
            Weights::Qwen2(m) => m.forward(x, pos),
        }
    }
}

fn candle(path: &Path, qwen: bool, prompt: &[u32]) -> candle_core::Result<(f64, f64)> {
    let device = Device::Cpu;
    let mut file = std::fs::File::open(path)?;
    let content = gguf_file::Content::read(&mut file)?;
    let mut model = if qwen {
        Weights::Qwen2(candle_transformers::models::quantized_qwen2::ModelWeights::from_gguf(
            content, &mut file, &device,
        )?)
    } else {
        Weights::Llama(candle_transformers::models::quantized_llama::ModelWeights::from_gguf(
            content, &mut file, &device,
        )?)
    };
    let start = Instant::now();
    let input = Tensor::new(prompt, &device)?.unsqueeze(0)?;
    let logits = model.forward(&input, 0)?;
    let mut next = logits.squeeze(0)?.argmax(0)?.to_scalar::<u32>()?;
    let prompt_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for i in 0..TOKENS {
        let input = Tensor::new(&[next], &device)?.unsqueeze(0)?;
        let logits = model.forward(&input, prompt.len() + i)?;
        next = logits.squeeze(0)?.argmax(0)?.to_scalar::<u32>()?;
    }
    Ok((prompt.len() as f64 / prompt_s, TOKENS as f64 / start.elapsed().as_secs_f64()))
}

async fn llama_cpp(model: &LocalChatModel, messages: Vec<ChatMessage>) -> (f64, f64, usize) {
    let sampling =
        Sampling { temperature: 0.0, top_p: 1.0, max_tokens: TOKENS as u32 + 1, stop: Vec::new(), seed: None };
    let start = Instant::now();
    let mut stream = model.chat(ChatRequest { messages, tools: Vec::new(), sampling }).await.expect("accepted");
    let (mut first, mut generated, mut prompt) = (None, 0, 0);
    while let Some(event) = stream.next().await {
        match event.expect("answer") {
            ChatEvent::Text { .. } if first.is_none() => first = Some(Instant::now()),
            ChatEvent::Finished { usage, .. } => (generated, prompt) = (usage.completion_tokens, usage.prompt_tokens),
            _ => {}
        }
    }
    let first = first.expect("some text");
    let prompt_rate = f64::from(prompt) / (first - start).as_secs_f64();
    let generation_rate = f64::from(generated.saturating_sub(1)) / first.elapsed().as_secs_f64();
    (prompt_rate, generation_rate, generated as usize)
}

#[tokio::main]
async fn main() {
    let models = PathBuf::from(std::env::args().nth(1).expect("usage: chat_engines MODELS_DIR"));
    let options = LocalChatOptions { threads: 2, ..Default::default() };
    for (name, file, template, qwen) in [
        ("smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf", ChatTemplate::SmolLm2, false),
        ("qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-0.5b-instruct.gguf", ChatTemplate::Qwen25, true),
    ] {
        let path = models.join(name).join(file);
        let messages = vec![ChatMessage::user("Write a long story about a lighthouse keeper and the sea.")];
        let model = LocalChatModel::load(name, &path, template, options).expect("loads");
        let prompt: Vec<u32> = model.tokenize(&template.render(&messages, &[])).iter().map(|t| t.0 as u32).collect();
        let (llama_prompt, llama_gen, generated) = llama_cpp(&model, messages).await;
        drop(model);
        let (candle_prompt, candle_gen) = candle(&path, qwen, &prompt).expect("candle runs the file");
        println!(
            "{name}: prompt {} tokens; llama.cpp {llama_prompt:.0} prompt tok/s, {llama_gen:.1} gen tok/s ({generated} tokens); \
             candle {candle_prompt:.0} prompt tok/s, {candle_gen:.1} gen tok/s ({TOKENS} tokens); candle/llama.cpp generation {:.2}",
            prompt.len(),
            candle_gen / llama_gen
        );
    }
}
