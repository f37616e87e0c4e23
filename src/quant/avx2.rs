//! Hand-written AVX2 kernels for the hottest dot products (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K,
//! Q3_K, Q4_K, Q5_K, Q6_K weights): every weight type but the float ones, which are
//! auto-vectorized (F16 uses F16C in `float.rs`).
//!
//! Each computes exactly the integers its portable kernel computes (per block for the legacy
//! formats, per super-block for the K-quants) and then runs the same f32 operations in the same
//! order, so results are bit-identical to the scalar twins; tests hold them to that.
//!
//! The byte products use `maddubs` (unsigned x signed bytes, adjacent pairs summed into i16),
//! exact as long as no pair exceeds the i16 range: weight magnitudes are at most 3 (Q2_K),
//! 4 (Q3_K), 8 (Q4_0), 15 (Q4_1, Q4_K), 16 (Q5_0), 31 (Q5_1, Q5_K), 63 (Q6_K, whose -32 offset
//! is subtracted separately) or 128 (Q8_0, via the sign trick), and activations are within
//! +-127, which every quantizer here produces (Q8_0/Q8_1/Q8_K never emit -128).
//!
//! Callers must have checked AVX2 and F16C (all functions are `unsafe` for that reason alone).

use std::arch::x86_64::*;

use super::blocks::*;
use super::types::QK_K;

/// An f16 scale through F16C (same result as `blocks::f16_to_f32`, in two instructions).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn h2f(b: [u8; 2]) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(u16::from_le_bytes(b) as i32)))
}

/// Two f16 scales in one conversion.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn h2f2(a: [u8; 2], b: [u8; 2]) -> (f32, f32) {
    let v = _mm_cvtph_ps(_mm_cvtsi32_si128(i32::from_le_bytes([a[0], a[1], b[0], b[1]])));
    (_mm_cvtss_f32(v), _mm_cvtss_f32(_mm_movehdup_ps(v)))
}

#[inline]
#[target_feature(enable = "avx2")]
fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// Products of 32 signed bytes summed into 8 i32 lanes: `|x| * (y with x's sign)`.
#[inline]
#[target_feature(enable = "avx2")]
fn dot_i8(x: __m256i, y: __m256i) -> __m256i {
    let p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    _mm256_madd_epi16(p, _mm256_set1_epi16(1))
}

#[inline]
#[target_feature(enable = "avx2")]
fn load256(p: &[u8]) -> __m256i {
    assert!(p.len() >= 32);
    // SAFETY: at least 32 readable bytes; unaligned load.
    unsafe { _mm256_loadu_si256(p.as_ptr() as *const __m256i) }
}

#[inline(always)]
fn bytes<T: bytemuck::Pod>(x: &T) -> &[u8] {
    bytemuck::bytes_of(x)
}

/// Low nibbles of 16 bytes in the lower half, high nibbles in the upper half.
#[inline]
#[target_feature(enable = "avx2")]
fn nibbles16(qs: &[u8; 16]) -> __m256i {
    // SAFETY: 16 readable bytes.
    let q = unsafe { _mm_loadu_si128(qs.as_ptr() as *const __m128i) };
    let m4 = _mm_set1_epi8(0x0f);
    let lo = _mm_and_si128(q, m4);
    let hi = _mm_and_si128(_mm_srli_epi16::<4>(q), m4);
    _mm256_set_m128i(hi, lo)
}

/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn dot_q4_0_q8_0(w: &[BlockQ4_0], a: &[BlockQ8_0]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let xv = _mm256_sub_epi8(nibbles16(&x.qs), _mm256_set1_epi8(8));
        let sumi = hsum_i32(dot_i8(xv, load256(bytes(&y.qs))));
        let (dx, dy) = h2f2(x.d, y.d);
        sumf += sumi as f32 * dx * dy;
    }
    sumf
}

/// Bit `j` of the little-endian `qh` as 16 in byte `j` (0 elsewhere): the fifth bits of Q5.
#[inline]
#[target_feature(enable = "avx2")]
fn fifth_bits(qh: [u8; 4]) -> __m256i {
    let v = _mm256_set1_epi32(i32::from_le_bytes(qh));
    // Byte j takes byte j/8 of qh, then tests bit j%8.
    let spread = _mm256_shuffle_epi8(
        v,
        _mm256_set_epi64x(0x0303_0303_0303_0303, 0x0202_0202_0202_0202, 0x0101_0101_0101_0101, 0),
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    _mm256_and_si256(set, _mm256_set1_epi8(16))
}

/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn dot_q4_1_q8_1(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
    let ones = _mm256_set1_epi16(1);
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let p = _mm256_maddubs_epi16(nibbles16(&x.qs), load256(bytes(&y.qs)));
        let sumi = hsum_i32(_mm256_madd_epi16(p, ones));
        sumf += (h2f(x.d) * h2f(y.d)) * sumi as f32 + h2f(x.m) * h2f(y.s);
    }
    sumf
}

