//! Time of each non-matvec GPU op at SmolLM2-135M's shape (hidden 576, 9 heads, 3 KV heads,
//! head_dim 64, FFN 1536, vocab 49152) on the adapter found (lavapipe here):
//! `cargo run --release --example gpu_ops_bench [-- REPS]` (default 50).
//!
//! Each op is recorded REPS times into one compute pass, submitted once and waited for; the
//! table gives the time per op for a decode step (1 token) at two positions and for a prefill
//! batch of 64 tokens.

use pocketllm::backend::gpu::{GpuContext, GpuOp, GpuOptions, RopeAngles, StepUniform};
use pocketllm::backend::{AttnShape, KvType};
use pocketllm::model::config::{RopeConfig, RopeStyle};
use pocketllm::quant::GgmlType;
use std::time::Instant;

const N_EMBD: usize = 576;
const N_HEAD: usize = 9;
const N_HEAD_KV: usize = 3;
const HEAD_DIM: usize = 64;
const N_FF: usize = 1536;
const N_VOCAB: usize = 49152;
const N_CTX: usize = 2048;
const MAX_TOKENS: usize = 64;

fn time_op(ctx: &GpuContext, step: &StepUniform, op: &GpuOp, n_tokens: usize, pos0: usize, reps: usize) -> f64 {
    step.set(ctx, n_tokens, pos0).unwrap();
    let run = |reps: usize| {
        let mut enc = ctx.device().create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for _ in 0..reps {
                op.encode(&mut pass, n_tokens);
            }
        }
        let t = Instant::now();
        ctx.submit(enc);
        ctx.wait().unwrap();
        t.elapsed().as_secs_f64()
    };
    run(1); // warm-up (pipeline and first use)
    run(reps) / reps as f64 * 1e3
}

fn main() {
    let reps = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(50usize).max(1);
    let ctx = match GpuContext::new_blocking(&GpuOptions::default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("no GPU adapter: {e}");
            std::process::exit(1);
        }
    };
    let info = ctx.adapter_info();
    println!("adapter: {} ({:?}, {:?}), {reps} ops per submit\n", info.name, info.backend, info.device_type);
    let step = ctx.alloc_step("step").unwrap();
    let f = |n: usize| ctx.alloc_f32("buf", n).unwrap();
    let (x, xb) = (f(MAX_TOKENS * N_EMBD), f(MAX_TOKENS * N_EMBD));
    let (q, k, v) =
        (f(MAX_TOKENS * N_HEAD * HEAD_DIM), f(MAX_TOKENS * N_HEAD_KV * HEAD_DIM), f(MAX_TOKENS * N_HEAD_KV * HEAD_DIM));
    let (kc, vc) = (f(N_CTX * N_HEAD_KV * HEAD_DIM), f(N_CTX * N_HEAD_KV * HEAD_DIM));
    let attn = f(MAX_TOKENS * N_HEAD * HEAD_DIM);
    let (hb, hb2) = (f(MAX_TOKENS * N_FF), f(MAX_TOKENS * N_FF));
    let logits = f(N_VOCAB);
    let token = f(1);
    let candidates = f(2 * 64);
    let ids = f(MAX_TOKENS);
    let norm_bytes: Vec<u8> = (0..N_EMBD).flat_map(|_| 1f32.to_le_bytes()).collect();
    let norm = ctx.upload_weight("attn_norm", GgmlType::F32, 1, N_EMBD, &norm_bytes).unwrap();
    let row_bytes = GgmlType::Q8_0.row_bytes(N_EMBD).unwrap();
    let table =
        ctx.upload_weight("tok_embd", GgmlType::Q8_0, N_VOCAB, N_EMBD, &vec![0u8; N_VOCAB * row_bytes]).unwrap();
    let rope = RopeConfig::plain(RopeStyle::Normal, HEAD_DIM, 10000.0);
    let shape = AttnShape::new(N_HEAD, N_HEAD_KV, HEAD_DIM, HEAD_DIM);
    let (kw, m) = (N_HEAD_KV * HEAD_DIM, MAX_TOKENS);
    let mut ops: Vec<(&str, GpuOp)> = vec![
        ("embed (Q8_0)", ctx.prepare_embed(&table, &ids, 1.0, &x, 0, m, &step).unwrap()),
        ("rms_norm 576", ctx.prepare_rms_norm(&x, 0, &norm, &xb, 0, m, 1e-5, &step).unwrap()),
        (
            "rope q (9 heads)",
            ctx.prepare_rope(&q, N_HEAD, HEAD_DIM, &rope, None, RopeAngles::Product, m, &step).unwrap(),
        ),
        (
            "rope k (3 heads)",
            ctx.prepare_rope(&k, N_HEAD_KV, HEAD_DIM, &rope, None, RopeAngles::Product, m, &step).unwrap(),
        ),
        ("kv_store", ctx.prepare_kv_store(&k, &v, &kc, &vc, kw, kw, m, &step).unwrap()),
        ("attention", ctx.prepare_attention(&q, &kc, &vc, &attn, shape, m, &step).unwrap()),
        (
            "qk_rope_store (fused rope q, k + kv_store)",
            ctx.prepare_qk_rope_store(
                (&q, &k, &v),
                (&kc, &vc),
                shape,
                &rope,
                None,
                RopeAngles::Product,
                None,
                m,
                &step,
            )
            .unwrap(),
        ),
        ("add 576", ctx.prepare_add(&x, 0, &xb, 0, N_EMBD, m, &step).unwrap()),
        ("swiglu 1536", ctx.prepare_swiglu(&hb, 0, &hb2, 0, N_FF, m, &step).unwrap()),
        ("argmax 49152", ctx.prepare_argmax(&logits, 0, N_VOCAB, &token).unwrap()),
        ("top_k 64 of 49152", ctx.prepare_top_k(&logits, 0, N_VOCAB, 64, &candidates).unwrap()),
    ];
    // The same cache ops over an f16 cache (what a device with shader-f16 gets by default).
    let kv_f16 = ctx.features().contains(wgpu::Features::SHADER_F16).then(|| {
        let h = |what| ctx.alloc_values(what, N_CTX * N_HEAD_KV * HEAD_DIM, KvType::F16).unwrap();
        (h("kc16"), h("vc16"))
    });
    if let Some((kc, vc)) = &kv_f16 {
        ops.push(("kv_store, f16 cache", ctx.prepare_kv_store(&k, &v, kc, vc, kw, kw, m, &step).unwrap()));
        ops.push(("attention, f16 cache", ctx.prepare_attention(&q, kc, vc, &attn, shape, m, &step).unwrap()));
    } else {
        println!("(no shader-f16 on this adapter: no f16 cache rows)\n");
    }
    println!("| op | decode, pos 127 (ms) | decode, pos 1023 (ms) | prefill 64 tokens at pos 0 (ms) |");
    println!("| --- | --- | --- | --- |");
    for (name, op) in &ops {
        let a = time_op(&ctx, &step, op, 1, 127, reps);
        let b = time_op(&ctx, &step, op, 1, 1023, reps);
        let c = time_op(&ctx, &step, op, 64, 0, reps);
        println!("| {name} | {a:.4} | {b:.4} | {c:.4} |");
    }
}
