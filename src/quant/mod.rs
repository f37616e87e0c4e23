//! Quantized tensor formats, byte for byte as ggml lays them out, with scalar reference kernels.
//!
//! The model is ggml's: a weight row of type `T` is multiplied with an activation row that was
//! first quantized to `vec_dot_type(T)` (Q8_0, Q8_1, Q8_K, F16 or F32), because that is what
//! llama.cpp's CPU backend does and matching it is how we match its logits.
//!
//! Entry points (all in `dispatch.rs`):
//! - [`dequantize_row`]: bit-identical to ggml's `dequantize_row_*` (checked on every tensor of
//!   every fixture model against gguf-py, which agrees with ggml bit for bit).
//! - [`quantize_row`]: ggml's reference quantizers `quantize_row_*_ref`; byte-identical to ggml
//!   (llama-cpp-python 0.3.36's libggml) for Q8_0, Q8_1, Q8_K, Q2_K..Q6_K and to gguf-py for
//!   F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 on the test rows.
//! - [`quantize_row_cpu`]: the activation quantizer ggml-cpu actually runs on x86-64 (AVX2
//!   `quantize_row_q8_0/q8_1` round half to even with multiplier 127/amax; Q8_K uses the
//!   reference); byte-identical to libggml's on the test rows. Use it for activations when
//!   matching llama.cpp's CPU logits.
//! - [`vec_dot_type`], [`vec_dot`] (fast: fixed-size per-block integer loops, hand-written
//!   AVX2 on x86-64 when detected), [`vec_dot_portable`] (the same kernels without AVX2),
//!   [`vec_dot_scalar`] (value-by-value twin); all three agree bit for bit, and track ggml's own
//!   SIMD dots within a few f32 ulps per block. [`check_vec_dot`] validates lengths once.
//!
//! Layout: `blocks` (ggml's `block_*` structs), `float` (F32/F16/BF16), `legacy` (Q4_0..Q8_1
//! (de)quantization), `kquants` (K-quant dequantization, Q8_K), `kquants_ref` (K-quant
//! quantizers), `legacy_dot`/`kquants_dot` (dots and scalar twins), `avx2` (x86-64 kernels).

// Index loops are kept where they mirror ggml's block layouts value by value.
#![allow(clippy::needless_range_loop)]

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx2_rows;
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
    check_vec_dot, dequantize_row, matvec, quantize_row, quantize_row_cpu, vec_dot, vec_dot_portable, vec_dot_scalar,
    vec_dot_type,
};
pub use types::{GgmlType, QK_K, ggml_type_name};

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
