//! F32, F16 and BF16 rows: conversion and dot products.
//!
//! F16 uses the `half` crate, which rounds to nearest even like ggml's `GGML_FP32_TO_FP16`
//! (F16C on x86). BF16 follows ggml's `ggml_compute_fp32_to_bf16` exactly (round to nearest even,
//! NaN forced quiet), written out here rather than relying on `half`'s choices for NaN.

use half::{bf16, f16};

use super::blocks::f16_to_f32;

/// ggml's fp32 -> bf16: NaN keeps its sign and top mantissa bits and is made quiet; everything
/// else rounds to nearest even (overflow goes to infinity).
#[inline(always)]
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    let u = x.to_bits();
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    ((u as u64 + (0x7fff + ((u >> 16) & 1)) as u64) >> 16) as u16
}

#[inline(always)]
pub fn bf16_bits_to_f32(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

pub fn dequantize_f32(src: &[u8], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(4)) {
        *d = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    }
}

pub fn quantize_f32(src: &[f32], dst: &mut [u8]) {
    for (s, d) in src.iter().zip(dst.chunks_exact_mut(4)) {
        d.copy_from_slice(&s.to_le_bytes());
    }
}

pub fn dequantize_f16(src: &[u8], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *d = f16_to_f32(u16::from_le_bytes([s[0], s[1]]));
    }
}

pub fn quantize_f16(src: &[f32], dst: &mut [u8]) {
    for (s, d) in src.iter().zip(dst.chunks_exact_mut(2)) {
        d.copy_from_slice(&f16::from_f32(*s).to_bits().to_le_bytes());
    }
}

pub fn dequantize_bf16(src: &[u8], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *d = bf16_bits_to_f32(u16::from_le_bytes([s[0], s[1]]));
    }
}

pub fn quantize_bf16(src: &[f32], dst: &mut [u8]) {
    for (s, d) in src.iter().zip(dst.chunks_exact_mut(2)) {
        d.copy_from_slice(&f32_to_bf16_bits(*s).to_le_bytes());
    }
}

/// Lanes of the f32 accumulators: 4 vectors of 8, the shape of ggml's AVX2 `ggml_vec_dot_f16`.
const LANES: usize = 32;

/// Sums `f(i)` for i in 0..n into 32 f32 lanes (lane = i % 32), reduces them pairwise, and adds
/// the tail (n % 32 values) in f64, as ggml's SIMD dots do. Written over fixed arrays so LLVM
/// keeps the lanes in vector registers.
#[inline(always)]
fn lane_sum(n: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let np = n - n % LANES;
    for i in 0..np {
        acc[i % LANES] += f(i);
    }
    finish(acc, n - np, |j| f(np + j))
}

#[inline(always)]
fn h(b: &[u8], i: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[2 * i], b[2 * i + 1]]))
}

#[inline(always)]
fn bh(b: &[u8], i: usize) -> f32 {
    bf16_bits_to_f32(u16::from_le_bytes([b[2 * i], b[2 * i + 1]]))
}

