//! The GPU ops other than matvec (embed, rms_norm, head norm, add, add_bias, swiglu, rope,
//! kv_store + attention, argmax) against the CPU backend called through the `Backend` trait, on
//! random shapes whose sizes are not multiples of the workgroup (64), several positions (rope at
//! 0 and ~3000), GQA ratios 1/2/4, single tokens and batches with pos0 > 0. Tolerances are the
//! named constants and bounds below, each with where it comes from. Runs on any adapter
//! (lavapipe in CI); without one it prints SKIPPED, and fails under `CI=true`.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::ops::{Gpu, Rng, U, Worst, compare, cpu, f32_bytes};

use pocketllm::backend::gpu::{GpuBuffer, GpuOp, GpuOptions, HeadNorms, Readback, RopeAngles, matvec_types};
use pocketllm::backend::{Activation, AttnShape, Backend, KvType};
use pocketllm::model::config::{RopeConfig, RopeStyle};
use pocketllm::quant::{self, GgmlType};

/// Embedding values: both sides decode d * q (- m) from the same bytes, but may round in a
/// different order (d*sc*q vs (d*sc)*q, q*d - 8d vs (q - 8)*d): two roundings of parts that are
/// at most 3x the row's largest |value| (as in tests/gpu_kernels.rs), so 8u of that.
const EMBED_ULPS_OF_AMAX: f64 = 8.0;

/// Per-element rms_norm tolerance, relative to |x_c * w_c * scale|: the GPU sums squares in f32
/// over k = ceil(width / 64) + 6 sequential additions (strided loop + tree), the CPU in f64, so
/// the mean differs by <= k u relatively and the scale (1/sqrt) by k/2 u; plus sqrt (<= 2.5 ulp
/// by WGSL's accuracy rules, well under that in practice), the division (2.5 ulp) and two
/// products on both sides: k/2 + 12, taken as k + 16 for margin.
fn norm_ulps(width: usize) -> f64 {
    (width.div_ceil(64) + 6 + 16) as f64
}

/// silu(g) * u: exp is allowed 3 + 2|g| ulp by WGSL, the division 2.5 ulp, two more roundings,
/// and the CPU's own exp (1 ulp): relative (2|g| + 12) u of the result.
fn swiglu_ulps(g: f32) -> f64 {
    2.0 * g.abs() as f64 + 12.0
}

/// cos/sin absolute error on [-pi, pi] after the shader's range reduction. WGSL only promises
/// 2^-11 there; lavapipe (LLVM's libm-grade sin/cos) and real GPUs' hardware sin/cos (NVIDIA's
/// about 2^-21) are far better, so 2^-19 catches a bad implementation without flaking.
const SINCOS_ABS: f64 = 1.0 / (1u64 << 19) as f64;

/// Relative error of a rope angle between the two sides, in ulps: the CPU builds
/// pos * theta_scale^i by i repeated f32 products (theta_scale itself rounded: 2i u), the GPU
/// as pos * exp2(i * exp_step) in one step (exp_step rounded: |e| u of the exponent e, exp2
/// allowed 3 + 2|e| ulp by WGSL, ~1 in practice, so 4|e| + 4), then both divide by the frequency
/// factor (2.5 ulp on the GPU), scale and round the product: 2i + 4|e| + 12. The angle's absolute
/// error is this times the angle, so it grows with the position: at pos 3000 and base 1e6 the
/// first pairs' angles are ~3000 rad and may differ by ~1e-3 rad between CPU and GPU (both are
/// within that of the exact angle; neither is "right").
fn rope_angle_ulps(i: usize, e: f64) -> f64 {
    2.0 * i as f64 + 4.0 * e.abs() + 12.0
}

