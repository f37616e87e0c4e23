//! Quantized matrix multiplication the way ggml's CPU backend does it: each activation row is
//! quantized once to the weight type's `vec_dot_type`, then every weight row is dotted with it.

use crate::quant::{quantize_row_cpu, vec_dot, vec_dot_type, GgmlType};
use super::CpuWeight;
use rayon::prelude::*;

/// Rows handed to one thread at a time: big enough to amortise scheduling, small enough to
/// balance 2-16 threads on matrices of a few hundred rows.
const ROWS_PER_TASK: usize = 16;

pub struct QuantizedActs {
    pub bytes: Vec<u8>,
    pub row_bytes: usize,
}

/// Quantizes `n` rows of `cols` values for multiplication with weights of type `ty`.
pub fn quantize_acts(ty: GgmlType, x: &[f32], n: usize, cols: usize, acts: &mut QuantizedActs) {
    let vdt = vec_dot_type(ty);
    let row_bytes = vdt.row_bytes(cols).expect("weight rows are whole blocks, so activation rows are too");
    acts.row_bytes = row_bytes;
    acts.bytes.resize(n * row_bytes, 0);
    for t in 0..n {
        quantize_row_cpu(vdt, &x[t * cols..(t + 1) * cols], &mut acts.bytes[t * row_bytes..(t + 1) * row_bytes])
            .expect("lengths match by construction");
    }
}

/// out[t][r] = w[r] · acts[t] for t < n, splitting weight rows over the pool's threads.
pub fn matmul(pool: &rayon::ThreadPool, weight: &CpuWeight, acts: &QuantizedActs, n: usize, tmp: &mut Vec<f32>, out: &mut [f32]) {
    let (ty, w, rows, cols) = (weight.ty, &weight.bytes[..], weight.rows, weight.cols);
    let w_row_bytes = w.len() / rows;
    let run = |r0: usize, dst: &mut [f32]| {
        // dst holds out[t][r0..r0 + len] for each t, laid out [len][n] (transposed) to keep
        // each task's writes contiguous; scattered into `out` afterwards.
        let len = dst.len() / n;
        for i in 0..len {
            let wr = &w[(r0 + i) * w_row_bytes..(r0 + i + 1) * w_row_bytes];
            for t in 0..n {
                dst[i * n + t] = vec_dot(ty, cols, wr, &acts.bytes[t * acts.row_bytes..(t + 1) * acts.row_bytes]);
            }
        }
    };
    if n == 1 {
        // Decode: out is already [rows].
        if pool.current_num_threads() > 1 {
            pool.install(|| {
                out[..rows].par_chunks_mut(ROWS_PER_TASK).enumerate().for_each(|(c, dst)| run(c * ROWS_PER_TASK, dst))
            });
        } else {
            run(0, &mut out[..rows]);
        }
        return;
    }
    tmp.resize(rows * n, 0.0);
    pool.install(|| {
        tmp.par_chunks_mut(ROWS_PER_TASK * n).enumerate().for_each(|(c, dst)| run(c * ROWS_PER_TASK, dst))
    });
    for r in 0..rows {
        for t in 0..n {
            out[t * rows + r] = tmp[r * n + t];
        }
    }
}
