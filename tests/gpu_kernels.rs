//! GPU matvec kernels against the CPU reference, for every weight type, on random quantized
//! matrices whose row counts and lengths are not multiples of the workgroup size; the split
//! tensor path (binding limit lowered in the options); grids wider than 65535 workgroups; and
//! the typed errors. Runs on any adapter (lavapipe in CI); without one it prints SKIPPED, and
//! fails under `CI=true`.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use pocketllm::backend::gpu::{
    GpuBuffer, GpuContext, GpuError, GpuOptions, GpuWeight, MatmulOut, MatvecOp, Readback, Variant, matvec_item_values,
    matvec_types,
};
use pocketllm::quant::{self, GgmlType};

/// f32 unit roundoff (2^-24).
const U: f64 = f32::EPSILON as f64 / 2.0;

/// The kernels split a block's dequantized value into parts that are summed separately
/// (`d*q` and the offset `8d`, `d*sc*q` and `dmin*m`), so rounding errors scale with the parts,
/// not with the value: every part of a value in these formats is at most 3x the largest
/// |value| of its block (e.g. Q4_0: |d*q| <= 15|d| = 15/8 amax, |8d| = amax; K-quants:
/// |d*sc*q| and |dmin*m| <= the sub-block's range <= 2 amax). Rounded up to 4.
const PART_BOUND: f64 = 4.0;

/// Sequential f32 additions on the longest path of one output in `matvec.wgsl`: the ITEM
/// products of one work item, the items one invocation strides over, the tree reduction over
/// the TPR invocations of a row (log2 TPR), and at most 4 roundings from scales and mins.
fn sequential_ops(ty: GgmlType, cols: usize, v: Variant) -> f64 {
    let item = matvec_item_values(ty);
    let items = cols.div_ceil(item);
    let tpr = v.threads_per_row();
    (item + items.div_ceil(tpr) + tpr.ilog2() as usize + 4) as f64
}

/// Error bound of one GPU output against the exact dot of the dequantized row with x: the
/// classic gamma_k = k*u/(1 - k*u) bound of recursive summation, applied to the parts.
fn gpu_bound(ty: GgmlType, v: Variant, row: &[f32], x: &[f32]) -> f64 {
    let k = sequential_ops(ty, row.len(), v);
    let gamma = k * U / (1.0 - k * U);
    let amax = row.iter().fold(0f64, |m, &v| m.max(v.abs() as f64));
    gamma * PART_BOUND * amax * x.iter().map(|&v| v.abs() as f64).sum::<f64>() + 1e-30
}

/// How far the CPU backend's matvec may be from the exact f32-activation dot, because ggml
/// quantizes the activations first (to Q8_0/Q8_1/Q8_K, or rounds them to F16/BF16): each x_i
/// moves by at most half a quantization step, amax(block)/254 for the 8-bit types, |x_i|*2^-11
/// for F16, |x_i|*2^-8 for BF16; plus the CPU's own f32 sums (bounded like the GPU's).
fn cpu_bound(ty: GgmlType, v: Variant, row: &[f32], x: &[f32]) -> f64 {
    let act = quant::vec_dot_type(ty);
    let block = act.block_size();
    let mut s = 0f64;
    for (c, &w) in row.iter().enumerate() {
        let dx = match act {
            GgmlType::F32 => 0.0,
            GgmlType::F16 => x[c].abs() as f64 / 2048.0,
            GgmlType::BF16 => x[c].abs() as f64 / 256.0,
            _ => {
                let b0 = c / block * block;
                x[b0..b0 + block].iter().fold(0f64, |m, &v| m.max(v.abs() as f64)) / 254.0 * 1.01
            }
        };
        s += w.abs() as f64 * dx;
    }
    s + 2.0 * gpu_bound(ty, v, row, x)
}

/// xorshift64*; uniform floats in [-1, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((v >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// A random `rows` x `cols` matrix quantized to `ty`: rows of different scales, some outliers.
fn random_weights(ty: GgmlType, rows: usize, cols: usize, rng: &mut Rng) -> (Vec<u8>, Vec<f32>) {
    let row_bytes = ty.row_bytes(cols).unwrap();
    let mut bytes = vec![0u8; rows * row_bytes];
    let mut deq = vec![0f32; rows * cols];
    let mut src = vec![0f32; cols];
    for r in 0..rows {
        let scale = [0.02f32, 0.3, 1.0, 7.5][r % 4];
        for (c, v) in src.iter_mut().enumerate() {
            *v = rng.next() * scale * if c % 61 == 7 { 6.0 } else { 1.0 };
        }
        let dst = &mut bytes[r * row_bytes..(r + 1) * row_bytes];
        quant::quantize_row(ty, &src, dst).unwrap();
        quant::dequantize_row(ty, dst, &mut deq[r * cols..(r + 1) * cols]).unwrap();
    }
    (bytes, deq)
}

/// Worst errors of a case; `*_rel` are relative to the row's sum of |w_i * x_i|.
#[derive(Default)]
struct Outcome {
    max_abs: f64,
    max_rel: f64,
    max_ratio: f64,
    cpu_max_rel: f64,
}

impl Outcome {
    fn merge(&mut self, o: &Outcome) {
        self.max_abs = self.max_abs.max(o.max_abs);
        self.max_rel = self.max_rel.max(o.max_rel);
        self.max_ratio = self.max_ratio.max(o.max_ratio);
        self.cpu_max_rel = self.cpu_max_rel.max(o.cpu_max_rel);
    }
}

