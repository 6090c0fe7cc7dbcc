//! The knowledge service end to end, on SQLite and PostgreSQL: submit,
//! ingest by workers, search in every mode, replace, delete, tenant
//! isolation, indexes surviving a restart or a crash, and a job whose
//! worker vanished finishing with every chunk exactly once.
//!
//! Vectors come from [`HashedWordsEmbedder`] (a bag of words), so these
//! tests check the machinery, not the quality of a language model.

use std::sync::Arc;
use std::time::Duration;

use agentd_models::HashedWordsEmbedder;
use agentd_retrieval::parse::Format;
use agentd_retrieval::vector::VectorIndex;
use agentd_retrieval::worker::INGEST_JOB;
use agentd_retrieval::{
    Knowledge, KnowledgeOptions, SearchFilter, SearchMode, SearchRequest, Turn, TurnRole, Upload, WorkerOptions,
};
use agentd_store::testing::{Backend, TestStore};
use agentd_store::{DocumentId, DocumentStatus, JobStatus, Store, TenantId};
use serde_json::json;

macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(agentd_store::testing::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(agentd_store::testing::Backend::Postgres).await
                }
            )+
        }
    };
}

on_both_backends!(
    documents_are_ingested_and_found_in_every_mode,
    a_new_version_replaces_the_old_chunks,
    replaced_chunks_do_not_pile_up_in_the_vector_graph,
    deleted_documents_leave_every_index,
    tenants_never_see_each_others_chunks,
    filters_narrow_the_search,
    indexes_survive_a_restart_and_a_lost_snapshot,
    the_vector_index_is_saved_when_the_service_stops,
    a_vanished_worker_leaves_no_duplicate_and_no_gap,
    unreadable_documents_fail_alone,
    a_follow_up_is_searched_with_its_conversation,
);

const GUIDE: &str = "# Deployment guide\n\nRun the server behind a reverse proxy.\n\n\
                     ## Backups\n\nCopy the data directory every night to cold storage.\n";
const RECIPES: &str = "# Recipes\n\nBake the bread at two hundred degrees for forty minutes.\n";

fn options(dir: Option<std::path::PathBuf>) -> KnowledgeOptions {
    KnowledgeOptions {
        index_dir: dir,
        worker: WorkerOptions { poll: Duration::from_millis(50), ..WorkerOptions::default() },
        ..KnowledgeOptions::default()
    }
}

async fn knowledge(store: &Store, dir: Option<std::path::PathBuf>) -> Arc<Knowledge> {
    Knowledge::open(store.clone(), Arc::new(HashedWordsEmbedder::new(128)), options(dir)).await.expect("opens")
}

fn markdown(title: &str, text: &str) -> Upload {
    Upload::file(title, format!("{title}.md"), text.as_bytes().to_vec())
}

/// Submits and runs the job to the end with a worker of this test.
async fn ingest(k: &Knowledge, tenant: TenantId, uploads: Vec<Upload>) -> Vec<DocumentId> {
    let submission = k.submit(tenant, uploads).await.expect("submitted");
    k.worker(0).drain().await.expect("jobs run");
    submission.documents.iter().map(|d| d.document.id).collect()
}

async fn titles(k: &Knowledge, tenant: TenantId, query: &str, mode: SearchMode) -> Vec<String> {
    let response = k.search(tenant, &SearchRequest::new(query, 10, mode)).await.expect("search runs");
    response.results.into_iter().map(|r| r.title).collect()
}

async fn documents_are_ingested_and_found_in_every_mode(backend: Backend) {
    let db = TestStore::new(backend).await;
    let tenant = db.tenants().create("acme").await.expect("tenant").id;
    let k = knowledge(&db, None).await;
    let ids = ingest(&k, tenant, vec![markdown("guide", GUIDE), markdown("recipes", RECIPES)]).await;
    for id in &ids {
        let document = db.documents().get(tenant, *id).await.expect("document");
        assert_eq!(document.status, DocumentStatus::Ready, "{:?}", document.error);
        assert!(document.chunk_count >= 1);
    }
    for mode in SearchMode::ALL {
        let found = titles(&k, tenant, "copy the data directory backups", mode).await;
        assert_eq!(found.first().map(String::as_str), Some("guide"), "{mode:?}: {found:?}");
    }
    let request = SearchRequest { debug: true, ..SearchRequest::new("bread", 1, SearchMode::Hybrid) };
    let response = k.search(tenant, &request).await.expect("search runs");
    let best = &response.results[0];
    assert_eq!((best.title.as_str(), best.heading_path.clone()), ("recipes", vec!["Recipes".to_string()]));
    // The span points at the passage in the document's text.
    assert_eq!(RECIPES[best.span.byte_start as usize..best.span.byte_end as usize].trim_end(), best.text);
    let timings = response.timings.expect("debug asks for timings");
    assert!(timings.total_ms >= timings.embed_ms && timings.keyword_candidates >= 1);
    // Identical bytes again are the same document, not a second one.
    let again = k.submit(tenant, vec![markdown("guide copy", GUIDE)]).await.expect("submitted");
    assert!(again.documents[0].duplicate);
    assert_eq!((again.documents[0].document.id, again.job_id), (ids[0], None));
}

