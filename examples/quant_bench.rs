//! Prints vec_dot throughput per weight type (weights GB/s, ns per 4096-value row), fast kernel vs
//! scalar twin: `cargo run --release --example quant_bench`.

use pocketllm::quant::{GgmlType, quantize_row, vec_dot, vec_dot_portable, vec_dot_scalar, vec_dot_type};
use std::time::Instant;

fn main() {
    let n = 4096;
    let rows = 256;
    let mut seed = 1u64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let x: Vec<f32> = (0..n * rows).map(|_| rnd()).collect();
    let act: Vec<f32> = (0..n).map(|_| rnd()).collect();
    use GgmlType::*;
    for ty in [F16, BF16, Q4_0, Q8_0, Q4_K, Q6_K] {
        let mut q = vec![0u8; ty.row_bytes(n * rows).unwrap()];
        quantize_row(ty, &x, &mut q).unwrap();
        let mut y = vec![0f32; n * rows];
        let t = Instant::now();
        for _ in 0..5 {
            pocketllm::quant::dequantize_row(ty, &q, &mut y).unwrap();
        }
        let dt = t.elapsed().as_secs_f64() / 5.0;
        println!("{ty:>5} dequantize {:6.2} Gvalues/s", (n * rows) as f64 / dt / 1e9);
    }
    for ty in [F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K] {
        let rb = ty.row_bytes(n).unwrap();
        let mut w = vec![0u8; rb * rows];
        quantize_row(ty, &x, &mut w).unwrap();
        let at = vec_dot_type(ty);
        let mut a = vec![0u8; at.row_bytes(n).unwrap()];
        quantize_row(at, &act, &mut a).unwrap();
        let report = |label: &str, f: &dyn Fn(&[u8]) -> f32| {
            let reps = 20;
            let t = Instant::now();
            let mut s = 0f32;
            for _ in 0..reps {
                for r in w.chunks_exact(rb) {
                    s += f(r);
                }
            }
            let dt = t.elapsed().as_secs_f64();
            let calls = (reps * rows) as f64;
            println!(
                "{ty:>5} {label:<6} {:8.1} ns/row {:6.2} GB/s  (checksum {s:.3})",
                dt / calls * 1e9,
                (rb as f64 * calls) / dt / 1e9
            );
        };
        report("fast", &|r| vec_dot(ty, n, r, &a));
        report("sse2", &|r| vec_dot_portable(ty, n, r, &a));
        report("scalar", &|r| vec_dot_scalar(ty, n, r, &a));
    }
}
