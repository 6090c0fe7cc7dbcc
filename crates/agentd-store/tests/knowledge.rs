//! Documents, chunks, the chunk change log, the embedding cache and the job
//! queue, on SQLite and PostgreSQL alike.
//!
//! These are the guarantees ingestion is built on: identical uploads are
//! one document, a document's chunks are replaced as one set and logged in
//! commit order, a worker that lost its lease cannot write, and a job whose
//! worker vanished runs again until its attempts are used up.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use agentd_store::testing::{Backend, TestStore};
use agentd_store::{
    ChunkId, ChunkReplacement, DocumentReplacement, DocumentStatus, JobStatus, ManualClock, NewChunk, NewDocument,
    NewJob, StoreError, TenantId,
};
use serde_json::json;

fn new_document(tenant: TenantId, title: &str, bytes: &[u8], metadata: serde_json::Value) -> NewDocument {
    NewDocument {
        tenant_id: tenant,
        title: title.into(),
        source: Some(format!("{title}.md")),
        format: Some("markdown".into()),
        content_type: None,
        metadata,
        bytes: bytes.to_vec(),
        failure: None,
    }
}

fn chunk(position: i64, text: &str) -> NewChunk {
    NewChunk {
        position,
        text: text.into(),
        heading_path: vec!["Intro".into()],
        byte_span: (position * 10, position * 10 + 9),
        char_span: (position * 10, position * 10 + 9),
        tokens: 3,
        embedding: vec![position as f32, 0.5, -1.0],
    }
}

fn job(tenant: TenantId, max_attempts: u32) -> NewJob {
    NewJob { tenant_id: tenant, kind: "ingest".into(), payload: json!({"documents": []}), max_attempts }
}

const LEASE: Duration = Duration::from_secs(60);

on_both_backends!(identical_bytes_are_one_document_per_tenant, |store| {
    let acme = store.tenants().create("acme").await?.id;
    let other = store.tenants().create("other").await?.id;
    let first = store.documents().add(new_document(acme, "a", b"# Same\n\ntext", json!({}))).await?;
    assert!(!first.duplicate);
    assert_eq!(first.document.status, DocumentStatus::Queued);
    assert_eq!(first.document.byte_size, 12);
    let again = store.documents().add(new_document(acme, "b", b"# Same\n\ntext", json!({}))).await?;
    assert!(again.duplicate);
    assert_eq!(again.document.id, first.document.id);
    assert_eq!(again.document.title, "a");
    // Another tenant's identical upload is its own document.
    let theirs = store.documents().add(new_document(other, "a", b"# Same\n\ntext", json!({}))).await?;
    assert!(!theirs.duplicate);
    assert_ne!(theirs.document.id, first.document.id);
    assert_err!(store.documents().get(other, first.document.id).await, StoreError::NotFound("document"));
    assert_eq!(store.documents().content(acme, first.document.id).await?, (1, b"# Same\n\ntext".to_vec()));
    assert_err!(store.documents().content(other, first.document.id).await, StoreError::NotFound("document"));
    Ok(())
});