#[test]
fn embed_every_type_and_split_tables() {
    for max_binding in [None, Some(1024)] {
        let Some(g) = Gpu::new(&GpuOptions { max_binding_bytes: max_binding, ..Default::default() }) else { return };
        let mut cpu = cpu();
        let mut rng = Rng(11);
        for &ty in matvec_types() {
            let (rows, cols) = (37, [101, 96, 512][[1, 32, 256].iter().position(|&b| b == ty.block_size()).unwrap()]);
            let row_bytes = ty.row_bytes(cols).unwrap();
            if row_bytes + 4 > max_binding.unwrap_or(u64::MAX) as usize {
                continue;
            }
            let mut bytes = vec![0u8; rows * row_bytes];
            let mut deq = vec![0f32; rows * cols];
            for r in 0..rows {
                let src = rng.vec(cols, [0.02, 1.0, 9.0][r % 3]);
                quant::quantize_row(ty, &src, &mut bytes[r * row_bytes..(r + 1) * row_bytes]).unwrap();
                quant::dequantize_row(
                    ty,
                    &bytes[r * row_bytes..(r + 1) * row_bytes],
                    &mut deq[r * cols..(r + 1) * cols],
                )
                .unwrap();
            }
            let table = g.ctx.upload_weight("tok_embd", ty, rows, cols, &bytes).unwrap();
            if max_binding.is_some() {
                assert!(table.n_pieces() > 1, "{ty}: the table should be split");
            }
            let cw = cpu.upload_weight("tok_embd", ty, rows, cols, &bytes).unwrap();
            let ids: Vec<u32> = vec![5, 0, 36, 17, 17, 30, 1];
            let idb = g.ctx.alloc_f32("ids", ids.len()).unwrap();
            g.ctx.write_u32(&idb, 0, &ids).unwrap();
            let off = 3;
            let out = g.ctx.alloc_f32("out", off + ids.len() * cols).unwrap();
            let op = g.ctx.prepare_embed(&table, &idb, 1.0, &out, off, ids.len(), &g.step).unwrap();
            assert_eq!(op.dispatches(), table.n_pieces());
            let mut worst = Worst::default();
            for n in [1, ids.len()] {
                g.run(&[&op], n, 0);
                let got = g.read(&out, off + n * cols);
                let mut want = vec![0f32; n * cols];
                cpu.embed(&cw, &ids[..n], 1.0, &mut want);
                let amax = |i: usize| {
                    let r = ids[i / cols] as usize;
                    deq[r * cols..(r + 1) * cols].iter().fold(0f64, |m, &v| m.max(v.abs() as f64))
                };
                compare(
                    &format!("embed {ty} n={n}"),
                    &got[off..],
                    &want,
                    |i| EMBED_ULPS_OF_AMAX * U * amax(i),
                    &mut worst,
                );
            }
            eprintln!(
                "embed_{} (pieces {}): max |gpu - cpu| {:.2e}",
                ty.name().to_ascii_lowercase(),
                table.n_pieces(),
                worst.abs
            );
        }
    }
}

#[test]
fn embed_out_of_range_id_gives_zero_row() {
    let Some(g) = Gpu::new(&GpuOptions::default()) else { return };
    let (rows, cols) = (3, 32);
    let bytes = f32_bytes(&vec![1.5; rows * cols]);
    let table = g.ctx.upload_weight("t", GgmlType::F32, rows, cols, &bytes).unwrap();
    let idb = g.ctx.alloc_f32("ids", 2).unwrap();
    g.ctx.write_u32(&idb, 0, &[2, 7]).unwrap();
    let out = g.buf(&vec![9.0; 2 * cols]);
    let op = g.ctx.prepare_embed(&table, &idb, 1.0, &out, 0, 2, &g.step).unwrap();
    g.run(&[&op], 2, 0);
    let got = g.read(&out, 2 * cols);
    assert!(got[..cols].iter().all(|&v| v == 1.5));
    assert!(got[cols..].iter().all(|&v| v == 0.0));
}

#[test]
fn rms_norm_and_head_norm() {
    let Some(g) = Gpu::new(&GpuOptions::default()) else { return };
    let mut cpu = cpu();
    let mut rng = Rng(7);
    let eps = 1e-5;
    let mut worst = Worst::default();
    for width in [1, 37, 64, 65, 576, 1000, 4099] {
        for n in [1, 3] {
            let x = rng.vec(4 + n * width, 3.0);
            let wv = rng.vec(width, 1.5);
            let w = g.ctx.upload_weight("norm", GgmlType::F32, 1, width, &f32_bytes(&wv)).unwrap();
            let cw = cpu.upload_weight("norm", GgmlType::F32, 1, width, &f32_bytes(&wv)).unwrap();
            let (xb, out) = (g.buf(&x), g.ctx.alloc_f32("out", 2 + n * width).unwrap());
            let op = g.ctx.prepare_rms_norm(&xb, 4, &w, &out, 2, n, eps, &g.step).unwrap();
            g.run(&[&op], n, 0);
            let got = g.read(&out, 2 + n * width);
            let mut want = vec![0f32; n * width];
            cpu.rms_norm(&x[4..].to_vec(), &cw, n, eps, &mut want);
            compare(
                &format!("rms_norm w={width} n={n}"),
                &got[2..],
                &want,
                |i| norm_ulps(width) * U * want[i].abs() as f64 * 1.01 + 1e-37,
                &mut worst,
            );
        }
    }
    eprintln!("rms_norm: max |gpu - cpu| {:.2e} ({:.3} of the bound)", worst.abs, worst.ratio);

    let mut worst = Worst::default();
    for (head_dim, n_heads, n) in [(128, 3, 2), (64, 8, 1), (40, 5, 3)] {
        let x = rng.vec(n * n_heads * head_dim, 2.0);
        let wv = rng.vec(head_dim, 1.0);
        let w = g.ctx.upload_weight("q_norm", GgmlType::F32, 1, head_dim, &f32_bytes(&wv)).unwrap();
        let cw = cpu.upload_weight("q_norm", GgmlType::F32, 1, head_dim, &f32_bytes(&wv)).unwrap();
        let xb = g.buf(&x);
        let op = g.ctx.prepare_head_norm(&xb, 0, &w, n_heads, n, eps, &g.step).unwrap();
        g.run(&[&op], n, 0);
        let got = g.read(&xb, x.len());
        let mut want = x.clone();
        cpu.head_norm(&mut want, &cw, n * n_heads, eps);
        compare(
            &format!("head_norm d={head_dim}"),
            &got,
            &want,
            |i| norm_ulps(head_dim) * U * want[i].abs() as f64 * 1.01 + 1e-37,
            &mut worst,
        );
    }
    eprintln!("head_norm: max |gpu - cpu| {:.2e} ({:.3} of the bound)", worst.abs, worst.ratio);
}

