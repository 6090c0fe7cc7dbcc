//! Ingestion workers: take jobs off the durable queue and run them.
//!
//! The same loop runs inside `agentd serve` and as `agentd worker` on other
//! machines; the queue (see the store's `Jobs`) makes sure only one of them
//! holds a job at a time. A worker extends its lease while it works, so a
//! job is only taken over when its worker is really gone. A job's documents
//! are done one after another; each is written in one transaction, and on a
//! retry the documents already ready are skipped, so a job killed halfway
//! ends with every chunk stored exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agentd_store::{DocumentId, Job, JobStatus, NewJob, Store, StoreError, TenantId};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::ingest::{DocumentOutcome, IngestError, Ingestor};

/// How often a job's progress is written while a document is embedded.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// The job kind of document ingestion.
pub const INGEST_JOB: &str = "ingest";

/// What an ingestion job asks for: these versions of these documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestJob {
    pub documents: Vec<JobDocument>,
}

/// One document of an ingestion job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDocument {
    pub id: DocumentId,
    pub version: i64,
}

/// How workers claim and retry jobs.
#[derive(Debug, Clone, Copy)]
pub struct WorkerOptions {
    /// How long a claim holds without a heartbeat.
    pub lease: Duration,
    /// How often an idle worker looks for work it was not told about
    /// (jobs enqueued by other processes).
    pub poll: Duration,
    /// The delay before the first retry; each later one doubles it.
    pub retry_base: Duration,
    /// The longest delay between retries.
    pub retry_max: Duration,
    /// Attempts a job gets before it is dead.
    pub max_attempts: u32,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
            max_attempts: 5,
        }
    }
}

/// Enqueues ingestion jobs and wakes the workers of this process.
#[derive(Clone)]
pub struct IngestQueue {
    store: Store,
    wake: Arc<Notify>,
    max_attempts: u32,
}

impl IngestQueue {
    pub fn new(store: Store, max_attempts: u32) -> Self {
        IngestQueue { store, wake: Arc::new(Notify::new()), max_attempts }
    }

    /// Enqueues one job for these document versions and records it on the
    /// documents.
    pub async fn enqueue(&self, tenant: TenantId, documents: Vec<JobDocument>) -> Result<Job, StoreError> {
        let ids: Vec<DocumentId> = documents.iter().map(|d| d.id).collect();
        let payload = serde_json::to_value(IngestJob { documents }).unwrap_or_default();
        let job = self
            .store
            .jobs()
            .enqueue(NewJob { tenant_id: tenant, kind: INGEST_JOB.into(), payload, max_attempts: self.max_attempts })
            .await?;
        self.store.documents().attach_job(tenant, &ids, job.id).await?;
        self.wake.notify_waiters();
        Ok(job)
    }

    /// The signal local workers wait on.
    pub fn wake_signal(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

/// Called when documents of a tenant became ready, so this process's
/// indexes catch up at once instead of at their next poll.
pub type ReadyHook = Arc<dyn Fn(TenantId) + Send + Sync>;

/// One worker: a loop that claims and runs ingestion jobs.
pub struct Worker {
    name: String,
    ingestor: Ingestor,
    options: WorkerOptions,
    wake: Arc<Notify>,
    on_ready: Option<ReadyHook>,
}

impl Worker {
    /// A worker named `name` (unique per process and machine: it is what
    /// the queue knows the holder of a job by).
    pub fn new(name: String, ingestor: Ingestor, queue: &IngestQueue, options: WorkerOptions) -> Self {
        Worker { name, ingestor, options, wake: queue.wake_signal(), on_ready: None }
    }

    /// Calls `hook` whenever documents become ready.
    pub fn on_ready(mut self, hook: ReadyHook) -> Self {
        self.on_ready = Some(hook);
        self
    }

    /// Runs jobs until `shutdown` turns true. A job in progress at shutdown
    /// is handed back to the queue (nothing of it is written: chunks are
    /// stored at a job's end), so another worker takes it over at once; if
    /// that fails, its lease runs out and another worker retries it then.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let store = self.ingestor.store().clone();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let claimed = store.jobs().claim(&self.name, &[INGEST_JOB], self.options.lease).await;
            match claimed {
                Ok(Some(job)) => {
                    let id = job.id;
                    tokio::select! {
                        _ = self.run_job(job) => {}
                        _ = shutdown.changed() => {
                            match store.jobs().release(id, &self.name).await {
                                Ok(_) => tracing::info!(job = %id, worker = %self.name, "job handed back at shutdown"),
                                Err(e) => tracing::warn!(job = %id, error = %e, "could not hand the job back; its lease will run out"),
                            }
                            return;
                        }
                    }
                }
                Ok(None) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(self.options.poll) => {}
                        _ = shutdown.changed() => return,
                    }
                }
                Err(e) => {
                    tracing::warn!(worker = %self.name, error = %e, "could not claim a job");
                    tokio::select! {
                        _ = tokio::time::sleep(self.options.poll * 2) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            }
        }
    }

