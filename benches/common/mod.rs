//! Helpers shared by the benches (and by tests that reuse them): where the
//! corpora are, and loaders that turn each corpus into a sealdex source or
//! into records.
//!
//! From a bench: `mod common;` then `common::chitchat::ChitChat`. A test can
//! include this file with `#[path = "../benches/common/mod.rs"] mod common;`
//! or just the loader it needs with
//! `#[path = "../benches/common/chitchat.rs"] mod chitchat;`.

// Each bench uses part of these helpers; the rest is not dead code.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod battery;
pub mod chitchat;
#[cfg(feature = "peers")]
pub mod peers;
pub mod synth;

/// The environment variable naming the directory of the benchmark corpora
/// (`$SEALDEX_CORPORA/chitchat/dataset.json`, ...).
pub const CORPORA_ENV: &str = "SEALDEX_CORPORA";

/// The corpora directory, when [`CORPORA_ENV`] is set. Corpora are large
/// and licensed separately, so they live outside the repository.
pub fn corpora_dir() -> Option<PathBuf> {
    std::env::var_os(CORPORA_ENV).map(PathBuf::from)
}

/// The ChitChat dataset file, when the corpora directory is set.
pub fn chitchat_path() -> Option<PathBuf> {
    corpora_dir().map(|d| d.join("chitchat").join("dataset.json"))
}
