//! `agentd-bench models`: how fast the local models run on this machine,
//! next to the reference engines doing the same work in the same run.
//!
//! Embeddings: the sentences of `bench/sentences.txt` one at a time and 32
//! at a time through the public `Embedder` API (tokenizing, batching,
//! pooling and normalising included), against ONNX Runtime's Python package
//! on the int8 MiniLM. Chat: for each local GGUF model, time to first token,
//! prompt tokens/s and generated tokens/s at the same thread count, against
//! llama.cpp's Python binding on the same file and the same rendered prompts.
//! Memory: the resident set of `agentd serve` with its default models loaded.
//!
//! The reference engines run from the virtual environment `bench/setup-venv`
//! prepares; run the benchmark from the checkout, on an otherwise idle
//! machine (two engines sharing cores measure neither).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::{Value, json};

use agentd_models::{
    ChatEvent, ChatMessage, ChatModel, ChatRequest, ChatTemplate, LocalChatModel, LocalChatOptions, Sampling, Selection,
};

use agentd::config::Config;

/// What `agentd-bench models` measures.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelsBench {
    /// CPU threads for every engine.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Timed generations per chat model (after one warm-up), median reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Most tokens generated per run.
    #[arg(long, default_value_t = 128)]
    pub max_tokens: u32,
    /// Sentences to embed, one per line (the first 2000 are used).
    #[arg(long, default_value = "bench/sentences.txt")]
    pub sentences: PathBuf,
    /// Where the reference scripts and `setup-venv` are.
    #[arg(long, default_value = "bench")]
    pub bench_dir: PathBuf,
    /// Measure agentd only.
    #[arg(long)]
    pub no_reference: bool,
}

/// One line of the table.
struct Row {
    what: String,
    unit: &'static str,
    ours: f64,
    reference: Option<f64>,
    /// Whether more is better (throughput) or less (latency, memory).
    higher_is_better: bool,
}

/// The chat models measured: name, file, template.
const CHAT_MODELS: [(&str, &str, ChatTemplate); 2] = [
    ("smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf", ChatTemplate::SmolLm2),
    ("qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-0.5b-instruct.gguf", ChatTemplate::Qwen25),
];

const STORY_PROMPT: &str = "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle. \
Describe the island, the weather over several days, the keeper's daily routine, the people in the nearby village, \
and how the message changes the keeper's life. Use many paragraphs.";

pub async fn models(config: &Config, args: &ModelsBench) -> anyhow::Result<()> {
    let models_dir = config.models_dir();
    let cache_dir = config.models_cache_dir();
    eprintln!("fetching the models if needed…");
    agentd_models::fetch(&models_dir, &cache_dir, &Selection::All).context("cannot fetch the models")?;
    let python = if args.no_reference { None } else { Some(reference_python(&args.bench_dir, &[])?) };

    let sentences = read_sentences(&args.sentences)?;
    let mut rows = embedding_rows(config, &models_dir, &sentences, args, python.as_deref()).await?;
    for (name, file, template) in CHAT_MODELS {
        rows.extend(chat_rows(&models_dir.join(name).join(file), name, template, args, python.as_deref()).await?);
    }
    rows.extend(memory_rows(config)?);
    print_table(&rows, args.threads);
    Ok(())
}