/// Runs one GPU matvec and checks it against the f64 reference; returns the worst errors.
fn check_case(
    ctx: &GpuContext,
    ty: GgmlType,
    rows: usize,
    cols: usize,
    x_off: usize,
    out_off: usize,
    seed: u64,
) -> Outcome {
    let mut rng = Rng(seed | 1);
    let (bytes, deq) = random_weights(ty, rows, cols, &mut rng);
    let xs: Vec<f32> = (0..x_off + cols).map(|_| rng.next() * 2.0).collect();
    let x = &xs[x_off..];

    const SENTINEL: f32 = -12345.5;
    let out_len = out_off + rows + 3;
    let w = ctx.upload_weight("w", ty, rows, cols, &bytes).unwrap();
    let xb = ctx.alloc_f32("x", xs.len()).unwrap();
    let ob = ctx.alloc_f32("out", out_len).unwrap();
    ctx.write_f32(&xb, 0, &xs).unwrap();
    ctx.write_f32(&ob, 0, &vec![SENTINEL; out_len]).unwrap();
    let op = ctx.prepare_matvec(&w, &xb, x_off, &ob, out_off).unwrap();
    assert_eq!(op.dispatches(), w.n_pieces());
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    op.encode_pass(&mut enc, 1);
    ctx.submit(enc);
    let rb = Readback::new(ctx, "out", out_len).unwrap();
    let mut got = vec![0f32; out_len];
    rb.read_f32_blocking(ctx, &ob, 0, &mut got).unwrap();

    // The CPU backend's product: activations quantized to vec_dot_type first.
    let act_ty = quant::vec_dot_type(ty);
    let mut act = vec![0u8; act_ty.row_bytes(cols).unwrap()];
    quant::quantize_row_cpu(act_ty, x, &mut act).unwrap();
    let mut cpu = vec![0f32; rows];
    quant::matvec(ty, cols, &bytes, &act, &mut cpu);

    let mut o = Outcome::default();
    for (i, &g) in got.iter().enumerate() {
        if i < out_off || i >= out_off + rows {
            assert_eq!(g, SENTINEL, "{ty} {rows}x{cols}: out[{i}] outside the rows was written");
            continue;
        }
        let r = i - out_off;
        let row = &deq[r * cols..(r + 1) * cols];
        let exact: f64 = row.iter().zip(x).map(|(&a, &b)| a as f64 * b as f64).sum();
        let magnitude: f64 = row.iter().zip(x).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum::<f64>().max(1e-30);
        let err = (g as f64 - exact).abs();
        let bound = gpu_bound(ty, ctx.matvec_variant(), row, x);
        assert!(err <= bound, "{ty} {rows}x{cols} row {r}: gpu {g} vs exact {exact}: error {err:e} > bound {bound:e}");
        let cpu_err = (g as f64 - cpu[r] as f64).abs();
        let cb = cpu_bound(ty, ctx.matvec_variant(), row, x);
        assert!(cpu_err <= cb, "{ty} {rows}x{cols} row {r}: gpu {g} vs CPU backend {}: {cpu_err:e} > {cb:e}", cpu[r]);
        o.merge(&Outcome {
            max_abs: err,
            max_rel: err / magnitude,
            max_ratio: err / bound,
            cpu_max_rel: cpu_err / magnitude,
        });
    }
    o
}

/// Shapes per type: row lengths and row counts that are not multiples of the workgroup size
/// (64) or of the rows per workgroup (2); K-quants need lengths of 256k, legacy types 32k.
fn shapes(ty: GgmlType) -> Vec<(usize, usize)> {
    match ty.block_size() {
        1 => vec![(37, 101), (66, 1027), (5, 3), (129, 4096)],
        32 => vec![(37, 224), (130, 1440), (3, 32), (129, 4096)],
        _ => vec![(37, 256), (67, 768), (129, 1792), (65, 4096)],
    }
}

fn every_type(variant: Variant) {
    let opts = GpuOptions { matvec_variant: Some(variant), ..Default::default() };
    let Some(ctx) = common::gpu(&opts) else { return };
    eprintln!("adapter: {:?}", ctx.adapter_info());
    let mut seed = 1;
    for &ty in matvec_types() {
        let mut worst = Outcome::default();
        for (rows, cols) in shapes(ty) {
            for (x_off, out_off) in [(0, 0), (8, 5)] {
                seed += 1;
                worst.merge(&check_case(&ctx, ty, rows, cols, x_off, out_off, seed * 7919));
            }
        }
        eprintln!(
            "{variant:?} matvec_{}: max |gpu - exact| = {:.2e} ({:.2e} of sum |w x|, {:.3} of the bound); \
             max |gpu - cpu backend| = {:.2e} of sum |w x|",
            ty.name().to_ascii_lowercase(),
            worst.max_abs,
            worst.max_rel,
            worst.max_ratio,
            worst.cpu_max_rel
        );
    }
}

#[test]
fn matvec_matches_cpu_reference_for_every_type_base() {
    every_type(Variant::Base);
}

#[test]
fn matvec_matches_cpu_reference_for_every_type_row_per_invocation() {
    every_type(Variant::RowPerInvocation);
}

#[test]
fn matvec_matches_cpu_reference_for_every_type_subgroup() {
    every_type(Variant::Subgroup);
}

