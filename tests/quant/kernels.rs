//! Part of `tests/quant.rs`: fast kernels (AVX2 where available, the portable build) against
//! their scalar twins on arbitrary bytes.

use super::*;

/// Arbitrary block bytes (every bit pattern of quants and packed scales, not just what the
/// quantizers emit) through the fast kernels (AVX2 where the CPU has it), the portable build and
/// the scalar twins: bit-identical. Scales are set to finite halves; activation quants stay in
/// ±127 (what every quantizer emits) and Q8_K block sums are made consistent.
#[test]
fn fast_kernels_equal_scalar_twins_on_arbitrary_blocks() {
    let mut rng = Rng(2024);
    let finite_half = |rng: &mut Rng| half::f16::from_f32(rng.normal() * 0.1).to_bits().to_le_bytes();
    for ty in ALL {
        let at = vec_dot_type(ty);
        for _ in 0..50 {
            let n = 512;
            let mut w: Vec<u8> = (0..ty.row_bytes(n).unwrap()).map(|_| rng.next_u64() as u8).collect();
            let mut a: Vec<u8> = (0..at.row_bytes(n).unwrap()).map(|_| rng.next_u64() as u8).collect();
            // Put finite scales where each format keeps its halves (or f32 for Q8_K).
            let halves: &[usize] = match ty {
                F16 => &[],
                Q4_0 | Q5_0 | Q8_0 => &[0],
                Q4_1 | Q5_1 | Q8_1 => &[0, 2],
                Q2_K => &[80, 82],
                Q3_K => &[108],
                Q4_K | Q5_K => &[0, 2],
                Q6_K => &[208],
                _ => &[],
            };
            match ty {
                F32 | BF16 => w = quantize(ty, &rng.row(n)),
                F16 => w = quantize(F16, &rng.row(n)),
                Q8_K => w = quantize(Q8_K, &rng.row(n)),
                _ => {
                    for b in w.chunks_exact_mut(ty.type_size()) {
                        for &o in halves {
                            b[o..o + 2].copy_from_slice(&finite_half(&mut rng));
                        }
                    }
                }
            }
            match at {
                Q8_0 | Q8_1 => {
                    for b in a.chunks_exact_mut(at.type_size()) {
                        b[0..2].copy_from_slice(&finite_half(&mut rng));
                        b[2..4].copy_from_slice(&finite_half(&mut rng));
                        for q in &mut b[at.type_size() - 32..] {
                            if *q == 0x80 {
                                *q = 0x81;
                            }
                        }
                    }
                }
                Q8_K => {
                    for b in a.chunks_exact_mut(at.type_size()) {
                        b[0..4].copy_from_slice(&(rng.normal() * 0.01).to_le_bytes());
                        for q in &mut b[4..260] {
                            if *q == 0x80 {
                                *q = 0x81;
                            }
                        }
                        for j in 0..16 {
                            let s: i32 = b[4 + 16 * j..20 + 16 * j].iter().map(|&q| q as i8 as i32).sum();
                            b[260 + 2 * j..262 + 2 * j].copy_from_slice(&(s as i16).to_le_bytes());
                        }
                    }
                }
                _ => a = quantize(at, &rng.row(n)),
            }
            let slow = vec_dot_scalar(ty, n, &w, &a);
            assert!(slow.is_finite(), "{ty}");
            assert_eq!(vec_dot(ty, n, &w, &a).to_bits(), slow.to_bits(), "{ty}");
            assert_eq!(vec_dot_portable(ty, n, &w, &a).to_bits(), slow.to_bits(), "{ty}");
        }
    }
}
