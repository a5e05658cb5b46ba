//! Helpers shared by the known-answer tests: where the third-party vectors live and how to
//! read them. The vectors are never copied into this repository; they are loaded from
//! `../shared/vectors` (override with `PALISADE_VECTORS_DIR`).
#![allow(dead_code)]

use std::path::PathBuf;

pub fn vectors_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("PALISADE_VECTORS_DIR") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
}

/// Parses `vectors/<rel>` as JSON; a missing file fails the test loudly.
pub fn load_json(rel: &str) -> serde_json::Value {
    let path = vectors_dir().join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read vector file {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: bad JSON: {e}", path.display()))
}

pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex in vector {s:?}: {e}"))
}
