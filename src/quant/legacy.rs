//! Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1: dequantization (ggml's `dequantize_row_*`) and
//! quantization (ggml's `quantize_row_*_ref`), operation for operation so results are
//! bit-identical. Dot products are in `legacy_dot.rs`.

use super::blocks::*;

pub fn dequantize_q4_0(src: &[BlockQ4_0], dst: &mut [f32]) {
    for (b, y) in src.iter().zip(dst.chunks_exact_mut(QK4_0)) {
        let d = f16_le(b.d);
        for j in 0..QK4_0 / 2 {
            y[j] = ((b.qs[j] & 0x0f) as i32 - 8) as f32 * d;
            y[j + QK4_0 / 2] = ((b.qs[j] >> 4) as i32 - 8) as f32 * d;
        }
    }
}

pub fn dequantize_q4_1(src: &[BlockQ4_1], dst: &mut [f32]) {
    for (b, y) in src.iter().zip(dst.chunks_exact_mut(QK4_1)) {
        let (d, m) = (f16_le(b.d), f16_le(b.m));
        for j in 0..QK4_1 / 2 {
            y[j] = (b.qs[j] & 0x0f) as f32 * d + m;
            y[j + QK4_1 / 2] = (b.qs[j] >> 4) as f32 * d + m;
        }
    }
}

/// The fifth bits of a Q5 block: bit `j` of the little-endian `qh` belongs to value `j`.
#[inline(always)]
fn high_bit(qh: u32, j: usize) -> u8 {
    (((qh >> j) & 1) << 4) as u8
}

pub fn dequantize_q5_0(src: &[BlockQ5_0], dst: &mut [f32]) {
    for (b, y) in src.iter().zip(dst.chunks_exact_mut(QK5_0)) {
        let d = f16_le(b.d);
        let qh = u32::from_le_bytes(b.qh);
        for j in 0..QK5_0 / 2 {
            let x0 = ((b.qs[j] & 0x0f) | high_bit(qh, j)) as i32 - 16;
            let x1 = ((b.qs[j] >> 4) | high_bit(qh, j + 16)) as i32 - 16;
            y[j] = x0 as f32 * d;
            y[j + QK5_0 / 2] = x1 as f32 * d;
        }
    }
}

pub fn dequantize_q5_1(src: &[BlockQ5_1], dst: &mut [f32]) {
    for (b, y) in src.iter().zip(dst.chunks_exact_mut(QK5_1)) {
        let (d, m) = (f16_le(b.d), f16_le(b.m));
        let qh = u32::from_le_bytes(b.qh);
        for j in 0..QK5_1 / 2 {
            let x0 = (b.qs[j] & 0x0f) | high_bit(qh, j);
            let x1 = (b.qs[j] >> 4) | high_bit(qh, j + 16);
            y[j] = x0 as f32 * d + m;
            y[j + QK5_1 / 2] = x1 as f32 * d + m;
        }
    }
}

pub fn dequantize_q8_0(src: &[BlockQ8_0], dst: &mut [f32]) {
    for (b, y) in src.iter().zip(dst.chunks_exact_mut(QK8_0)) {
        let d = f16_le(b.d);
        for j in 0..QK8_0 {
            y[j] = b.qs[j] as f32 * d;
        }
    }
}

/// ggml has no `dequantize_row_q8_1`; this is the obvious `d * q` (the sum `s` is ignored).
pub fn dequantize_q8_1(src: &[BlockQ8_1], dst: &mut [f32]) {
    for (b, y) in src.iter().zip(dst.chunks_exact_mut(QK8_1)) {
        let d = f16_le(b.d);
        for j in 0..QK8_1 {
            y[j] = b.qs[j] as f32 * d;
        }
    }
}

/// The value of largest magnitude (the first one on ties) and its magnitude.
#[inline(always)]
fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    (amax, max)
}

#[inline(always)]
fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

#[inline(always)]
fn inv(d: f32) -> f32 {
    if d != 0.0 { 1.0 / d } else { 0.0 }
}

pub fn quantize_q4_0(src: &[f32], dst: &mut [BlockQ4_0]) {
    for (x, b) in src.chunks_exact(QK4_0).zip(dst.iter_mut()) {
        let (_, max) = signed_absmax(x);
        let d = max / -8.0;
        let id = inv(d);
        b.d = f16_bytes(d);
        for j in 0..QK4_0 / 2 {
            // C: MIN(15, (int8_t)(x*id + 8.5f)), truncating toward zero.
            let xi0 = ((x[j] * id + 8.5) as i8).min(15) as u8;
            let xi1 = ((x[j + QK4_0 / 2] * id + 8.5) as i8).min(15) as u8;
            b.qs[j] = xi0 | (xi1 << 4);
        }
    }
}