async fn a_new_version_replaces_the_old_chunks(backend: Backend) {
    let db = TestStore::new(backend).await;
    let tenant = db.tenants().create("acme").await.expect("tenant").id;
    let k = knowledge(&db, None).await;
    let ids = ingest(&k, tenant, vec![markdown("notes", "The launch code is zebra.")]).await;
    assert_eq!(titles(&k, tenant, "zebra", SearchMode::Keyword).await, vec!["notes"]);
    let replaced = k.replace(tenant, ids[0], markdown("notes", "The launch code is giraffe.")).await;
    assert!(replaced.expect("replaced").job_id.is_some());
    // Until the new version is ingested the old one is still searchable.
    assert_eq!(titles(&k, tenant, "zebra", SearchMode::Keyword).await, vec!["notes"]);
    k.worker(0).drain().await.expect("jobs run");
    assert!(titles(&k, tenant, "zebra", SearchMode::Keyword).await.is_empty());
    assert_eq!(titles(&k, tenant, "giraffe", SearchMode::Keyword).await, vec!["notes"]);
    let document = db.documents().get(tenant, ids[0]).await.expect("document");
    assert_eq!(
        (document.version, document.status, db.chunks().count(tenant).await.expect("count")),
        (2, DocumentStatus::Ready, 1)
    );
}

async fn replaced_chunks_do_not_pile_up_in_the_vector_graph(backend: Backend) {
    let db = TestStore::new(backend).await;
    let tenant = db.tenants().create("acme").await.expect("tenant").id;
    // One chunk per section: every heading starts a new one, however short.
    let mut options = options(None);
    options.ingest.chunk.min_tokens = 0;
    let k = Knowledge::open(db.clone(), Arc::new(HashedWordsEmbedder::new(128)), options).await.expect("opens");
    let manual = |word: &str| -> String {
        (0..100).map(|n| format!("# Part {n}\n\nSection {n} is about {word}.\n\n")).collect()
    };
    let ids = ingest(&k, tenant, vec![markdown("manual", &manual("zebras"))]).await;
    assert_eq!(titles(&k, tenant, "zebras", SearchMode::Vector).await.first().map(String::as_str), Some("manual"));
    assert_eq!(graph_nodes(&k, tenant).await, (100, 0));
    k.replace(tenant, ids[0], markdown("manual", &manual("giraffes"))).await.expect("replaced");
    k.worker(0).drain().await.expect("jobs run");
    assert_eq!(titles(&k, tenant, "giraffes", SearchMode::Vector).await.first().map(String::as_str), Some("manual"));
    // 100 dead nodes beside 100 live ones: the graph was rebuilt without them.
    assert_eq!(graph_nodes(&k, tenant).await, (100, 0));
}

/// Live and retired nodes of a tenant's vector graph.
async fn graph_nodes(k: &Knowledge, tenant: TenantId) -> (usize, usize) {
    let index = k.indexes().tenant(tenant).await.expect("index");
    let index = index.read().await;
    (index.vectors.len(), index.vectors.retired())
}

async fn deleted_documents_leave_every_index(backend: Backend) {
    let db = TestStore::new(backend).await;
    let tenant = db.tenants().create("acme").await.expect("tenant").id;
    let k = knowledge(&db, None).await;
    let ids = ingest(&k, tenant, vec![markdown("guide", GUIDE), markdown("recipes", RECIPES)]).await;
    k.delete(tenant, ids[0]).await.expect("deleted");
    for mode in SearchMode::ALL {
        let found = titles(&k, tenant, "copy the data directory backups", mode).await;
        assert!(!found.contains(&"guide".to_string()), "{mode:?}: {found:?}");
    }
    let index = k.indexes().tenant(tenant).await.expect("loaded");
    let index = index.read().await;
    assert_eq!((index.len(), index.keywords.len()), (1, 1));
}