/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn dot_q5_0_q8_0(w: &[BlockQ5_0], a: &[BlockQ8_0]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let q = _mm256_or_si256(nibbles16(&x.qs), fifth_bits(x.qh));
        let xv = _mm256_sub_epi8(q, _mm256_set1_epi8(16));
        let sumi = hsum_i32(dot_i8(xv, load256(bytes(&y.qs))));
        let (dx, dy) = h2f2(x.d, y.d);
        sumf += (dx * dy) * sumi as f32;
    }
    sumf
}

/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn dot_q5_1_q8_1(w: &[BlockQ5_1], a: &[BlockQ8_1]) -> f32 {
    let ones = _mm256_set1_epi16(1);
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let q = _mm256_or_si256(nibbles16(&x.qs), fifth_bits(x.qh));
        let p = _mm256_maddubs_epi16(q, load256(bytes(&y.qs)));
        let sumi = hsum_i32(_mm256_madd_epi16(p, ones));
        sumf += (h2f(x.d) * h2f(y.d)) * sumi as f32 + h2f(x.m) * h2f(y.s);
    }
    sumf
}

/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn dot_q8_0_q8_0(w: &[BlockQ8_0], a: &[BlockQ8_0]) -> f32 {
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let sumi = hsum_i32(dot_i8(load256(bytes(&x.qs)), load256(bytes(&y.qs))));
        let (dx, dy) = h2f2(x.d, y.d);
        sumf += sumi as f32 * (dx * dy);
    }
    sumf
}

/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn dot_q4_k_q8_k(w: &[BlockQ4_K], a: &[BlockQ8_K]) -> f32 {
    let m4 = _mm256_set1_epi8(0x0f);
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let mut sc = [0i16; 8];
        let mut summs = 0i32;
        for j in 0..8 {
            let (s, m) = super::kquants::scale_min_k4(j, &x.scales);
            sc[j] = s as i16;
            summs += m as i32 * (y.bsum(2 * j) as i32 + y.bsum(2 * j + 1) as i32);
        }
        let qa = bytes(&y.qs);
        let mut acc = _mm256_setzero_si256();
        for c in 0..4 {
            let q = load256(&x.qs[32 * c..]);
            let lo = _mm256_and_si256(q, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
            let plo = _mm256_maddubs_epi16(lo, load256(&qa[64 * c..]));
            let phi = _mm256_maddubs_epi16(hi, load256(&qa[64 * c + 32..]));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * c])));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * c + 1])));
        }
        let isum = hsum_i32(acc);
        sumf += (h2f(x.d) * y.d()) * isum as f32 - (h2f(x.dmin) * y.d()) * summs as f32;
    }
    sumf
}

/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn dot_q5_k_q8_k(w: &[BlockQ5_K], a: &[BlockQ8_K]) -> f32 {
    let m4 = _mm256_set1_epi8(0x0f);
    let sixteen = _mm256_set1_epi8(16);
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let mut sc = [0i16; 8];
        let mut summs = 0i32;
        for j in 0..8 {
            let (s, m) = super::kquants::scale_min_k4(j, &x.scales);
            sc[j] = s as i16;
            summs += m as i32 * (y.bsum(2 * j) as i32 + y.bsum(2 * j + 1) as i32);
        }
        let qa = bytes(&y.qs);
        let qh = load256(&x.qh);
        let high = |bit: u8| {
            let b = _mm256_set1_epi8(bit as i8);
            _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b), b), sixteen)
        };
        let mut acc = _mm256_setzero_si256();
        for c in 0..4 {
            let q = load256(&x.qs[32 * c..]);
            let lo = _mm256_or_si256(_mm256_and_si256(q, m4), high(1 << (2 * c)));
            let hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(q), m4), high(2 << (2 * c)));
            let plo = _mm256_maddubs_epi16(lo, load256(&qa[64 * c..]));
            let phi = _mm256_maddubs_epi16(hi, load256(&qa[64 * c + 32..]));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * c])));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * c + 1])));
        }
        let isum = hsum_i32(acc);
        sumf += (h2f(x.d) * y.d()) * isum as f32 - (h2f(x.dmin) * y.d()) * summs as f32;
    }
    sumf
}

/// i16 pair sums of two 16-value sub-blocks times their scales, into 8 i32 lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn scale_pairs(p: __m256i, s_lo: i16, s_hi: i16) -> __m256i {
    _mm256_madd_epi16(p, _mm256_set_m128i(_mm_set1_epi16(s_hi), _mm_set1_epi16(s_lo)))
}