#[test]
fn runs_within_webgpu_default_limits() {
    // A device created with WebGPU's default limits (256 invocations, 8 storage buffers,
    // 16 KiB workgroup memory, 128 MiB bindings), not the adapter's: every type, both variants,
    // the matvec and the matmul kernels.
    for variant in Variant::ALL {
        let opts = GpuOptions { webgpu_default_limits: true, matvec_variant: Some(variant), ..Default::default() };
        let Some(ctx) = common::gpu(&opts) else { return };
        assert_eq!(ctx.limits().max_compute_workgroup_storage_size, 16 * 1024);
        for &ty in matvec_types() {
            let cols = if ty.block_size() == 256 { 512 } else { 96 };
            check_case(&ctx, ty, 67, cols, 4, 3, 77);
        }
        // The token-tiled kernels and every epilogue (Split3: 6 storage buffers, 2 uniforms;
        // Base SwiGLU: 4 KiB of workgroup memory).
        for ty in [GgmlType::Q4_K, GgmlType::F16] {
            matmul_type(&ctx, ty, 78);
        }
    }
}

#[test]
fn readback_recorded_in_the_same_submit() {
    // The decode-step pattern: matvec and the copy to the staging buffer in one encoder, one
    // submit, then the asynchronous map.
    let Some(ctx) = common::gpu(&GpuOptions::default()) else { return };
    let (rows, cols) = (5, 64);
    let (bytes, deq) = random_weights(GgmlType::Q8_0, rows, cols, &mut Rng(5));
    let w = ctx.upload_weight("w", GgmlType::Q8_0, rows, cols, &bytes).unwrap();
    let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.37).sin()).collect();
    let xb = ctx.alloc_f32("x", cols).unwrap();
    let ob = ctx.alloc_f32("out", rows).unwrap();
    ctx.write_f32(&xb, 0, &x).unwrap();
    let op = ctx.prepare_matvec(&w, &xb, 0, &ob, 0).unwrap();
    let rb = Readback::new(&ctx, "out", rows).unwrap();
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    op.encode_pass(&mut enc, 1);
    rb.encode_copy(&mut enc, &ob, 0, rows).unwrap();
    ctx.submit(enc);
    let mut got = vec![0f32; rows];
    pollster::block_on(rb.map_read(&ctx, &mut got)).unwrap();
    for r in 0..rows {
        let exact: f64 = deq[r * cols..(r + 1) * cols].iter().zip(&x).map(|(&a, &b)| a as f64 * b as f64).sum();
        let bound = gpu_bound(GgmlType::Q8_0, ctx.matvec_variant(), &deq[r * cols..(r + 1) * cols], &x);
        assert!((got[r] as f64 - exact).abs() <= bound, "row {r}: {} vs {exact}", got[r]);
    }
}

#[test]
fn split_tensors_match_unsplit() {
    for v in Variant::ALL {
        split_tensors(v);
    }
}

fn split_tensors(variant: Variant) {
    // A binding limit of 1 KiB forces several buffers per tensor; row sizes that are not
    // multiples of 4 (Q6_K 210 B, Q4_0 54 B, F16 2*101 B) check per-piece byte offsets.
    let opts = GpuOptions { max_binding_bytes: Some(1024), matvec_variant: Some(variant), ..Default::default() };
    let Some(ctx) = common::gpu(&opts) else { return };
    assert_eq!(ctx.binding_limit(), 1024);
    for (ty, rows, cols, pieces) in [
        (GgmlType::Q6_K, 37, 256, 10),
        (GgmlType::Q4_0, 41, 96, 3),
        (GgmlType::F16, 11, 101, 3),
        (GgmlType::F32, 9, 64, 3),
    ] {
        let mut rng = Rng(99);
        let (bytes, _) = random_weights(ty, rows, cols, &mut rng);
        let w = ctx.upload_weight("split", ty, rows, cols, &bytes).unwrap();
        assert_eq!(w.n_pieces(), pieces, "{ty}: pieces");
        assert!(w.device_bytes() >= bytes.len() as u64);
        let o = check_case(&ctx, ty, rows, cols, 4, 2, 1234);
        eprintln!("{variant:?} split {ty} {rows}x{cols} in {pieces} buffers: max error {:.3e}", o.max_abs);
    }
    // One row that does not fit a binding is refused with a typed error.
    let bytes = vec![0u8; GgmlType::F32.row_bytes(300).unwrap()];
    let e = ctx.upload_weight("wide", GgmlType::F32, 1, 300, &bytes).err().unwrap();
    assert!(matches!(e, GpuError::Invalid(_)), "{e}");
}