on_both_backends!(documents_are_listed_by_metadata, |store| {
    let acme = store.tenants().create("acme").await?.id;
    let hr = store.documents().add(new_document(acme, "hr", b"1", json!({"team": "hr", "year": 2024}))).await?;
    let eng = store.documents().add(new_document(acme, "eng", b"2", json!({"team": "eng", "year": 2024}))).await?;
    let old = store.documents().add(new_document(acme, "old", b"3", json!({"team": "eng", "year": 2019}))).await?;
    let all = store.documents().list(acme, None, 10, None).await?;
    assert_eq!(all.items.len(), 3);
    assert_eq!(all.items[0].id, old.document.id, "newest first");
    let eng_2024 = store.documents().list(acme, Some(&json!({"team": "eng", "year": 2024})), 10, None).await?;
    assert_eq!(eng_2024.items.iter().map(|d| d.id).collect::<Vec<_>>(), vec![eng.document.id]);
    let team_eng = store.documents().matching(acme, &json!({"team": "eng"})).await?;
    assert_eq!(team_eng.len(), 2);
    assert!(!team_eng.contains(&hr.document.id));
    assert!(store.documents().matching(acme, &json!({"team": "none"})).await?.is_empty());
    let page = store.documents().list(acme, None, 2, None).await?;
    let rest = store.documents().list(acme, None, 2, page.next_cursor.as_deref()).await?;
    assert_eq!(rest.items.iter().map(|d| d.id).collect::<Vec<_>>(), vec![hr.document.id]);

    // Keys of any text, and values compared as JSON values.
    let odd = json!({"": null, "a\"b": "x", "back\\slash": 1.0, "😍\n": true, "nested": {"k": [1, 2]}});
    let odd = store.documents().add(new_document(acme, "odd", b"4", odd)).await?.document.id;
    for filter in [
        json!({"": null}),
        json!({"a\"b": "x"}),
        json!({"back\\slash": 1}),
        json!({"😍\n": true, "nested": {"k": [1, 2]}}),
    ] {
        assert_eq!(store.documents().matching(acme, &filter).await?, vec![odd], "{filter}");
    }
    for filter in [json!({"missing": null}), json!({"a\"b": "y"}), json!({"😍\n": 1}), json!({"nested": {"k": [2]}})]
    {
        assert!(store.documents().matching(acme, &filter).await?.is_empty(), "{filter}");
    }
    Ok(())
});

on_both_backends!(chunks_are_replaced_as_one_set_and_logged_in_order, |store| {
    let acme = store.tenants().create("acme").await?.id;
    let doc = store.documents().add(new_document(acme, "guide", b"v1", json!({}))).await?.document;
    let before = store.chunks().last_change().await?;
    let first =
        store.chunks().replace_for_document(acme, doc.id, 1, &[chunk(0, "alpha"), chunk(1, "beta")], None).await?;
    assert_eq!(first, ChunkReplacement::Replaced { chunks: 2 });
    let ready = store.documents().get(acme, doc.id).await?;
    assert_eq!((ready.status, ready.chunk_count), (DocumentStatus::Ready, 2));
    let added = store.chunks().changes_after(before, 100).await?;
    assert_eq!(added.len(), 2);
    assert!(added.iter().all(|c| c.added && c.tenant_id == acme));
    let old_keys: Vec<ChunkId> = added.iter().map(|c| c.chunk).collect();

    // A new version replaces the chunks: the log removes the old, adds the new.
    let replacement = DocumentReplacement {
        title: None,
        source: None,
        format: Some("markdown".into()),
        content_type: None,
        metadata: None,
        bytes: b"v2".to_vec(),
        failure: None,
    };
    let v2 = store.documents().replace(acme, doc.id, replacement).await?;
    assert_eq!((v2.version, v2.status, v2.title.as_str()), (2, DocumentStatus::Queued, "guide"));
    // Work for version 1 that finishes late is stale and writes nothing.
    let stale = store.chunks().replace_for_document(acme, doc.id, 1, &[chunk(0, "stale")], None).await?;
    assert_eq!(stale, ChunkReplacement::Superseded);
    let last = added.last().map(|c| c.seq).unwrap_or_default();
    store.chunks().replace_for_document(acme, doc.id, 2, &[chunk(0, "gamma")], None).await?;
    let changes = store.chunks().changes_after(last, 100).await?;
    assert_eq!(changes.iter().filter(|c| !c.added).map(|c| c.chunk).collect::<Vec<_>>(), old_keys);
    assert_eq!(changes.iter().filter(|c| c.added).count(), 1);
    assert!(changes.windows(2).all(|w| w[0].seq < w[1].seq));
    let new_key = changes.iter().find(|c| c.added).map(|c| c.chunk).unwrap_or(ChunkId(0));
    let hits = store.chunks().get_many(acme, &[old_keys[0], new_key]).await?;
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].text.as_str(), hits[0].title.as_str(), hits[0].version), ("gamma", "guide", 2));
    let indexable = store.chunks().indexable(acme, &[new_key]).await?;
    assert_eq!(indexable[0].embedding, vec![0.0, 0.5, -1.0]);
    assert_eq!(indexable[0].heading_path, vec!["Intro".to_string()]);

    // Deleting the document logs the removal of its chunks.
    let last = changes.last().map(|c| c.seq).unwrap_or_default();
    store.documents().delete(acme, doc.id).await?;
    let removed = store.chunks().changes_after(last, 100).await?;
    assert_eq!(removed.iter().map(|c| (c.chunk, c.added)).collect::<Vec<_>>(), vec![(new_key, false)]);
    assert_eq!(store.chunks().count(acme).await?, 0);
    assert_err!(store.documents().delete(acme, doc.id).await, StoreError::NotFound("document"));
    Ok(())
});