/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn dot_q2_k_q8_k(w: &[BlockQ2_K], a: &[BlockQ8_K]) -> f32 {
    let m2 = _mm256_set1_epi8(3);
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let summs: i32 = (0..16).map(|j| y.bsum(j) as i32 * (x.scales[j] >> 4) as i32).sum();
        let qa = bytes(&y.qs);
        let mut acc = _mm256_setzero_si256();
        for h in 0..2 {
            let q = load256(&x.qs[32 * h..]);
            for j in 0..4 {
                let v = match j {
                    0 => _mm256_and_si256(q, m2),
                    1 => _mm256_and_si256(_mm256_srli_epi16::<2>(q), m2),
                    2 => _mm256_and_si256(_mm256_srli_epi16::<4>(q), m2),
                    _ => _mm256_and_si256(_mm256_srli_epi16::<6>(q), m2),
                };
                let o = 128 * h + 32 * j;
                let p = _mm256_maddubs_epi16(v, load256(&qa[o..]));
                let (s0, s1) = (x.scales[o / 16] & 0xf, x.scales[o / 16 + 1] & 0xf);
                acc = _mm256_add_epi32(acc, scale_pairs(p, s0 as i16, s1 as i16));
            }
        }
        let isum = hsum_i32(acc);
        let dall = y.d() * h2f(x.d);
        let dmin = y.d() * h2f(x.dmin);
        sumf += dall * isum as f32 - dmin * summs as f32;
    }
    sumf
}

/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn dot_q3_k_q8_k(w: &[BlockQ3_K], a: &[BlockQ8_K]) -> f32 {
    let m2 = _mm256_set1_epi8(3);
    let four = _mm256_set1_epi8(4);
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let scales = super::kquants::q3k_scales(&x.scales);
        let qa = bytes(&y.qs);
        let hm = load256(&x.hmask);
        let mut acc = _mm256_setzero_si256();
        for h in 0..2 {
            let q = load256(&x.qs[32 * h..]);
            for j in 0..4 {
                let low = match j {
                    0 => _mm256_and_si256(q, m2),
                    1 => _mm256_and_si256(_mm256_srli_epi16::<2>(q), m2),
                    2 => _mm256_and_si256(_mm256_srli_epi16::<4>(q), m2),
                    _ => _mm256_and_si256(_mm256_srli_epi16::<6>(q), m2),
                };
                let bit = _mm256_set1_epi8((1u8 << (4 * h + j)) as i8);
                let has_bit = _mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit);
                // q - 4 where the high bit is clear: values in -4..=3.
                let v = _mm256_sub_epi8(low, _mm256_andnot_si256(has_bit, four));
                let o = 128 * h + 32 * j;
                let av = load256(&qa[o..]);
                let p = _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(av, v));
                acc = _mm256_add_epi32(acc, scale_pairs(p, scales[o / 16] as i16, scales[o / 16 + 1] as i16));
            }
        }
        let isum = hsum_i32(acc);
        sumf += (h2f(x.d) * y.d()) * isum as f32;
    }
    sumf
}

/// # Safety
/// AVX2 must be available.
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn dot_q6_k_q8_k(w: &[BlockQ6_K], a: &[BlockQ8_K]) -> f32 {
    let m4 = _mm256_set1_epi8(0x0f);
    let m2 = _mm256_set1_epi8(0x03);
    let k32 = _mm256_set1_epi8(32);
    let mut sumf = 0f32;
    for (x, y) in w.iter().zip(a) {
        let qa = bytes(&y.qs);
        let mut acc = _mm256_setzero_si256();
        for h in 0..2 {
            let l0 = load256(&x.ql[64 * h..]);
            let l1 = load256(&x.ql[64 * h + 32..]);
            let hb = load256(&x.qh[32 * h..]);
            let high = |shift: i32| match shift {
                0 => _mm256_slli_epi16::<4>(_mm256_and_si256(hb, m2)),
                2 => _mm256_slli_epi16::<4>(_mm256_and_si256(_mm256_srli_epi16::<2>(hb), m2)),
                4 => _mm256_slli_epi16::<4>(_mm256_and_si256(_mm256_srli_epi16::<4>(hb), m2)),
                _ => _mm256_slli_epi16::<4>(_mm256_and_si256(_mm256_srli_epi16::<6>(hb), m2)),
            };
            // Unsigned 6-bit values (before the -32) of the four 32-value groups.
            let q = [
                _mm256_or_si256(_mm256_and_si256(l0, m4), high(0)),
                _mm256_or_si256(_mm256_and_si256(l1, m4), high(2)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(l0), m4), high(4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(l1), m4), high(6)),
            ];
            for (k, qk) in q.iter().enumerate() {
                let o = 128 * h + 32 * k;
                let av = load256(&qa[o..]);
                // sum (q - 32) * a = sum q*a - 32 * sum a, both as i16 pair sums (|.| < 2^15).
                let p = _mm256_sub_epi16(_mm256_maddubs_epi16(*qk, av), _mm256_maddubs_epi16(k32, av));
                let s = o / 16;
                acc = _mm256_add_epi32(acc, scale_pairs(p, x.scales[s] as i16, x.scales[s + 1] as i16));
            }
        }
        let isum = hsum_i32(acc);
        sumf += (h2f(x.d) * y.d()) * isum as f32;
    }
    sumf
}

const _: () = assert!(QK_K == 256);