#[test]
fn weights_streamed_in_chunks_of_any_size() {
    // Chunks of 1, 3, 7, 250, ... bytes cross words, rows and (with a 1 KiB binding limit)
    // buffers; the streamed tensor must give the same products as the whole upload.
    let opts = GpuOptions { max_binding_bytes: Some(1024), ..Default::default() };
    let Some(ctx) = common::gpu(&opts) else { return };
    for (ty, rows, cols) in [(GgmlType::Q6_K, 13, 256), (GgmlType::Q4_0, 41, 96), (GgmlType::F16, 11, 101)] {
        let (bytes, _) = random_weights(ty, rows, cols, &mut Rng(3));
        let whole = ctx.upload_weight("whole", ty, rows, cols, &bytes).unwrap();
        let mut up = ctx.begin_weight("streamed", ty, rows, cols).unwrap();
        let sizes = [1usize, 3, 7, 250, 2, 1021, 5, 64];
        let (mut at, mut k) = (0, 0);
        let mut chunks = Vec::new();
        while at < bytes.len() {
            let n = sizes[k % sizes.len()].min(bytes.len() - at);
            up.write(&ctx, &bytes[at..at + n]).unwrap();
            chunks.push(at..at + n);
            at += n;
            k += 1;
        }
        assert_eq!(up.written(), bytes.len());
        let streamed = up.finish(&ctx).unwrap();
        // The same chunks in another order, at their offsets (how the parts of a fused weight
        // arrive): bit-identical results too.
        let mut shuffled = ctx.begin_weight("shuffled", ty, rows, cols).unwrap();
        let order = (0..chunks.len()).rev().filter(|i| i % 2 == 1).chain((0..chunks.len()).filter(|i| i % 2 == 0));
        for i in order {
            let c = chunks[i].clone();
            shuffled.write_at(&ctx, c.start, &bytes[c]).unwrap();
        }
        let shuffled = shuffled.finish(&ctx).unwrap();
        assert!(streamed.n_pieces() > 1, "{ty}");

        let x: Vec<f32> = (0..cols).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect();
        let xb = ctx.alloc_f32("x", cols).unwrap();
        ctx.write_f32(&xb, 0, &x).unwrap();
        let outs = [ctx.alloc_f32("a", rows).unwrap(), ctx.alloc_f32("b", rows).unwrap()];
        let mut enc = ctx.device().create_command_encoder(&Default::default());
        ctx.prepare_matvec(&whole, &xb, 0, &outs[0], 0).unwrap().encode_pass(&mut enc, 1);
        ctx.prepare_matvec(&streamed, &xb, 0, &outs[1], 0).unwrap().encode_pass(&mut enc, 1);
        let out3 = ctx.alloc_f32("c", rows).unwrap();
        ctx.prepare_matvec(&shuffled, &xb, 0, &out3, 0).unwrap().encode_pass(&mut enc, 1);
        ctx.submit(enc);
        let rb = Readback::new(&ctx, "rb", rows).unwrap();
        let (mut a, mut b, mut c) = (vec![0f32; rows], vec![0f32; rows], vec![0f32; rows]);
        rb.read_f32_blocking(&ctx, &outs[0], 0, &mut a).unwrap();
        rb.read_f32_blocking(&ctx, &outs[1], 0, &mut b).unwrap();
        rb.read_f32_blocking(&ctx, &out3, 0, &mut c).unwrap();
        assert_eq!(a, b, "{ty}: streamed upload differs");
        assert_eq!(a, c, "{ty}: upload at shuffled offsets differs");
    }
    // Too many bytes, or finishing early, are typed errors.
    let mut up = ctx.begin_weight("short", GgmlType::Q8_0, 2, 32).unwrap();
    assert!(matches!(up.write(&ctx, &[0u8; 69]), Err(GpuError::Invalid(_))));
    up.write(&ctx, &[0u8; 40]).unwrap();
    assert!(matches!(up.finish(&ctx), Err(GpuError::Invalid(_))));
}

#[test]
fn grid_wider_than_one_dimension() {
    // Base runs one workgroup per row: 70001 rows is more than the 65535 workgroups one grid
    // dimension allows, so the kernel runs on a 2-D grid and must skip the tail of its last row.
    let opts = GpuOptions { matvec_variant: Some(Variant::Base), ..Default::default() };
    let Some(ctx) = common::gpu(&opts) else { return };
    let o = check_case(&ctx, GgmlType::Q8_0, 70_001, 32, 0, 1, 42);
    eprintln!("70001 x 32 Q8_0: max error {:.3e}", o.max_abs);
}

#[test]
fn bad_calls_are_typed_errors() {
    let Some(ctx) = common::gpu(&GpuOptions::default()) else { return };
    let bytes = vec![0u8; GgmlType::Q4_0.row_bytes(64).unwrap() * 3];
    // Wrong byte count, partial block.
    assert!(matches!(ctx.upload_weight("w", GgmlType::Q4_0, 4, 64, &bytes), Err(GpuError::Invalid(_))));
    assert!(matches!(ctx.upload_weight("w", GgmlType::Q4_0, 3, 63, &bytes), Err(GpuError::Invalid(_))));
    let w = ctx.upload_weight("w", GgmlType::Q4_0, 3, 64, &bytes).unwrap();
    let x = ctx.alloc_f32("x", 64).unwrap();
    let out = ctx.alloc_f32("out", 3).unwrap();
    // Input too short, output too short, input offset not a multiple of 4, input aliasing output.
    assert!(matches!(ctx.prepare_matvec(&w, &x, 4, &out, 0), Err(GpuError::Invalid(_))));
    assert!(matches!(ctx.prepare_matvec(&w, &x, 0, &out, 1), Err(GpuError::Invalid(_))));
    let big = ctx.alloc_f32("big", 128).unwrap();
    assert!(matches!(ctx.prepare_matvec(&w, &big, 2, &out, 0), Err(GpuError::Invalid(_))));
    assert!(matches!(ctx.prepare_matvec(&w, &big, 0, &big, 64), Err(GpuError::Invalid(_))));
    // Q8_K is only an activation type.
    let q8k = vec![0u8; GgmlType::Q8_K.row_bytes(256).unwrap()];
    let wk = ctx.upload_weight("q8k", GgmlType::Q8_K, 1, 256, &q8k).unwrap();
    let xk = ctx.alloc_f32("xk", 256).unwrap();
    let e = ctx.prepare_matvec(&wk, &xk, 0, &out, 0).err().unwrap();
    assert_eq!(pocketllm::Error::from(e).code(), "invalid_argument");
    // Reading more than the staging buffer holds.
    let rb = Readback::new(&ctx, "small", 2).unwrap();
    let mut dst = [0f32; 3];
    assert!(matches!(rb.read_f32_blocking(&ctx, &out, 0, &mut dst), Err(GpuError::Invalid(_))));
    ctx.check().unwrap();
    assert_eq!(pocketllm::Error::from(GpuError::NoAdapter("none".into())).code(), "webgpu_unavailable");
    assert_eq!(pocketllm::Error::from(GpuError::DeviceLost("gone".into())).code(), "device_lost");
}