on_both_backends!(chunks_never_cross_tenants, |store| {
    let acme = store.tenants().create("acme").await?.id;
    let other = store.tenants().create("other").await?.id;
    let doc = store.documents().add(new_document(acme, "secret", b"s", json!({}))).await?.document;
    // Another tenant cannot write chunks into acme's document.
    let foreign = store.chunks().replace_for_document(other, doc.id, 1, &[chunk(0, "x")], None).await?;
    assert_eq!(foreign, ChunkReplacement::Superseded);
    store.chunks().replace_for_document(acme, doc.id, 1, &[chunk(0, "secret text")], None).await?;
    let keys: Vec<ChunkId> = store.chunks().keys_of_tenant(acme).await?.into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 1);
    assert!(store.chunks().get_many(other, &keys).await?.is_empty());
    assert!(store.chunks().indexable(other, &keys).await?.is_empty());
    assert!(store.chunks().tenant_changes_after(other, 0, 100).await?.is_empty());
    assert_eq!(store.chunks().tenant_changes_after(acme, 0, 100).await?.len(), 1);
    assert_err!(store.documents().delete(other, doc.id).await, StoreError::NotFound("document"));
    Ok(())
});

on_both_backends!(a_worker_without_the_lease_writes_nothing, |store| {
    let acme = store.tenants().create("acme").await?.id;
    let doc = store.documents().add(new_document(acme, "guide", b"v1", json!({}))).await?.document;
    let queued = store.jobs().enqueue(job(acme, 3)).await?;
    let claimed = store.jobs().claim("w1", &["ingest"], LEASE).await?.expect("a due job");
    assert_eq!((claimed.id, claimed.status, claimed.attempts), (queued.id, JobStatus::Running, 1));
    let lost = store.chunks().replace_for_document(acme, doc.id, 1, &[chunk(0, "x")], Some((claimed.id, "w2"))).await?;
    assert_eq!(lost, ChunkReplacement::LeaseLost);
    assert_eq!(store.chunks().count(acme).await?, 0);
    let held = store.chunks().replace_for_document(acme, doc.id, 1, &[chunk(0, "x")], Some((claimed.id, "w1"))).await?;
    assert_eq!(held, ChunkReplacement::Replaced { chunks: 1 });
    Ok(())
});

