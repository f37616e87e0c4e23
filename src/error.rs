//! The crate's error type. Every module has its own typed error; this one wraps them so callers
//! (the CLI, later the wasm boundary) can match on a kind and show one clear line.

use thiserror::Error;

pub use crate::backend::gpu::GpuError;
pub use crate::chat::ChatError;
#[cfg(not(target_arch = "wasm32"))]
pub use crate::download::DownloadError;
pub use crate::gguf::GgufError;
pub use crate::quant::QuantError;
pub use crate::tokenizer::TokenizerError;

#[derive(Debug, Error)]
pub enum Error {
    #[error("bad GGUF: {0}")]
    Gguf(#[from] GgufError),
    #[error("{0}")]
    Quant(#[from] QuantError),
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] TokenizerError),
    #[error("chat: {0}")]
    Chat(#[from] ChatError),
    #[error("unsupported model: {0}")]
    UnsupportedModel(String),
    #[error("invalid model: {0}")]
    InvalidModel(String),
    #[error("context full: {needed} tokens needed but the context holds {context}")]
    ContextFull { needed: usize, context: usize },
    #[error("token id {id} is out of range (vocabulary has {n_vocab})")]
    TokenOutOfRange { id: u32, n_vocab: usize },
    #[error("model too large: out of memory allocating {0}")]
    OutOfMemory(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Gpu(#[from] GpuError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[cfg(not(target_arch = "wasm32"))]
    #[error("download: {0}")]
    Download(#[from] DownloadError),
}

impl Error {
    /// A short stable code, the same one the wasm package will put on its JS errors.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Gguf(_) => "bad_gguf",
            Error::Quant(_) | Error::UnsupportedModel(_) => "unsupported_model",
            Error::InvalidModel(_) => "bad_gguf",
            Error::Tokenizer(_) => "tokenizer",
            Error::Chat(_) => "invalid_request",
            Error::ContextFull { .. } => "context_full",
            Error::OutOfMemory(_) => "model_too_large",
            Error::TokenOutOfRange { .. } | Error::InvalidArgument(_) => "invalid_argument",
            Error::Gpu(e) => e.code(),
            Error::Io(_) => "io",
            #[cfg(not(target_arch = "wasm32"))]
            Error::Download(e) => match e {
                DownloadError::BadSpec(_) => "invalid_argument",
                DownloadError::Io { .. } => "io",
                _ => "network",
            },
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