// ---- prepare_matmul: the token-tiled product and its fused epilogues ----

/// Tokens the matmul tests prepare for. Steps of 1 (decode kernel), 3 (one partial tile), 8 (one
/// full tile of TT = 8) and 13 (a full and a partial tile); rows of later tokens must stay as
/// they were.
const MAX_TOKENS: usize = 13;
const STEPS: [usize; 4] = [1, 3, 8, 13];

/// |silu'(a)| <= 1.0998 for every a.
const SILU_SLOPE: f64 = 1.1;

/// Relative error of the shader's silu(a) * up, a / (1 + exp(-a)) * up, for a GPU gate within
/// `ba` of `a`: WGSL allows exp 3 + 2|a| ulp (an ulp is at most 2u of the value), which moves
/// 1 + exp(-a) by that times exp(-a) / (1 + exp(-a)) = 1 / (1 + exp(a)) relatively (nothing for
/// large gates, all of it for very negative ones, whose silu is tiny); then the add, the
/// division and the product with up round once each.
fn silu_rel_error(a: f64, ba: f64) -> f64 {
    let exp_ulps = 3.0 + 2.0 * (a.abs() + ba);
    exp_ulps * 2.0 * U / (1.0 + (a - ba).exp()) + 3.0 * U
}

fn silu(a: f64) -> f64 {
    a / (1.0 + (-a).exp())
}

/// The output stages under test (`MatmulOut` borrows its buffers, so cases are named first).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stage {
    Store,
    Accumulate,
    SwiGlu,
    GeGlu,
    Split3 { bias: bool },
}

const STAGES: [Stage; 6] = [
    Stage::Store,
    Stage::Accumulate,
    Stage::SwiGlu,
    Stage::GeGlu,
    Stage::Split3 { bias: false },
    Stage::Split3 { bias: true },
];

/// The largest slope of GELU (tanh form): 1.13 near x = 2.4.
const GELU_SLOPE: f64 = 1.13;

/// GeGLU's gate goes through f16 twice (ggml's table, imitated by both sides): a GPU gate
/// within `ba` of the exact `a` may round to the neighbouring f16 (half an f16 ulp, 2^-11
/// relatively, away), moving gelu by the slope times that plus ba, and gelu's own f16 rounding
/// may flip too (2^-10 of it); tanh in WGSL is allowed more error than libm's, well under this.
fn gelu_tolerance(a: f64, ba: f64, u: f64, bu: f64) -> f64 {
    let g = pocketllm::backend::cpu::gelu_f16_table(a as f32) as f64;
    let gate_err = GELU_SLOPE * (ba + a.abs() / 2048.0) + g.abs() / 1024.0;
    gate_err * (u.abs() + bu) + g.abs() * bu
}

/// Split3's q, k, v widths (67 rows, none a multiple of 64).
const QKV: [usize; 3] = [40, 16, 11];

/// The matmul test shapes: a row length per block size (a multiple of 4 for F32/F16/BF16,
/// as more than one token needs, but not of 64), 67 rows (74 = 2 x 37 for SwiGLU).
fn matmul_cols(ty: GgmlType) -> usize {
    match ty.block_size() {
        1 => 68,
        32 => 96,
        _ => 512,
    }
}

fn read(ctx: &GpuContext, b: &GpuBuffer) -> Vec<f32> {
    let rb = Readback::new(ctx, "read", b.len()).unwrap();
    let mut v = vec![0f32; b.len()];
    rb.read_f32_blocking(ctx, b, 0, &mut v).unwrap();
    v
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|f| f.to_le_bytes()).collect()
}

/// One weight with its dequantized rows and the step's activations, for the checks below.
struct Product<'a> {
    ty: GgmlType,
    variant: Variant,
    deq: &'a [f32],
    cols: usize,
    x: &'a [f32],
}