#[inline(always)]
fn f(b: &[u8], i: usize) -> f32 {
    f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

/// Reads element `c` (B little-endian bytes) as f32.
#[inline(always)]
fn rd_f16(c: &[u8]) -> f32 {
    f16_to_f32(u16::from_le_bytes([c[0], c[1]]))
}

#[inline(always)]
fn rd_bf16(c: &[u8]) -> f32 {
    bf16_bits_to_f32(u16::from_le_bytes([c[0], c[1]]))
}

#[inline(always)]
fn rd_f32(c: &[u8]) -> f32 {
    f32::from_le_bytes([c[0], c[1], c[2], c[3]])
}

/// The fast float dot: 32 values at a time converted into fixed arrays, multiplied and added
/// into 32 f32 lanes (vector registers), then [`finish`].
#[inline(always)]
fn lanes_dot(n: usize, size: usize, w: &[u8], a: &[u8], rd: impl Fn(&[u8]) -> f32) -> f32 {
    let (w, a) = (&w[..size * n], &a[..size * n]);
    let np = n - n % LANES;
    let mut acc = [0f32; LANES];
    let (wc, wt) = w.split_at(size * np);
    let (ac, at) = a.split_at(size * np);
    for (wb, ab) in wc.chunks_exact(size * LANES).zip(ac.chunks_exact(size * LANES)) {
        let mut x = [0f32; LANES];
        let mut y = [0f32; LANES];
        for (v, c) in x.iter_mut().zip(wb.chunks_exact(size)) {
            *v = rd(c);
        }
        for (v, c) in y.iter_mut().zip(ab.chunks_exact(size)) {
            *v = rd(c);
        }
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    finish(acc, n - np, |j| rd(&wt[size * j..]) * rd(&at[size * j..]))
}

#[inline(always)]
fn finish(acc: [f32; LANES], tail: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut v = [0f32; 8];
    for l in 0..8 {
        v[l] = (acc[l] + acc[8 + l]) + (acc[16 + l] + acc[24 + l]);
    }
    let t = [v[0] + v[4], v[1] + v[5], v[2] + v[6], v[3] + v[7]];
    let mut sum = ((t[0] + t[1]) + (t[2] + t[3])) as f64;
    for j in 0..tail {
        sum += f(j) as f64;
    }
    sum as f32
}

/// F16 weights · F16 activations. The product of two halves is exact in f32, so this matches
/// an FMA-based kernel with the same lanes.
#[inline(always)]
pub fn vec_dot_f16(n: usize, w: &[u8], a: &[u8]) -> f32 {
    lanes_dot(n, 2, w, a, rd_f16)
}

/// [`vec_dot_f16`] with F16C conversions (8 halves per instruction): the same 32 lanes, products
/// and additions, so bit-identical to it.
///
/// # Safety
/// The CPU must support AVX, F16C (callers check with `is_x86_feature_detected!`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn vec_dot_f16_f16c(n: usize, w: &[u8], a: &[u8]) -> f32 {
    use std::arch::x86_64::*;
    let (w, a) = (&w[..2 * n], &a[..2 * n]);
    let np = n - n % LANES;
    let mut acc = [_mm256_setzero_ps(); 4];
    for (wb, ab) in w[..2 * np].chunks_exact(2 * LANES).zip(a[..2 * np].chunks_exact(2 * LANES)) {
        for (k, acc) in acc.iter_mut().enumerate() {
            // SAFETY: each chunk holds 64 bytes; loads are unaligned.
            let x = _mm256_cvtph_ps(unsafe { _mm_loadu_si128(wb.as_ptr().add(16 * k) as *const __m128i) });
            let y = _mm256_cvtph_ps(unsafe { _mm_loadu_si128(ab.as_ptr().add(16 * k) as *const __m128i) });
            *acc = _mm256_add_ps(*acc, _mm256_mul_ps(x, y));
        }
    }
    let mut lanes = [0f32; LANES];
    for (k, v) in acc.iter().enumerate() {
        // SAFETY: 8 floats into lanes[8k..8k+8].
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr().add(8 * k), *v) };
    }
    let (wt, at) = (&w[2 * np..], &a[2 * np..]);
    finish(lanes, n - np, |j| rd_f16(&wt[2 * j..]) * rd_f16(&at[2 * j..]))
}

#[inline(always)]
pub fn vec_dot_bf16(n: usize, w: &[u8], a: &[u8]) -> f32 {
    lanes_dot(n, 2, w, a, rd_bf16)
}

#[inline(always)]
pub fn vec_dot_f32(n: usize, w: &[u8], a: &[u8]) -> f32 {
    lanes_dot(n, 4, w, a, rd_f32)
}

/// Plain twins: element by element into the same lanes (lane = i % 32).
pub fn vec_dot_f16_scalar(n: usize, w: &[u8], a: &[u8]) -> f32 {
    lane_sum(n, |i| h(w, i) * h(a, i))
}

pub fn vec_dot_bf16_scalar(n: usize, w: &[u8], a: &[u8]) -> f32 {
    lane_sum(n, |i| bh(w, i) * bh(a, i))
}

pub fn vec_dot_f32_scalar(n: usize, w: &[u8], a: &[u8]) -> f32 {
    lane_sum(n, |i| f(w, i) * f(a, i))
}

/// `half`'s own conversion, for tests that cross-check [`f32_to_bf16_bits`].
pub fn bf16_via_half(x: f32) -> u16 {
    bf16::from_f32(x).to_bits()
}
