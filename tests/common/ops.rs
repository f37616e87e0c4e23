//! GPU op test helpers: a context with a step uniform, random data, and bounded comparisons.
#![allow(dead_code)]
#![cfg(not(target_arch = "wasm32"))]

use pocketllm::backend::cpu::CpuBackend;
use pocketllm::backend::gpu::{GpuBuffer, GpuContext, GpuOp, GpuOptions, Readback, StepUniform};

/// f32 unit roundoff (2^-24).
pub const U: f64 = f32::EPSILON as f64 / 2.0;

/// xorshift64*; uniform floats in [-1, 1).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((v >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

pub struct Gpu {
    pub ctx: GpuContext,
    pub step: StepUniform,
}

impl Gpu {
    pub fn new(opts: &GpuOptions) -> Option<Self> {
        let ctx = super::gpu(opts)?;
        let step = ctx.alloc_step("step").unwrap();
        Some(Gpu { ctx, step })
    }
    pub fn buf(&self, data: &[f32]) -> GpuBuffer {
        let b = self.ctx.alloc_f32("buf", data.len()).unwrap();
        self.ctx.write_f32(&b, 0, data).unwrap();
        b
    }
    /// Sets the step and runs `ops` in one pass and one submit.
    pub fn run(&self, ops: &[&GpuOp], n_tokens: usize, pos0: usize) {
        self.step.set(&self.ctx, n_tokens, pos0).unwrap();
        let mut enc = self.ctx.device().create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for op in ops {
                op.encode(&mut pass, n_tokens);
            }
        }
        self.ctx.submit(enc);
    }
    pub fn read(&self, b: &GpuBuffer, len: usize) -> Vec<f32> {
        let rb = Readback::new(&self.ctx, "rb", len).unwrap();
        let mut out = vec![0f32; len];
        rb.read_f32_blocking(&self.ctx, b, 0, &mut out).unwrap();
        self.ctx.check().unwrap();
        out
    }
}

pub fn cpu() -> CpuBackend {
    CpuBackend::new(1).unwrap()
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Worst |gpu - cpu| / bound and |gpu - cpu| over a comparison; asserts every element.
#[derive(Default, Debug)]
pub struct Worst {
    pub abs: f64,
    pub ratio: f64,
}

pub fn compare(what: &str, got: &[f32], want: &[f32], bound: impl Fn(usize) -> f64, worst: &mut Worst) {
    assert_eq!(got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w as f64).abs();
        let b = bound(i) + 1e-30;
        assert!(err <= b, "{what}[{i}]: gpu {g} vs cpu {w}: error {err:e} > bound {b:e}");
        worst.abs = worst.abs.max(err);
        worst.ratio = worst.ratio.max(err / b);
    }
}