impl Product<'_> {
    /// The exact dot of dequantized row r with token t, and the GPU's error bound for it.
    fn dot(&self, r: usize, t: usize) -> (f64, f64) {
        let row = &self.deq[r * self.cols..(r + 1) * self.cols];
        let x = &self.x[t * self.cols..(t + 1) * self.cols];
        let exact = row.iter().zip(x).map(|(&a, &b)| a as f64 * b as f64).sum();
        (exact, gpu_bound(self.ty, self.variant, row, x))
    }

    /// Value and tolerance of output row r of token t for `stage` (row r of the part, for
    /// Split3 already offset to the weight's row), `init` the value the output held.
    fn expect(&self, stage: Stage, r: usize, t: usize, init: f32, bias: &[f32]) -> (f64, f64) {
        match stage {
            Stage::Store => self.dot(r, t),
            Stage::Accumulate => {
                let (y, b) = self.dot(r, t);
                (init as f64 + y, b + 2.0 * U * (init.abs() as f64 + y.abs()))
            }
            Stage::SwiGlu => {
                let h = self.deq.len() / self.cols / 2;
                let ((a, ba), (u, bu)) = (self.dot(r, t), self.dot(h + r, t));
                let s = silu(a);
                let tol = SILU_SLOPE * ba * (u.abs() + bu)
                    + s.abs() * bu
                    + (s.abs() + SILU_SLOPE * ba) * (u.abs() + bu) * silu_rel_error(a, ba);
                (s * u, tol)
            }
            Stage::GeGlu => {
                let h = self.deq.len() / self.cols / 2;
                let ((a, ba), (u, bu)) = (self.dot(r, t), self.dot(h + r, t));
                let g = pocketllm::backend::cpu::gelu_f16_table(a as f32) as f64;
                (g * u, gelu_tolerance(a, ba, u, bu))
            }
            Stage::Split3 { bias: with } => {
                let (y, b) = self.dot(r, t);
                let bias = if with { bias[r] as f64 } else { 0.0 };
                (y + bias, b + 2.0 * U * (y.abs() + bias.abs()))
            }
        }
    }
}

/// Runs every stage of `ty` for every step on `ctx` against the f64 reference; returns the
/// worst error / bound.
fn matmul_type(ctx: &GpuContext, ty: GgmlType, seed: u64) -> f64 {
    let variant = ctx.matvec_variant();
    let cols = matmul_cols(ty);
    let mut rng = Rng(seed | 1);
    let xs: Vec<f32> = (0..MAX_TOKENS * cols).map(|_| rng.next() * 2.0).collect();
    let xb = ctx.alloc_f32("x", xs.len()).unwrap();
    ctx.write_f32(&xb, 0, &xs).unwrap();
    let step = ctx.alloc_step("step").unwrap();
    let bias_values: Vec<f32> = (0..67).map(|_| rng.next() * 4.0).collect();
    let bias = ctx.upload_weight("bias", GgmlType::F32, 1, 67, &f32_bytes(&bias_values)).unwrap();
    let mut worst = 0f64;
    for stage in STAGES {
        let rows = if matches!(stage, Stage::SwiGlu | Stage::GeGlu) { 74 } else { 67 };
        let (bytes, deq) = random_weights(ty, rows, cols, &mut rng);
        let w = ctx.upload_weight("w", ty, rows, cols, &bytes).unwrap();
        let widths: Vec<usize> = match stage {
            Stage::Split3 { .. } => QKV.to_vec(),
            Stage::SwiGlu | Stage::GeGlu => vec![rows / 2],
            _ => vec![rows],
        };
        // Three extra values past the last token's rows must stay untouched too.
        let outs: Vec<GpuBuffer> =
            widths.iter().map(|&wd| ctx.alloc_f32("out", MAX_TOKENS * wd + 3).unwrap()).collect();
        let out = match stage {
            Stage::Store => MatmulOut::Store(&outs[0]),
            Stage::Accumulate => MatmulOut::Accumulate(&outs[0]),
            Stage::SwiGlu => MatmulOut::SwiGlu(&outs[0]),
            Stage::GeGlu => MatmulOut::GeGlu(&outs[0]),
            Stage::Split3 { bias: with } => {
                MatmulOut::Split3 { outs: [&outs[0], &outs[1], &outs[2]], widths: QKV, bias: with.then_some(&bias) }
            }
        };
        let op = ctx.prepare_matmul(&w, &xb, out, MAX_TOKENS, &step).unwrap();
        let kind = match stage {
            Stage::Store => String::new(),
            Stage::Accumulate => "_accumulate".into(),
            Stage::SwiGlu => "_swiglu".into(),
            Stage::GeGlu => "_geglu".into(),
            Stage::Split3 { .. } => "_split3".into(),
        };
        let rpi = match variant {
            Variant::Base => "",
            Variant::RowPerInvocation => "_rpi",
            Variant::Subgroup => "_sg",
        };
        let want = format!("matmul_{}{kind}{rpi}:w", ty.name().to_ascii_lowercase());
        assert_eq!(op.label(), want);
        let p = Product { ty, variant, deq: &deq, cols, x: &xs };
        for n in STEPS {
            let inits: Vec<Vec<f32>> = outs
                .iter()
                .map(|o| match stage {
                    Stage::Accumulate => (0..o.len()).map(|_| rng.next() * 3.0).collect(),
                    _ => vec![-12345.5; o.len()],
                })
                .collect();
            for (o, init) in outs.iter().zip(&inits) {
                ctx.write_f32(o, 0, init).unwrap();
            }
            step.set(ctx, n, 0).unwrap();
            let mut enc = ctx.device().create_command_encoder(&Default::default());
            op.encode_pass(&mut enc, n);
            ctx.submit(enc);
            let mut row0 = 0;
            for ((o, init), &width) in outs.iter().zip(&inits).zip(&widths) {
                let got = read(ctx, o);
                for (i, (&g, &before)) in got.iter().zip(init).enumerate() {
                    let (t, r) = (i / width, i % width);
                    if t >= n {
                        assert_eq!(g, before, "{want} n={n}: value {i} past the step's tokens was written");
                        continue;
                    }
                    let (exact, tol) = p.expect(stage, row0 + r, t, before, &bias_values);
                    let err = (g as f64 - exact).abs();
                    assert!(
                        err <= tol + 1e-30,
                        "{want} {rows}x{cols} n={n} token {t} row {r}: gpu {g} vs {exact}: {err:e} > {tol:e}"
                    );
                    worst = worst.max(err / (tol + 1e-30));
                }
                row0 += width;
            }
        }
    }
    worst
}