#[test]
fn add_add_bias_swiglu() {
    let Some(g) = Gpu::new(&GpuOptions::default()) else { return };
    let mut cpu = cpu();
    let mut rng = Rng(3);
    let mut worst = Worst::default();
    for width in [1, 63, 576, 1537] {
        for n in [1, 4] {
            let len = n * width;
            let (x, y) = (rng.vec(len, 4.0), rng.vec(len + 8, 4.0));
            // add: exact (one IEEE addition on both sides).
            let (xb, yb) = (g.buf(&x), g.buf(&y));
            let op = g.ctx.prepare_add(&xb, 0, &yb, 8, width, n, &g.step).unwrap();
            g.run(&[&op], n, 0);
            let mut want = x.clone();
            want.iter_mut().zip(&y[8..]).for_each(|(a, b)| *a += b);
            assert_eq!(g.read(&xb, len), want, "add w={width} n={n}");

            // add_bias: exact too.
            let bv = rng.vec(width, 2.0);
            let b = g.ctx.upload_weight("bias", GgmlType::F32, 1, width, &f32_bytes(&bv)).unwrap();
            let cb = cpu.upload_weight("bias", GgmlType::F32, 1, width, &f32_bytes(&bv)).unwrap();
            let xb = g.buf(&x);
            let op = g.ctx.prepare_add_bias(&xb, 0, &b, n, &g.step).unwrap();
            g.run(&[&op], n, 0);
            let mut want = x.clone();
            cpu.add_bias(&mut want, &cb, n);
            assert_eq!(g.read(&xb, len), want, "add_bias w={width} n={n}");

            // swiglu, with gates out to +-40 (e^40 overflows nothing in f32, e^-g underflows).
            let gate: Vec<f32> =
                rng.vec(len, 1.0).iter().enumerate().map(|(i, v)| v * if i % 7 == 0 { 40.0 } else { 6.0 }).collect();
            let (gb, ub) = (g.buf(&gate), g.buf(&y));
            let op = g.ctx.prepare_swiglu(&gb, 0, &ub, 4, width, n, &g.step).unwrap();
            g.run(&[&op], n, 0);
            let mut want = gate.clone();
            cpu.glu(&mut want, &y[4..].to_vec(), len, Activation::Silu);
            compare(
                &format!("swiglu w={width}"),
                &g.read(&gb, len),
                &want,
                |i| swiglu_ulps(gate[i]) * U * want[i].abs() as f64 + 1e-37,
                &mut worst,
            );
        }
    }
    eprintln!("add, add_bias: exact; swiglu: max |gpu - cpu| {:.2e} ({:.3} of the bound)", worst.abs, worst.ratio);
}

/// With `RopeAngles::Product` the angles are the CPU's f32 angles bit for bit; what is left is
/// the range reduction (the two-part 2*pi: ~|k| * 2^-24 * 0.002 rad for k turns, < 1e-7 at
/// pos 3000) and cos/sin (SINCOS_ABS), then the two f32 products and the sum (4u).
const ROPE_PRODUCT_ANGLE_ABS: f64 = 1e-7;

#[test]
fn rope_both_styles_positions_and_factors() {
    for angles in [RopeAngles::Product, RopeAngles::Exp2] {
        rope_case(angles);
    }
}

