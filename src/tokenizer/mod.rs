//! Tokenizers built from GGUF metadata (`tokenizer.ggml.*`).

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum TokenizerError {
    #[error("missing metadata key {0}")]
    MissingKey(&'static str),
    #[error("unsupported tokenizer model {0:?}")]
    UnsupportedModel(String),
    #[error("invalid tokenizer data: {0}")]
    Invalid(String),
}