fn matmul_every_type(variant: Variant) {
    let opts = GpuOptions { matvec_variant: Some(variant), ..Default::default() };
    let Some(ctx) = common::gpu(&opts) else { return };
    for (i, &ty) in matvec_types().iter().enumerate() {
        let worst = matmul_type(&ctx, ty, 1000 + i as u64);
        eprintln!("{variant:?} matmul {ty}: every stage, steps {STEPS:?}: worst error {worst:.3} of the bound");
    }
}

#[test]
fn matmul_epilogues_match_cpu_reference_base() {
    matmul_every_type(Variant::Base);
}

#[test]
fn matmul_epilogues_match_cpu_reference_row_per_invocation() {
    matmul_every_type(Variant::RowPerInvocation);
}

#[test]
fn matmul_epilogues_match_cpu_reference_subgroup() {
    matmul_every_type(Variant::Subgroup);
}

#[test]
fn matmul_split_weights_match_unsplit() {
    // Store and Accumulate over a weight split into buffers of 1 KiB give exactly the unsplit
    // results (the same sums per row), for every step; SwiGLU and Split3 refuse a split weight.
    for variant in Variant::ALL {
        let one = GpuOptions { matvec_variant: Some(variant), ..Default::default() };
        let split = GpuOptions { max_binding_bytes: Some(1024), ..one.clone() };
        let (Some(one), Some(split)) = (common::gpu(&one), common::gpu(&split)) else { return };
        for (ty, rows, cols, pieces) in
            [(GgmlType::Q6_K, 37, 256, 10), (GgmlType::Q4_0, 41, 96, 3), (GgmlType::F16, 11, 100, 3)]
        {
            let mut rng = Rng(7);
            let (bytes, _) = random_weights(ty, rows, cols, &mut rng);
            let xs: Vec<f32> = (0..MAX_TOKENS * cols).map(|_| rng.next()).collect();
            let init: Vec<f32> = (0..MAX_TOKENS * rows).map(|_| rng.next()).collect();
            for accumulate in [false, true] {
                let mut results = Vec::new();
                for ctx in [&one, &split] {
                    let w = ctx.upload_weight("w", ty, rows, cols, &bytes).unwrap();
                    let xb = ctx.alloc_f32("x", xs.len()).unwrap();
                    ctx.write_f32(&xb, 0, &xs).unwrap();
                    let ob = ctx.alloc_f32("out", init.len()).unwrap();
                    let step = ctx.alloc_step("step").unwrap();
                    let out = if accumulate { MatmulOut::Accumulate(&ob) } else { MatmulOut::Store(&ob) };
                    let op = ctx.prepare_matmul(&w, &xb, out, MAX_TOKENS, &step).unwrap();
                    assert_eq!(op.dispatches(), w.n_pieces());
                    let mut per_step = Vec::new();
                    for n in STEPS {
                        ctx.write_f32(&ob, 0, &init).unwrap();
                        step.set(ctx, n, 0).unwrap();
                        let mut enc = ctx.device().create_command_encoder(&Default::default());
                        op.encode_pass(&mut enc, n);
                        ctx.submit(enc);
                        per_step.push(read(ctx, &ob));
                    }
                    results.push((w.n_pieces(), per_step));
                }
                assert_eq!(results[0].0, 1);
                assert_eq!(results[1].0, pieces, "{ty}: pieces");
                assert!(results[0].1 == results[1].1, "{variant:?} {ty} accumulate={accumulate}: split differs");
            }
            // The fused stages need the whole weight in one binding.
            let w = split.upload_weight("w", ty, 2 * rows, cols, &[bytes.clone(), bytes.clone()].concat()).unwrap();
            let xb = split.alloc_f32("x", MAX_TOKENS * cols).unwrap();
            let outs: Vec<GpuBuffer> = (0..3).map(|_| split.alloc_f32("o", MAX_TOKENS * 2 * rows).unwrap()).collect();
            let step = split.alloc_step("step").unwrap();
            let e = split.prepare_matmul(&w, &xb, MatmulOut::SwiGlu(&outs[0]), MAX_TOKENS, &step).err().unwrap();
            assert!(matches!(&e, GpuError::Invalid(m) if m.contains("split")), "{e}");
            let qkv = MatmulOut::Split3 {
                outs: [&outs[0], &outs[1], &outs[2]],
                widths: [rows, rows / 2, rows - rows / 2],
                bias: None,
            };
            let e = split.prepare_matmul(&w, &xb, qkv, MAX_TOKENS, &step).err().unwrap();
            assert!(matches!(&e, GpuError::Invalid(m) if m.contains("split")), "{e}");
        }
    }
}

