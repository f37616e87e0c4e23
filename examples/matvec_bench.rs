//! Matrix-vector throughput on a model-sized matrix (49152 x 576, SmolLM2-135M's output head),
//! `quant::matvec` (multi-row kernels) vs `vec_dot` row by row:
//! `cargo run --release --example matvec_bench`.

use pocketllm::quant::{GgmlType, matvec, quantize_row, vec_dot, vec_dot_type};
use std::time::Instant;

/// One decode step's matrix-vector products over SmolLM2-135M's 30 layers of separately
/// allocated weights (as a loaded model holds them).
fn layers(ty: GgmlType, rnd: &mut dyn FnMut() -> f32) {
    let shapes = [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)];
    let mut mats = Vec::new();
    for _ in 0..30 {
        for &(rows, n) in &shapes {
            let x: Vec<f32> = (0..rows * n).map(|_| rnd()).collect();
            let mut w = vec![0u8; ty.row_bytes(rows * n).unwrap()];
            quantize_row(ty, &x, &mut w).unwrap();
            mats.push((rows, n, w));
        }
    }
    let acts: Vec<Vec<u8>> = [576usize, 1536]
        .iter()
        .map(|&n| {
            let x: Vec<f32> = (0..n).map(|_| rnd()).collect();
            let at = vec_dot_type(ty);
            let mut a = vec![0u8; at.row_bytes(n).unwrap()];
            quantize_row(at, &x, &mut a).unwrap();
            a
        })
        .collect();
    let mut out = vec![0f32; 1536];
    let bytes: usize = mats.iter().map(|m| m.2.len()).sum();
    let reps = 20;
    let t = Instant::now();
    for _ in 0..reps {
        for (rows, n, w) in &mats {
            matvec(ty, *n, w, &acts[(*n == 1536) as usize], &mut out[..*rows]);
        }
    }
    let dt = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "{ty} 30 layers ({:.1} MB): {:.2} ms per step ({:.1} GB/s)",
        bytes as f64 / 1e6,
        dt * 1e3,
        bytes as f64 / dt / 1e9
    );
}

fn main() {
    let (rows, n) = (49152, 576);
    let mut seed = 7u64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let x: Vec<f32> = (0..n * rows).map(|_| rnd()).collect();
    let act: Vec<f32> = (0..n).map(|_| rnd()).collect();
    layers(GgmlType::Q4_0, &mut rnd);
    layers(GgmlType::Q8_0, &mut rnd);
    for ty in [GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::F16] {
        let Some(rb) = ty.row_bytes(n) else { continue };
        let mut w = vec![0u8; rb * rows];
        quantize_row(ty, &x, &mut w).unwrap();
        let at = vec_dot_type(ty);
        let mut a = vec![0u8; at.row_bytes(n).unwrap()];
        quantize_row(at, &act, &mut a).unwrap();
        let mut out = vec![0f32; rows];
        let reps = 20;
        let time = |f: &mut dyn FnMut()| {
            f();
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() / reps as f64
        };
        let multi = time(&mut || matvec(ty, n, &w, &a, &mut out));
        let single = time(&mut || {
            for (r, o) in out.iter_mut().enumerate() {
                *o = vec_dot(ty, n, &w[r * rb..(r + 1) * rb], &a);
            }
        });
        let gb = w.len() as f64 / 1e9;
        println!(
            "{ty:>5} {rows}x{n}: matvec {:.2} ms ({:.1} GB/s), vec_dot per row {:.2} ms ({:.1} GB/s)",
            multi * 1e3,
            gb / multi,
            single * 1e3,
            gb / single
        );
    }
}
