//! The WebGPU compute path through `wgpu`: natively on Vulkan/Metal/DX12 (lavapipe on CI) and,
//! built for wasm32, on the browser's WebGPU.
//!
//! [`GpuBackend`] implements the crate's `Backend` trait on these parts:
//! - [`GpuContext`]: adapter and device with the adapter's real limits and the optional
//!   `SHADER_F16`/`SUBGROUP` features, device-loss and uncaptured-error tracking, the pipeline
//!   cache keyed by [`KernelKey`];
//! - [`GpuWeight`]: a tensor's GGUF block bytes uploaded unchanged (padded to 4), split by whole
//!   rows into several buffers when it is larger than the binding limit, written whole or
//!   streamed in chunks of any size as they arrive ([`WeightUpload`]);
//! - [`MatvecOp`]: the matrix products for every weight type, the decode matrix-vector kernel
//!   and the token-tiled prefill kernel, with fused epilogues ([`MatmulOut`]: store, residual
//!   add, SwiGLU, q/k/v split), recorded into a compute pass (bind groups and uniforms built
//!   once, nothing allocated per call);
//! - [`Readback`]: a reusable mappable staging buffer, read with the future-based pattern that
//!   works on wasm too (`map_async` + a oneshot; natively the device is polled);
//! - [`GpuOp`]: the other decode/prefill ops (embed, rms_norm, head norm, add, add_bias, swiglu,
//!   rope, kv_store, attention, argmax), bound once, reading the step's `n_tokens`/`pos0` from
//!   one [`StepUniform`].
//!
//! Shaders live in `shaders/` and are assembled per [`KernelKey`] by [`shader_source`].

mod attention;
pub use attention::{HeadNorms, RopeAngles};
mod backend;
pub use backend::{GpuBackend, GpuKvCache, GpuTensor, GpuTensorWeight, GpuUpload};
mod context;
mod kernels;
mod matvec;
mod ops;
mod readback;
mod recorder;
mod weights;

pub use context::{GpuContext, GpuOptions};
pub use kernels::{
    ElementwiseOp, Epilogue, KernelFamily, KernelKey, NormOut, Variant, all_kernel_keys, matvec_item_values,
    op_families, shader_source,
};
pub use matvec::{MATVEC_WORKGROUP_SIZE, MatmulOut, MatvecOp, matvec_types};
pub use ops::{ATTENTION_MAX_HEAD_DIM, GpuOp, StepUniform, top_k_chunk};
pub use readback::Readback;
pub use weights::{GpuBuffer, GpuWeight, WeightUpload};

use thiserror::Error;

/// What went wrong on the GPU path. [`GpuError::code`] is the stable code the CLI and the JS
/// package show.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum GpuError {
    #[error("no WebGPU adapter: {0}")]
    NoAdapter(String),
    #[error("the adapter's {name} is {got}, this engine needs at least {need}")]
    MissingLimit { name: &'static str, got: u64, need: u64 },
    #[error("requesting the GPU device failed: {0}")]
    RequestDevice(String),
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    #[error("out of GPU memory: {0}")]
    OutOfMemory(String),
    #[error("GPU kernel {label}: {message}")]
    Kernel { label: String, message: String },
    #[error("reading back from the GPU failed: {0}")]
    Readback(String),
    #[error("{0}")]
    Invalid(String),
}

impl GpuError {
    pub fn code(&self) -> &'static str {
        match self {
            GpuError::NoAdapter(_) | GpuError::MissingLimit { .. } | GpuError::RequestDevice(_) => "webgpu_unavailable",
            GpuError::DeviceLost(_) | GpuError::Readback(_) => "device_lost",
            GpuError::OutOfMemory(_) => "gpu_out_of_memory",
            GpuError::Kernel { .. } => "internal",
            GpuError::Invalid(_) => "invalid_argument",
        }
    }
}
