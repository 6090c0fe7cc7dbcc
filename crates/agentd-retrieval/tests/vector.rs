//! The vector indexes against each other and against the contract of
//! `VectorIndex`: recall of the HNSW graph measured on the exact index,
//! deletes, upserts, filters, persistence and its failures, bad input, and
//! inserts from several threads at once.

use std::collections::HashSet;
use std::fs;
use std::sync::Arc;

use agentd_retrieval::vector::{ExactIndex, HnswIndex, HnswParams, VectorError, VectorHit, VectorIndex, VectorKey};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIM: usize = 24;

fn random_vectors(count: usize, dimension: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count).map(|_| (0..dimension).map(|_| rng.random_range(-1.0f32..1.0)).collect()).collect()
}

fn hnsw(params: HnswParams) -> HnswIndex {
    HnswIndex::new(DIM, params).unwrap()
}

fn filled<I: VectorIndex>(index: I, vectors: &[Vec<f32>]) -> I {
    for (key, vector) in vectors.iter().enumerate() {
        index.insert(key as VectorKey, vector).unwrap();
    }
    index
}

fn keys(hits: &[VectorHit]) -> Vec<VectorKey> {
    hits.iter().map(|hit| hit.key).collect()
}

/// Both indexes, filled with the same vectors.
fn both(vectors: &[Vec<f32>]) -> Vec<Box<dyn VectorIndex>> {
    vec![
        Box::new(filled(ExactIndex::new(DIM).unwrap(), vectors)),
        Box::new(filled(hnsw(HnswParams { expansion_search: 128, ..HnswParams::default() }), vectors)),
    ]
}

#[test]
fn hnsw_recall_against_the_exact_index() {
    let vectors = random_vectors(5000, DIM, 1);
    let queries = random_vectors(200, DIM, 2);
    let exact = filled(ExactIndex::new(DIM).unwrap(), &vectors);
    let approximate = filled(hnsw(HnswParams { expansion_search: 128, ..HnswParams::default() }), &vectors);
    let mut found = 0;
    for query in &queries {
        let truth: HashSet<_> = keys(&exact.search(query, 10, None).unwrap()).into_iter().collect();
        let hits = approximate.search(query, 10, None).unwrap();
        assert_eq!(hits.len(), 10);
        assert!(hits.windows(2).all(|pair| pair[0].score >= pair[1].score), "best first");
        found += hits.iter().filter(|hit| truth.contains(&hit.key)).count();
    }
    let recall = found as f64 / (queries.len() * 10) as f64;
    assert!(recall >= 0.95, "recall@10 = {recall}");
}

#[test]
fn scores_are_cosine_similarities_of_unnormalised_vectors() {
    for index in both(&[vec![2.0; DIM], vec![-3.0; DIM]]) {
        let mut half = vec![0.0; DIM];
        half[..DIM / 2].fill(5.0);
        let hits = index.search(&half, 2, None).unwrap();
        let expected = 1.0 / 2f32.sqrt();
        assert_eq!(keys(&hits), [0, 1]);
        assert!((hits[0].score - expected).abs() < 1e-5, "{hits:?}");
        assert!((hits[1].score + expected).abs() < 1e-5, "{hits:?}");
        let stored = index.get(0).unwrap();
        assert!(stored.iter().all(|&v| (v - 1.0 / (DIM as f32).sqrt()).abs() < 1e-6), "stored normalised");
    }
}

#[test]
fn removed_vectors_are_no_longer_found() {
    let vectors = random_vectors(1000, DIM, 3);
    for index in both(&vectors) {
        assert_eq!(index.search(&vectors[7], 1, None).unwrap()[0].key, 7);
        assert!(index.remove(7).unwrap());
        assert!(!index.remove(7).unwrap(), "already gone");
        assert!(!index.contains(7));
        assert_eq!(index.get(7), None);
        assert_eq!(index.len(), 999);
        let hits = index.search(&vectors[7], 50, None).unwrap();
        assert_eq!(hits.len(), 50);
        assert!(!keys(&hits).contains(&7));
        let all = |_: VectorKey| true;
        assert!(!keys(&index.search(&vectors[7], 50, Some(&all)).unwrap()).contains(&7));
        // The freed slot is reused by the next insert, which is found.
        index.insert(5000, &vectors[7]).unwrap();
        assert_eq!(index.search(&vectors[7], 1, None).unwrap()[0].key, 5000);
        assert_eq!(index.len(), 1000);
    }
}

#[test]
fn inserting_a_key_again_replaces_its_vector() {
    let vectors = random_vectors(1000, DIM, 4);
    let replacement = random_vectors(1, DIM, 5).remove(0);
    for index in both(&vectors) {
        index.insert(3, &replacement).unwrap();
        assert_eq!(index.len(), 1000);
        let best = index.search(&replacement, 1, None).unwrap()[0];
        assert_eq!(best.key, 3);
        assert!((best.score - 1.0).abs() < 1e-5);
        assert!(!keys(&index.search(&vectors[3], 5, None).unwrap()).contains(&3), "the old vector is gone");
    }
}