fn rope_case(angles: RopeAngles) {
    let Some(g) = Gpu::new(&GpuOptions::default()) else { return };
    let mut rng = Rng(5);
    let mut worst = Worst::default();
    let n_heads = 3;
    for style in [RopeStyle::Normal, RopeStyle::Neox] {
        for (head_dim, n_rot, base, scale, with_ff) in [
            (64, 64, 10000.0f32, 1.0f32, false),
            (128, 64, 1e6, 1.0, false),
            (128, 128, 500000.0, 0.25, true),
            (40, 40, 10000.0, 1.0, true),
        ] {
            let rope = RopeConfig { freq_scale: scale, ..RopeConfig::plain(style, n_rot, base) };
            let ff: Vec<f32> = (0..n_rot / 2).map(|i| 1.0 + (i % 5) as f32 * 1.7).collect();
            let mut cpu = cpu();
            cpu.set_ropes(&[RopeConfig { freq_factors: with_ff.then(|| ff.clone()), ..rope.clone() }]).unwrap();
            let ffb = g.buf(&ff);
            for (pos0, n) in [(0, 1), (0, 5), (3000, 1), (2995, 7), (17, 3)] {
                let x = rng.vec(n * n_heads * head_dim, 2.0);
                let xb = g.buf(&x);
                let op = g
                    .ctx
                    .prepare_rope(&xb, n_heads, head_dim, &rope, with_ff.then_some(&ffb), angles, n, &g.step)
                    .unwrap();
                g.run(&[&op], n, pos0);
                let got = g.read(&xb, x.len());
                let mut want = x.clone();
                cpu.rope(&mut want, n, n_heads, head_dim, pos0);
                let half = n_rot / 2;
                let exp_step = -2.0 * (base as f64).log2() / n_rot as f64;
                let bound = |idx: usize| {
                    let t = idx / (n_heads * head_dim);
                    let d = idx % head_dim;
                    let head = idx - d;
                    if d >= n_rot {
                        return 0.0; // untouched
                    }
                    let (i, partner) = match style {
                        RopeStyle::Normal => (d / 2, head + (d ^ 1)),
                        RopeStyle::Neox => (d % half, if d < half { idx + half } else { idx - half }),
                    };
                    let e = i as f64 * exp_step;
                    let f = if with_ff { ff[i] as f64 } else { 1.0 };
                    let angle = scale as f64 * (pos0 + t) as f64 * e.exp2() / f;
                    let mag = (x[idx].abs() + x[partner].abs()) as f64;
                    let angle_err = match angles {
                        RopeAngles::Product => ROPE_PRODUCT_ANGLE_ABS,
                        RopeAngles::Exp2 => angle * rope_angle_ulps(i, e) * U,
                    };
                    mag * (angle_err + SINCOS_ABS + 4.0 * U)
                };
                compare(
                    &format!("rope {style:?} d={head_dim} rot={n_rot} pos0={pos0}"),
                    &got,
                    &want,
                    bound,
                    &mut worst,
                );
            }
        }
    }
    eprintln!("rope ({angles:?} angles): max |gpu - cpu| {:.2e} ({:.3} of the bound)", worst.abs, worst.ratio);
}

/// Rounds to the nearest f16 (ties to even), as storing into an f16 cache does.
fn f16_round(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect()
}

/// One attention layer through a sequence of steps (prefill, decode, prefill at pos0 > 0) on
/// both backends; GPU: kv_store + attention in one pass, over a cache of `kv` values (the CPU
/// reference then attends over the keys and values rounded to f16, so the f32 bound holds).
fn attention_case(
    g: &Gpu,
    (n_head, n_head_kv, head_dim, head_dim_v): (usize, usize, usize, usize),
    steps: &[usize],
    kv: KvType,
    worst: &mut Worst,
) {
    let max_tokens = *steps.iter().max().unwrap();
    let n_ctx = steps.iter().sum::<usize>() + 3;
    let shape = AttnShape::new(n_head, n_head_kv, head_dim, head_dim_v);
    let (qw, kw, vw, ow) = (n_head * head_dim, n_head_kv * head_dim, n_head_kv * head_dim_v, n_head * head_dim_v);
    let mut cpu = cpu();
    let mut cache = cpu.alloc_kv(&[n_ctx; 2], kw, vw, KvType::F32).unwrap();
    let layer = 1;
    let (qb, kb, vb) = (
        g.ctx.alloc_f32("q", max_tokens * qw).unwrap(),
        g.ctx.alloc_f32("k", max_tokens * kw).unwrap(),
        g.ctx.alloc_f32("v", max_tokens * vw).unwrap(),
    );
    let (kc, vc) =
        (g.ctx.alloc_values("kc", n_ctx * kw, kv).unwrap(), g.ctx.alloc_values("vc", n_ctx * vw, kv).unwrap());
    let out = g.ctx.alloc_f32("attn", max_tokens * ow).unwrap();
    let store = g.ctx.prepare_kv_store(&kb, &vb, &kc, &vc, kw, vw, max_tokens, &g.step).unwrap();
    let attn = g.ctx.prepare_attention(&qb, &kc, &vc, &out, shape, max_tokens, &g.step).unwrap();
    let mut rng = Rng((n_head * 131 + n_head_kv * 17 + head_dim) as u64);
    let mut keys: Vec<f32> = Vec::new();
    let mut pos = 0;
    for &n in steps {
        let (q, k, v) = (rng.vec(n * qw, 1.5), rng.vec(n * kw, 1.5), rng.vec(n * vw, 1.0));
        g.ctx.write_f32(&qb, 0, &q).unwrap();
        g.ctx.write_f32(&kb, 0, &k).unwrap();
        g.ctx.write_f32(&vb, 0, &v).unwrap();
        g.run(&[&store, &attn], n, pos);
        let got = g.read(&out, n * ow);
        let mut want = vec![0f32; n * ow];
        let (k, v) = match kv {
            KvType::F32 => (k, v),
            KvType::F16 => (f16_round(&k), f16_round(&v)),
        };
        pocketllm::backend::cpu::store_kv(&k, &v, &mut cache, layer, n, pos);
        cpu.attention(&q, &cache, layer, shape, n, pos, &mut want);
        keys.extend_from_slice(&k);
        // Score error: both sides sum head_dim f32 products (gamma_hd each) of magnitude
        // sum |q_i k_i|; a score error ds moves every probability by a factor e^(+-2 ds), so
        // the output by 2 ds of max |v| (plus first-order terms). The softmax itself: exp
        // (<= 3 + 2|s| ulp by WGSL, |s| <= 2 ds after the max is subtracted... in practice a
        // few ulp), the running rescale once per 64-position tile, the tile sums (6 levels)
        // and the 64-term weighted sums: (tiles + 90) * 4u of max |v| covers it.
        let bound = |i: usize| {
            let t = i / ow;
            let h = (i % ow) / head_dim_v;
            let gkv = h / (n_head / n_head_kv);
            let n_seen = pos + t + 1;
            let qh = &q[t * qw + h * head_dim..t * qw + (h + 1) * head_dim];
            let mut ds = 0f64;
            for j in 0..n_seen {
                let kj = &keys[j * kw + gkv * head_dim..j * kw + (gkv + 1) * head_dim];
                let mag: f64 = qh.iter().zip(kj).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
                ds = ds.max(mag);
            }
            let gamma = head_dim as f64 * U / (1.0 - head_dim as f64 * U);
            let ds = 2.0 * gamma * ds * shape.scale as f64;
            let vmax = 1.0; // |v| < 1 by construction
            vmax * (2.0 * ds + (n_seen.div_ceil(64) as f64 + 90.0) * 4.0 * U)
        };
        compare(
            &format!("attention {n_head}/{n_head_kv} d={head_dim}/{head_dim_v} n={n} pos0={pos}"),
            &got,
            &want,
            bound,
            worst,
        );
        pos += n;
    }
    // The GPU cache holds exactly what was stored (an f16 cache is checked through attention:
    // only f32 buffers read back).
    if kv == KvType::F32 {
        let got_k = g.read(&kc, pos * kw);
        assert_eq!(got_k, keys, "kv_store");
    }
}