#[test]
fn matmul_clamps_to_max_tokens() {
    // A step uniform holding more tokens than the op was prepared for writes only max_tokens
    // rows: encode clamps the grid and the kernel clamps the count it reads.
    let Some(ctx) = common::gpu(&GpuOptions::default()) else { return };
    let (rows, cols, max) = (5, 64, 3);
    let (bytes, _) = random_weights(GgmlType::Q8_0, rows, cols, &mut Rng(11));
    let w = ctx.upload_weight("w", GgmlType::Q8_0, rows, cols, &bytes).unwrap();
    let xb = ctx.alloc_f32("x", 8 * cols).unwrap();
    ctx.write_f32(&xb, 0, &vec![1.0; 8 * cols]).unwrap();
    let ob = ctx.alloc_f32("out", 8 * rows).unwrap();
    ctx.write_f32(&ob, 0, &vec![-1.5; 8 * rows]).unwrap();
    let step = ctx.alloc_step("step").unwrap();
    let op = ctx.prepare_matmul(&w, &xb, MatmulOut::Store(&ob), max, &step).unwrap();
    assert_eq!(op.max_tokens(), max);
    step.set(&ctx, 8, 0).unwrap();
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    op.encode_pass(&mut enc, 8);
    ctx.submit(enc);
    let got = read(&ctx, &ob);
    assert!(got[..max * rows].iter().all(|&v| v != -1.5), "the first {max} tokens are written");
    assert!(got[max * rows..].iter().all(|&v| v == -1.5), "nothing past max_tokens");
}

#[test]
fn matmul_bad_calls_are_typed_errors() {
    let Some(ctx) = common::gpu(&GpuOptions::default()) else { return };
    let step = ctx.alloc_step("step").unwrap();
    let invalid = |r: Result<MatvecOp, GpuError>, what: &str| match r {
        Err(GpuError::Invalid(m)) => eprintln!("{what}: {m}"),
        Err(e) => panic!("{what}: {e}"),
        Ok(op) => panic!("{what}: {} was accepted", op.label()),
    };
    let q = ctx.upload_weight("w", GgmlType::Q4_0, 6, 64, &vec![0u8; 6 * 36]).unwrap();
    let x = ctx.alloc_f32("x", 4 * 64).unwrap();
    let out = ctx.alloc_f32("out", 4 * 6).unwrap();
    let small = ctx.alloc_f32("small", 4 * 6 - 1).unwrap();
    let tiny = ctx.alloc_f32("tiny", 4 * 3 - 1).unwrap();
    invalid(ctx.prepare_matmul(&q, &x, MatmulOut::Store(&out), 0, &step), "no tokens");
    invalid(ctx.prepare_matmul(&q, &x, MatmulOut::Store(&out), 5, &step), "x too short");
    invalid(ctx.prepare_matmul(&q, &x, MatmulOut::Accumulate(&small), 4, &step), "out too short");
    invalid(ctx.prepare_matmul(&q, &x, MatmulOut::Store(&x), 1, &step), "x is out");
    ctx.prepare_matmul(&q, &x, MatmulOut::SwiGlu(&small), 4, &step).unwrap();
    invalid(ctx.prepare_matmul(&q, &x, MatmulOut::SwiGlu(&tiny), 4, &step), "swiglu out too short");
    // Rows not a multiple of 4 are fine for one token, refused for more (vec4 reads per token).
    let f = ctx.upload_weight("f", GgmlType::F32, 6, 65, &vec![0u8; 6 * 65 * 4]).unwrap();
    let xf = ctx.alloc_f32("xf", 2 * 65).unwrap();
    ctx.prepare_matmul(&f, &xf, MatmulOut::Store(&out), 1, &step).unwrap();
    invalid(ctx.prepare_matmul(&f, &xf, MatmulOut::Store(&out), 2, &step), "65 values x 2 tokens");
    // SwiGLU needs an even row count.
    let odd = ctx.upload_weight("odd", GgmlType::Q4_0, 5, 64, &[0u8; 5 * 36]).unwrap();
    invalid(ctx.prepare_matmul(&odd, &x, MatmulOut::SwiGlu(&out), 1, &step), "odd swiglu");
    // Split3: widths that do not add up, a part too short, a buffer twice, a bias of the wrong
    // length or type.
    let [a, b, c] = [0, 1, 2].map(|_| ctx.alloc_f32("part", 4 * 3).unwrap());
    let split3 = |widths: [usize; 3], outs: [&GpuBuffer; 3], bias: Option<&GpuWeight>| {
        ctx.prepare_matmul(&q, &x, MatmulOut::Split3 { outs, widths, bias }, 4, &step)
    };
    split3([3, 2, 1], [&a, &b, &c], None).unwrap();
    invalid(split3([3, 2, 2], [&a, &b, &c], None), "widths add to 7");
    invalid(split3([4, 1, 1], [&a, &b, &c], None), "part 0 too short");
    invalid(split3([3, 2, 1], [&a, &b, &a], None), "part 2 is part 0");
    invalid(split3([3, 2, 1], [&a, &b, &x], None), "part 2 is x");
    let bias5 = ctx.upload_weight("b", GgmlType::F32, 1, 5, &[0u8; 20]).unwrap();
    invalid(split3([3, 2, 1], [&a, &b, &c], Some(&bias5)), "bias of 5");
    let bias6 = ctx.upload_weight("b", GgmlType::F32, 2, 3, &[0u8; 24]).unwrap();
    split3([3, 2, 1], [&a, &b, &c], Some(&bias6)).unwrap();
    let bias_q = ctx.upload_weight("b", GgmlType::Q8_0, 1, 32, &[0u8; 34]).unwrap();
    invalid(split3([3, 2, 1], [&a, &b, &c], Some(&bias_q)), "Q8_0 bias");
    ctx.check().unwrap();
}
