//! Quantized matrix multiplication the way ggml's CPU backend does it: each activation row is
//! quantized once to the weight type's `vec_dot_type`, then every weight row is dotted with it.

use super::CpuWeight;
use crate::quant::{GgmlType, matvec, quantize_row_cpu, vec_dot_type};
use rayon::prelude::*;

/// Rows per task during prompt processing: a chunk's weights (16 rows) stay in L1 while every
/// token of the batch passes over them.
const ROWS_PER_TASK: usize = 16;
/// Tasks per thread for one decode matrix-vector product: each task costs a few microseconds of
/// scheduling, so a decode step (7 matmuls per layer) uses few, large ones.
const DECODE_TASKS_PER_THREAD: usize = 2;

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
pub fn matmul(
    pool: &rayon::ThreadPool,
    weight: &CpuWeight,
    acts: &QuantizedActs,
    n: usize,
    tmp: &mut Vec<f32>,
    out: &mut [f32],
) {
    let (ty, w, rows, cols) = (weight.ty, &weight.bytes[..], weight.rows, weight.cols);
    let w_row_bytes = w.len() / rows;
    let act = |t: usize| &acts.bytes[t * acts.row_bytes..(t + 1) * acts.row_bytes];
    // Rows r0.. of every token: dst is laid out [n][len] so the chunk's weights stay in cache
    // while each token's activation streams past them.
    let run = |r0: usize, dst: &mut [f32]| {
        let len = dst.len() / n;
        let wr = &w[r0 * w_row_bytes..(r0 + len) * w_row_bytes];
        for t in 0..n {
            matvec(ty, cols, wr, act(t), &mut dst[t * len..(t + 1) * len]);
        }
    };
    if n == 1 {
        // Decode: out is already [rows].
        let threads = pool.current_num_threads();
        if threads > 1 {
            // Multiples of 4 rows keep the 4-row kernels on their fast path.
            let per_task = rows.div_ceil(threads * DECODE_TASKS_PER_THREAD).next_multiple_of(4);
            pool.install(|| {
                out[..rows].par_chunks_mut(per_task).enumerate().for_each(|(c, dst)| run(c * per_task, dst))
            });
        } else {
            run(0, &mut out[..rows]);
        }
        return;
    }
    tmp.resize(rows * n, 0.0);
    pool.install(|| tmp.par_chunks_mut(ROWS_PER_TASK * n).enumerate().for_each(|(c, dst)| run(c * ROWS_PER_TASK, dst)));
    for (c, chunk) in tmp.chunks(ROWS_PER_TASK * n).enumerate() {
        let len = chunk.len() / n;
        for t in 0..n {
            let r0 = t * rows + c * ROWS_PER_TASK;
            out[r0..r0 + len].copy_from_slice(&chunk[t * len..(t + 1) * len]);
        }
    }
}
