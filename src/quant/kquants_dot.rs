//! Dot products of K-quant weight rows with Q8_K activation rows.
//!
//! Same math as ggml's `ggml_vec_dot_q*_K_q8_K`: per 256-value super-block an exact i32 sum of
//! `scale * q_w * q_a` over its sub-blocks, the mins folded in through Q8_K's `bsums`, then
//! `d_w * d_a * isum - dmin_w * d_a * summs` added to an f32 total. The fast functions unpack
//! each super-block into fixed arrays and multiply 16 or 32 values at a time (auto-vectorized);
//! the `_scalar` twins walk value by value through the accessors in `kquants.rs` and compute the
//! min term from the activations themselves, not from `bsums`. All integer sums are exact, so
//! the twins agree bit for bit.

use super::blocks::*;
use super::kquants::{q2k_at, q3k_at, q3k_scales, q4k_at, q5k_at, q6k_at, scale_min_k4};
use super::types::QK_K;

#[inline(always)]
fn dot16(a: &[i8], b: &[i8]) -> i32 {
    let (a, b): (&[i8; 16], &[i8; 16]) = (a.try_into().unwrap(), b.try_into().unwrap());
    let mut s = 0i32;
    for j in 0..16 {
        s += a[j] as i32 * b[j] as i32;
    }
    s
}

#[inline(always)]
fn dot32(a: &[i8], b: &[i8]) -> i32 {
    let (a, b): (&[i8; 32], &[i8; 32]) = (a.try_into().unwrap(), b.try_into().unwrap());
    let mut s = 0i32;
    for j in 0..32 {
        s += a[j] as i32 * b[j] as i32;
    }
    s
}

/// Sum of `bsums[j] * mins[j / per]` over the 16 bsums.
#[inline(always)]
fn min_sum(y: &BlockQ8_K, min_of: impl Fn(usize) -> i32) -> i32 {
    (0..16).map(|j| y.bsum(j) as i32 * min_of(j)).sum()
}

#[inline(always)]
pub fn dot_q2_k_q8_k(w: &[BlockQ2_K], a: &[BlockQ8_K]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let summs = min_sum(y, |j| (x.scales[j] >> 4) as i32);
        let mut q = [0i8; QK_K];
        for h in 0..2 {
            for j in 0..4 {
                for l in 0..32 {
                    q[128 * h + 32 * j + l] = ((x.qs[32 * h + l] >> (2 * j)) & 3) as i8;
                }
            }
        }
        let mut isum = 0i32;
        for k in 0..16 {
            isum += (x.scales[k] & 0xf) as i32 * dot16(&q[16 * k..16 * k + 16], &y.qs[16 * k..16 * k + 16]);
        }
        let dall = y.d() * f16_le(x.d);
        let dmin = y.d() * f16_le(x.dmin);
        sumf += dall * isum as f32 - dmin * summs as f32;
    }
    sumf
}

#[inline(always)]
pub fn dot_q3_k_q8_k(w: &[BlockQ3_K], a: &[BlockQ8_K]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let mut q = [0i8; QK_K];
        for h in 0..2 {
            for j in 0..4 {
                let m = 1u8 << (4 * h + j);
                for l in 0..32 {
                    let low = ((x.qs[32 * h + l] >> (2 * j)) & 3) as i8;
                    q[128 * h + 32 * j + l] = low - if x.hmask[l] & m != 0 { 0 } else { 4 };
                }
            }
        }
        let scales = q3k_scales(&x.scales);
        let mut isum = 0i32;
        for k in 0..16 {
            isum += scales[k] as i32 * dot16(&q[16 * k..16 * k + 16], &y.qs[16 * k..16 * k + 16]);
        }
        sumf += (f16_le(x.d) * y.d()) * isum as f32;
    }
    sumf
}

/// Scales and mins of the 8 sub-blocks of a Q4_K / Q5_K block.
#[inline(always)]
fn scales_mins(s: &[u8; K_SCALE_SIZE]) -> ([i32; 8], [i32; 8]) {
    let (mut sc, mut mn) = ([0i32; 8], [0i32; 8]);
    for j in 0..8 {
        let (a, b) = scale_min_k4(j, s);
        sc[j] = a as i32;
        mn[j] = b as i32;
    }
    (sc, mn)
}

#[inline(always)]
pub fn dot_q4_k_q8_k(w: &[BlockQ4_K], a: &[BlockQ8_K]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let (sc, mn) = scales_mins(&x.scales);
        let summs = min_sum(y, |j| mn[j / 2]);
        let mut q = [0i8; QK_K];
        for c in 0..4 {
            for l in 0..32 {
                let b = x.qs[32 * c + l];
                q[64 * c + l] = (b & 0xf) as i8;
                q[64 * c + 32 + l] = (b >> 4) as i8;
            }
        }
        let mut isum = 0i32;
        for j in 0..8 {
            isum += sc[j] * dot32(&q[32 * j..32 * j + 32], &y.qs[32 * j..32 * j + 32]);
        }
        sumf += (f16_le(x.d) * y.d()) * isum as f32 - (f16_le(x.dmin) * y.d()) * summs as f32;
    }
    sumf
}

