//! Which engine embeds locally: the one choice a server makes about it.
//!
//! Both engines run all-MiniLM-L6-v2 with its F32 weights and give the same
//! vectors (a cosine of 0.9999 or more between them and with the reference),
//! under the same model name: an index built with one can be queried with
//! the other. They differ in speed and in what they need on disk.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use crate::embed::{EmbedError, Embedder};
use crate::local::LocalEmbedder;
use crate::manifest::Selection;
use crate::onnx::OnnxEmbedder;

/// A local embedding engine; in configuration files, its name (`onnx` or
/// `candle`, read in any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum LocalEmbedderEngine {
    /// [`OnnxEmbedder`]: ONNX Runtime. The default: two to three times faster
    /// than candle (`bench/README.md`); needs the ONNX graph and the
    /// runtime library besides the weights (`agentd models fetch`
    /// fetches them), and runs on Linux x86_64 only.
    #[default]
    Onnx,
    /// [`LocalEmbedder`]: candle, pure Rust, no native library; slower.
    Candle,
}

impl LocalEmbedderEngine {
    /// Every engine, the default first.
    pub const ALL: [LocalEmbedderEngine; 2] = [LocalEmbedderEngine::Onnx, LocalEmbedderEngine::Candle];

    /// The model's name, stored next to its vectors (the same for both).
    pub fn model(self) -> &'static str {
        match self {
            LocalEmbedderEngine::Onnx => OnnxEmbedder::MODEL,
            LocalEmbedderEngine::Candle => LocalEmbedder::MODEL,
        }
    }

    /// What `agentd models fetch` must have fetched for this engine (the
    /// ONNX graph's entry brings the weights and the runtime along).
    pub fn selection(self) -> Selection {
        match self {
            LocalEmbedderEngine::Onnx => Selection::model(OnnxEmbedder::GRAPH),
            LocalEmbedderEngine::Candle => Selection::model(LocalEmbedder::MODEL),
        }
    }

    /// Loads the engine with its default options. Blocking; from async code
    /// call it through `tokio::task::spawn_blocking`.
    pub fn load(self, models_dir: &Path) -> Result<Arc<dyn Embedder>, EmbedError> {
        Ok(match self {
            LocalEmbedderEngine::Onnx => Arc::new(OnnxEmbedder::load(models_dir)?),
            LocalEmbedderEngine::Candle => Arc::new(LocalEmbedder::load(models_dir)?),
        })
    }
}

impl fmt::Display for LocalEmbedderEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LocalEmbedderEngine::Onnx => "onnx",
            LocalEmbedderEngine::Candle => "candle",
        })
    }
}

/// An engine name that is not `onnx` or `candle`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown local embedding engine {0:?}; expected \"onnx\" or \"candle\"")]
pub struct UnknownEngine(pub String);

impl FromStr for LocalEmbedderEngine {
    type Err = UnknownEngine;

    /// `onnx` or `candle`, in any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim().to_ascii_lowercase();
        LocalEmbedderEngine::ALL.into_iter().find(|engine| text == engine.to_string()).ok_or(UnknownEngine(text))
    }
}

impl TryFrom<String> for LocalEmbedderEngine {
    type Error = UnknownEngine;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<LocalEmbedderEngine> for String {
    fn from(engine: LocalEmbedderEngine) -> String {
        engine.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for engine in LocalEmbedderEngine::ALL {
            assert_eq!(engine.to_string().parse::<LocalEmbedderEngine>().unwrap(), engine);
        }
        assert_eq!(" ONNX ".parse::<LocalEmbedderEngine>().unwrap(), LocalEmbedderEngine::Onnx);
        let err = "tensorflow".parse::<LocalEmbedderEngine>().unwrap_err().to_string();
        assert!(err.contains("tensorflow") && err.contains("candle"), "{err}");
    }

    #[test]
    fn each_engine_fetches_its_weights() {
        let manifest = crate::Manifest::builtin();
        for engine in LocalEmbedderEngine::ALL {
            let models: Vec<_> = manifest.select(&engine.selection()).unwrap().iter().map(|m| m.name.clone()).collect();
            assert!(models.iter().any(|m| m == engine.model()), "{engine}: {models:?}");
        }
        let onnx = manifest.select(&LocalEmbedderEngine::Onnx.selection()).unwrap();
        assert!(onnx.iter().any(|m| m.kind == crate::ModelKind::Runtime));
    }
}
