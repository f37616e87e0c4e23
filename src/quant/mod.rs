//! Quantized tensor formats, byte for byte as ggml lays them out, with scalar reference kernels.
//!
//! The model is ggml's: a weight row of type `T` is multiplied with an activation row that was
//! first quantized to `vec_dot_type(T)` (Q8_0, Q8_1, Q8_K, F16 or F32), because that is what
//! llama.cpp's CPU backend does and matching it is how we match its logits.

// Index loops are kept where they mirror ggml's block layouts value by value.
#![allow(clippy::needless_range_loop)]

#[cfg(target_arch = "x86_64")]
mod avx2;
pub mod blocks;
mod dispatch;
pub mod float;
pub mod kquants;
mod kquants_dot;
mod kquants_ref;
pub mod legacy;
mod legacy_dot;
mod types;

pub use dispatch::{
    check_vec_dot, dequantize_row, quantize_row, quantize_row_cpu, vec_dot, vec_dot_portable, vec_dot_scalar,
    vec_dot_type,
};
pub use types::{ggml_type_name, GgmlType, QK_K};

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum QuantError {
    #[error("tensor type {} (id {id}) is not supported", name.unwrap_or("unknown"))]
    UnsupportedType { id: u32, name: Option<&'static str> },
    #[error("{ty}: {n} values is not a whole number of {block}-value blocks")]
    PartialBlock { ty: GgmlType, n: usize, block: usize },
    #[error("{ty}: expected {expected} bytes, got {got}")]
    WrongLength { ty: GgmlType, expected: usize, got: usize },
    #[error("{0} cannot be used for this operation")]
    NotApplicable(GgmlType),
}
