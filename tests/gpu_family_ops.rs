//! The GPU ops the Gemma, Phi-3 and long-context families added, against the CPU backend:
//! scaled embeddings, RMS norm added to the residual, GeGLU and soft-capping (element-wise),
//! attention with a sliding window over a ring cache and soft-capped scores, and rope with YaRN,
//! LongRoPE factors and partial rotary through the fused qk_rope_store. Shapes are not multiples
//! of the workgroup (64); positions run past the ring so it wraps. Runs on any adapter (lavapipe
//! in CI); without one it prints SKIPPED, and fails under `CI=true`.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::ops::{Gpu, Rng, U, Worst, compare, cpu, f32_bytes};
use pocketllm::backend::gpu::{GpuOptions, RopeAngles};
use pocketllm::backend::{Activation, AttnShape, Backend, KvType};
use pocketllm::model::config::{RopeConfig, RopeScaling, RopeStyle};
use pocketllm::quant::GgmlType;

/// Attention outputs: both sides sum at most 64-dimensional f32 dots and softmax-weighted sums
/// over at most window positions in different orders (and WGSL's exp and tanh are allowed a
/// few ulp more than libm's): measured below 2e-6 on values under 1. A wrong window, ring slot
/// or cap moves outputs by ~1e-1.
const ATTENTION_ABS: f64 = 2e-5;

/// Rotated values at positions below 200: the angles are the CPU's f32 angles bit for bit
/// (RopeAngles::Product), YaRN's mix adds three roundings, the range reduction and cos/sin a
/// few 1e-7 rad, the magnitude factor one rounding: 1e-6 of the pair's magnitude.
const ROPE_REL: f64 = 1e-6;

#[test]
fn embed_scales_its_rows() {
    let Some(g) = Gpu::new(&GpuOptions::default()) else { return };
    let (rows, cols) = (9, 64);
    let mut rng = Rng(3);
    let table: Vec<f32> = rng.vec(rows * cols, 1.0);
    let w = g.ctx.upload_weight("t", GgmlType::F32, rows, cols, &f32_bytes(&table)).unwrap();
    let ids = [4u32, 0, 8];
    let idb = g.ctx.alloc_f32("ids", 3).unwrap();
    g.ctx.write_u32(&idb, 0, &ids).unwrap();
    let out = g.ctx.alloc_f32("out", 3 * cols).unwrap();
    let scale = (cols as f32).sqrt();
    let op = g.ctx.prepare_embed(&w, &idb, scale, &out, 0, 3, &g.step).unwrap();
    g.run(&[&op], 3, 0);
    let mut c = cpu();
    let cw = c.upload_weight("t", GgmlType::F32, rows, cols, &f32_bytes(&table)).unwrap();
    let mut want = vec![0f32; 3 * cols];
    c.embed(&cw, &ids, scale, &mut want);
    // One f32 product on both sides: equal.
    assert_eq!(g.read(&out, 3 * cols), want);
    assert_eq!(want[0], table[4 * cols] * scale);
}

