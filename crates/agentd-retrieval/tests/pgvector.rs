//! Vectors searched with pgvector, on a PostgreSQL server that has the
//! extension (`scripts/pgvector-server` starts one; the test script does so
//! before the tests). The plain test server has no pgvector, which the other
//! tests cover: there every node ranks vectors with its own index.

use std::sync::Arc;

use agentd_models::HashedWordsEmbedder;
use agentd_retrieval::{Knowledge, KnowledgeOptions, SearchMode, SearchRequest, Upload};
use agentd_store::testing::{Backend, TestStore};
use agentd_store::{Store, TenantId};

async fn knowledge(store: &Store, pgvector: bool) -> Arc<Knowledge> {
    let options = KnowledgeOptions { pgvector, ..KnowledgeOptions::default() };
    Knowledge::open(store.clone(), Arc::new(HashedWordsEmbedder::new(64)), options).await.expect("opens")
}

fn markdown(title: &str, text: &str) -> Upload {
    Upload::file(title, format!("{title}.md"), text.as_bytes().to_vec())
}

async fn ingest(k: &Knowledge, tenant: TenantId, uploads: Vec<Upload>) -> Vec<agentd_store::DocumentId> {
    let submission = k.submit(tenant, uploads).await.expect("submitted");
    k.worker(0).drain().await.expect("jobs run");
    submission.documents.iter().map(|d| d.document.id).collect()
}

async fn vector_titles(k: &Knowledge, tenant: TenantId, query: &str) -> (Vec<String>, String) {
    let request = SearchRequest { debug: true, ..SearchRequest::new(query, 5, SearchMode::Vector) };
    let response = k.search(tenant, &request).await.expect("search runs");
    let backend = response.timings.map(|t| t.vector_backend).unwrap_or_default();
    (response.results.into_iter().map(|r| r.title).collect(), backend)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgvector_ranks_every_nodes_vectors_within_the_tenant() {
    let db = TestStore::new(Backend::PgVector).await;
    let acme = db.tenants().create("acme").await.expect("tenant").id;
    let globex = db.tenants().create("globex").await.expect("tenant").id;
    let k = knowledge(&db, true).await;
    assert!(k.uses_pgvector(), "the server has pgvector");
    let ids = ingest(
        &k,
        acme,
        vec![
            markdown("guide", "Copy the data directory every night."),
            markdown("bread", "Bake bread for forty minutes."),
        ],
    )
    .await;
    ingest(&k, globex, vec![markdown("memo", "Globex copies nothing every night.")]).await;
    assert_eq!(db.vectors().count(acme).await.expect("count"), db.chunks().count(acme).await.expect("count"));

    let (titles, backend) = vector_titles(&k, acme, "copy the data directory").await;
    assert_eq!((titles.first().map(String::as_str), backend.as_str()), (Some("guide"), "pgvector"));
    assert!(!titles.contains(&"memo".to_string()), "never another tenant's chunk: {titles:?}");
    let (titles, _) = vector_titles(&k, globex, "copy the data directory").await;
    assert_eq!(titles, vec!["memo"]);

    // Another node, with no index of its own yet, finds the same.
    let other_node = knowledge(&db, true).await;
    assert_eq!(vector_titles(&other_node, acme, "bake bread").await.0.first().map(String::as_str), Some("bread"));

    // Deleting a document removes its vectors.
    db.documents().delete(acme, ids[1]).await.expect("deleted");
    assert_eq!(db.vectors().count(acme).await.expect("count"), db.chunks().count(acme).await.expect("count"));
    assert!(!vector_titles(&k, acme, "bake bread").await.0.contains(&"bread".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_stored_before_pgvector_was_used_are_backfilled() {
    let db = TestStore::new(Backend::PgVector).await;
    let acme = db.tenants().create("acme").await.expect("tenant").id;
    let local = knowledge(&db, false).await;
    assert!(!local.uses_pgvector());
    ingest(&local, acme, vec![markdown("guide", "Copy the data directory every night.")]).await;
    assert_eq!(db.vectors().count(acme).await.expect("count"), 0);
    let k = knowledge(&db, true).await;
    assert_eq!(db.vectors().count(acme).await.expect("count"), db.chunks().count(acme).await.expect("count"));
    assert_eq!(vector_titles(&k, acme, "data directory").await, (vec!["guide".to_string()], "pgvector".to_string()));
    // A model of another dimension cannot share the table: pgvector is left off.
    let other_model =
        Knowledge::open(db.store.clone(), Arc::new(HashedWordsEmbedder::new(32)), KnowledgeOptions::default())
            .await
            .expect("opens");
    assert!(!other_model.uses_pgvector());
}