    /// Runs jobs until none is due, then returns how many it ran (for the
    /// command line's `--wait`).
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut ran = 0;
        while let Some(job) = self.ingestor.store().jobs().claim(&self.name, &[INGEST_JOB], self.options.lease).await? {
            self.run_job(job).await;
            ran += 1;
        }
        Ok(ran)
    }

    async fn run_job(&self, job: Job) {
        let store = self.ingestor.store().clone();
        let payload: IngestJob = match serde_json::from_value(job.payload.0.clone()) {
            Ok(payload) => payload,
            Err(e) => {
                let _ = store.jobs().fail(job.id, &self.name, &format!("unreadable job payload: {e}"), None).await;
                return;
            }
        };
        let lost = Arc::new(AtomicBool::new(false));
        // Aborted when this attempt ends, however it ends (a shutdown drops
        // this future half-way): a claim must not outlive its attempt.
        let heartbeat = AbortOnDrop(tokio::spawn(heartbeat(
            store.clone(),
            job.id,
            self.name.clone(),
            self.options.lease,
            lost.clone(),
        )));
        let result = self.run_documents(&job, &payload, &lost).await;
        drop(heartbeat);
        match result {
            Ok(()) => {
                if let Err(e) = store.jobs().succeed(job.id, &self.name).await {
                    tracing::warn!(job = %job.id, error = %e, "could not mark job done");
                }
            }
            Err(IngestError::LeaseLost) => {
                tracing::warn!(job = %job.id, worker = %self.name, "job taken over by another worker");
            }
            Err(e) => {
                let delay = self.backoff(job.attempts);
                match store.jobs().fail(job.id, &self.name, &e.to_string(), Some(delay)).await {
                    Ok(Some(JobStatus::Dead)) => {
                        tracing::error!(job = %job.id, error = %e, attempts = job.attempts, "ingestion job is dead")
                    }
                    Ok(_) => tracing::warn!(job = %job.id, error = %e, retry_in = ?delay, "ingestion attempt failed"),
                    Err(store_error) => tracing::warn!(job = %job.id, error = %store_error, "could not record failure"),
                }
            }
        }
    }

    async fn run_documents(&self, job: &Job, payload: &IngestJob, lost: &AtomicBool) -> Result<(), IngestError> {
        let store = self.ingestor.store();
        // Chunks are counted as documents are cut, so the total grows as
        // the job goes on.
        let (mut done_before, mut total_before) = (0usize, 0usize);
        for document in &payload.documents {
            if lost.load(Ordering::Relaxed) {
                return Err(IngestError::LeaseLost);
            }
            // The pipeline reports progress synchronously; a task writes
            // the latest figure to the store at most twice a second, so a
            // long document shows its progress while it is embedded.
            let (report, mut reports) = watch::channel((done_before, total_before));
            let reporter = {
                let (store, job_id, name, lease) = (store.clone(), job.id, self.name.clone(), self.options.lease);
                tokio::spawn(async move {
                    let mut written: Option<Instant> = None;
                    while reports.changed().await.is_ok() {
                        let (done, total) = *reports.borrow_and_update();
                        if written.is_some_and(|at| at.elapsed() < PROGRESS_EVERY) {
                            continue;
                        }
                        written = Some(Instant::now());
                        let _ = store.jobs().progress(job_id, &name, done as i64, total as i64, lease).await;
                    }
                })
            };
            let (mut doc_done, mut doc_total) = (0, 0);
            let mut progress = |done: usize, total: usize| {
                doc_done = done;
                doc_total = total;
                let _ = report.send((done_before + done, total_before + total));
            };
            let lease = Some((job.id, self.name.as_str()));
            let outcome =
                self.ingestor.ingest(job.tenant_id, document.id, document.version, lease, &mut progress).await;
            // With the sender gone the reporter ends after any write in
            // flight, which the final figure below then follows.
            drop(report);
            let _ = reporter.await;
            match outcome? {
                DocumentOutcome::Ready { chunks } => {
                    tracing::info!(document = %document.id, chunks, "document ready");
                    if let Some(hook) = &self.on_ready {
                        hook(job.tenant_id);
                    }
                }
                DocumentOutcome::Failed { reason } => {
                    tracing::info!(document = %document.id, reason = %reason, "document failed");
                }
                DocumentOutcome::Skipped => {}
            }
            done_before += doc_done;
            total_before += doc_total;
            if !store
                .jobs()
                .progress(job.id, &self.name, done_before as i64, total_before as i64, self.options.lease)
                .await?
            {
                return Err(IngestError::LeaseLost);
            }
        }
        Ok(())
    }

    /// The delay before retry number `attempt`: doubling from the base, up
    /// to the maximum, with a random quarter off so that jobs failed
    /// together do not all come back together.
    fn backoff(&self, attempt: i64) -> Duration {
        let exponent = attempt.clamp(1, 20) as u32 - 1;
        let delay = self.options.retry_base.saturating_mul(1 << exponent).min(self.options.retry_max);
        delay.mul_f64(1.0 - rand::random::<f64>() * 0.25)
    }
}

/// A task that stops when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Extends the lease every third of its length; flags `lost` if the job
/// was taken over.
async fn heartbeat(store: Store, job: agentd_store::JobId, worker: String, lease: Duration, lost: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(lease / 3).await;
        match store.jobs().heartbeat(job, &worker, lease).await {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) => tracing::warn!(job = %job, error = %e, "heartbeat failed"),
        }
    }
}