/// Attention over caches of every type the device stores: f32 always, f16 with `shader-f16`
/// (lavapipe has it, so under CI it must run).
fn attention_suite(kv: KvType) {
    let Some(g) = Gpu::new(&GpuOptions::default()) else { return };
    if kv == KvType::F16 && !g.ctx.features().contains(wgpu::Features::SHADER_F16) {
        assert!(std::env::var("CI").is_err(), "CI=true: the adapter must offer shader-f16");
        eprintln!("SKIPPED: f16 KV cache attention needs shader-f16, which this adapter lacks");
        return;
    }
    let mut worst = Worst::default();
    // Prefill of 70 (a tile of 64 and a partial one), decode steps, batches at pos0 > 0.
    let steps = [70, 1, 1, 5, 64, 1];
    for shape in [(4, 4, 64, 64), (4, 2, 128, 128), (8, 2, 40, 40), (6, 3, 72, 24), (2, 1, 256, 256)] {
        attention_case(&g, shape, &steps, kv, &mut worst);
    }
    // SmolLM2-135M's heads over 10 prefill chunks and decode out to position ~700 (11 tiles).
    let long = [64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 1, 1, 60, 1];
    attention_case(&g, (9, 3, 64, 64), &long, kv, &mut worst);
    eprintln!("attention ({} cache): max |gpu - cpu| {:.2e} ({:.3} of the bound)", kv.name(), worst.abs, worst.ratio);
}

#[test]
fn attention_gqa_decode_and_prefill() {
    attention_suite(KvType::F32);
}

#[test]
fn attention_over_an_f16_cache() {
    attention_suite(KvType::F16);
}

#[test]
fn argmax_ties_nans_and_long_rows() {
    let Some(g) = Gpu::new(&GpuOptions::default()) else { return };
    let mut rng = Rng(9);
    let outb = g.ctx.alloc_f32("token", 1).unwrap();
    let mut cases: Vec<Vec<f32>> = Vec::new();
    for len in [1, 7, 255, 257, 49153, 151_936] {
        cases.push(rng.vec(len, 10.0));
    }
    let mut tie = rng.vec(1000, 1.0);
    tie[700] = 5.0;
    tie[300] = 5.0;
    tie[301] = f32::NAN;
    cases.push(tie);
    cases.push(vec![f32::NAN; 40]);
    cases.push(vec![f32::NEG_INFINITY; 300]);
    let mut mixed = vec![f32::NAN; 600];
    mixed[513] = f32::NEG_INFINITY;
    mixed[599] = -1.0;
    cases.push(mixed);
    let mut big = rng.vec(70000, 1.0);
    big[65000] = f32::INFINITY;
    big[3] = f32::NAN;
    cases.push(big);
    for (k, logits) in cases.iter().enumerate() {
        let off = 5;
        let mut padded = vec![100.0f32; off];
        padded.extend_from_slice(logits);
        let xb = g.buf(&padded);
        let op = g.ctx.prepare_argmax(&xb, off, logits.len(), &outb).unwrap();
        // The decode-step pattern: argmax and the 4-byte copy in one submit, then the map.
        g.step.set(&g.ctx, 1, 0).unwrap();
        let rb = Readback::new(&g.ctx, "token", 1).unwrap();
        let mut enc = g.ctx.device().create_command_encoder(&Default::default());
        op.encode_pass(&mut enc, 1);
        rb.encode_copy(&mut enc, &outb, 0, 1).unwrap();
        g.ctx.submit(enc);
        let mut token = [0u32];
        pollster::block_on(rb.map_read_u32(&g.ctx, &mut token)).unwrap();
        let got = token[0];
        assert_eq!(got, pocketllm::sampler::argmax(logits), "case {k} (len {})", logits.len());
    }
}