async fn tenants_never_see_each_others_chunks(backend: Backend) {
    let db = TestStore::new(backend).await;
    let acme = db.tenants().create("acme").await.expect("tenant").id;
    let globex = db.tenants().create("globex").await.expect("tenant").id;
    let k = knowledge(&db, None).await;
    let acme_docs = ingest(&k, acme, vec![markdown("acme secret", "The acme merger closes on friday.")]).await;
    ingest(&k, globex, vec![markdown("globex memo", "Globex hires ten engineers.")]).await;
    for mode in SearchMode::ALL {
        assert!(titles(&k, globex, "acme merger friday", mode).await.iter().all(|t| t == "globex memo"));
        assert!(titles(&k, acme, "globex engineers", mode).await.iter().all(|t| t == "acme secret"));
    }
    // Naming the other tenant's document in a filter finds nothing either.
    let filter = SearchFilter { document_ids: Some(acme_docs.clone()), metadata: None };
    let request = SearchRequest { filter: Some(filter), ..SearchRequest::new("merger", 10, SearchMode::Hybrid) };
    assert!(k.search(globex, &request).await.expect("search runs").results.is_empty());
}

async fn filters_narrow_the_search(backend: Backend) {
    let db = TestStore::new(backend).await;
    let tenant = db.tenants().create("acme").await.expect("tenant").id;
    let k = knowledge(&db, None).await;
    let mut hr = markdown("hr policy", "Holidays are requested two weeks ahead.");
    hr.metadata = json!({"team": "hr"});
    let mut eng = markdown("eng policy", "Holidays are logged in the on-call calendar.");
    eng.metadata = json!({"team": "eng"});
    let ids = ingest(&k, tenant, vec![hr, eng]).await;
    let mut request = SearchRequest::new("holidays", 10, SearchMode::Hybrid);
    request.filter = Some(SearchFilter {
        document_ids: None,
        metadata: Some(json!({"team": "eng"}).as_object().cloned().unwrap_or_default()),
    });
    let found = k.search(tenant, &request).await.expect("search runs");
    assert_eq!(found.results.iter().map(|r| r.title.as_str()).collect::<Vec<_>>(), vec!["eng policy"]);
    request.filter = Some(SearchFilter { document_ids: Some(vec![ids[0]]), metadata: None });
    let found = k.search(tenant, &request).await.expect("search runs");
    assert_eq!(found.results.iter().map(|r| r.title.as_str()).collect::<Vec<_>>(), vec!["hr policy"]);
    request.filter = Some(SearchFilter {
        document_ids: Some(vec![ids[0]]),
        metadata: Some(json!({"team": "eng"}).as_object().cloned().unwrap_or_default()),
    });
    assert!(k.search(tenant, &request).await.expect("search runs").results.is_empty());
    // Collapsing keeps one chunk per document.
    let long: String = (0..60).map(|i| format!("Paragraph {i} about holidays and leave.\n\n")).collect();
    ingest(&k, tenant, vec![markdown("handbook", &long)]).await;
    let request = SearchRequest { collapse: true, ..SearchRequest::new("holidays leave", 10, SearchMode::Hybrid) };
    let results = k.search(tenant, &request).await.expect("search runs").results;
    let mut docs: Vec<_> = results.iter().map(|r| r.document_id).collect();
    docs.dedup();
    assert_eq!(docs.len(), results.len());
    // Bad requests are refused with a reason.
    for bad in [
        SearchRequest::new("  ", 10, SearchMode::Hybrid),
        SearchRequest::new("x", 0, SearchMode::Hybrid),
        SearchRequest::new("x", 101, SearchMode::Hybrid),
        SearchRequest { mmr: Some(1.5), ..SearchRequest::new("x", 5, SearchMode::Hybrid) },
        SearchRequest::new("x".repeat(10_000), 5, SearchMode::Hybrid),
    ] {
        assert!(matches!(k.search(tenant, &bad).await, Err(agentd_retrieval::SearchError::Invalid(_))));
    }
}

