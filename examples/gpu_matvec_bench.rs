//! Decode matrix-vector and prefill matrix-matrix throughput per weight type on the GPU adapter
//! found (lavapipe here), next to the CPU backend's `quant::matvec` (one thread, activations
//! pre-quantized):
//! `cargo run --release --example gpu_matvec_bench [-- ROWS COLS REPS PREFILL] [TYPE...]`
//! (default 8192 2048 20 32, every type).
//!
//! GPU time is per product with REPS products recorded into one compute pass and one submit
//! (the way a decode step will run), measured from submit to the device going idle, for both
//! matvec variants, the best of BATCHES such submits (other processes on a shared machine only
//! ever slow a batch down, so the best is the steadiest figure); "submit latency" is one
//! product per submit and wait (the default variant), which is what a per-op design would pay.
//! Prefill: one `prepare_matmul` product over PREFILL tokens (the token-tiled kernel), per
//! token, for both variants; "x decode" is how much less a token costs than in a decode step
//! (default variant).

use pocketllm::backend::gpu::{
    GpuBuffer, GpuContext, GpuOptions, MatmulOut, MatvecOp, StepUniform, Variant, matvec_types,
};
use pocketllm::quant::{matvec, quantize_row, quantize_row_cpu, vec_dot_type};
use std::time::Instant;

