//! `agentd ingest [--tenant NAME] [--wait] PATH…`: files and folders into
//! a tenant's documents, from the command line.
//!
//! It goes through the same submission as `POST /v1/documents` and writes
//! to the server's own configuration (data dir or database), so a running
//! server sees the documents as soon as they are ready. Without `--wait` it
//! stores and queues them and returns; the server's workers (or `agentd
//! worker`) ingest them. With `--wait` it also runs workers of its own and
//! returns when every document is ready or failed, with a progress bar.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;

use agentd_retrieval::{Knowledge, SubmitError, Upload};
use agentd_store::{DocumentId, DocumentStatus, Store, TenantId};

use crate::commands::knowledge::{knowledge_options, load_embedder};
use crate::config::Config;
use crate::wiring;

/// Files submitted per job.
const FILES_PER_JOB: usize = 32;

/// A file to ingest and the title it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileToIngest {
    pub path: PathBuf,
    pub title: String,
}

/// Every file under `paths`: a file as itself (titled by its name), a
/// folder recursively (titled by the path relative to it), hidden entries
/// skipped, in a stable order.
pub fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<FileToIngest>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found)?;
            found.sort();
            for file in found {
                let relative = file.strip_prefix(path).unwrap_or(&file);
                let title =
                    relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
                files.push(FileToIngest { path: file, title });
            }
        } else {
            let title = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into());
            files.push(FileToIngest { path: path.clone(), title });
        }
    }
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), out)?;
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

pub async fn run(config: &Config, tenant: &str, wait: bool, paths: &[PathBuf]) -> anyhow::Result<()> {
    let files = collect_files(paths)?;
    if files.is_empty() {
        anyhow::bail!(
            "no files found under {}",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let tenant = tenant.trim();
    anyhow::ensure!(!tenant.is_empty(), "the tenant name must not be empty");
    let store = wiring::store(config).await?;
    // Like `keys create`: a first ingest into a new tenant creates it.
    let (tenant, created) = store.tenants().get_or_create(tenant).await?;
    if created {
        eprintln!("created tenant {:?} ({})", tenant.name, tenant.id);
    }
    let tenant = tenant.id;
    let (embedder, _models) = load_embedder(config).await?;
    let knowledge = Knowledge::open(store.clone(), embedder, knowledge_options(config, false)).await?;

    let bar = progress_bar(files.len() as u64, "stored");
    let mut waiting: Vec<(DocumentId, String)> = Vec::new();
    let (mut duplicates, mut refused, mut failed) = (0usize, 0usize, 0usize);
    for batch in files.chunks(FILES_PER_JOB) {
        let mut uploads = Vec::new();
        for file in batch {
            let bytes = std::fs::read(&file.path).with_context(|| format!("cannot read {}", file.path.display()))?;
            if bytes.len() > knowledge.max_document_bytes() {
                note(
                    &bar,
                    format!(
                        "skipped {}: {} bytes, over the limit of {} bytes",
                        file.title,
                        bytes.len(),
                        knowledge.max_document_bytes()
                    ),
                );
                refused += 1;
                bar.inc(1);
                continue;
            }
            uploads.push(Upload::file(file.title.clone(), file.path.to_string_lossy(), bytes));
        }
        if uploads.is_empty() {
            continue;
        }
        let count = uploads.len() as u64;
        let submission = match knowledge.submit(tenant, uploads).await {
            Ok(submission) => submission,
            Err(SubmitError::Store(e)) => return Err(e.into()),
            Err(e) => return Err(e.into()),
        };
        for submitted in submission.documents {
            let document = submitted.document;
            if submitted.duplicate {
                duplicates += 1;
                note(&bar, format!("unchanged {} (already ingested as {})", document.title, document.id));
            } else if document.status == DocumentStatus::Failed {
                failed += 1;
                note(&bar, format!("failed {}: {}", document.title, document.error.unwrap_or_default()));
            } else {
                waiting.push((document.id, document.title));
            }
        }
        bar.inc(count);
    }
    bar.finish_and_clear();
    println!(
        "{} stored and queued, {failed} failed, {duplicates} unchanged, {refused} over the size limit",
        waiting.len()
    );
    if !wait {
        if !waiting.is_empty() {
            println!("the server's workers (or `agentd worker`) ingest them; `agentd ingest --wait` waits for them");
        }
        return Ok(());
    }
    wait_for(&knowledge, &store, tenant, waiting, failed, config.retrieval.workers.max(1)).await
}

/// Runs workers of this process until every document is ready or failed.
async fn wait_for(
    knowledge: &Arc<Knowledge>,
    store: &Store,
    tenant: TenantId,
    waiting: Vec<(DocumentId, String)>,
    already_failed: usize,
    workers: usize,
) -> anyhow::Result<()> {
    let (stop, shutdown) = watch::channel(false);
    let workers: Vec<_> = (0..workers).map(|n| tokio::spawn(knowledge.worker(n).run(shutdown.clone()))).collect();
    let bar = progress_bar(waiting.len() as u64, "ingested");
    let mut pending: HashSet<DocumentId> = waiting.iter().map(|(id, _)| *id).collect();
    let (mut ready, mut failed, mut chunks) = (0usize, already_failed, 0i64);
    while !pending.is_empty() {
        for id in pending.clone() {
            let document = match store.documents().get(tenant, id).await {
                Ok(document) => document,
                Err(agentd_store::StoreError::NotFound(_)) => {
                    pending.remove(&id);
                    bar.inc(1);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            match document.status {
                DocumentStatus::Ready => {
                    ready += 1;
                    chunks += document.chunk_count;
                }
                DocumentStatus::Failed => {
                    failed += 1;
                    note(&bar, format!("failed {}: {}", document.title, document.error.unwrap_or_default()));
                }
                _ => continue,
            }
            pending.remove(&id);
            bar.inc(1);
            bar.set_message(format!("{chunks} chunks"));
        }
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    bar.finish_and_clear();
    let _ = stop.send(true);
    for worker in workers {
        let _ = worker.await;
    }
    println!("{ready} ready ({chunks} chunks), {failed} failed");
    Ok(())
}

/// A line for the user above the progress bar, or on standard error when
/// there is no bar to draw (not a terminal): reasons are never lost.
fn note(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

fn progress_bar(length: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(length);
    let template = format!("{{bar:40}} {{pos}}/{{len}} documents {what} {{msg}} [{{elapsed}}]");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_walked_with_titles_relative_to_them() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("guides/deep"))?;
        std::fs::create_dir_all(dir.path().join(".git"))?;
        std::fs::write(dir.path().join("guides/deep/b.md"), "b")?;
        std::fs::write(dir.path().join("a.txt"), "a")?;
        std::fs::write(dir.path().join(".hidden"), "h")?;
        std::fs::write(dir.path().join(".git/config"), "g")?;
        let single = dir.path().join("a.txt");
        let files = collect_files(&[dir.path().to_path_buf(), single.clone()])?;
        let titles: Vec<&str> = files.iter().map(|f| f.title.as_str()).collect();
        assert_eq!(titles, vec!["a.txt", "guides/deep/b.md", "a.txt"]);
        assert_eq!(files[2].path, single);
        assert!(collect_files(&[dir.path().join("missing")]).is_err());
        Ok(())
    }
}