/// The top-k kernel returns exactly `sampler::top_candidates`' set (same ids, same raw logit
/// bits) on rows with ties straddling the cut, NaN, infinities and -0.0, for k below, at and
/// past the row's length, at offsets into a larger buffer; rows longer than two chunks (Qwen's
/// 151 936 and Gemma's 262 144 logits, ties across chunk boundaries) through the two-pass form.
#[test]
fn top_k_selects_what_the_sampler_ranks_first() {
    let Some(g) = Gpu::new(&GpuOptions::default()) else { return };
    let mut rng = Rng(21);
    let mut rows: Vec<Vec<f32>> = Vec::new();
    for len in [1usize, 7, 300, 4099, 151_936, 262_144] {
        rows.push(rng.vec(len, 8.0));
    }
    // Ties in every chunk: 262 144 values of 17 levels, the top level in many chunks.
    rows.push((0..262_144).map(|i| ((i * 7919) % 17) as f32).collect());
    rows.push(vec![-3.0; 40_000]);
    // Many equal values around the cut: only the lowest ids of the tie may be taken.
    let mut ties: Vec<f32> = rng.vec(5000, 1.0).iter().map(|v| (v * 4.0).round()).collect();
    ties[4321] = f32::INFINITY;
    ties[17] = f32::NAN;
    ties[18] = -0.0;
    rows.push(ties);
    let mut odd = vec![f32::NAN; 600];
    odd[3] = f32::NEG_INFINITY;
    odd[500] = 0.0;
    odd[501] = -0.0;
    odd[599] = f32::MAX;
    odd[598] = f32::INFINITY;
    rows.push(odd);
    rows.push(vec![-3.0; 2000]);
    // A cut inside a tie of values that differ only by their bits (0.0 and -0.0, +inf and
    // f32::MAX): k = 1 keeps the lower id, whichever of the two it holds.
    for (a, b) in [(-0.0f32, 0.0f32), (f32::INFINITY, f32::MAX)] {
        let mut pair = vec![-1e30f32; 100];
        (pair[30], pair[40]) = (a, b);
        rows.push(pair.clone());
        (pair[30], pair[40]) = (b, a);
        rows.push(pair);
    }
    let outb = g.ctx.alloc_f32("top_k", 2 * 1100).unwrap();
    for (r, row) in rows.iter().enumerate() {
        let off = 3;
        let mut padded = vec![1e30f32; off];
        padded.extend_from_slice(row);
        padded.push(1e30);
        let xb = g.buf(&padded);
        for k in [1usize, 40, 64, 1024, 1100] {
            let op = g.ctx.prepare_top_k(&xb, off, row.len(), k, &outb).unwrap();
            let two_pass = row.len() > 2 * pocketllm::backend::gpu::top_k_chunk(k);
            assert_eq!(op.dispatches(), 1 + two_pass as usize, "len {} k {k}", row.len());
            g.run(&[&op], 1, 0);
            let n = k.min(row.len());
            let words: Vec<u32> = g.read(&outb, 2 * n).iter().map(|w| w.to_bits()).collect();
            let mut got: Vec<(u32, u32)> = words.chunks_exact(2).map(|w| (w[0], w[1])).collect();
            let mut want: Vec<(u32, u32)> =
                pocketllm::sampler::top_candidates(row, k).iter().map(|&(i, v)| (i, v.to_bits())).collect();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "row {r} (len {}), k {k}", row.len());
        }
    }
}

#[test]
fn ops_within_webgpu_default_limits() {
    // A device with WebGPU's default limits (256 invocations, 8 storage buffers, 16 KiB of
    // workgroup memory): a decode step's worth of ops at the largest head dims.
    let Some(g) = Gpu::new(&GpuOptions { webgpu_default_limits: true, ..Default::default() }) else { return };
    let mut worst = Worst::default();
    attention_case(&g, (4, 1, 256, 256), &[70, 1, 3], KvType::F32, &mut worst);
    let xb = g.buf(&[1.0, 3.0, 2.0]);
    let outb = g.ctx.alloc_f32("token", 1).unwrap();
    let op = g.ctx.prepare_argmax(&xb, 0, 3, &outb).unwrap();
    g.run(&[&op], 1, 0);
    assert_eq!(g.read(&outb, 1)[0].to_bits(), 1);
}

