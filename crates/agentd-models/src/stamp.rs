//! Remembering which model files were already hashed.
//!
//! Hashing the 491 MB chat model takes seconds; doing it at every start, or
//! every `agentd models fetch`, would be waste. After a file is verified its
//! size, modification time and hash are written to a small stamp file in the
//! model's directory. A later check trusts a file whose size and mtime still
//! match the stamp and whose stamped hash is the one the manifest expects;
//! anything else (no stamp, a touched file, a new manifest) means a full hash.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::FetchError;
use crate::manifest::FileSpec;

/// The stamp's file name inside a model directory.
pub const STAMP_FILE: &str = ".verified.json";

/// What was true of one file when it was last hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StampEntry {
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch.
    pub mtime_ns: u128,
    pub sha256: String,
}

/// The verified files of one model directory, by relative path.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub files: BTreeMap<String, StampEntry>,
}

impl Stamp {
    /// Reads the stamp of a model directory; a missing or unreadable stamp
    /// is an empty one (it only ever saves work, so losing it is harmless).
    pub fn load(model_dir: &Path) -> Stamp {
        fs::read(model_dir.join(STAMP_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Writes the stamp atomically (temporary file, then rename).
    pub fn save(&self, model_dir: &Path) -> Result<(), FetchError> {
        let path = model_dir.join(STAMP_FILE);
        let json = serde_json::to_vec_pretty(self).expect("a stamp serialises");
        write_atomically(&path, &json)
    }

    /// Whether the stamp vouches for `file` as it is on disk now.
    pub fn vouches_for(&self, file: &FileSpec, metadata: &fs::Metadata) -> bool {
        match (self.files.get(&file.path), mtime_ns(metadata)) {
            (Some(entry), Some(mtime)) => {
                entry.size == file.size
                    && entry.size == metadata.len()
                    && entry.mtime_ns == mtime
                    && entry.sha256 == file.sha256
            }
            _ => false,
        }
    }

    /// Records that `file`, as it is on disk now, hashed to its expected sha256.
    pub fn record(&mut self, file: &FileSpec, metadata: &fs::Metadata) {
        match mtime_ns(metadata) {
            Some(mtime_ns) => {
                let entry = StampEntry { size: metadata.len(), mtime_ns, sha256: file.sha256.clone() };
                self.files.insert(file.path.clone(), entry);
            }
            // Without a modification time nothing can be vouched for later.
            None => {
                self.files.remove(&file.path);
            }
        }
    }
}

fn mtime_ns(metadata: &fs::Metadata) -> Option<u128> {
    metadata.modified().ok()?.duration_since(UNIX_EPOCH).ok().map(|d| d.as_nanos())
}

/// Size and lower-case hex sha256 of everything `reader` yields.
pub fn hash_reader(mut reader: impl Read) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Size and sha256 of a file, read in 1 MiB chunks.
pub fn hash_file(path: &Path) -> Result<(u64, String), FetchError> {
    let file = fs::File::open(path).map_err(FetchError::io("open", path))?;
    hash_reader(file).map_err(FetchError::io("read", path))
}

/// A temporary path next to `path`, unique to this process and call, so that
/// two fetches never write into each other's files.
pub fn temp_path_for(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.partial-{}-{n}", std::process::id()))
}

/// Writes a small file so that readers see either the old or the new content.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FetchError> {
    let temp = temp_path_for(path);
    fs::write(&temp, bytes).map_err(FetchError::io("write", &temp))?;
    fs::rename(&temp, path).map_err(|e| {
        let _ = fs::remove_file(&temp);
        FetchError::io("rename into place", path)(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str, content: &[u8]) -> FileSpec {
        let (size, sha256) = hash_reader(content).unwrap();
        FileSpec { path: path.into(), size, sha256, sources: vec![] }
    }

    #[test]
    fn hash_of_known_content() {
        let (size, sha) = hash_reader(&b"abc"[..]).unwrap();
        assert_eq!(size, 3);
        assert_eq!(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn a_recorded_file_is_vouched_for_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.bin");
        fs::write(&path, b"weights").unwrap();
        let file = spec("weights.bin", b"weights");

        let mut stamp = Stamp::default();
        let metadata = fs::metadata(&path).unwrap();
        assert!(!stamp.vouches_for(&file, &metadata), "an empty stamp vouches for nothing");
        stamp.record(&file, &metadata);
        stamp.save(dir.path()).unwrap();

        let reloaded = Stamp::load(dir.path());
        assert_eq!(reloaded, stamp);
        assert!(reloaded.vouches_for(&file, &fs::metadata(&path).unwrap()));

        // Same size, new modification time: no longer vouched for.
        let later = metadata.modified().unwrap() + std::time::Duration::from_secs(5);
        fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        assert!(!reloaded.vouches_for(&file, &fs::metadata(&path).unwrap()));
    }

    #[test]
    fn a_new_expected_hash_or_size_voids_the_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w");
        fs::write(&path, b"old").unwrap();
        let old = spec("w", b"old");
        let mut stamp = Stamp::default();
        let metadata = fs::metadata(&path).unwrap();
        stamp.record(&old, &metadata);
        assert!(stamp.vouches_for(&old, &metadata));

        let new_hash = FileSpec { sha256: "0".repeat(64), ..old.clone() };
        assert!(!stamp.vouches_for(&new_hash, &metadata));
        let new_size = FileSpec { size: 4, ..old };
        assert!(!stamp.vouches_for(&new_size, &metadata));
    }

    #[test]
    fn an_unreadable_stamp_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Stamp::load(dir.path()), Stamp::default());
        fs::write(dir.path().join(STAMP_FILE), b"{not json").unwrap();
        assert_eq!(Stamp::load(dir.path()), Stamp::default());
    }

    #[test]
    fn atomic_write_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
