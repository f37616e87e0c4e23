//! Shared helpers for integration tests.
#![allow(dead_code)]

pub mod hf_vocab;
pub mod ops;

use std::path::PathBuf;

/// `../shared/fixtures` beside the checkout. Tests that need it call this and return early when
/// it is `None`, after it has printed a loud SKIPPED line; under `CI=true` a missing folder is a
/// failure, never a skip.
pub fn fixtures() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("../shared/fixtures is missing and CI=true: fixture tests must not skip in CI");
    }
    eprintln!("SKIPPED: ../shared/fixtures not found at {}", dir.display());
    None
}

/// Reads a fixture file, gunzipping `.gz` files.
pub fn read_fixture(rel: &str) -> Option<Vec<u8>> {
    let path = fixtures()?.join(rel);
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    if rel.ends_with(".gz") {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).unwrap();
        Some(out)
    } else {
        Some(raw)
    }
}

/// Every fixture model file, as a path relative to the fixtures folder.
pub fn fixture_models() -> Vec<String> {
    let Some(dir) = fixtures() else { return Vec::new() };
    let mut out = Vec::new();
    for sub in ["models/stories260k", "models/random"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".gguf") {
                out.push(format!("{sub}/{name}"));
            }
        }
    }
    out.sort();
    out
}

/// A GPU context for the kernel tests, or `None` after a loud SKIPPED line when this machine has
/// no usable adapter. Under `CI=true` a missing adapter is a failure, never a skip (CI installs
/// lavapipe).
#[cfg(not(target_arch = "wasm32"))]
pub fn gpu(opts: &pocketllm::backend::gpu::GpuOptions) -> Option<pocketllm::backend::gpu::GpuContext> {
    match pocketllm::backend::gpu::GpuContext::new_blocking(opts) {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("no GPU adapter and CI=true: GPU tests must not skip in CI ({e})");
            }
            // Straight to the stderr handle: the test harness captures eprintln! of passing tests.
            use std::io::Write;
            let _ =
                writeln!(std::io::stderr(), "SKIPPED: no GPU adapter ({e}); install mesa-vulkan-drivers for lavapipe");
            None
        }
    }
}
