//! pocketllm: run small quantized GGUF language models on the CPU (and, later, WebGPU).
//!
//! Layout follows `DESIGN.md`: `gguf` reads and writes the file format, `quant` knows every
//! block layout, `tokenizer` turns text into ids, `model` holds one `forward()` written against
//! the `backend::Backend` trait, `sampler` picks the next token. `download` (native only)
//! fetches models by URL or `hf:` spec into a cache.

pub mod backend;
pub mod chat;
#[cfg(not(target_arch = "wasm32"))]
pub mod download;
pub mod engine;
pub mod error;
pub mod gguf;
pub mod model;
pub mod quant;
pub mod sampler;
pub mod synth;
pub mod tokenizer;

pub use error::{Error, Result};
