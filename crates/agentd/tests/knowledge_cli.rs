//! Documents from the command line and the first start, as a new user meets
//! them: `agentd ingest --wait` on the sample folder with the real embedding
//! model, `agentd eval retrieval` on the shipped evaluation set, and `agentd
//! serve --samples` answering a search right after its first start.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use agentd_store::testing::{Backend, TestStore};

use common::{DataDir, Killed, Server, agentd, models_env, samples_dir, schema_url};

fn run(data_dir: &Path, args: &[&str]) -> Output {
    let env = models_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    agentd(data_dir, &env).args(args).output().expect("agentd runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The figures of a system's row in `eval retrieval`'s single-turn table:
/// hit@1, hit@5, hit@10, R@5, R@10, MRR@10, nDCG@10, ms/query.
fn eval_row(table: &str, system: &str) -> Vec<f64> {
    let line = table
        .lines()
        .skip_while(|l| !l.starts_with("single-turn ("))
        .find(|l| l.starts_with(&format!("{system} ")))
        .unwrap_or_else(|| panic!("no {system} row in {table}"));
    let figures: Vec<f64> = line.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    figures[figures.len() - 8..].to_vec()
}

#[test]
fn ingest_waits_for_the_samples_skips_unchanged_files_and_eval_scores_every_mode() {
    let dir = DataDir::new();
    let samples = samples_dir();
    let docs = samples.join("docs");
    let documents = std::fs::read_dir(&docs).unwrap().count();

    let first = run(&dir.0, &["ingest", "--tenant", "acme", "--wait", docs.to_str().unwrap()]);
    assert!(first.status.success(), "stderr: {}", text(&first.stderr));
    let out = text(&first.stdout);
    assert!(out.contains(&format!("{documents} stored and queued, 0 failed")), "{out}");
    assert!(out.contains(&format!("{documents} ready")) && out.contains("0 failed"), "{out}");
    assert!(text(&first.stderr).contains("created tenant \"acme\""), "{}", text(&first.stderr));

    // The same files again are recognised by their content: nothing queued.
    let again = run(&dir.0, &["ingest", "--tenant", "acme", "--wait", docs.to_str().unwrap()]);
    assert!(again.status.success(), "stderr: {}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains(&format!("0 stored and queued, 0 failed, {documents} unchanged")),
        "{}",
        text(&again.stdout)
    );

    // Bad files fail alone, with their reason; the command still succeeds.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("empty.md"), b"").unwrap();
    std::fs::write(bad.path().join("broken.pdf"), b"%PDF-1.7\nnot really a pdf").unwrap();
    std::fs::write(bad.path().join("fine.txt"), b"Lighthouse keepers log the weather twice a day.").unwrap();
    let mixed = run(&dir.0, &["ingest", "--tenant", "acme", "--wait", bad.path().to_str().unwrap()]);
    assert!(mixed.status.success(), "stderr: {}", text(&mixed.stderr));
    let out = text(&mixed.stdout);
    assert!(out.contains("1 ready") && out.contains("2 failed"), "{out}");
    let progress = text(&mixed.stderr);
    assert!(progress.contains("failed empty.md") && progress.contains("failed broken.pdf"), "{progress}");

    let missing = run(&dir.0, &["ingest", "--tenant", "acme", "/nonexistent/agentd-docs"]);
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("/nonexistent/agentd-docs"), "{}", text(&missing.stderr));

    let eval = samples.join("eval.jsonl");
    let report = run(&dir.0, &["eval", "retrieval", "--tenant", "acme", "--baselines", eval.to_str().unwrap()]);
    assert!(report.status.success(), "stderr: {}", text(&report.stderr));
    let table = text(&report.stdout);
    let questions = std::fs::read_to_string(&eval).unwrap().lines().filter(|l| !l.trim().is_empty()).count();
    assert!(table.contains(&format!("single-turn ({questions} questions)")), "{table}");
    let systems =
        ["hybrid", "vector", "keyword", "baseline: page BM25", "baseline: dense passages", "baseline: BM25+dense RRF"];
    for system in systems {
        let row = eval_row(&table, system);
        let (hit_1, hit_5, hit_10, recall_5, recall_10, mrr, ndcg) =
            (row[0], row[1], row[2], row[3], row[4], row[5], row[6]);
        assert!(hit_1 <= hit_5 && hit_5 <= hit_10 && hit_10 <= 1.0, "{system}: {table}");
        assert!(recall_5 <= hit_5 && recall_10 <= hit_10, "{system}: {table}");
        assert!(mrr >= hit_1 && mrr <= hit_10 && ndcg <= 1.0, "{system}: {table}");
        // Nine short documents: a working search finds the right one near the top.
        assert!(hit_5 >= 0.75, "{system} finds too little: {table}");
    }

    let unknown = run(&dir.0, &["eval", "retrieval", "--tenant", "nobody", eval.to_str().unwrap()]);
    assert!(!unknown.status.success());
    assert!(text(&unknown.stderr).contains("nobody"), "{}", text(&unknown.stderr));
}

fn request(addr: &str, method: &str, path: &str, key: &str, body: Option<&str>) -> (u16, Value) {
    let body = body.unwrap_or("");
    let mut stream = TcpStream::connect(addr).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status = raw.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn a_first_start_with_samples_can_be_searched_and_a_restart_does_not_ingest_again() {
    let dir = DataDir::new();
    let docs = samples_dir().join("docs");
    let documents = std::fs::read_dir(&docs).unwrap().count();
    let server = Server::start_with(&dir.0, &["--samples", docs.to_str().unwrap()]);
    let key = server.first_key.clone().expect("a first start prints an admin key");

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = request(&server.addr, "GET", "/v1/documents?limit=100", &key, None);
        assert_eq!(status, 200, "{body}");
        let items = body["items"].as_array().unwrap();
        if items.len() == documents && items.iter().all(|d| d["status"] == "ready") {
            break;
        }
        assert!(items.iter().all(|d| d["status"] != "failed"), "{body}");
        assert!(Instant::now() < deadline, "the samples were not ingested in time: {body}");
        std::thread::sleep(Duration::from_millis(250));
    }

    let query = r#"{"query": "How do I rotate the JWT signing secret?", "k": 3, "debug": true}"#;
    let (status, body) = request(&server.addr, "POST", "/v1/search", &key, Some(query));
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert!(!results.is_empty() && results.len() <= 3, "{body}");
    assert_eq!(results[0]["title"], "security.md", "{body}");
    assert!(results[0]["text"].as_str().unwrap().to_lowercase().contains("jwt"), "{body}");
    assert!(body["timings"].is_object(), "debug asks for the stage timings: {body}");

    // The user deletes a sample; a restart must not bring it back.
    let deleted = results[0]["document_id"].as_str().unwrap().to_string();
    let (status, body) = request(&server.addr, "DELETE", &format!("/v1/documents/{deleted}"), &key, None);
    assert_eq!(status, 204, "{body}");
    drop(server);

    // The samples are ingested on a first start only (before the server
    // listens, so the listing below would already show a second ingestion).
    let server = Server::start_with(&dir.0, &["--samples", docs.to_str().unwrap()]);
    assert!(server.first_key.is_none(), "a restart creates no key");
    let (status, body) = request(&server.addr, "GET", "/v1/documents?limit=100", &key, None);
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), documents - 1, "{body}");
    assert!(items.iter().all(|d| d["id"] != deleted.as_str()), "the deleted sample came back: {body}");
}

