//! GGUF, llama.cpp's model file format (versions 2 and 3): a header of metadata and tensor
//! descriptions, then aligned tensor data.
//!
//! `Gguf::parse` reads a whole file held in memory; `GgufStream` reads the same thing from a
//! sequence of chunks (the browser streams models from the network) and hands each tensor's
//! bytes on as they arrive; `GgufWriter` makes files for tests and tools.

mod reader;
mod stream;
mod value;
mod writer;

pub use reader::{DEFAULT_ALIGNMENT, GGUF_MAGIC, Gguf, TensorInfo};
pub use stream::{GgufStream, TensorChunk};
pub use value::{Array, Metadata, Value, value_type};
pub use writer::GgufWriter;

use crate::quant::QuantError;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum GgufError {
    #[error("not a GGUF file (magic bytes {0:02x?})")]
    BadMagic([u8; 4]),
    #[error("unsupported GGUF version {0} (supported: 2 and 3)")]
    UnsupportedVersion(u32),
    #[error("file ends early: {needed} more bytes needed at offset {offset}")]
    Truncated { offset: u64, needed: u64 },
    #[error("{what} {count} at offset {offset} is more than the file can hold")]
    Implausible { what: &'static str, count: u64, offset: u64 },
    #[error("metadata key {key:?} has invalid value type {ty}")]
    BadValueType { key: String, ty: u32 },
    #[error("string at offset {offset} is not valid UTF-8")]
    BadUtf8 { offset: u64 },
    #[error("metadata key {0:?} appears twice")]
    DuplicateKey(String),
    #[error("tensor {0:?} appears twice")]
    DuplicateTensor(String),
    #[error("metadata key {key:?}: {reason}")]
    BadMetadata { key: String, reason: String },
    #[error("tensor {name:?}: {reason}")]
    BadTensor { name: String, reason: String },
    #[error("tensor {name:?}: unsupported type: {source}")]
    TensorType { name: String, source: QuantError },
    #[error("tensor {name:?}: data ends at byte {end}, past the end of the file ({len} bytes)")]
    TensorOutOfBounds { name: String, end: u64, len: u64 },
    #[error("tensors {a:?} and {b:?} overlap")]
    TensorsOverlap { a: String, b: String },
    #[error("tensor {0:?} not found")]
    MissingTensor(String),
}

impl GgufError {
    /// True when the only problem is that more bytes are needed (used by the stream reader).
    pub fn is_truncation(&self) -> bool {
        matches!(self, GgufError::Truncated { .. })
    }
}