on_both_backends!(jobs_are_claimed_once_and_retried_until_dead, |store| {
    let clock = Arc::new(ManualClock::new());
    let store = &store.store.clone().with_clock(clock.clone());
    let acme = store.tenants().create("acme").await?.id;
    let a = store.jobs().enqueue(job(acme, 2)).await?;
    let b = store.jobs().enqueue(job(acme, 2)).await?;
    assert!(store.jobs().claim("w", &["other-kind"], LEASE).await?.is_none());
    let first = store.jobs().claim("w1", &["ingest"], LEASE).await?.expect("job a");
    let second = store.jobs().claim("w2", &["ingest"], LEASE).await?.expect("job b");
    assert_eq!((first.id, second.id), (a.id, b.id));
    assert!(store.jobs().claim("w3", &["ingest"], LEASE).await?.is_none(), "both are held");

    // Progress and completion only by the holder.
    assert!(!store.jobs().progress(a.id, "w2", 1, 4, LEASE).await?);
    assert!(store.jobs().progress(a.id, "w1", 1, 4, LEASE).await?);
    let seen = store.jobs().get(acme, a.id).await?;
    assert_eq!((seen.progress_done, seen.progress_total), (1, 4));
    assert!(store.jobs().succeed(a.id, "w1").await?);
    let done = store.jobs().get(acme, a.id).await?;
    assert_eq!((done.status, done.progress_done), (JobStatus::Succeeded, 4));
    assert!(done.finished_at.is_some());

    // A failed attempt is retried after its backoff, then the job is dead.
    let status = store.jobs().fail(b.id, "w2", "embedder busy", Some(Duration::from_millis(300))).await?;
    assert_eq!(status, Some(JobStatus::Queued));
    assert!(store.jobs().claim("w3", &["ingest"], LEASE).await?.is_none(), "backing off");
    clock.advance(Duration::from_millis(299));
    assert!(store.jobs().claim("w3", &["ingest"], LEASE).await?.is_none(), "still backing off");
    clock.advance(Duration::from_millis(1));
    let retry = store.jobs().claim("w3", &["ingest"], LEASE).await?.expect("due again");
    assert_eq!((retry.id, retry.attempts, retry.last_error.as_deref()), (b.id, 2, Some("embedder busy")));
    let status = store.jobs().fail(b.id, "w3", "embedder busy", Some(Duration::ZERO)).await?;
    assert_eq!(status, Some(JobStatus::Dead));
    assert!(store.jobs().claim("w4", &["ingest"], LEASE).await?.is_none());

    // A failure retrying cannot mend ends the job at once.
    let c = store.jobs().enqueue(job(acme, 5)).await?;
    store.jobs().claim("w1", &["ingest"], LEASE).await?.expect("job c");
    assert_eq!(store.jobs().fail(c.id, "w1", "bad payload", None).await?, Some(JobStatus::Failed));
    assert_eq!(store.jobs().fail(c.id, "w1", "again", None).await?, None, "no longer held");
    let other = store.tenants().create("other").await?.id;
    assert_err!(store.jobs().get(other, c.id).await, StoreError::NotFound("job"));
    Ok(())
});

on_both_backends!(a_released_job_is_queued_again_without_using_an_attempt, |store| {
    let acme = store.tenants().create("acme").await?.id;
    let queued = store.jobs().enqueue(job(acme, 1)).await?;
    let doc = store.documents().add(new_document(acme, "guide", b"v1", json!({}))).await?.document;
    store.documents().attach_job(acme, &[doc.id], queued.id).await?;
    store.jobs().claim("stopping", &["ingest"], LEASE).await?.expect("claimed");
    assert!(store.documents().set_status(acme, doc.id, doc.version, DocumentStatus::Processing, None).await?);

    assert!(!store.jobs().release(queued.id, "someone-else").await?, "only the holder hands a job back");
    assert!(store.jobs().release(queued.id, "stopping").await?);
    assert!(!store.jobs().release(queued.id, "stopping").await?, "no longer held");
    let released = store.jobs().get(acme, queued.id).await?;
    assert_eq!((released.status, released.attempts, released.locked_by), (JobStatus::Queued, 0, None));
    assert_eq!(store.documents().get(acme, doc.id).await?.status, DocumentStatus::Queued);

    // Another worker takes it at once, and its single attempt is still there.
    let again = store.jobs().claim("next", &["ingest"], LEASE).await?.expect("due at once");
    assert_eq!((again.id, again.attempts), (queued.id, 1));
    assert!(store.jobs().succeed(queued.id, "next").await?);
    Ok(())
});

on_both_backends!(a_job_whose_worker_vanished_runs_again, |store| {
    let clock = Arc::new(ManualClock::new());
    let store = &store.store.clone().with_clock(clock.clone());
    let acme = store.tenants().create("acme").await?.id;
    let queued = store.jobs().enqueue(job(acme, 2)).await?;
    let doc = store.documents().add(new_document(acme, "guide", b"v1", json!({}))).await?.document;
    store.documents().attach_job(acme, &[doc.id], queued.id).await?;
    let short = Duration::from_millis(200);
    store.jobs().claim("killed", &["ingest"], short).await?.expect("claimed");
    clock.advance(short);
    assert!(store.jobs().claim("w2", &["ingest"], LEASE).await?.is_none(), "lease still running");
    clock.advance(Duration::from_millis(1));
    let again = store.jobs().claim("w2", &["ingest"], short).await?.expect("lease expired");
    assert_eq!((again.id, again.attempts), (queued.id, 2));
    // The vanished worker can no longer report.
    assert!(!store.jobs().succeed(queued.id, "killed").await?);
    // Its second worker vanishes too: with no attempts left the job is dead.
    clock.advance(short + Duration::from_millis(1));
    assert!(store.jobs().claim("w3", &["ingest"], LEASE).await?.is_none());
    let dead = store.jobs().get(acme, queued.id).await?;
    assert_eq!(dead.status, JobStatus::Dead);
    assert!(dead.last_error.is_some_and(|e| e.contains("stopped")));
    // The document it was ingesting says why it will never be ready.
    let failed = store.documents().get(acme, doc.id).await?;
    assert_eq!(failed.status, DocumentStatus::Failed);
    assert!(failed.error.is_some_and(|e| e.starts_with("ingestion failed: the worker")));
    Ok(())
});

