//! Dot products of legacy-quant weight rows with Q8_0 / Q8_1 activation rows.
//!
//! Same math as ggml's `ggml_vec_dot_{q4_0,q5_0,q8_0}_q8_0` and `{q4_1,q5_1}_q8_1` (generic
//! versions): an exact i32 sum per 32-value block, then scaled by the two f16 scales and added
//! to an f32 total block by block, in ggml's operation order. The fast functions unpack each
//! block into a fixed `[i8; 32]` and multiply through fixed-size arrays so LLVM vectorizes them;
//! the `_scalar` twins index value by value. Integer sums are exact, so twins agree bit for bit.

use super::blocks::*;

/// Sum of products of two 32-value blocks, in i32 lanes.
#[inline(always)]
fn dot32(a: &[i8; 32], b: &[i8; 32]) -> i32 {
    let mut s = 0i32;
    for j in 0..32 {
        s += a[j] as i32 * b[j] as i32;
    }
    s
}

/// Unpacks 4-bit values (low nibbles first, then high nibbles) minus `offset`.
#[inline(always)]
fn nibbles(qs: &[u8; 16], offset: i8) -> [i8; 32] {
    let mut v = [0i8; 32];
    for j in 0..16 {
        v[j] = (qs[j] & 0x0f) as i8 - offset;
        v[j + 16] = (qs[j] >> 4) as i8 - offset;
    }
    v
}

/// Unpacks 5-bit values minus `offset`.
#[inline(always)]
fn five_bits(qs: &[u8; 16], qh: [u8; 4], offset: i8) -> [i8; 32] {
    let qh = u32::from_le_bytes(qh);
    let mut v = [0i8; 32];
    for j in 0..16 {
        v[j] = ((qs[j] & 0x0f) | ((((qh >> j) & 1) as u8) << 4)) as i8 - offset;
        v[j + 16] = ((qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4)) as i8 - offset;
    }
    v
}

#[inline(always)]
pub fn dot_q4_0_q8_0(w: &[BlockQ4_0], a: &[BlockQ8_0]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let sumi = dot32(&nibbles(&x.qs, 8), &y.qs);
        sumf += sumi as f32 * f16_le(x.d) * f16_le(y.d);
    }
    sumf
}

#[inline(always)]
pub fn dot_q4_1_q8_1(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let sumi = dot32(&nibbles(&x.qs, 0), &y.qs);
        sumf += (f16_le(x.d) * f16_le(y.d)) * sumi as f32 + f16_le(x.m) * f16_le(y.s);
    }
    sumf
}

#[inline(always)]
pub fn dot_q5_0_q8_0(w: &[BlockQ5_0], a: &[BlockQ8_0]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let sumi = dot32(&five_bits(&x.qs, x.qh, 16), &y.qs);
        sumf += (f16_le(x.d) * f16_le(y.d)) * sumi as f32;
    }
    sumf
}

#[inline(always)]
pub fn dot_q5_1_q8_1(w: &[BlockQ5_1], a: &[BlockQ8_1]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let sumi = dot32(&five_bits(&x.qs, x.qh, 0), &y.qs);
        sumf += (f16_le(x.d) * f16_le(y.d)) * sumi as f32 + f16_le(x.m) * f16_le(y.s);
    }
    sumf
}

#[inline(always)]
pub fn dot_q8_0_q8_0(w: &[BlockQ8_0], a: &[BlockQ8_0]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let sumi = dot32(&x.qs, &y.qs);
        sumf += sumi as f32 * (f16_le(x.d) * f16_le(y.d));
    }
    sumf
}

// ---- scalar twins: value i of block b, straight from the format description ----

fn q4(qs: &[u8; 16], i: usize) -> i32 {
    if i < 16 { (qs[i] & 0x0f) as i32 } else { (qs[i - 16] >> 4) as i32 }
}

fn q5(qs: &[u8; 16], qh: [u8; 4], i: usize) -> i32 {
    let high = (u32::from_le_bytes(qh) >> i) & 1;
    q4(qs, i) + 16 * high as i32
}

pub fn dot_q4_0_q8_0_scalar(w: &[BlockQ4_0], a: &[BlockQ8_0]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let sumi: i32 = (0..32).map(|i| (q4(&x.qs, i) - 8) * y.qs[i] as i32).sum();
        sumf += sumi as f32 * f16_le(x.d) * f16_le(y.d);
    }
    sumf
}

pub fn dot_q4_1_q8_1_scalar(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let sumi: i32 = (0..32).map(|i| q4(&x.qs, i) * y.qs[i] as i32).sum();
        sumf += (f16_le(x.d) * f16_le(y.d)) * sumi as f32 + f16_le(x.m) * f16_le(y.s);
    }
    sumf
}

pub fn dot_q5_0_q8_0_scalar(w: &[BlockQ5_0], a: &[BlockQ8_0]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let sumi: i32 = (0..32).map(|i| (q5(&x.qs, x.qh, i) - 16) * y.qs[i] as i32).sum();
        sumf += (f16_le(x.d) * f16_le(y.d)) * sumi as f32;
    }
    sumf
}

pub fn dot_q5_1_q8_1_scalar(w: &[BlockQ5_1], a: &[BlockQ8_1]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let sumi: i32 = (0..32).map(|i| q5(&x.qs, x.qh, i) * y.qs[i] as i32).sum();
        sumf += (f16_le(x.d) * f16_le(y.d)) * sumi as f32 + f16_le(x.m) * f16_le(y.s);
    }
    sumf
}

pub fn dot_q8_0_q8_0_scalar(w: &[BlockQ8_0], a: &[BlockQ8_0]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let sumi: i32 = (0..32).map(|i| x.qs[i] as i32 * y.qs[i] as i32).sum();
        sumf += sumi as f32 * (f16_le(x.d) * f16_le(y.d));
    }
    sumf
}

/// Q8_1 · Q8_1 (not a ggml pairing; Q8_1 is only an activation type there): `d_x*d_y*sum`.
#[inline(always)]
pub fn dot_q8_1_q8_1(w: &[BlockQ8_1], a: &[BlockQ8_1]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        sumf += dot32(&x.qs, &y.qs) as f32 * (f16_le(x.d) * f16_le(y.d));
    }
    sumf
}

pub fn dot_q8_1_q8_1_scalar(w: &[BlockQ8_1], a: &[BlockQ8_1]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let sumi: i32 = (0..32).map(|i| x.qs[i] as i32 * y.qs[i] as i32).sum();
        sumf += sumi as f32 * (f16_le(x.d) * f16_le(y.d));
    }
    sumf
}
