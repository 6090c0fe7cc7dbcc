//! The durable job queue: a `jobs` table both backends share.
//!
//! A worker claims the oldest due job by setting it running under its name
//! with a lease (a deadline). While it works it extends the lease; if it
//! dies (even by `kill -9`), the lease runs out and any worker claims the
//! job again, which counts as a new attempt. On PostgreSQL the claim skips
//! rows other workers are claiming at the same moment (`FOR UPDATE SKIP
//! LOCKED`), so many workers on many machines never take one job twice;
//! SQLite has one writer at a time, so the same statement is atomic there.
//! Every write of a worker names it and changes nothing once its lease has
//! passed to another worker.
//!
//! A failed attempt is retried after a backoff until `max_attempts`, then
//! the job is dead; a failure that retrying cannot mend fails it at once.

use std::time::Duration;

use crate::db::{Store, on_pool};
use crate::error::StoreError;
use crate::ids::{JobId, TenantId};
use crate::knowledge::{Job, JobStatus, NewJob};
use crate::repos::stored_time;

/// Repository of jobs.
pub struct Jobs<'a> {
    pub(crate) store: &'a Store,
}

/// The columns a [`Job`] is read from.
macro_rules! job_columns {
    () => {
        "id, tenant_id, kind, payload, status, attempts, max_attempts, progress_done, progress_total, last_error, \
         locked_by, locked_until_ms, created_at, updated_at, finished_at"
    };
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Jobs<'_> {
    /// Adds a job, due now.
    pub async fn enqueue(&self, new: NewJob) -> Result<Job, StoreError> {
        let now = stored_time(self.store.now());
        let sql = concat!(
            "INSERT INTO jobs (id, tenant_id, kind, payload, status, max_attempts, run_after_ms, created_at, ",
            "updated_at) VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $7) RETURNING ",
            job_columns!()
        );
        on_pool!(self.store, pool => {
            Ok(sqlx::query_as::<_, Job>(sql)
                .bind(JobId::new())
                .bind(new.tenant_id)
                .bind(&new.kind)
                .bind(sqlx::types::Json(&new.payload))
                .bind(i64::from(new.max_attempts.max(1)))
                .bind(now.timestamp_millis())
                .bind(now)
                .fetch_one(pool)
                .await?)
        })
    }

    /// The job with this id, if it belongs to the tenant.
    pub async fn get(&self, tenant: TenantId, id: JobId) -> Result<Job, StoreError> {
        let sql = concat!("SELECT ", job_columns!(), " FROM jobs WHERE tenant_id = $1 AND id = $2");
        on_pool!(self.store, pool => {
            sqlx::query_as::<_, Job>(sql).bind(tenant).bind(id).fetch_optional(pool).await?.ok_or(StoreError::NotFound("job"))
        })
    }

    /// Claims the oldest due job of one of `kinds` for `worker`, holding it
    /// for `lease`. A job whose worker's lease ran out is due again; one
    /// that has also used up its attempts is marked dead instead.
    pub async fn claim(&self, worker: &str, kinds: &[&str], lease: Duration) -> Result<Option<Job>, StoreError> {
        let now = stored_time(self.store.now());
        let now_ms = now.timestamp_millis();
        let bury = "UPDATE jobs SET status = 'dead', locked_by = NULL, locked_until_ms = NULL, \
                    last_error = 'the worker running the last attempt stopped without finishing it', \
                    updated_at = $2, finished_at = $2 \
                    WHERE status = 'running' AND locked_until_ms < $1 AND attempts >= max_attempts";
        let kinds_list = (0..kinds.len()).map(|i| format!("${}", i + 6)).collect::<Vec<_>>().join(", ");
        let skip_locked = if self.store.backend() == "postgres" { " FOR UPDATE SKIP LOCKED" } else { "" };
        let claim = format!(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = $1, locked_until_ms = $2, \
             updated_at = $3 WHERE id = (SELECT id FROM jobs WHERE kind IN ({kinds_list}) AND \
             ((status = 'queued' AND run_after_ms <= $4) OR (status = 'running' AND locked_until_ms < $5)) \
             ORDER BY run_after_ms, id LIMIT 1{skip_locked}) RETURNING {}",
            job_columns!()
        );
        if kinds.is_empty() {
            return Ok(None);
        }
        let buried =
            on_pool!(self.store, pool => sqlx::query(bury).bind(now_ms).bind(now).execute(pool).await?.rows_affected());
        if buried > 0 {
            self.fail_orphaned_documents().await?;
        }
        on_pool!(self.store, pool => {
            let mut query = sqlx::query_as::<_, Job>(sqlx::AssertSqlSafe(claim))
                .bind(worker)
                .bind(now_ms + millis(lease))
                .bind(now)
                .bind(now_ms)
                .bind(now_ms);
            for kind in kinds {
                query = query.bind(*kind);
            }
            Ok(query.fetch_optional(pool).await?)
        })
    }

    /// Extends the worker's lease on a job and records its progress.
    /// Returns false when the worker no longer holds the job.
    pub async fn progress(
        &self,
        id: JobId,
        worker: &str,
        done: i64,
        total: i64,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE jobs SET progress_done = $3, progress_total = $4, locked_until_ms = $5, updated_at = $6 \
                   WHERE id = $1 AND locked_by = $2 AND status = 'running'";
        let now = stored_time(self.store.now());
        let updated = on_pool!(self.store, pool => {
            sqlx::query(sql)
                .bind(id)
                .bind(worker)
                .bind(done)
                .bind(total)
                .bind(now.timestamp_millis() + millis(lease))
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(updated > 0)
    }

    /// Extends the worker's lease without changing the progress.
    pub async fn heartbeat(&self, id: JobId, worker: &str, lease: Duration) -> Result<bool, StoreError> {
        let sql = "UPDATE jobs SET locked_until_ms = $3 WHERE id = $1 AND locked_by = $2 AND status = 'running'";
        let now = self.store.now();
        let updated = on_pool!(self.store, pool => {
            sqlx::query(sql).bind(id).bind(worker).bind(now.timestamp_millis() + millis(lease)).execute(pool).await?.rows_affected()
        });
        Ok(updated > 0)
    }

    /// Marks the worker's job done. Returns false when it no longer held it.
    pub async fn succeed(&self, id: JobId, worker: &str) -> Result<bool, StoreError> {
        let sql = "UPDATE jobs SET status = 'succeeded', locked_by = NULL, locked_until_ms = NULL, \
                   progress_done = progress_total, updated_at = $3, finished_at = $3 \
                   WHERE id = $1 AND locked_by = $2 AND status = 'running'";
        let now = stored_time(self.store.now());
        let updated = on_pool!(self.store, pool => {
            sqlx::query(sql).bind(id).bind(worker).bind(now).execute(pool).await?.rows_affected()
        });
        Ok(updated > 0)
    }

    /// Hands the worker's job back to the queue at once, as if its attempt
    /// had not started: a worker shutting down gracefully does this, so
    /// that another worker takes the job over without waiting for the lease
    /// to run out, and a restart does not use up the job's attempts. The
    /// job's documents in progress read as queued again. Returns false when
    /// the worker no longer held the job.
    pub async fn release(&self, id: JobId, worker: &str) -> Result<bool, StoreError> {
        let job = "UPDATE jobs SET status = 'queued', attempts = attempts - 1, locked_by = NULL, \
                   locked_until_ms = NULL, run_after_ms = $3, updated_at = $4 \
                   WHERE id = $1 AND locked_by = $2 AND status = 'running'";
        let documents =
            "UPDATE documents SET status = 'queued', updated_at = $2 WHERE job_id = $1 AND status = 'processing'";
        let now = stored_time(self.store.now());
        on_pool!(self.store, pool => {
            let mut tx = pool.begin().await?;
            let released = sqlx::query(job)
                .bind(id)
                .bind(worker)
                .bind(now.timestamp_millis())
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            if released {
                sqlx::query(documents).bind(id).bind(now).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(released)
        })
    }

    /// Ends the worker's attempt with `error`. With `retry_after`, the job
    /// runs again after that delay while it has attempts left, and is dead
    /// after the last; without, it fails for good. Returns the job's new
    /// status, or `None` when the worker no longer held it.
    pub async fn fail(
        &self,
        id: JobId,
        worker: &str,
        error: &str,
        retry_after: Option<Duration>,
    ) -> Result<Option<JobStatus>, StoreError> {
        let sql = "UPDATE jobs SET \
                   status = CASE WHEN $3 AND attempts < max_attempts THEN 'queued' WHEN $3 THEN 'dead' ELSE 'failed' END, \
                   finished_at = CASE WHEN $3 AND attempts < max_attempts THEN NULL ELSE $6 END, \
                   run_after_ms = $4, last_error = $5, locked_by = NULL, locked_until_ms = NULL, updated_at = $6 \
                   WHERE id = $1 AND locked_by = $2 AND status = 'running' RETURNING status";
        let now = stored_time(self.store.now());
        let status = on_pool!(self.store, pool => {
            sqlx::query_scalar::<_, String>(sql)
                .bind(id)
                .bind(worker)
                .bind(retry_after.is_some())
                .bind(now.timestamp_millis() + retry_after.map_or(0, millis))
                .bind(error)
                .bind(now)
                .fetch_optional(pool)
                .await?
        });
        let status = status.map(|s| JobStatus::try_from(s).map_err(StoreError::Corrupt)).transpose()?;
        if status.is_some_and(JobStatus::is_final) {
            self.fail_orphaned_documents().await?;
        }
        Ok(status)
    }

    /// Marks failed the documents still waiting on a job that has ended
    /// without them, with the job's last error as the reason.
    async fn fail_orphaned_documents(&self) -> Result<(), StoreError> {
        let sql = "UPDATE documents SET status = 'failed', updated_at = $1, \
                   error = (SELECT 'ingestion failed: ' || COALESCE(j.last_error, 'unknown error') \
                            FROM jobs j WHERE j.id = documents.job_id) \
                   WHERE status IN ('queued', 'processing') \
                   AND job_id IN (SELECT id FROM jobs WHERE status IN ('failed', 'dead'))";
        let now = stored_time(self.store.now());
        on_pool!(self.store, pool => {
            sqlx::query(sql).bind(now).execute(pool).await?;
        });
        Ok(())
    }
}