#[inline(always)]
pub fn dot_q5_k_q8_k(w: &[BlockQ5_K], a: &[BlockQ8_K]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let (sc, mn) = scales_mins(&x.scales);
        let summs = min_sum(y, |j| mn[j / 2]);
        let mut q = [0i8; QK_K];
        for c in 0..4 {
            for l in 0..32 {
                let b = x.qs[32 * c + l];
                let h = x.qh[l] >> (2 * c);
                q[64 * c + l] = ((b & 0xf) | ((h & 1) << 4)) as i8;
                q[64 * c + 32 + l] = ((b >> 4) | ((h & 2) << 3)) as i8;
            }
        }
        let mut isum = 0i32;
        for j in 0..8 {
            isum += sc[j] * dot32(&q[32 * j..32 * j + 32], &y.qs[32 * j..32 * j + 32]);
        }
        sumf += (f16_le(x.d) * y.d()) * isum as f32 - (f16_le(x.dmin) * y.d()) * summs as f32;
    }
    sumf
}

#[inline(always)]
pub fn dot_q6_k_q8_k(w: &[BlockQ6_K], a: &[BlockQ8_K]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let mut q = [0i8; QK_K];
        for h in 0..2 {
            for l in 0..32 {
                let (l0, l1, hb) = (x.ql[64 * h + l], x.ql[64 * h + 32 + l], x.qh[32 * h + l]);
                let o = 128 * h + l;
                q[o] = ((l0 & 0xf) | ((hb & 3) << 4)) as i8 - 32;
                q[o + 32] = ((l1 & 0xf) | (((hb >> 2) & 3) << 4)) as i8 - 32;
                q[o + 64] = ((l0 >> 4) | (((hb >> 4) & 3) << 4)) as i8 - 32;
                q[o + 96] = ((l1 >> 4) | (((hb >> 6) & 3) << 4)) as i8 - 32;
            }
        }
        let mut isum = 0i32;
        for k in 0..16 {
            isum += x.scales[k] as i32 * dot16(&q[16 * k..16 * k + 16], &y.qs[16 * k..16 * k + 16]);
        }
        sumf += (f16_le(x.d) * y.d()) * isum as f32;
    }
    sumf
}

// ---- scalar twins ----

pub fn dot_q2_k_q8_k_scalar(w: &[BlockQ2_K], a: &[BlockQ8_K]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let (mut isum, mut summs) = (0i32, 0i32);
        for i in 0..QK_K {
            let (q, sc, m) = q2k_at(x, i);
            isum += sc * q * y.qs[i] as i32;
            summs += m * y.qs[i] as i32;
        }
        sumf += (y.d() * f16_le(x.d)) * isum as f32 - (y.d() * f16_le(x.dmin)) * summs as f32;
    }
    sumf
}

pub fn dot_q3_k_q8_k_scalar(w: &[BlockQ3_K], a: &[BlockQ8_K]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let isum: i32 = (0..QK_K)
            .map(|i| {
                let (q, sc) = q3k_at(x, i);
                sc * q * y.qs[i] as i32
            })
            .sum();
        sumf += (f16_le(x.d) * y.d()) * isum as f32;
    }
    sumf
}

pub fn dot_q4_k_q8_k_scalar(w: &[BlockQ4_K], a: &[BlockQ8_K]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let (mut isum, mut summs) = (0i32, 0i32);
        for i in 0..QK_K {
            let (q, sc, m) = q4k_at(x, i);
            isum += sc * q * y.qs[i] as i32;
            summs += m * y.qs[i] as i32;
        }
        sumf += (f16_le(x.d) * y.d()) * isum as f32 - (f16_le(x.dmin) * y.d()) * summs as f32;
    }
    sumf
}

pub fn dot_q5_k_q8_k_scalar(w: &[BlockQ5_K], a: &[BlockQ8_K]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let (mut isum, mut summs) = (0i32, 0i32);
        for i in 0..QK_K {
            let (q, sc, m) = q5k_at(x, i);
            isum += sc * q * y.qs[i] as i32;
            summs += m * y.qs[i] as i32;
        }
        sumf += (f16_le(x.d) * y.d()) * isum as f32 - (f16_le(x.dmin) * y.d()) * summs as f32;
    }
    sumf
}

pub fn dot_q6_k_q8_k_scalar(w: &[BlockQ6_K], a: &[BlockQ8_K]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let isum: i32 = (0..QK_K)
            .map(|i| {
                let (q, sc) = q6k_at(x, i);
                sc * q * y.qs[i] as i32
            })
            .sum();
        sumf += (f16_le(x.d) * y.d()) * isum as f32;
    }
    sumf
}

/// Q8_K · Q8_K (not a ggml pairing; Q8_K is only an activation type there).
#[inline(always)]
pub fn dot_q8_k_q8_k(w: &[BlockQ8_K], a: &[BlockQ8_K]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let isum: i32 = (0..8).map(|j| dot32(&x.qs[32 * j..32 * j + 32], &y.qs[32 * j..32 * j + 32])).sum();
        sumf += (x.d() * y.d()) * isum as f32;
    }
    sumf
}

pub fn dot_q8_k_q8_k_scalar(w: &[BlockQ8_K], a: &[BlockQ8_K]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let isum: i32 = (0..QK_K).map(|i| x.qs[i] as i32 * y.qs[i] as i32).sum();
        sumf += (x.d() * y.d()) * isum as f32;
    }
    sumf
}