on_both_backends!(concurrent_workers_never_share_a_job, |store| {
    let acme = store.tenants().create("acme").await?.id;
    for _ in 0..20 {
        store.jobs().enqueue(job(acme, 1)).await?;
    }
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = store.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(job) = store.jobs().claim(&format!("w{w}"), &["ingest"], LEASE).await? {
                mine.push(job.id);
            }
            Ok::<_, StoreError>(mine)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let unique: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!((all.len(), unique.len()), (20, 20));
    Ok(())
});

on_both_backends!(embeddings_are_cached_per_tenant_and_model, |store| {
    let acme = store.tenants().create("acme").await?.id;
    let other = store.tenants().create("other").await?.id;
    let (h1, h2) = ([1u8; 32], [2u8; 32]);
    store.embedding_cache().put_many(acme, "m", &[(h1, &[1.0, 2.0][..]), (h2, &[3.0, 4.0][..])]).await?;
    // A second write of a cached hash keeps the first vector.
    store.embedding_cache().put_many(acme, "m", &[(h1, &[9.0, 9.0][..])]).await?;
    let found = store.embedding_cache().get_many(acme, "m", &[h1, h2, [3u8; 32]]).await?;
    assert_eq!(found.len(), 2);
    assert_eq!(found[&h1], vec![1.0, 2.0]);
    assert!(store.embedding_cache().get_many(acme, "other-model", &[h1]).await?.is_empty());
    assert!(store.embedding_cache().get_many(other, "m", &[h1]).await?.is_empty());
    Ok(())
});

on_both_backends!(block_prints_count_other_documents_of_the_same_tenant, |store| {
    let acme = store.tenants().create("acme").await?.id;
    let other = store.tenants().create("other").await?.id;
    let mut documents = Vec::new();
    for n in 0..3 {
        let document = new_document(acme, &format!("d{n}"), format!("text {n}").as_bytes(), json!({}));
        documents.push(store.documents().add(document).await?.document.id);
    }
    let foreign = store.documents().add(new_document(other, "f", b"foreign", json!({}))).await?.document.id;
    let prints = store.block_prints();
    prints.replace(acme, documents[0], &[1, 2, 2]).await?;
    prints.replace(acme, documents[1], &[1, -5]).await?;
    prints.replace(other, foreign, &[1, 2, -5]).await?;
    // Each other document of the tenant counts once; the asker does not.
    let seen = prints.others_holding(acme, documents[2], &[1, 2, -5, 9]).await?;
    assert_eq!(seen, [(1, 2), (2, 1), (-5, 1)].into_iter().collect());
    let seen = prints.others_holding(acme, documents[0], &[1, 2]).await?;
    assert_eq!(seen, [(1, 1)].into_iter().collect());
    // A new version's prints replace the old ones.
    prints.replace(acme, documents[1], &[7]).await?;
    assert_eq!(prints.others_holding(acme, documents[2], &[1, 7]).await?, [(1, 1), (7, 1)].into_iter().collect());
    // A deleted document's prints go with it.
    store.documents().delete(acme, documents[0]).await?;
    assert_eq!(prints.others_holding(acme, documents[2], &[1, 2, 7]).await?, [(7, 1)].into_iter().collect());
    // Prints of a document deleted while it was ingested are not kept, and
    // are no error (the ingestion then finds the document gone).
    prints.replace(acme, documents[0], &[1, 2, 7]).await?;
    assert_eq!(prints.others_holding(acme, documents[2], &[1, 2, 7]).await?, [(7, 1)].into_iter().collect());
    Ok(())
});