/// Submits of REPS products timed per variant and type; the fastest is reported.
const BATCHES: usize = 3;

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    // Other arguments name the weight types to run (all when none), e.g. `q4_k q8_0`.
    let only: Vec<String> =
        std::env::args().skip(1).filter(|a| a.parse::<usize>().is_err()).map(|a| a.to_ascii_lowercase()).collect();
    let rows = args.first().copied().unwrap_or(8192);
    let cols = args.get(1).copied().unwrap_or(2048);
    let reps = args.get(2).copied().unwrap_or(20).max(1);
    let prefill = args.get(3).copied().unwrap_or(32).max(2);
    assert!(cols % 256 == 0, "COLS must be a multiple of 256 (K-quant blocks)");

    let ctxs: Vec<GpuContext> = [None, Some(Variant::Base), Some(Variant::RowPerInvocation)]
        .into_iter()
        .map(|v| match GpuContext::new_blocking(&GpuOptions { matvec_variant: v, ..Default::default() }) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("no GPU adapter: {e}");
                std::process::exit(1);
            }
        })
        .collect();
    let info = ctxs[0].adapter_info();
    println!("adapter: {} ({:?}, {:?}, {})", info.name, info.backend, info.device_type, info.driver_info);
    println!(
        "matrix {rows} x {cols}, {reps} products per submit, prefill of {prefill} tokens; default variant {:?}; \
         CPU: quant::matvec, 1 thread\n",
        ctxs[0].matvec_variant()
    );
    println!(
        "| type | MB | GPU Base GB/s | GPU RowPerInvocation GB/s | GPU default ms | submit+wait latency ms | \
         prefill Base ms/token | prefill RowPerInvocation ms/token | prefill x decode | CPU ms | CPU GB/s |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");

    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let x: Vec<f32> = (0..cols).map(|_| rnd()).collect();
    let bufs: Vec<(GpuBuffer, GpuBuffer)> = ctxs
        .iter()
        .map(|ctx| {
            let xb = ctx.alloc_f32("x", cols).unwrap();
            ctx.write_f32(&xb, 0, &x).unwrap();
            (xb, ctx.alloc_f32("out", rows).unwrap())
        })
        .collect();
    let xs: Vec<f32> = (0..prefill * cols).map(|_| rnd()).collect();
    let prefill_bufs: Vec<(GpuBuffer, GpuBuffer, StepUniform)> = ctxs
        .iter()
        .map(|ctx| {
            let xb = ctx.alloc_f32("xs", prefill * cols).unwrap();
            ctx.write_f32(&xb, 0, &xs).unwrap();
            let step = ctx.alloc_step("step").unwrap();
            step.set(ctx, prefill, 0).unwrap();
            (xb, ctx.alloc_f32("outs", prefill * rows).unwrap(), step)
        })
        .collect();

    for &ty in matvec_types() {
        if !only.is_empty() && !only.contains(&ty.name().to_ascii_lowercase()) {
            continue;
        }
        let row_bytes = ty.row_bytes(cols).unwrap();
        let mut w = vec![0u8; rows * row_bytes];
        let src: Vec<f32> = (0..cols).map(|_| rnd()).collect();
        for r in 0..rows {
            // Different rows without generating rows*cols random numbers per type.
            let s = 1.0 + (r % 7) as f32;
            let row: Vec<f32> = src.iter().map(|v| v * s).collect();
            quantize_row(ty, &row, &mut w[r * row_bytes..(r + 1) * row_bytes]).unwrap();
        }
        let mb = w.len() as f64 / 1e6;

        let mut gpu = Vec::new();
        let mut per_token = Vec::new();
        let mut latency = 0.0;
        for (ctx, ((xb, ob), (xs, os, step))) in ctxs.iter().zip(bufs.iter().zip(&prefill_bufs)) {
            let gw = ctx.upload_weight("w", ty, rows, cols, &w).unwrap();
            let op = ctx.prepare_matvec(&gw, xb, 0, ob, 0).unwrap();
            let mm = ctx.prepare_matmul(&gw, xs, MatmulOut::Store(os), prefill, step).unwrap();
            // `n` products of `op` for `tokens` tokens in one submit; the best of BATCHES, per product.
            let time = |op: &MatvecOp, n: usize, tokens: usize| {
                let run = |n: usize| {
                    let mut enc = ctx.device().create_command_encoder(&Default::default());
                    {
                        let mut pass = enc.begin_compute_pass(&Default::default());
                        for _ in 0..n {
                            op.encode(&mut pass, tokens);
                        }
                    }
                    ctx.submit(enc);
                    ctx.wait().unwrap();
                };
                run(1); // compile, warm up
                let best = (0..BATCHES)
                    .map(|_| {
                        let t = Instant::now();
                        run(n);
                        t.elapsed().as_secs_f64()
                    })
                    .fold(f64::INFINITY, f64::min);
                best / n as f64
            };
            gpu.push(time(&op, reps, 1));
            per_token.push(time(&mm, reps.div_ceil(10), prefill) / prefill as f64);
            if gpu.len() == 1 {
                let run = |n: usize| {
                    let mut enc = ctx.device().create_command_encoder(&Default::default());
                    {
                        let mut pass = enc.begin_compute_pass(&Default::default());
                        for _ in 0..n {
                            op.encode(&mut pass, 1);
                        }
                    }
                    ctx.submit(enc);
                    ctx.wait().unwrap();
                };
                let t = Instant::now();
                for _ in 0..reps.min(5) {
                    run(1);
                }
                latency = t.elapsed().as_secs_f64() / reps.min(5) as f64;
            }
        }

        let at = vec_dot_type(ty);
        let mut act = vec![0u8; at.row_bytes(cols).unwrap()];
        quantize_row_cpu(at, &x, &mut act).unwrap();
        let mut out = vec![0f32; rows];
        matvec(ty, cols, &w, &act, &mut out);
        let t = Instant::now();
        for _ in 0..reps {
            matvec(ty, cols, &w, &act, &mut out);
        }
        let cpu = t.elapsed().as_secs_f64() / reps as f64;
        let gbs = |t: f64| w.len() as f64 / t / 1e9;
        println!(
            "| {} | {mb:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2} |",
            ty,
            gbs(gpu[1]),
            gbs(gpu[2]),
            gpu[0] * 1e3,
            latency * 1e3,
            per_token[1] * 1e3,
            per_token[2] * 1e3,
            gpu[0] / per_token[0],
            cpu * 1e3,
            w.len() as f64 / cpu / 1e9
        );
    }
}