#[test]
fn filtered_search_returns_only_passing_keys_and_still_k_of_them() {
    let vectors = random_vectors(5000, DIM, 6);
    let queries = random_vectors(20, DIM, 7);
    let exact = filled(ExactIndex::new(DIM).unwrap(), &vectors);
    for index in both(&vectors) {
        let tenth = |key: VectorKey| key % 10 == 3;
        let few = |key: VectorKey| key % 1000 == 17; // 5 keys of 5000
        for query in &queries {
            let hits = index.search(query, 10, Some(&tenth)).unwrap();
            assert_eq!(hits.len(), 10);
            assert!(hits.iter().all(|hit| tenth(hit.key)));

            let hits = index.search(query, 10, Some(&few)).unwrap();
            assert_eq!(keys(&hits), keys(&exact.search(query, 10, Some(&few)).unwrap()), "all 5, in order");
            let hits = index.search(query, 3, Some(&few)).unwrap();
            assert_eq!(keys(&hits), keys(&exact.search(query, 3, Some(&few)).unwrap()));

            assert!(index.search(query, 10, Some(&|_| false)).unwrap().is_empty());
        }
    }
}

#[test]
fn a_panicking_filter_panics_the_caller_and_leaves_the_index_usable() {
    let vectors = random_vectors(500, DIM, 8);
    for index in both(&vectors) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            index.search(&vectors[0], 5, Some(&|_| panic!("filter failed")))
        }));
        assert!(outcome.is_err());
        assert_eq!(index.search(&vectors[0], 5, None).unwrap()[0].key, 0);
    }
}