#[test]
fn rms_norm_add_geglu_and_softcap_match_the_cpu() {
    let Some(g) = Gpu::new(&GpuOptions::default()) else { return };
    let mut rng = Rng(7);
    let mut worst = Worst::default();
    for (width, n) in [(67, 1), (256, 3), (640, 5)] {
        let len = width * n;
        // x += rms_norm(y) * w: the norm's bound (tests/gpu_ops.rs) plus one addition.
        let (x, y, wv) = (rng.vec(len, 3.0), rng.vec(len, 2.0), rng.vec(width, 1.5));
        let (xb, yb) = (g.buf(&x), g.buf(&y));
        let w = g.ctx.upload_weight("post_norm", GgmlType::F32, 1, width, &f32_bytes(&wv)).unwrap();
        let op = g.ctx.prepare_rms_norm_add(&yb, 0, &w, &xb, 0, n, 1e-6, &g.step).unwrap();
        g.run(&[&op], n, 0);
        let mut c = cpu();
        let cw = c.upload_weight("post_norm", GgmlType::F32, 1, width, &f32_bytes(&wv)).unwrap();
        let mut want = x.clone();
        c.rms_norm_add(&y, &cw, n, 1e-6, &mut want);
        let ulps = (width.div_ceil(64) + 22) as f64;
        compare(
            &format!("rms_norm_add w={width}"),
            &g.read(&xb, len),
            &want,
            |i| ulps * U * (want[i] - x[i]).abs() as f64 + 2.0 * U * want[i].abs() as f64,
            &mut worst,
        );

        // gelu(gate) * up through the f16 table on both sides: a gate rounds to the same f16
        // (it is the same f32), so only tanh differs: by an f16 rounding flip of gelu (2^-10 of
        // it), or where 1 + tanh cancels (very negative gates) by tanh's absolute error, which
        // WGSL leaves to the implementation (lavapipe: ~1e-7), times |gate| / 2.
        let gate: Vec<f32> =
            rng.vec(len, 6.0).into_iter().enumerate().map(|(i, v)| if i % 9 == 0 { v * 3.0 } else { v }).collect();
        let up = rng.vec(len, 2.0);
        let (gb, ub) = (g.buf(&gate), g.buf(&up));
        let op = g.ctx.prepare_glu(Activation::GeluTanh, &gb, 0, &ub, 0, width, n, &g.step).unwrap();
        g.run(&[&op], n, 0);
        let mut want = gate.clone();
        c.glu(&mut want, &up, len, Activation::GeluTanh);
        compare(
            &format!("geglu w={width}"),
            &g.read(&gb, len),
            &want,
            |i| want[i].abs() as f64 / 1024.0 + 1e-6 * (gate[i] * up[i]).abs() as f64,
            &mut worst,
        );

        // cap * tanh(x / cap): tanh's few ulp and two products.
        let logits = rng.vec(len, 60.0);
        let lb = g.buf(&logits);
        let op = g.ctx.prepare_softcap(&lb, 0, width, 30.0, n, &g.step).unwrap();
        g.run(&[&op], n, 0);
        let mut want = logits.clone();
        c.softcap(&mut want, len, 30.0);
        compare(&format!("softcap w={width}"), &g.read(&lb, len), &want, |_| 30.0 * 8.0 * U, &mut worst);
        assert!(want.iter().all(|v| v.abs() <= 30.0));
    }
    eprintln!("rms_norm_add, geglu, softcap: max |gpu - cpu| {:.2e} ({:.3} of the bound)", worst.abs, worst.ratio);
    assert!(g.ctx.prepare_softcap(&g.buf(&[1.0]), 0, 1, 0.0, 1, &g.step).is_err(), "cap 0");
}

/// One sliding-window layer through steps that wrap its ring cache (window + largest step - 1
/// positions), with soft-capped scores, on both backends.
#[test]
fn windowed_soft_capped_attention_over_a_ring_matches_the_cpu() {
    let Some(g) = Gpu::new(&GpuOptions::default()) else { return };
    let mut worst = Worst::default();
    for (window, softcap, kv) in [(5, None, KvType::F32), (7, Some(1.5), KvType::F32), (16, Some(50.0), KvType::F32)] {
        let (n_head, n_head_kv, hd) = (4, 2, 72);
        let steps = [3usize, 1, 1, 4, 1, 2, 4, 1, 1, 1, 4, 3, 4, 4, 1, 4, 2];
        let max_tokens = *steps.iter().max().unwrap();
        let ring = window + max_tokens - 1;
        assert!(steps.iter().sum::<usize>() > ring + window, "the ring must wrap");
        let shape = AttnShape { softcap, window: Some(window), ..AttnShape::new(n_head, n_head_kv, hd, hd) };
        let (qw, kw) = (n_head * hd, n_head_kv * hd);
        let mut c = cpu();
        let mut cache = c.alloc_kv(&[ring], kw, kw, kv).unwrap();
        let (qb, kb, vb) = (
            g.ctx.alloc_f32("q", max_tokens * qw).unwrap(),
            g.ctx.alloc_f32("k", max_tokens * kw).unwrap(),
            g.ctx.alloc_f32("v", max_tokens * kw).unwrap(),
        );
        let (kc, vc) =
            (g.ctx.alloc_values("kc", ring * kw, kv).unwrap(), g.ctx.alloc_values("vc", ring * kw, kv).unwrap());
        let out = g.ctx.alloc_f32("attn", max_tokens * qw).unwrap();
        let store = g.ctx.prepare_kv_store(&kb, &vb, &kc, &vc, kw, kw, max_tokens, &g.step).unwrap();
        let attn = g.ctx.prepare_attention(&qb, &kc, &vc, &out, shape, max_tokens, &g.step).unwrap();
        let mut rng = Rng(window as u64 * 31 + 1);
        let mut pos = 0;
        for &n in &steps {
            let (q, k, v) = (rng.vec(n * qw, 1.5), rng.vec(n * kw, 1.5), rng.vec(n * kw, 1.0));
            g.ctx.write_f32(&qb, 0, &q).unwrap();
            g.ctx.write_f32(&kb, 0, &k).unwrap();
            g.ctx.write_f32(&vb, 0, &v).unwrap();
            g.run(&[&store, &attn], n, pos);
            let mut want = vec![0f32; n * qw];
            pocketllm::backend::cpu::store_kv(&k, &v, &mut cache, 0, n, pos);
            c.attention(&q, &cache, 0, shape, n, pos, &mut want);
            let what = format!("attention window {window} cap {softcap:?} n={n} pos0={pos}");
            compare(&what, &g.read(&out, n * qw), &want, |_| ATTENTION_ABS, &mut worst);
            pos += n;
        }
    }
    eprintln!("windowed attention: max |gpu - cpu| {:.2e}", worst.abs);
}