/// A Markdown document of `sections` sections of distinct prose: enough
/// chunks that embedding it takes seconds.
fn long_markdown(sections: usize) -> String {
    const WORDS: [&str; 24] = [
        "harbour", "lantern", "granite", "ledger", "meridian", "orchard", "quarry", "saffron", "tundra", "violet",
        "willow", "zenith", "beacon", "cobalt", "delta", "ember", "fjord", "glacier", "hollow", "island", "juniper",
        "kestrel", "lagoon", "marble",
    ];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut out = String::new();
    for section in 0..sections {
        out.push_str(&format!("## Section {section}\n\n"));
        for _ in 0..120 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.push_str(WORDS[(state % WORDS.len() as u64) as usize]);
            out.push(' ');
        }
        out.push_str("\n\n");
    }
    out
}

/// The records `agentd` works on in a test: the data directory's SQLite
/// file, or a fresh schema of the real PostgreSQL (dropped afterwards).
struct Records {
    store: agentd_store::Store,
    /// What points the binary at them.
    env: Vec<(&'static str, String)>,
    _schema: Option<TestStore>,
}

impl Records {
    async fn new(backend: Backend, dir: &Path) -> Records {
        match backend {
            Backend::Sqlite => {
                let target = agentd_store::DatabaseTarget::Sqlite { path: dir.join("agentd.db") };
                let store = agentd_store::Store::connect(&target, 2).await.unwrap();
                store.migrate().await.unwrap();
                Records { store, env: Vec::new(), _schema: None }
            }
            Backend::Postgres | Backend::PgVector => {
                let test = TestStore::new(backend).await;
                let url = schema_url(&test);
                Records { store: test.store.clone(), env: vec![("AGENTD_DATABASE_URL", url)], _schema: Some(test) }
            }
        }
    }
}

/// A long document queued with `agentd ingest`, and workers to run on it.
struct LongJob {
    dir: DataDir,
    records: Records,
    env: Vec<(&'static str, String)>,
    tenant: agentd_store::TenantId,
    document: agentd_store::Document,
    job_id: agentd_store::JobId,
}

impl LongJob {
    /// Queues the document on `backend`; workers hold a job `lease_secs`.
    async fn queue(backend: Backend, lease_secs: &str) -> LongJob {
        let dir = DataDir::new();
        let records = Records::new(backend, &dir.0).await;
        let mut env = models_env();
        env.extend(records.env.iter().cloned());
        env.push(("AGENTD_JOB_LEASE_SECS", lease_secs.into()));
        env.push(("AGENTD_LOG", "warn".into()));
        let docs = tempfile::tempdir().unwrap();
        std::fs::write(docs.path().join("long.md"), long_markdown(400)).unwrap();
        let args = ["ingest", "--tenant", "acme", docs.path().to_str().unwrap()];
        let queued = agentd(&dir.0, &borrowed(&env)).args(args).output().expect("agentd runs");
        assert!(queued.status.success(), "stderr: {}", text(&queued.stderr));
        assert!(text(&queued.stdout).contains("1 stored and queued"), "{}", text(&queued.stdout));
        let store = &records.store;
        let tenant = store.tenants().by_name("acme").await.unwrap().unwrap().id;
        let document = store.documents().list(tenant, None, 10, None).await.unwrap().items.remove(0);
        let job_id = document.job_id.expect("the document names its job");
        LongJob { dir, records, env, tenant, document, job_id }
    }