#[test]
fn qk_rope_store_equals_the_separate_ops() {
    // The fused op against head_norm q/k + rope q/k + kv_store run separately (themselves
    // checked against the CPU above): the same arithmetic in the same order, so equal up to a
    // compiler contracting differently (2 ulp of the value's magnitude allowed; lavapipe: equal).
    let Some(g) = Gpu::new(&GpuOptions::default()) else { return };
    let mut rng = Rng(21);
    let mut max_diff = 0f64;
    for (n_head, n_head_kv, hd, hdv, n_rot, style, with_norm, with_ff) in [
        (4, 2, 64, 64, 64, RopeStyle::Normal, false, false),
        (8, 2, 128, 128, 128, RopeStyle::Neox, true, false),
        (6, 3, 72, 40, 32, RopeStyle::Neox, true, true),
        (9, 3, 64, 64, 64, RopeStyle::Normal, false, true),
    ] {
        let rope = RopeConfig { freq_scale: 0.5, ..RopeConfig::plain(style, n_rot, 1e6) };
        let shape = AttnShape { scale: 1.0, ..AttnShape::new(n_head, n_head_kv, hd, hdv) };
        let (qw, kw, vw, n_ctx, m) = (n_head * hd, n_head_kv * hd, n_head_kv * hdv, 3010, 5);
        let ffb = g.buf(&(0..n_rot / 2).map(|i| 1.0 + i as f32 * 0.3).collect::<Vec<_>>());
        let ff = with_ff.then_some(&ffb);
        let (qnv, knv) = (rng.vec(hd, 1.5), rng.vec(hd, 1.5));
        let qn = g.ctx.upload_weight("q_norm", GgmlType::F32, 1, hd, &f32_bytes(&qnv)).unwrap();
        let kn = g.ctx.upload_weight("k_norm", GgmlType::F32, 1, hd, &f32_bytes(&knv)).unwrap();
        for (pos0, n) in [(0, 5), (2995, 1), (3000, 5)] {
            let (q, k, v) = (rng.vec(m * qw, 2.0), rng.vec(m * kw, 2.0), rng.vec(m * vw, 2.0));
            let (q1, k1, v1) = (g.buf(&q), g.buf(&k), g.buf(&v));
            let (q2, k2, v2) = (g.buf(&q), g.buf(&k), g.buf(&v));
            let caches: Vec<GpuBuffer> =
                [kw, vw, kw, vw].iter().map(|&w| g.ctx.alloc_f32("cache", n_ctx * w).unwrap()).collect();
            let mut ops = Vec::new();
            if with_norm {
                ops.push(g.ctx.prepare_head_norm(&q1, 0, &qn, n_head, m, 1e-6, &g.step).unwrap());
                ops.push(g.ctx.prepare_head_norm(&k1, 0, &kn, n_head_kv, m, 1e-6, &g.step).unwrap());
            }
            ops.push(g.ctx.prepare_rope(&q1, n_head, hd, &rope, ff, RopeAngles::Product, m, &g.step).unwrap());
            ops.push(g.ctx.prepare_rope(&k1, n_head_kv, hd, &rope, ff, RopeAngles::Product, m, &g.step).unwrap());
            ops.push(g.ctx.prepare_kv_store(&k1, &v1, &caches[0], &caches[1], kw, vw, m, &g.step).unwrap());
            let norms = with_norm.then_some(HeadNorms { q_norm: &qn, k_norm: &kn, eps: 1e-6 });
            let fused = g
                .ctx
                .prepare_qk_rope_store(
                    (&q2, &k2, &v2),
                    (&caches[2], &caches[3]),
                    shape,
                    &rope,
                    ff,
                    RopeAngles::Product,
                    norms,
                    m,
                    &g.step,
                )
                .unwrap();
            assert_eq!(fused.dispatches(), 1);
            let mut all: Vec<&GpuOp> = ops.iter().collect();
            all.push(&fused);
            g.run(&all, n, pos0);
            let pairs =
                [(&q1, &q2, n * qw), (&caches[0], &caches[2], n_ctx * kw), (&caches[1], &caches[3], n_ctx * vw)];
            for (what, (a, b, len)) in ["q", "k cache", "v cache"].iter().zip(pairs) {
                let (a, b) = (g.read(a, len), g.read(b, len));
                for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
                    let d = (x as f64 - y as f64).abs();
                    assert!(
                        d <= 2.0 * f32::EPSILON as f64 * x.abs().max(y.abs()) as f64,
                        "{what}[{i}] {n_head}/{n_head_kv} d={hd} pos0={pos0}: separate {x} vs fused {y}"
                    );
                    max_diff = max_diff.max(d);
                }
                if *what != "q" {
                    // Only this step's rows were written.
                    let w = if *what == "k cache" { kw } else { vw };
                    assert!(b[..pos0 * w].iter().chain(&b[(pos0 + n) * w..]).all(|&v| v == 0.0), "{what}");
                }
            }
        }
    }
    eprintln!("qk_rope_store: max |fused - separate| {max_diff:.2e}");
}