/// qk_rope_store with YaRN, LongRoPE-style factors, partial rotary and a ring cache, against
/// the CPU's rope and store.
#[test]
fn qk_rope_store_with_yarn_factors_and_partial_rotary_matches_the_cpu() {
    let Some(g) = Gpu::new(&GpuOptions::default()) else { return };
    let mut worst = Worst::default();
    let yarn = RopeScaling { freq_scale: 0.25, ext_factor: 1.0, attn_factor: 1.0, n_ctx_orig: 16 };
    let longrope = RopeScaling { freq_scale: 1.0, ext_factor: 0.0, attn_factor: 1.19, n_ctx_orig: 64 };
    for (scaling, n_rot, hd, with_ff) in [(yarn, 64, 64, false), (longrope, 48, 64, true), (yarn, 96, 128, true)] {
        let mut rope = scaling.rope(RopeStyle::Neox, n_rot, 1e6, scaling.freq_scale);
        if with_ff {
            rope.freq_factors = Some((0..n_rot / 2).map(|i| 1.0 + 0.5 * i as f32).collect());
        }
        let (n_head, n_head_kv, m) = (3, 1, 4);
        let (qw, kw, ring) = (n_head * hd, n_head_kv * hd, 9);
        let mut c = cpu();
        c.set_ropes(&[RopeConfig::plain(RopeStyle::Normal, 2, 1e4), rope.clone()]).unwrap();
        let shape = AttnShape { rope: 1, ..AttnShape::new(n_head, n_head_kv, hd, hd) };
        let ffb = rope.freq_factors.as_ref().map(|f| g.buf(f));
        let mut cache = c.alloc_kv(&[ring], kw, kw, KvType::F32).unwrap();
        let (kc, vc) = (g.ctx.alloc_f32("kc", ring * kw).unwrap(), g.ctx.alloc_f32("vc", ring * kw).unwrap());
        let mut rng = Rng(n_rot as u64);
        for (pos0, n) in [(0, 4), (4, 1), (5, 4), (9, 4), (150, 3)] {
            let (q, k, v) = (rng.vec(m * qw, 2.0), rng.vec(m * kw, 2.0), rng.vec(m * kw, 2.0));
            let (qb, kb, vb) = (g.buf(&q), g.buf(&k), g.buf(&v));
            let op = g
                .ctx
                .prepare_qk_rope_store(
                    (&qb, &kb, &vb),
                    (&kc, &vc),
                    shape,
                    &rope,
                    ffb.as_ref(),
                    RopeAngles::Product,
                    None,
                    m,
                    &g.step,
                )
                .unwrap();
            g.run(&[&op], n, pos0);
            let (mut wq, mut wk) = (q.clone(), k.clone());
            c.rope_store(&mut wq, &mut wk, &v, None, 1e-6, &mut cache, 0, shape, n, pos0);
            let mag =
                |x: &[f32], i: usize| x[i - i % hd..i - i % hd + hd].iter().fold(0f32, |a, &b| a.max(b.abs())) as f64;
            let bound = |x: &[f32], i: usize| 2.0 * ROPE_REL * rope.mscale as f64 * mag(x, i) + 1e-30;
            let what = format!("rope n_rot={n_rot} pos0={pos0}");
            compare(&format!("{what} q"), &g.read(&qb, n * qw), &wq[..n * qw], |i| bound(&q, i), &mut worst);
            // The ring rows this step wrote hold its rotated keys.
            let got_kc = g.read(&kc, ring * kw);
            for t in 0..n {
                let row = (pos0 + t) % ring;
                let want = &wk[t * kw..(t + 1) * kw];
                compare(
                    &format!("{what} k row {row}"),
                    &got_kc[row * kw..(row + 1) * kw],
                    want,
                    |i| bound(&k[t * kw..], i),
                    &mut worst,
                );
            }
        }
    }
    eprintln!("qk_rope_store (YaRN, factors, partial rotary, ring): max |gpu - cpu| {:.2e}", worst.abs);
}