/// The python of the reference engines' venv, with `packages` of
/// `bench/setup-venv` installed (all of them when empty).
pub(crate) fn reference_python(bench_dir: &Path, packages: &[&str]) -> anyhow::Result<String> {
    eprintln!("preparing the reference engines (bench/setup-venv; the first run installs them, minutes)…");
    let output = Command::new("bash")
        .arg(bench_dir.join("setup-venv"))
        .args(packages)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run bench/setup-venv (run from the checkout, or pass --bench-dir)")?;
    if !output.status.success() {
        bail!("bench/setup-venv failed");
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// The sentences of `path`, one a line (the first 2000), blank lines skipped.
pub(crate) fn read_sentences(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let sentences: Vec<String> =
        text.lines().map(str::trim).filter(|l| !l.is_empty()).take(2000).map(str::to_owned).collect();
    if sentences.is_empty() {
        bail!("{} holds no sentences", path.display());
    }
    Ok(sentences)
}

/// Runs a reference script with `stdin` and returns the JSON it printed.
pub(crate) fn run_reference(python: &str, script: &Path, args: &[&str], stdin: &str) -> anyhow::Result<Value> {
    let mut child = Command::new(python)
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot run {}", script.display()))?;
    child.stdin.take().expect("piped").write_all(stdin.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("{} failed", script.display());
    }
    let last = String::from_utf8_lossy(&output.stdout).lines().last().unwrap_or_default().to_owned();
    serde_json::from_str(&last).with_context(|| format!("{} printed no JSON: {last:?}", script.display()))
}

async fn embedding_rows(
    config: &Config,
    models_dir: &Path,
    sentences: &[String],
    args: &ModelsBench,
    python: Option<&str>,
) -> anyhow::Result<Vec<Row>> {
    eprintln!("embeddings: agentd, {} sentences…", sentences.len());
    let embedder = agentd::wiring::local_embedder(config, models_dir, args.threads)?;
    embedder.embed(&sentences[..8]).await?; // warm-up
    let start = Instant::now();
    for sentence in sentences {
        embedder.embed(std::slice::from_ref(sentence)).await?;
    }
    let batch1 = sentences.len() as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for chunk in sentences.chunks(32) {
        embedder.embed(chunk).await?;
    }
    let batch32 = sentences.len() as f64 / start.elapsed().as_secs_f64();
    drop(embedder);

    let (mut ref1, mut ref32) = (None, None);
    if let Some(python) = python {
        eprintln!("embeddings: onnxruntime (int8 MiniLM)…");
        let model = models_dir.join("all-minilm-l6-v2-int8/model.onnx");
        let tokenizer = models_dir.join("all-minilm-l6-v2/tokenizer.json");
        let threads = args.threads.to_string();
        let script = args.bench_dir.join("reference/embed_onnxruntime.py");
        let sentences_path = args.sentences.to_string_lossy().into_owned();
        let got = run_reference(
            python,
            &script,
            &[
                "--model",
                &model.to_string_lossy(),
                "--tokenizer",
                &tokenizer.to_string_lossy(),
                "--sentences",
                &sentences_path,
                "--threads",
                &threads,
            ],
            "",
        )?;
        ref1 = got["batch1_per_s"].as_f64();
        ref32 = got["batch32_per_s"].as_f64();
    }
    Ok(vec![
        Row {
            what: "embeddings, batch 1".into(),
            unit: "texts/s",
            ours: batch1,
            reference: ref1,
            higher_is_better: true,
        },
        Row {
            what: "embeddings, batch 32".into(),
            unit: "texts/s",
            ours: batch32,
            reference: ref32,
            higher_is_better: true,
        },
    ])
}

/// Figures of one generation.
#[derive(Debug, Clone, Copy)]
struct Generation {
    prompt_tokens: f64,
    ttft_s: f64,
    generated: f64,
    generation_s: f64,
}

impl Generation {
    fn prompt_rate(&self) -> f64 {
        self.prompt_tokens / self.ttft_s
    }
    fn generation_rate(&self) -> f64 {
        (self.generated - 1.0).max(0.0) / self.generation_s
    }
}

/// The middle value (the upper of the two middle ones for an even count).
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn summarize(runs: &[Generation]) -> (f64, f64, f64) {
    (
        median(runs.iter().map(|r| r.ttft_s * 1000.0).collect()),
        median(runs.iter().map(Generation::prompt_rate).collect()),
        median(runs.iter().map(Generation::generation_rate).collect()),
    )
}

/// A conversation no cache has seen (each run's prompt is evaluated whole).
fn conversation(run: usize) -> Vec<ChatMessage> {
    vec![
        ChatMessage::system(format!("Session {run}. You are a helpful assistant who writes at length.")),
        ChatMessage::user(STORY_PROMPT),
    ]
}

async fn chat_rows(
    path: &Path,
    name: &str,
    template: ChatTemplate,
    args: &ModelsBench,
    python: Option<&str>,
) -> anyhow::Result<Vec<Row>> {
    eprintln!("chat: agentd, {name}…");
    let options =
        LocalChatOptions { threads: args.threads, context_tokens: 4096, batch_tokens: 512, ..Default::default() };
    let owned = path.to_path_buf();
    let model_name = name.to_owned();
    let model =
        tokio::task::spawn_blocking(move || LocalChatModel::load(model_name, &owned, template, options)).await??;
    let sampling = Sampling { temperature: 0.0, top_p: 1.0, max_tokens: args.max_tokens, stop: Vec::new(), seed: None };
    let mut ours = Vec::new();
    for run in 0..=args.runs {
        let request = ChatRequest { messages: conversation(run), tools: Vec::new(), sampling: sampling.clone() };
        let start = Instant::now();
        let mut stream = model.chat(request).await?;
        let mut first = None;
        let mut usage = None;
        while let Some(event) = stream.next().await {
            match event? {
                ChatEvent::Text { .. } if first.is_none() => first = Some(start.elapsed()),
                ChatEvent::Finished { usage: u, .. } => usage = Some(u),
                _ => {}
            }
        }
        let total = start.elapsed();
        let usage = usage.context("the answer did not finish")?;
        let first = first.unwrap_or(total);
        if run > 0 {
            ours.push(Generation {
                prompt_tokens: f64::from(usage.prompt_tokens),
                ttft_s: first.as_secs_f64(),
                generated: f64::from(usage.completion_tokens),
                generation_s: (total - first).as_secs_f64(),
            });
        }
    }
    drop(model);

    let mut reference = None;
    if let Some(python) = python {
        eprintln!("chat: llama-cpp-python, {name}…");
        let runs: Vec<Value> = (0..=args.runs)
            .map(|run| json!({"prompt": template.render(&conversation(run), &[]), "max_tokens": args.max_tokens}))
            .collect();
        let script = args.bench_dir.join("reference/generate_llama_cpp.py");
        let threads = args.threads.to_string();
        let got = run_reference(
            python,
            &script,
            &["--model", &path.to_string_lossy(), "--threads", &threads],
            &Value::from(runs).to_string(),
        )?;
        let runs: Vec<Generation> = got["runs"]
            .as_array()
            .context("no runs in the reference's output")?
            .iter()
            .skip(1)
            .map(|r| Generation {
                prompt_tokens: r["prompt_tokens"].as_f64().unwrap_or(f64::NAN),
                ttft_s: r["ttft_s"].as_f64().unwrap_or(f64::NAN),
                generated: r["generated_tokens"].as_f64().unwrap_or(f64::NAN),
                generation_s: r["generation_s"].as_f64().unwrap_or(f64::NAN),
            })
            .collect();
        reference = Some(summarize(&runs));
    }
    let (ttft, prompt_rate, generation_rate) = summarize(&ours);
    let tokens = median(ours.iter().map(|r| r.generated).collect());
    let prompt = median(ours.iter().map(|r| r.prompt_tokens).collect());
    Ok(vec![
        Row {
            what: format!("{name}: time to first token ({prompt:.0}-token prompt)"),
            unit: "ms",
            ours: ttft,
            reference: reference.map(|r| r.0),
            higher_is_better: false,
        },
        Row {
            what: format!("{name}: prompt"),
            unit: "tokens/s",
            ours: prompt_rate,
            reference: reference.map(|r| r.1),
            higher_is_better: true,
        },
        Row {
            what: format!("{name}: generation ({tokens:.0} tokens)"),
            unit: "tokens/s",
            ours: generation_rate,
            reference: reference.map(|r| r.2),
            higher_is_better: true,
        },
    ])
}

/// Starts `agentd serve` on a scratch data directory and reads its resident
/// memory once the default models are loaded, and again after it has
/// answered one chat and one embedding request.
fn memory_rows(config: &Config) -> anyhow::Result<Vec<Row>> {
    eprintln!("memory: agentd serve with the default models…");
    let data_dir = std::env::temp_dir().join(format!("agentd-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&data_dir)?;
    // The `agentd` binary built beside this one.
    let agentd = std::env::current_exe()?.with_file_name("agentd");
    if !agentd.is_file() {
        bail!("{} is missing; build it first (cargo build --release -p agentd)", agentd.display());
    }
    let mut child = Command::new(&agentd)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("AGENTD_DATA_DIR", &data_dir)
        .env("AGENTD_MODELS_DIR", config.models_dir())
        .env("AGENTD_LOG", "warn")
        .env_remove("AGENTD_DATABASE_URL")
        .env_remove("AGENTD_REDIS_URL")
        .stdout(Stdio::piped())
        .spawn()?;
    let result = (|| {
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let first = lines.next().context("serve printed nothing")??;
        let addr =
            first.split("http://").nth(1).and_then(|r| r.split_whitespace().next()).context("no URL")?.to_owned();
        let key = lines.map_while(Result::ok).find(|l| l.starts_with("agd_")).context("no first key")?;
        std::thread::sleep(Duration::from_millis(500));
        let loaded = rss_mib(child.id())?;
        let chat = json!({"model": config.default_chat_model, "max_tokens": 16,
            "messages": [{"role": "user", "content": "Say hello."}]});
        post(&addr, &key, "/v1/chat/completions", &chat)?;
        let embed = json!({"model": config.default_embedding_model, "input": ["one sentence", "another one"]});
        post(&addr, &key, "/v1/embeddings", &embed)?;
        let answered = rss_mib(child.id())?;
        anyhow::Ok((loaded, answered))
    })();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&data_dir);
    let (loaded, answered) = result?;
    Ok(vec![
        Row {
            what: "agentd serve RSS, default models loaded".into(),
            unit: "MiB",
            ours: loaded,
            reference: None,
            higher_is_better: false,
        },
        Row {
            what: "agentd serve RSS, after a chat and an embedding".into(),
            unit: "MiB",
            ours: answered,
            reference: None,
            higher_is_better: false,
        },
    ])
}

fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")?;
    Ok(kib / 1024.0)
}

/// A blocking HTTP POST (the bench needs no client library for two requests).
fn post(addr: &str, key: &str, path: &str, body: &Value) -> anyhow::Result<()> {
    let body = body.to_string();
    let mut stream = std::net::TcpStream::connect(addr)?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    if !answer.starts_with("HTTP/1.1 200") {
        bail!("{path} answered {}", answer.lines().next().unwrap_or_default());
    }
    Ok(())
}

fn print_table(rows: &[Row], threads: usize) {
    println!();
    println!("agentd-bench models ({threads} threads)");
    println!("{:<68} {:>12} {:>12} {:>8}  unit", "measure", "agentd", "reference", "ratio");
    for row in rows {
        let reference = row.reference.map_or("-".to_owned(), |r| format!("{r:.1}"));
        let ratio = row
            .reference
            .map(|r| if row.higher_is_better { row.ours / r } else { r / row.ours })
            .map_or("-".to_owned(), |r| format!("{r:.2}"));
        println!("{:<68} {:>12.1} {:>12} {:>8}  {}", row.what, row.ours, reference, ratio, row.unit);
    }
    println!();
    println!("reference: onnxruntime on the int8 MiniLM (embeddings), llama-cpp-python on the same GGUF (chat);");
    println!("ratio > 1 means agentd is better (faster, or quicker to the first token).");
}
