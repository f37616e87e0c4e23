//! K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) dequantization, Q8_K (their activation type), and the
//! per-value accessors the scalar dot twins use. Dequantization follows ggml's
//! `dequantize_row_q*_K` operation for operation, so results are bit-identical.
//! The weight quantizers are in `kquants_ref.rs`, the dot products in `kquants_dot.rs`.

use super::blocks::*;
use super::types::QK_K;

/// ggml's `nearest_int`: round to nearest, ties to even, by adding 1.5 * 2^23 (valid for
/// |x| <= 2^22, which every caller guarantees).
#[inline(always)]
pub fn nearest_int(x: f32) -> i32 {
    let v = x + 12582912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// ggml's `get_scale_min_k4`: 6-bit scale and min of sub-block `j` (0..8) of Q4_K / Q5_K.
#[inline(always)]
pub fn scale_min_k4(j: usize, q: &[u8; K_SCALE_SIZE]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// The 16 signed 6-bit scales of a Q3_K block (already minus 32).
#[inline(always)]
pub fn q3k_scales(s: &[u8; 12]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (j, o) in out.iter_mut().enumerate() {
        let low = if j < 8 { s[j] & 0xf } else { s[j - 8] >> 4 };
        let high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        *o = (low | (high << 4)) as i8 - 32;
    }
    out
}

pub fn dequantize_q2_k(src: &[BlockQ2_K], dst: &mut [f32]) {
    for (b, y) in src.iter().zip(dst.chunks_exact_mut(QK_K)) {
        let (d, min) = (f16_le(b.d), f16_le(b.dmin));
        for h in 0..2 {
            for j in 0..4 {
                for half in 0..2 {
                    let sc = b.scales[8 * h + 2 * j + half];
                    let dl = d * (sc & 0xf) as f32;
                    let ml = min * (sc >> 4) as f32;
                    for l in 16 * half..16 * half + 16 {
                        let q = (b.qs[32 * h + l] >> (2 * j)) & 3;
                        y[128 * h + 32 * j + l] = dl * q as f32 - ml;
                    }
                }
            }
        }
    }
}

pub fn dequantize_q3_k(src: &[BlockQ3_K], dst: &mut [f32]) {
    for (b, y) in src.iter().zip(dst.chunks_exact_mut(QK_K)) {
        let d_all = f16_le(b.d);
        let scales = q3k_scales(&b.scales);
        for h in 0..2 {
            for j in 0..4 {
                let m = 1u8 << (4 * h + j);
                for half in 0..2 {
                    let dl = d_all * scales[8 * h + 2 * j + half] as f32;
                    for l in 16 * half..16 * half + 16 {
                        let low = ((b.qs[32 * h + l] >> (2 * j)) & 3) as i8;
                        let q = low - if b.hmask[l] & m != 0 { 0 } else { 4 };
                        y[128 * h + 32 * j + l] = dl * q as f32;
                    }
                }
            }
        }
    }
}

pub fn dequantize_q4_k(src: &[BlockQ4_K], dst: &mut [f32]) {
    for (b, y) in src.iter().zip(dst.chunks_exact_mut(QK_K)) {
        let (d, min) = (f16_le(b.d), f16_le(b.dmin));
        for c in 0..4 {
            let (sc1, m1) = scale_min_k4(2 * c, &b.scales);
            let (sc2, m2) = scale_min_k4(2 * c + 1, &b.scales);
            let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
            let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
            let q = &b.qs[32 * c..32 * c + 32];
            for l in 0..32 {
                y[64 * c + l] = d1 * (q[l] & 0xf) as f32 - m1;
                y[64 * c + 32 + l] = d2 * (q[l] >> 4) as f32 - m2;
            }
        }
    }
}

pub fn dequantize_q5_k(src: &[BlockQ5_K], dst: &mut [f32]) {
    for (b, y) in src.iter().zip(dst.chunks_exact_mut(QK_K)) {
        let (d, min) = (f16_le(b.d), f16_le(b.dmin));
        for c in 0..4 {
            let (sc1, m1) = scale_min_k4(2 * c, &b.scales);
            let (sc2, m2) = scale_min_k4(2 * c + 1, &b.scales);
            let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
            let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
            let (u1, u2) = (1u8 << (2 * c), 2u8 << (2 * c));
            let ql = &b.qs[32 * c..32 * c + 32];
            for l in 0..32 {
                let h1 = if b.qh[l] & u1 != 0 { 16 } else { 0 };
                let h2 = if b.qh[l] & u2 != 0 { 16 } else { 0 };
                y[64 * c + l] = d1 * ((ql[l] & 0xf) + h1) as f32 - m1;
                y[64 * c + 32 + l] = d2 * ((ql[l] >> 4) + h2) as f32 - m2;
            }
        }
    }
}

pub fn dequantize_q6_k(src: &[BlockQ6_K], dst: &mut [f32]) {
    for (b, y) in src.iter().zip(dst.chunks_exact_mut(QK_K)) {
        let d = f16_le(b.d);
        for h in 0..2 {
            let ql = &b.ql[64 * h..64 * h + 64];
            let qh = &b.qh[32 * h..32 * h + 32];
            let sc = &b.scales[8 * h..8 * h + 8];
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0xf) | ((qh[l] & 3) << 4)) as i8 - 32;
                let q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
                let y = &mut y[128 * h..128 * h + 128];
                y[l] = d * sc[is] as f32 * q1 as f32;
                y[l + 32] = d * sc[is + 2] as f32 * q2 as f32;
                y[l + 64] = d * sc[is + 4] as f32 * q3 as f32;
                y[l + 96] = d * sc[is + 6] as f32 * q4 as f32;
            }
        }
    }
}