#[test]
fn matvec_add_equals_matvec_then_add() {
    // The residual fused into the projection: out += W x in one dispatch, against matvec into a
    // scratch buffer then `add` (the same f32 sum, then one rounded addition: equal).
    let Some(g) = Gpu::new(&GpuOptions::default()) else { return };
    let mut rng = Rng(31);
    for (ty, rows, cols) in [(GgmlType::Q4_K, 77, 512), (GgmlType::Q8_0, 130, 96), (GgmlType::F16, 65, 101)] {
        let row_bytes = ty.row_bytes(cols).unwrap();
        let mut bytes = vec![0u8; rows * row_bytes];
        for r in 0..rows {
            quant::quantize_row(ty, &rng.vec(cols, 1.0), &mut bytes[r * row_bytes..(r + 1) * row_bytes]).unwrap();
        }
        let w = g.ctx.upload_weight("wo", ty, rows, cols, &bytes).unwrap();
        let x = g.buf(&rng.vec(cols, 2.0));
        let resid = rng.vec(rows, 3.0);
        let (fused, plain, tmp) = (g.buf(&resid), g.buf(&resid), g.ctx.alloc_f32("tmp", rows).unwrap());
        let mv_add = g.ctx.prepare_matvec_add(&w, &x, 0, &fused, 0).unwrap();
        let mv = g.ctx.prepare_matvec(&w, &x, 0, &tmp, 0).unwrap();
        let add = g.ctx.prepare_add(&plain, 0, &tmp, 0, rows, 1, &g.step).unwrap();
        g.step.set(&g.ctx, 1, 0).unwrap();
        let mut enc = g.ctx.device().create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            mv_add.encode(&mut pass, 1);
            mv.encode(&mut pass, 1);
            add.encode(&mut pass, 1);
        }
        g.ctx.submit(enc);
        assert_eq!(g.read(&fused, rows), g.read(&plain, rows), "{ty}");
    }
}

#[test]
fn grid_wider_than_one_dimension() {
    // 70000 workgroups of 64 values: more than one grid dimension's 65535, so the dispatch is
    // 2-D and the kernel must stop at the tail.
    let Some(g) = Gpu::new(&GpuOptions::default()) else { return };
    let len = 70_000 * 64 - 5;
    let x: Vec<f32> = (0..len).map(|i| (i % 1000) as f32).collect();
    let y: Vec<f32> = (0..len + 5).map(|i| (i % 7) as f32).collect();
    let (xb, yb) = (g.buf(&x), g.buf(&y));
    let op = g.ctx.prepare_add(&xb, 0, &yb, 0, len, 1, &g.step).unwrap();
    g.run(&[&op], 1, 0);
    let got = g.read(&xb, len);
    assert!(got.iter().enumerate().all(|(i, &v)| v == x[i] + y[i]), "2-D grid add");
}

#[test]
fn bad_shapes_are_typed_errors() {
    let Some(g) = Gpu::new(&GpuOptions::default()) else { return };
    let x = g.ctx.alloc_f32("x", 64).unwrap();
    let y = g.ctx.alloc_f32("y", 64).unwrap();
    let shape = AttnShape::new(3, 2, 8, 8);
    assert!(
        g.ctx
            .prepare_attention(
                &x,
                &y,
                &g.ctx.alloc_f32("v", 64).unwrap(),
                &g.ctx.alloc_f32("o", 64).unwrap(),
                shape,
                1,
                &g.step
            )
            .is_err()
    );
    let wide = AttnShape::new(1, 1, 512, 512);
    let big = g.ctx.alloc_f32("big", 1024).unwrap();
    assert!(g.ctx.prepare_attention(&big, &x, &y, &g.ctx.alloc_f32("o", 1024).unwrap(), wide, 1, &g.step).is_err());
    let rope = RopeConfig::plain(RopeStyle::Normal, 9, 1e4);
    assert!(g.ctx.prepare_rope(&x, 1, 16, &rope, None, RopeAngles::Product, 1, &g.step).is_err());
    assert!(g.ctx.prepare_add(&x, 0, &x, 0, 8, 1, &g.step).is_err(), "aliasing");
    assert!(g.ctx.prepare_add(&x, 0, &y, 0, 65, 1, &g.step).is_err(), "too short");
    let q8 = g.ctx.upload_weight("n", GgmlType::Q8_0, 1, 32, &[0u8; 34]).unwrap();
    assert!(g.ctx.prepare_rms_norm(&x, 0, &q8, &y, 0, 1, 1e-5, &g.step).is_err(), "norm weights are F32");
    g.ctx.check().unwrap();
}