    fn store(&self) -> &agentd_store::Store {
        &self.records.store
    }

    /// A running `agentd worker` with one worker.
    fn worker(&self) -> Killed {
        let mut command = agentd(&self.dir.0, &borrowed(&self.env));
        Killed(command.args(["worker", "--workers", "1"]).stdout(std::process::Stdio::null()).spawn().unwrap())
    }

    async fn job(&self) -> agentd_store::Job {
        self.store().jobs().get(self.tenant, self.job_id).await.unwrap()
    }

    /// Polls the job until `reached` holds for it (three minutes at most).
    async fn until(&self, what: &str, mut reached: impl FnMut(&agentd_store::Job) -> bool) -> agentd_store::Job {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let job = self.job().await;
            if reached(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "{what}: never happened: {job:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until some chunks are embedded but not all.
    async fn until_mid_job(&self, extra: impl Fn(&agentd_store::Job) -> bool) -> agentd_store::Job {
        self.until("the worker is half-way through the job", |job| {
            assert!(!job.status.is_final(), "the job ended before the test could stop its worker: {job:?}");
            job.progress_done > 0 && job.progress_done < job.progress_total && extra(job)
        })
        .await
    }

    /// Checks that the document is ready with every planned chunk once.
    async fn assert_complete(&self, planned: i64) {
        let store = self.store();
        let document = store.documents().get(self.tenant, self.document.id).await.unwrap();
        assert_eq!(document.status, agentd_store::DocumentStatus::Ready, "{:?}", document.error);
        assert_eq!(document.chunk_count, planned, "every chunk the first attempt planned");
        let keys = store.chunks().keys_of_tenant(self.tenant).await.unwrap();
        assert_eq!(keys.len() as i64, planned, "no duplicate, no missing chunk");
        let ids: Vec<_> = keys.iter().map(|(chunk, _)| *chunk).collect();
        let chunks = store.chunks().get_many(self.tenant, &ids).await.unwrap();
        let mut positions: Vec<i64> = chunks.iter().map(|c| c.position).collect();
        positions.sort_unstable();
        assert_eq!(positions, (0..planned).collect::<Vec<_>>());
    }
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn a_killed_worker_leaves_no_duplicate_and_no_missing_chunk(backend: Backend) {
    let long = LongJob::queue(backend, "2").await;
    let mut first = long.worker();
    // Killed half-way, once its heartbeat has pushed the claim's end
    // forward at least once.
    let claimed_until = long.until("the worker claims the job", |job| job.locked_until_ms.is_some()).await;
    let claimed_until = claimed_until.locked_until_ms.unwrap();
    let planned = long.until_mid_job(|job| job.locked_until_ms.is_some_and(|now| now > claimed_until)).await;
    let planned = planned.progress_total;
    first.kill();
    assert_eq!(long.store().chunks().count(long.tenant).await.unwrap(), 0, "a job's chunks are written at its end");
    let job = long.job().await;
    assert_eq!(job.status, agentd_store::JobStatus::Running, "the dead worker's claim holds until its lease ends");
    assert_eq!(job.attempts, 1, "the living worker's heartbeat kept its claim");

    let mut second = long.worker();
    // The job's end is written after the document's, so the test waits for
    // the job (stopping at the document's end caught it still running).
    let job = long.until("the job is retried", |job| job.status.is_final()).await;
    second.kill();
    assert_eq!((job.status, job.attempts), (agentd_store::JobStatus::Succeeded, 2), "the killed attempt counts");
    long.assert_complete(planned).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_job_on_sqlite_leaves_no_duplicate_and_no_missing_chunk_once_the_job_is_retried() {
    a_killed_worker_leaves_no_duplicate_and_no_missing_chunk(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_job_on_postgres_leaves_no_duplicate_and_no_missing_chunk_once_the_job_is_retried() {
    a_killed_worker_leaves_no_duplicate_and_no_missing_chunk(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_stopped_with_sigterm_mid_job_hands_the_job_back_at_once() {
    // A lease far longer than the test waits: only the hand-back can let
    // the second worker in.
    let long = LongJob::queue(Backend::Postgres, "3600").await;
    let mut first = long.worker();
    let planned = long.until_mid_job(|_| true).await.progress_total;
    let pid = first.0.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(status) = first.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the worker did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "a clean stop exits 0, got {exit:?}");

    let job = long.job().await;
    assert_eq!(job.status, agentd_store::JobStatus::Queued, "handed back: {job:?}");
    assert_eq!((job.attempts, job.locked_by.as_deref()), (0, None), "the stopped attempt does not count");
    assert_eq!(long.store().chunks().count(long.tenant).await.unwrap(), 0, "nothing of it was written");
    let waiting = long.store().documents().get(long.tenant, long.document.id).await.unwrap();
    assert_eq!(waiting.status, agentd_store::DocumentStatus::Queued);

    let mut second = long.worker();
    let job = long.until("a second worker takes the job over", |job| job.status.is_final()).await;
    second.kill();
    assert_eq!((job.status, job.attempts), (agentd_store::JobStatus::Succeeded, 1));
    long.assert_complete(planned).await;
}