pub fn quantize_q4_1(src: &[f32], dst: &mut [BlockQ4_1]) {
    for (x, b) in src.chunks_exact(QK4_1).zip(dst.iter_mut()) {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = inv(d);
        b.d = f16_bytes(d);
        b.m = f16_bytes(min);
        for j in 0..QK4_1 / 2 {
            let xi0 = (((x[j] - min) * id + 0.5) as i8).min(15) as u8;
            let xi1 = (((x[j + QK4_1 / 2] - min) * id + 0.5) as i8).min(15) as u8;
            b.qs[j] = xi0 | (xi1 << 4);
        }
    }
}

/// Packs 32 five-bit values: low nibbles in `qs` (value j and j+16 share a byte), fifth bits in `qh`.
#[inline(always)]
fn pack_q5(q: &[u8; 32], qs: &mut [u8; 16]) -> [u8; 4] {
    let mut qh = 0u32;
    for j in 0..16 {
        qs[j] = (q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4);
        qh |= (((q[j] & 0x10) >> 4) as u32) << j;
        qh |= (((q[j + 16] & 0x10) >> 4) as u32) << (j + 16);
    }
    qh.to_le_bytes()
}

pub fn quantize_q5_0(src: &[f32], dst: &mut [BlockQ5_0]) {
    for (x, b) in src.chunks_exact(QK5_0).zip(dst.iter_mut()) {
        let (_, max) = signed_absmax(x);
        let d = max / -16.0;
        let id = inv(d);
        b.d = f16_bytes(d);
        let mut q = [0u8; 32];
        for (qj, &v) in q.iter_mut().zip(x) {
            *qj = ((v * id + 16.5) as i8).min(31) as u8;
        }
        b.qh = pack_q5(&q, &mut b.qs);
    }
}

pub fn quantize_q5_1(src: &[f32], dst: &mut [BlockQ5_1]) {
    for (x, b) in src.chunks_exact(QK5_1).zip(dst.iter_mut()) {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = inv(d);
        b.d = f16_bytes(d);
        b.m = f16_bytes(min);
        let mut q = [0u8; 32];
        for (qj, &v) in q.iter_mut().zip(x) {
            // C: (uint8_t)(x + 0.5f), no clamp.
            *qj = ((v - min) * id + 0.5) as u8;
        }
        b.qh = pack_q5(&q, &mut b.qs);
    }
}

#[inline(always)]
fn absmax(x: &[f32]) -> f32 {
    x.iter().fold(0f32, |a, v| if a > v.abs() { a } else { v.abs() })
}

/// quantize_row_q8_0_ref: `d = amax/127`, `q = roundf(x * (1/d))` (ties away from zero).
pub fn quantize_q8_0(src: &[f32], dst: &mut [BlockQ8_0]) {
    for (x, b) in src.chunks_exact(QK8_0).zip(dst.iter_mut()) {
        let d = absmax(x) / 127.0;
        let id = inv(d);
        b.d = f16_bytes(d);
        for (q, &v) in b.qs.iter_mut().zip(x) {
            *q = (v * id).round() as i8;
        }
    }
}

/// quantize_row_q8_1_ref: Q8_0 plus `s = fp16(sum(q) * d)`.
pub fn quantize_q8_1(src: &[f32], dst: &mut [BlockQ8_1]) {
    for (x, b) in src.chunks_exact(QK8_1).zip(dst.iter_mut()) {
        let d = absmax(x) / 127.0;
        let id = inv(d);
        b.d = f16_bytes(d);
        let mut sum = 0i32;
        for (q, &v) in b.qs.iter_mut().zip(x) {
            *q = (v * id).round() as i8;
            sum += *q as i32;
        }
        b.s = f16_bytes(sum as f32 * d);
    }
}

/// What ggml-cpu's x86 AVX/AVX2 `quantize_row_q8_0` does instead of the reference: the
/// multiplier is `127/amax` (not `1/(amax/127)`) and rounding is to nearest even. llama.cpp
/// builds for x86-64 quantize activations this way.
pub fn quantize_q8_0_x86(src: &[f32], dst: &mut [BlockQ8_0]) {
    for (x, b) in src.chunks_exact(QK8_0).zip(dst.iter_mut()) {
        let amax = absmax(x);
        b.d = f16_bytes(amax / 127.0);
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        for (q, &v) in b.qs.iter_mut().zip(x) {
            *q = (v * id).round_ties_even() as i8;
        }
    }
}

/// The x86 AVX2 `quantize_row_q8_1` (see [`quantize_q8_0_x86`]), `s = fp16(d * sum(q))`.
pub fn quantize_q8_1_x86(src: &[f32], dst: &mut [BlockQ8_1]) {
    for (x, b) in src.chunks_exact(QK8_1).zip(dst.iter_mut()) {
        let amax = absmax(x);
        let d = amax / 127.0;
        b.d = f16_bytes(d);
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in b.qs.iter_mut().zip(x) {
            *q = (v * id).round_ties_even() as i8;
            sum += *q as i32;
        }
        b.s = f16_bytes(d * sum as f32);
    }
}
