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

/// F16 weights · F16 activations. The products of two halves are exact in f32.
#[inline(always)]
pub fn vec_dot_f16(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = (&w[..2 * n], &a[..2 * n]);
    // Convert 32 at a time into fixed arrays so the hot loop is branch- and check-free.
    let mut acc = [0f32; LANES];
    let np = n - n % LANES;
    for (wc, ac) in w[..2 * np].chunks_exact(2 * LANES).zip(a[..2 * np].chunks_exact(2 * LANES)) {
        let mut x = [0f32; LANES];
        let mut y = [0f32; LANES];
        for l in 0..LANES {
            x[l] = h(wc, l);
            y[l] = h(ac, l);
        }
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let tail_w = &w[2 * np..];
    let tail_a = &a[2 * np..];
    finish(acc, n - np, |j| h(tail_w, j) * h(tail_a, j))
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

/// Plain twin of [`vec_dot_f16`] (same lane order, element by element).
pub fn vec_dot_f16_scalar(n: usize, w: &[u8], a: &[u8]) -> f32 {
    lane_sum(n, |i| h(w, i) * h(a, i))
}

#[inline(always)]
pub fn vec_dot_bf16(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = (&w[..2 * n], &a[..2 * n]);
    let mut acc = [0f32; LANES];
    let np = n - n % LANES;
    for (wc, ac) in w[..2 * np].chunks_exact(2 * LANES).zip(a[..2 * np].chunks_exact(2 * LANES)) {
        let mut x = [0f32; LANES];
        let mut y = [0f32; LANES];
        for l in 0..LANES {
            x[l] = bh(wc, l);
            y[l] = bh(ac, l);
        }
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let tail_w = &w[2 * np..];
    let tail_a = &a[2 * np..];
    finish(acc, n - np, |j| bh(tail_w, j) * bh(tail_a, j))
}

pub fn vec_dot_bf16_scalar(n: usize, w: &[u8], a: &[u8]) -> f32 {
    lane_sum(n, |i| bh(w, i) * bh(a, i))
}

#[inline(always)]
pub fn vec_dot_f32(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (w, a) = (&w[..4 * n], &a[..4 * n]);
    let mut acc = [0f32; LANES];
    let np = n - n % LANES;
    for (wc, ac) in w[..4 * np].chunks_exact(4 * LANES).zip(a[..4 * np].chunks_exact(4 * LANES)) {
        let mut x = [0f32; LANES];
        let mut y = [0f32; LANES];
        for l in 0..LANES {
            x[l] = f(wc, l);
            y[l] = f(ac, l);
        }
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let tail_w = &w[4 * np..];
    let tail_a = &a[4 * np..];
    finish(acc, n - np, |j| f(tail_w, j) * f(tail_a, j))
}

pub fn vec_dot_f32_scalar(n: usize, w: &[u8], a: &[u8]) -> f32 {
    lane_sum(n, |i| f(w, i) * f(a, i))
}

/// `half`'s own conversion, for tests that cross-check [`f32_to_bf16_bits`].
pub fn bf16_via_half(x: f32) -> u16 {
    bf16::from_f32(x).to_bits()
}