#[test]
fn saved_and_loaded_index_answers_the_same() {
    let vectors = random_vectors(3000, DIM, 9);
    let queries = random_vectors(50, DIM, 10);
    let params = HnswParams { expansion_search: 40, ..HnswParams::default() };
    let index = filled(hnsw(params), &vectors);
    for key in [1, 10, 100] {
        index.remove(key).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vectors.hnsw");
    index.save(&path).unwrap();
    index.save(&path).unwrap(); // replaces the file
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left behind");

    let loaded = HnswIndex::load(&path, params).unwrap();
    assert_eq!(loaded.len(), index.len());
    assert_eq!(loaded.dimension(), DIM);
    assert_eq!(loaded.connectivity(), 16);
    assert_eq!(loaded.expansion_search(), 40);
    for query in &queries {
        assert_eq!(loaded.search(query, 10, None).unwrap(), index.search(query, 10, None).unwrap());
    }
    assert!(!loaded.contains(10));
    assert_eq!(loaded.get(5), index.get(5));
    loaded.insert(10, &vectors[10]).unwrap();
    loaded.insert(99_999, &vectors[0]).unwrap();
    assert_eq!(loaded.len(), index.len() + 2);
    assert_eq!(loaded.search(&vectors[10], 1, None).unwrap()[0].key, 10);
}

#[test]
fn damaged_index_files_are_errors() {
    let vectors = random_vectors(500, DIM, 11);
    let index = filled(hnsw(HnswParams::default()), &vectors);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vectors.hnsw");
    index.save(&path).unwrap();
    let good = fs::read(&path).unwrap();
    let params = HnswParams::default();

    let step = good.len() / 97;
    for cut in (0..good.len()).step_by(step) {
        fs::write(&path, &good[..cut]).unwrap();
        let error = HnswIndex::load(&path, params).err().expect("truncated file loads");
        assert!(matches!(error, VectorError::Corrupt { .. }), "cut at {cut}: {error}");
    }
    for at in (0..good.len()).step_by(step) {
        let mut bad = good.clone();
        bad[at] = bad[at].wrapping_add(1);
        fs::write(&path, &bad).unwrap();
        assert!(HnswIndex::load(&path, params).is_err(), "changed byte {at}");
    }
    fs::write(&path, b"not an index at all").unwrap();
    let error = HnswIndex::load(&path, params).err().unwrap();
    assert!(error.to_string().contains("rebuild"), "{error}");
    assert!(matches!(HnswIndex::load(dir.path().join("absent"), params), Err(VectorError::Io { .. })));
}

#[test]
fn bad_vectors_and_parameters_are_refused() {
    for index in both(&random_vectors(10, DIM, 12)) {
        let short = vec![1.0; DIM - 1];
        let error = index.insert(1, &short).unwrap_err();
        assert!(matches!(error, VectorError::DimensionMismatch { expected: DIM, actual } if actual == DIM - 1));
        assert_eq!(
            error.to_string(),
            format!("the vector has {} dimensions but the index holds {DIM}-dimensional vectors", DIM - 1)
        );
        assert!(matches!(index.search(&short, 3, None), Err(VectorError::DimensionMismatch { .. })));
        let mut nan = vec![1.0; DIM];
        nan[4] = f32::NAN;
        assert!(matches!(index.insert(1, &nan), Err(VectorError::NonFinite { position: 4, .. })));
        assert!(matches!(index.search(&nan, 3, None), Err(VectorError::NonFinite { .. })));
        let mut infinite = vec![1.0; DIM];
        infinite[0] = f32::NEG_INFINITY;
        assert!(index.insert(1, &infinite).is_err());
        assert!(matches!(index.insert(1, &[0.0; DIM]), Err(VectorError::ZeroVector)));
        assert_eq!(index.len(), 10, "nothing was changed");
        assert!(index.search(&[1.0; DIM], 0, None).unwrap().is_empty());
    }
    assert!(ExactIndex::new(0).is_err());
    assert!(HnswIndex::new(0, HnswParams::default()).is_err());
    assert!(HnswIndex::new(DIM, HnswParams { connectivity: 1, ..HnswParams::default() }).is_err());
    assert!(HnswIndex::new(DIM, HnswParams { expansion_add: 0, ..HnswParams::default() }).is_err());
}

#[test]
fn an_empty_index_finds_nothing() {
    let index = hnsw(HnswParams::default());
    assert!(index.is_empty());
    assert!(index.search(&[1.0; DIM], 10, None).unwrap().is_empty());
    assert!(!index.remove(1).unwrap());
    assert_eq!(index.get(1), None);
}

#[test]
fn concurrent_inserts_from_four_threads() {
    const PER_THREAD: usize = 1500;
    let vectors = Arc::new(random_vectors(4 * PER_THREAD, DIM, 13));
    let index = Arc::new(hnsw(HnswParams { expansion_search: 128, ..HnswParams::default() }));
    let exact = Arc::new(ExactIndex::new(DIM).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let (vectors, index, exact) = (vectors.clone(), index.clone(), exact.clone());
            std::thread::spawn(move || {
                for key in (thread * PER_THREAD)..((thread + 1) * PER_THREAD) {
                    index.insert(key as VectorKey, &vectors[key]).unwrap();
                    exact.insert(key as VectorKey, &vectors[key]).unwrap();
                    if key % 100 == 0 {
                        // Searches and upserts run between the inserts.
                        index.search(&vectors[key], 5, None).unwrap();
                        index.insert(key as VectorKey, &vectors[key]).unwrap();
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(index.len(), 4 * PER_THREAD);
    assert!((0..4 * PER_THREAD as VectorKey).all(|key| index.contains(key)));
    let mut found = 0;
    for query in random_vectors(100, DIM, 14) {
        let truth: HashSet<_> = keys(&exact.search(&query, 10, None).unwrap()).into_iter().collect();
        found += index.search(&query, 10, None).unwrap().iter().filter(|hit| truth.contains(&hit.key)).count();
    }
    assert!(found as f64 / 1000.0 >= 0.95, "recall@10 after concurrent inserts: {}", found as f64 / 1000.0);
}

#[test]
fn exact_batch_search_matches_single_searches() {
    let vectors = random_vectors(2000, DIM, 15);
    let queries = random_vectors(30, DIM, 16);
    let index = filled(ExactIndex::new(DIM).unwrap(), &vectors);
    let flat: Vec<f32> = queries.concat();
    let batch = index.search_batch(&flat, 7).unwrap();
    for (query, hits) in queries.iter().zip(&batch) {
        assert_eq!(hits, &index.search(query, 7, None).unwrap());
    }
    assert!(index.search_batch(&flat[..DIM + 1], 7).is_err());
}

#[test]
fn compaction_drops_removed_nodes_and_keeps_answers() {
    let vectors = random_vectors(2000, DIM, 17);
    let index = filled(hnsw(HnswParams { expansion_search: 128, ..HnswParams::default() }), &vectors);
    for key in (0..2000).step_by(2) {
        index.remove(key).unwrap();
    }
    index.insert(1, &vectors[0]).unwrap(); // an upsert leaves a node behind too
    assert_eq!(index.retired(), 1001);
    let before = index.memory_usage();
    index.compact().unwrap();
    assert_eq!(index.retired(), 0);
    assert!(index.memory_usage() < before);
    assert_eq!(index.len(), 1000);
    assert!(!index.contains(0) && index.contains(1) && index.contains(1999));
    assert_eq!(index.search(&vectors[0], 1, None).unwrap()[0].key, 1);
    assert_eq!(index.search(&vectors[1001], 1, None).unwrap()[0].key, 1001);
    index.insert(0, &vectors[0]).unwrap();
    assert_eq!(index.len(), 1001);
}