async fn indexes_survive_a_restart_and_a_lost_snapshot(backend: Backend) {
    let db = TestStore::new(backend).await;
    let tenant = db.tenants().create("acme").await.expect("tenant").id;
    let dir = tempfile::tempdir().expect("temp dir");
    let first = knowledge(&db, Some(dir.path().to_path_buf())).await;
    ingest(&first, tenant, vec![markdown("guide", GUIDE)]).await;
    assert_eq!(titles(&first, tenant, "backups", SearchMode::Vector).await[0], "guide");
    first.indexes().persist().await.expect("saved");
    // Written after the snapshot: only in the store's log.
    ingest(&first, tenant, vec![markdown("recipes", RECIPES)]).await;
    drop(first);

    let second = knowledge(&db, Some(dir.path().to_path_buf())).await;
    assert_eq!(titles(&second, tenant, "bread", SearchMode::Vector).await[0], "recipes");
    assert_eq!(titles(&second, tenant, "backups", SearchMode::Keyword).await[0], "guide");
    drop(second);

    // A damaged snapshot is rebuilt from the store's vectors.
    let folder = dir.path().join(tenant.to_string());
    std::fs::write(folder.join("vectors.hnsw"), b"not an index").expect("damaged");
    let third = knowledge(&db, Some(dir.path().to_path_buf())).await;
    assert_eq!(titles(&third, tenant, "bread", SearchMode::Vector).await[0], "recipes");
    let index = third.indexes().tenant(tenant).await.expect("loaded");
    assert_eq!(index.read().await.len(), db.chunks().count(tenant).await.expect("count") as usize);
}