pub fn dequantize_q8_k(src: &[BlockQ8_K], dst: &mut [f32]) {
    for (b, y) in src.iter().zip(dst.chunks_exact_mut(QK_K)) {
        let d = b.d();
        for j in 0..QK_K {
            y[j] = d * b.qs[j] as f32;
        }
    }
}

/// quantize_row_q8_K_ref: `iscale = -127/max` (max = the value of largest magnitude),
/// `q = nearest_int(iscale * x)`, `d = 1/iscale`, plus sums of each 16 values. (ggml leaves
/// `bsums` untouched for an all-zero block; here they are zeroed.) ggml-cpu uses this reference
/// for Q8_K activations on every architecture, x86 included.
pub fn quantize_q8_k(src: &[f32], dst: &mut [BlockQ8_K]) {
    for (x, b) in src.chunks_exact(QK_K).zip(dst.iter_mut()) {
        let (mut max, mut amax) = (0f32, 0f32);
        for &v in x {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            *b = BlockQ8_K::zeroed();
            continue;
        }
        let iscale = -127.0 / max;
        for (q, &v) in b.qs.iter_mut().zip(x) {
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        for j in 0..QK_K / 16 {
            let sum: i32 = b.qs[16 * j..16 * j + 16].iter().map(|&q| q as i32).sum();
            b.bsums[j] = (sum as i16).to_le_bytes();
        }
        b.d = (1.0 / iscale).to_le_bytes();
    }
}

use bytemuck::Zeroable;

// ---- per-value accessors for the scalar twins: value i (0..256) as (quant, scale, min) ----

/// Q2_K value `i`: 2-bit quant, 4-bit scale, 4-bit min.
pub fn q2k_at(b: &BlockQ2_K, i: usize) -> (i32, i32, i32) {
    let (h, j, l) = (i / 128, (i % 128) / 32, i % 32);
    let q = (b.qs[32 * h + l] >> (2 * j)) & 3;
    let sc = b.scales[i / 16];
    (q as i32, (sc & 0xf) as i32, (sc >> 4) as i32)
}

/// Q3_K value `i`: signed 3-bit quant and signed scale.
pub fn q3k_at(b: &BlockQ3_K, i: usize) -> (i32, i32) {
    let (h, j, l) = (i / 128, (i % 128) / 32, i % 32);
    let low = ((b.qs[32 * h + l] >> (2 * j)) & 3) as i32;
    let high = (b.hmask[l] >> (4 * h + j)) & 1;
    (low - if high == 1 { 0 } else { 4 }, q3k_scales(&b.scales)[i / 16] as i32)
}

/// Q4_K value `i`: 4-bit quant, 6-bit scale, 6-bit min.
pub fn q4k_at(b: &BlockQ4_K, i: usize) -> (i32, i32, i32) {
    let (c, upper, l) = (i / 64, (i % 64) / 32, i % 32);
    let byte = b.qs[32 * c + l];
    let q = if upper == 1 { byte >> 4 } else { byte & 0xf };
    let (sc, m) = scale_min_k4(i / 32, &b.scales);
    (q as i32, sc as i32, m as i32)
}

/// Q5_K value `i`: 5-bit quant, 6-bit scale, 6-bit min.
pub fn q5k_at(b: &BlockQ5_K, i: usize) -> (i32, i32, i32) {
    let (c, upper, l) = (i / 64, (i % 64) / 32, i % 32);
    let byte = b.qs[32 * c + l];
    let low = if upper == 1 { byte >> 4 } else { byte & 0xf };
    let high = (b.qh[l] >> (i / 32)) & 1;
    let (sc, m) = scale_min_k4(i / 32, &b.scales);
    ((low + 16 * high) as i32, sc as i32, m as i32)
}

/// Q6_K value `i`: signed 6-bit quant and signed 8-bit scale.
pub fn q6k_at(b: &BlockQ6_K, i: usize) -> (i32, i32) {
    let (h, k, l) = (i / 128, (i % 128) / 32, i % 32);
    let lbyte = b.ql[64 * h + 32 * (k % 2) + l];
    let low = if k >= 2 { lbyte >> 4 } else { lbyte & 0xf };
    let high = (b.qh[32 * h + l] >> (2 * k)) & 3;
    ((low | (high << 4)) as i32 - 32, b.scales[i / 16] as i32)
}