async fn the_vector_index_is_saved_when_the_service_stops(backend: Backend) {
    let db = TestStore::new(backend).await;
    let tenant = db.tenants().create("acme").await.expect("tenant").id;
    let dir = tempfile::tempdir().expect("temp dir");
    // Maintenance would save the index only after an hour: what is saved
    // below is saved by the stop.
    let options = KnowledgeOptions { maintenance_every: Duration::from_secs(3600), ..options(Some(dir.path().into())) };
    let k = Knowledge::open(db.store.clone(), Arc::new(HashedWordsEmbedder::new(128)), options).await.expect("opens");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let tasks = k.spawn(1, stopped);
    let job = k.submit(tenant, vec![markdown("guide", GUIDE)]).await.expect("submitted").job_id.expect("a job");
    loop {
        if db.jobs().get(tenant, job).await.expect("job").status.is_final() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A search loads the tenant's index into this process.
    assert_eq!(titles(&k, tenant, "backups", SearchMode::Vector).await[0], "guide");
    let snapshot = dir.path().join(tenant.to_string()).join("vectors.hnsw");
    assert!(!snapshot.exists(), "nothing saved the index yet");
    stop.send(true).expect("the tasks listen");
    for task in tasks {
        task.await.expect("a task ends cleanly");
    }
    assert!(snapshot.exists(), "the stop saved the index");
    drop(k);
    // A restart loads it and finds the document.
    let again = knowledge(&db, Some(dir.path().to_path_buf())).await;
    assert_eq!(titles(&again, tenant, "backups", SearchMode::Vector).await[0], "guide");
}

async fn a_vanished_worker_leaves_no_duplicate_and_no_gap(backend: Backend) {
    let db = TestStore::new(backend).await;
    let tenant = db.tenants().create("acme").await.expect("tenant").id;
    let k = knowledge(&db, None).await;
    let submission =
        k.submit(tenant, vec![markdown("guide", GUIDE), markdown("recipes", RECIPES)]).await.expect("submitted");
    let job = submission.job_id.expect("a job");
    // A worker claims the job and dies before finishing (its lease is short).
    let claimed = db.jobs().claim("vanished", &[INGEST_JOB], Duration::from_millis(100)).await.expect("claim");
    assert_eq!(claimed.map(|j| j.id), Some(job));
    tokio::time::sleep(Duration::from_millis(150)).await;
    k.worker(1).drain().await.expect("jobs run");
    let done = db.jobs().get(tenant, job).await.expect("job");
    assert_eq!((done.status, done.attempts), (JobStatus::Succeeded, 2));
    assert!(done.progress_done > 0 && done.progress_done == done.progress_total);
    let expected: i64 = {
        let mut sum = 0;
        for d in &submission.documents {
            sum += db.documents().get(tenant, d.document.id).await.expect("document").chunk_count;
        }
        sum
    };
    assert_eq!(db.chunks().count(tenant).await.expect("count"), expected);
    // Running the job's documents again changes nothing.
    for d in &submission.documents {
        let outcome = agentd_retrieval::Ingestor::new(
            db.store.clone(),
            Arc::new(HashedWordsEmbedder::new(128)),
            Default::default(),
        )
        .ingest(tenant, d.document.id, 1, None, &mut |_, _| {})
        .await
        .expect("ingest");
        assert_eq!(outcome, agentd_retrieval::DocumentOutcome::Skipped);
    }
    assert_eq!(db.chunks().count(tenant).await.expect("count"), expected);
}

async fn unreadable_documents_fail_alone(backend: Backend) {
    let db = TestStore::new(backend).await;
    let tenant = db.tenants().create("acme").await.expect("tenant").id;
    let k = knowledge(&db, None).await;
    let broken_pdf = Upload {
        file_name: Some("broken.pdf".into()),
        bytes: b"%PDF-1.7\n1 0 obj garbage".to_vec(),
        ..markdown("broken", "")
    };
    let latin1 =
        Upload { file_name: Some("latin1.txt".into()), bytes: b"caf\xe9 au lait".to_vec(), ..markdown("latin1", "") };
    let binary =
        Upload { file_name: Some("blob.bin".into()), bytes: vec![0, 159, 146, 150, 0, 1, 2], ..markdown("blob", "") };
    let empty = Upload { file_name: Some("empty.md".into()), bytes: Vec::new(), ..markdown("empty", "") };
    let json_text = Upload { format: Some(Format::Markdown), file_name: None, ..markdown("fine", "A fine document.") };
    let ids = ingest(&k, tenant, vec![broken_pdf, latin1, binary, empty, json_text]).await;
    let mut outcomes = Vec::new();
    for id in &ids {
        let d = db.documents().get(tenant, *id).await.expect("document");
        outcomes.push((d.title, d.status, d.error.unwrap_or_default()));
    }
    assert_eq!(outcomes[4].1, DocumentStatus::Ready, "{outcomes:?}");
    for (title, status, error) in &outcomes[..4] {
        assert_eq!(*status, DocumentStatus::Failed, "{title}");
        assert!(!error.is_empty(), "{title} has a reason");
    }
    assert!(outcomes[1].2.contains("UTF-8"), "{:?}", outcomes[1]);
    assert!(outcomes[2].2.contains("unsupported format"), "{:?}", outcomes[2]);
    assert!(outcomes[3].2.contains("empty"), "{:?}", outcomes[3]);
    // A document over the limit refuses the whole submission; nothing is stored.
    let small = Knowledge::open(
        db.store.clone(),
        Arc::new(HashedWordsEmbedder::new(128)),
        KnowledgeOptions { max_document_bytes: 10, ..options(None) },
    )
    .await
    .expect("opens");
    let before = db.documents().list(tenant, None, 100, None).await.expect("list").items.len();
    let refused = small.submit(tenant, vec![markdown("a", "short"), markdown("b", "far too long for it")]).await;
    assert!(matches!(refused, Err(agentd_retrieval::SubmitError::TooLarge { .. })));
    assert_eq!(db.documents().list(tenant, None, 100, None).await.expect("list").items.len(), before);
}

async fn a_follow_up_is_searched_with_its_conversation(backend: Backend) {
    let db = TestStore::new(backend).await;
    let tenant = db.tenants().create("acme").await.expect("tenant").id;
    let k = knowledge(&db, None).await;
    ingest(&k, tenant, vec![markdown("guide", GUIDE), markdown("recipes", RECIPES)]).await;
    // Alone, the follow-up shares its words with the recipe.
    let mut request = SearchRequest::new("and for how many minutes?", 1, SearchMode::Keyword);
    let alone = k.search(tenant, &request).await.expect("search runs");
    assert_eq!(alone.results.first().map(|r| r.title.as_str()), Some("recipes"));
    request.history = vec![
        Turn { role: TurnRole::User, content: "how do I copy the data directory for backups to cold storage?".into() },
        Turn { role: TurnRole::Assistant, content: "Copy the data directory every night.".into() },
    ];
    for mode in SearchMode::ALL {
        request.mode = mode;
        let found = k.search(tenant, &request).await.expect("search runs");
        assert_eq!(found.results.first().map(|r| r.title.as_str()), Some("guide"), "{mode:?}");
    }
    // History is bounded like the question.
    request.history = vec![Turn { role: TurnRole::User, content: "x".repeat(65 * 1024) }];
    assert!(matches!(k.search(tenant, &request).await, Err(agentd_retrieval::SearchError::Invalid(_))));
}
