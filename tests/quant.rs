//! Quant formats against ggml: dequantization bit-identical to gguf-py (which matches ggml) on
//! every fixture tensor, reference quantizers byte-identical to gguf-py, round-trip error
//! bounds, dot products against an f64 reference, fast kernels equal to their scalar twins,
//! and typed errors on bad lengths.
//!
//! Reference data: `tests/data/*.json`, written by `python3 tools/dequant_goldens.py`.

mod common;
#[path = "quant/ggml_oracle.rs"]
mod ggml_oracle;
#[path = "quant/kernels.rs"]
mod kernels;

use std::collections::{BTreeMap, BTreeSet};

use pocketllm::gguf::Gguf;
use pocketllm::quant::{
    GgmlType, QuantError, check_vec_dot, dequantize_row, matvec, quantize_row, quantize_row_cpu, vec_dot,
    vec_dot_portable, vec_dot_scalar, vec_dot_type,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use GgmlType::*;

/// Every type `dequantize_row`/`quantize_row` handle.
const ALL: [GgmlType; 15] = GgmlType::ALL;

/// The types the fixture models must cover between them.
const FIXTURE_TYPES: [GgmlType; 11] = [F16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K];

// ---------------------------------------------------------------- helpers

/// xorshift64* with Box–Muller normals: tiny, seeded, no dependency.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f32 {
        let (u1, u2) = (self.uniform().max(1e-300), self.uniform());
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
    /// Normal values with a per-32 block scale spread over three orders of magnitude and an
    /// occasional outlier, closer to real weights and activations than plain N(0, 1).
    fn row(&mut self, n: usize) -> Vec<f32> {
        let mut v = Vec::with_capacity(n);
        for b in 0..n.div_ceil(32) {
            let scale = 10f32.powf(self.uniform() as f32 * 3.0 - 2.0);
            let offset = if b % 3 == 0 { self.normal() * scale } else { 0.0 };
            for _ in 0..32.min(n - 32 * b) {
                let outlier = if self.uniform() < 0.01 { 8.0 } else { 1.0 };
                v.push(self.normal() * scale * outlier + offset);
            }
        }
        v
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn data(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn quantize(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut q = vec![0u8; ty.row_bytes(x.len()).unwrap()];
    quantize_row(ty, x, &mut q).unwrap();
    q
}

fn dequantize(ty: GgmlType, q: &[u8], n: usize) -> Vec<f32> {
    let mut y = vec![0f32; n];
    dequantize_row(ty, q, &mut y).unwrap();
    y
}

// ---------------------------------------------------------------- 1. fixtures vs gguf-py

#[test]
fn dequantize_matches_gguf_py_on_every_fixture_tensor() {
    let models = common::fixture_models();
    if models.is_empty() {
        return; // fixtures() printed SKIPPED (or panicked under CI=true)
    }
    let golden = data("dequant_sha256.json");
    let golden = golden["models"].as_object().unwrap();
    let mut seen = BTreeSet::new();
    let mut checked = 0;
    for rel in &models {
        let expected = golden[rel.as_str()].as_object().unwrap_or_else(|| panic!("{rel} not in golden"));
        let bytes = common::read_fixture(rel).unwrap();
        let g = Gguf::parse(&bytes).unwrap();
        let mut n_here = 0;
        for t in g.tensors.iter().filter(|t| t.ty != F32) {
            let want = &expected[t.name.as_str()];
            assert_eq!(want["type"].as_str().unwrap(), t.ty.name(), "{rel} {}", t.name);
            let n = t.n_elements() as usize;
            let out = dequantize(t.ty, g.tensor_bytes(&bytes, t), n);
            let mut h = Sha256::new();
            for v in &out {
                h.update(v.to_le_bytes());
            }
            let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(got, want["sha256"].as_str().unwrap(), "{rel}: tensor {} ({})", t.name, t.ty);
            seen.insert(t.ty);
            n_here += 1;
        }
        assert_eq!(n_here, expected.len(), "{rel}: tensor count");
        checked += n_here;
    }
    assert_eq!(seen, FIXTURE_TYPES.into_iter().collect::<BTreeSet<_>>(), "types covered");
    eprintln!("{checked} fixture tensors dequantized bit-identically");
}

// ---------------------------------------------------------------- 3. quantizers vs gguf-py

#[test]
fn reference_quantizers_match_gguf_py_byte_for_byte() {
    let r = data("quantize_ref.json");
    let x = f32s(&hex(r["input_f32_hex"].as_str().unwrap()));
    let n_row = r["n_per_row"].as_u64().unwrap() as usize;
    let types = r["types"].as_object().unwrap();
    assert_eq!(types.len(), 7);
    for (name, want) in types {
        let ty = *ALL.iter().find(|t| t.name() == name).unwrap();
        let want = hex(want.as_str().unwrap());
        // Row by row, as ggml quantizes a matrix.
        let got: Vec<u8> = x.chunks(n_row).flat_map(|row| quantize(ty, row)).collect();
        let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
        assert_eq!(got.len(), want.len(), "{name}");
        assert!(first_diff.is_none(), "{name}: first differing byte {first_diff:?}");
    }
    let special = f32s(&hex(r["bf16_special_input_hex"].as_str().unwrap()));
    assert_eq!(quantize(BF16, &special), hex(r["bf16_special_hex"].as_str().unwrap()));
}

#[test]
fn bf16_matches_half_crate_except_nan_payloads() {
    let mut rng = Rng(7);
    let mut bits: Vec<u32> = (0..100_000).map(|_| rng.next_u64() as u32).collect();
    bits.extend([0, 0x8000_0000, 0x7f80_0000, 0xff80_0000, 0x3f80_8000, 0x3f81_8000, 0x7f7f_ffff]);
    for b in bits {
        let x = f32::from_bits(b);
        let ours = u16::from_le_bytes(quantize(BF16, &[x]).try_into().unwrap());
        if x.is_nan() {
            // ggml keeps the top payload bits and sets the quiet bit.
            assert_eq!(ours, ((b >> 16) | 64) as u16);
            assert!(dequantize(BF16, &ours.to_le_bytes(), 1)[0].is_nan());
        } else {
            assert_eq!(ours, half::bf16::from_f32(x).to_bits(), "{x:e}");
            let back = dequantize(BF16, &ours.to_le_bytes(), 1)[0];
            assert_eq!(back.to_bits(), half::bf16::from_bits(ours).to_f32().to_bits());
        }
    }
}

// ---------------------------------------------------------------- 2. round trips and dots

/// Bound on the relative RMS round-trip error `rms(x - deq(q(x))) / rms(x)` for N(0, 1) rows.
/// A uniform quantizer with step `h` has rms error `h/sqrt(12)`; with the block's range split
/// into 2^bits levels that gives roughly 2^-bits * (block range / rms) / sqrt(12). Measured
/// here (seed 42, 8192 values): F16 2.0e-4, BF16 1.6e-3, Q8_0/Q8_1 5.3e-3, Q8_K 6.9e-3 (one
/// scale per 256), Q6_K 1.8e-2, Q5_0 4.2e-2, Q5_1 3.8e-2, Q5_K 3.6e-2, Q4_0 8.6e-2,
/// Q4_1 7.8e-2, Q4_K 7.0e-2, Q3_K 0.15, Q2_K 0.29. Each bound is about 1.3x that, so a
/// regression (a wrong nibble order, a lost scale bit) fails while seed noise does not.
fn rms_bound(ty: GgmlType) -> f64 {
    match ty {
        F32 => 0.0,
        F16 => 3e-4,
        BF16 => 2.5e-3,
        Q8_0 | Q8_1 => 7e-3,
        Q8_K => 9e-3,
        Q6_K => 2.4e-2,
        Q5_0 => 5.5e-2,
        Q5_1 | Q5_K => 5e-2,
        Q4_0 => 0.11,
        Q4_1 => 0.1,
        Q4_K => 0.09,
        Q3_K => 0.2,
        Q2_K => 0.38,
    }
}

#[test]
fn round_trip_error_within_bounds() {
    let mut rng = Rng(42);
    let x: Vec<f32> = (0..8192).map(|_| rng.normal()).collect();
    let mut failures = Vec::new();
    for ty in ALL {
        let y = dequantize(ty, &quantize(ty, &x), x.len());
        let err: f64 = x.iter().zip(&y).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>();
        let sig: f64 = x.iter().map(|a| (*a as f64).powi(2)).sum::<f64>();
        let rel = (err / sig).sqrt();
        eprintln!("{ty}: relative rms error {rel:.2e} (bound {:.0e})", rms_bound(ty));
        if rel > rms_bound(ty) {
            failures.push(format!("{ty}: {rel:.3e}"));
        }
        // Quantizing what was dequantized must reproduce it (a fixed point of the grid), except
        // for formats whose scales are re-fitted (K-quants, Q4_1/Q5_1 min rounding).
        if matches!(ty, F32 | F16 | BF16 | Q8_0 | Q4_0 | Q5_0) {
            let z = dequantize(ty, &quantize(ty, &y), x.len());
            let err2: f64 = y.iter().zip(&z).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
            assert!((err2 / sig).sqrt() <= rms_bound(ty) * 0.1, "{ty}: requantize drift");
        }
    }
    assert!(failures.is_empty(), "over the bound: {failures:?}");
}

/// Tolerance of `vec_dot` against the f64 dot of the dequantized rows. The integer block sums
/// are exact, so what remains is f32 rounding of the scale products and of the running sum: a
/// few ulp per block, bounded by `DOT_REL * sum |w_i a_i|` (1e-5 leaves ample room at these
/// lengths). Q4_1/Q5_1 add their min term through Q8_1's block sum `s = d * sum(q)`, computed
/// with the unrounded `d` and stored as f16, while the dequantized activations use the f16 `d`:
/// two f16 roundings (2^-11 relative each, 2^-24 absolute near zero), so those get
/// `2^-10 * |m| * |sum a| + 2^-24 * |m|` more per block, with |m| <= max |w| there.
const DOT_REL: f64 = 1e-5;

fn dot_tolerance(ty: GgmlType, w: &[f32], a: &[f32]) -> f64 {
    let mag: f64 = w.iter().zip(a).map(|(x, y)| (*x as f64 * *y as f64).abs()).sum();
    let mut tol = DOT_REL * mag;
    if matches!(ty, Q4_1 | Q5_1) {
        for (wb, ab) in w.chunks(32).zip(a.chunks(32)) {
            let m = wb.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
            let s: f64 = ab.iter().map(|v| *v as f64).sum();
            tol += m * (s.abs() * 2f64.powi(-10) + 2f64.powi(-24));
        }
    }
    tol + 1e-30
}

#[test]
fn vec_dot_matches_f64_reference_and_scalar_twin() {
    let mut rng = Rng(1234);
    for ty in ALL {
        let at = vec_dot_type(ty);
        for &n in &[256usize, 512, 2048] {
            for _ in 0..4 {
                let w = quantize(ty, &rng.row(n));
                let x = rng.row(n);
                for act in [quantize(at, &x), {
                    let mut q = vec![0u8; at.row_bytes(n).unwrap()];
                    quantize_row_cpu(at, &x, &mut q).unwrap();
                    q
                }] {
                    check_vec_dot(ty, n, &w, &act).unwrap();
                    let (wd, ad) = (dequantize(ty, &w, n), dequantize(at, &act, n));
                    let exact: f64 = wd.iter().zip(&ad).map(|(a, b)| *a as f64 * *b as f64).sum();
                    let fast = vec_dot(ty, n, &w, &act);
                    let slow = vec_dot_scalar(ty, n, &w, &act);
                    assert_eq!(fast.to_bits(), slow.to_bits(), "{ty} n={n}: fast {fast} vs scalar {slow}");
                    let portable = vec_dot_portable(ty, n, &w, &act);
                    assert_eq!(portable.to_bits(), slow.to_bits(), "{ty} n={n}: portable build");
                    let tol = dot_tolerance(ty, &wd, &ad);
                    assert!(((fast as f64) - exact).abs() <= tol, "{ty} n={n}: {fast} vs {exact} (tol {tol:e})");
                }
            }
        }
    }
}

#[test]
fn float_dots_handle_lengths_that_are_not_multiples_of_the_lane_count() {
    let mut rng = Rng(99);
    for ty in [F32, F16, BF16] {
        for n in [1usize, 7, 31, 32, 33, 63, 100, 172, 1000] {
            let w = quantize(ty, &rng.row(n));
            let a = quantize(ty, &rng.row(n));
            let (wd, ad) = (dequantize(ty, &w, n), dequantize(ty, &a, n));
            let exact: f64 = wd.iter().zip(&ad).map(|(a, b)| *a as f64 * *b as f64).sum();
            let mag: f64 = wd.iter().zip(&ad).map(|(a, b)| (*a as f64 * *b as f64).abs()).sum();
            let fast = vec_dot(ty, n, &w, &a);
            assert_eq!(fast.to_bits(), vec_dot_scalar(ty, n, &w, &a).to_bits(), "{ty} n={n}");
            assert_eq!(fast.to_bits(), vec_dot_portable(ty, n, &w, &a).to_bits(), "{ty} n={n}");
            assert!(((fast as f64) - exact).abs() <= DOT_REL * mag, "{ty} n={n}");
        }
    }
}

// ---------------------------------------------------------------- activation quantizers

#[test]
fn q8_k_block_sums_and_scale() {
    let mut rng = Rng(5);
    let x = rng.row(1024);
    let q = quantize(Q8_K, &x);
    for (b, xs) in q.chunks_exact(Q8_K.type_size()).zip(x.chunks_exact(256)) {
        let d = f32::from_le_bytes(b[..4].try_into().unwrap());
        let qs: Vec<i32> = b[4..260].iter().map(|&v| v as i8 as i32).collect();
        for j in 0..16 {
            let bsum = i16::from_le_bytes(b[260 + 2 * j..262 + 2 * j].try_into().unwrap()) as i32;
            assert_eq!(bsum, qs[16 * j..16 * j + 16].iter().sum::<i32>());
        }
        // The value of largest magnitude maps to exactly -127 * sign... i.e. |q| = 127.
        let imax = (0..256).max_by(|&a, &b| xs[a].abs().total_cmp(&xs[b].abs())).unwrap();
        assert_eq!(qs[imax].abs(), 127);
        assert!((d * qs[imax] as f32 - xs[imax]).abs() <= xs[imax].abs() * 1e-6);
    }
    // An all-zero block is all zero, sums included.
    assert!(quantize(Q8_K, &[0.0; 256]).iter().all(|&b| b == 0));
}

#[test]
fn q8_reference_rounds_half_away_and_cpu_variant_rounds_half_even() {
    // amax 127 -> d = 1: x.5 values are exact ties.
    let mut x = [0f32; 32];
    x[0] = 127.0;
    x[1] = 2.5;
    x[2] = -2.5;
    x[3] = 3.5;
    let r = quantize(Q8_0, &x);
    assert_eq!(&r[2..6], &[127u8, 3, (-3i8) as u8, 4]);
    let mut c = vec![0u8; 34];
    quantize_row_cpu(Q8_0, &x, &mut c).unwrap();
    assert_eq!(&c[2..6], &[127u8, 2, (-2i8) as u8, 4]);
    // Away from ties the two agree almost everywhere, and never by more than one step.
    let mut rng = Rng(77);
    for ty in [Q8_0, Q8_1] {
        let x = rng.row(8192);
        let r = quantize(ty, &x);
        let mut c = vec![0u8; r.len()];
        quantize_row_cpu(ty, &x, &mut c).unwrap();
        let off = ty.type_size() - 32;
        let mut differ = 0;
        for (br, bc) in r.chunks_exact(ty.type_size()).zip(c.chunks_exact(ty.type_size())) {
            assert_eq!(br[..2], bc[..2], "{ty}: same d");
            for (a, b) in br[off..].iter().zip(&bc[off..]) {
                let d = (*a as i8 as i32 - *b as i8 as i32).abs();
                assert!(d <= 1);
                differ += d;
            }
        }
        assert!(differ < 8192 / 100, "{ty}: {differ} values differ");
    }
    for ty in [Q8_K, F16, BF16, Q4_0] {
        let x = rng.row(512);
        let mut c = vec![0u8; ty.row_bytes(512).unwrap()];
        quantize_row_cpu(ty, &x, &mut c).unwrap();
        assert_eq!(c, quantize(ty, &x), "{ty}");
    }
}

#[test]
fn vec_dot_types_follow_ggml_cpu() {
    let want: BTreeMap<GgmlType, GgmlType> = [
        (F32, F32),
        (F16, F16),
        (BF16, BF16),
        (Q4_0, Q8_0),
        (Q5_0, Q8_0),
        (Q8_0, Q8_0),
        (Q4_1, Q8_1),
        (Q5_1, Q8_1),
        (Q2_K, Q8_K),
        (Q3_K, Q8_K),
        (Q4_K, Q8_K),
        (Q5_K, Q8_K),
        (Q6_K, Q8_K),
    ]
    .into_iter()
    .collect();
    for (w, a) in want {
        assert_eq!(vec_dot_type(w), a, "{w}");
    }
}

// ---------------------------------------------------------------- bad lengths

#[test]
fn bad_lengths_are_typed_errors() {
    for ty in ALL {
        let bs = ty.block_size();
        let n = 2 * bs.max(32);
        let good = ty.row_bytes(n).unwrap();
        let x = vec![0.5f32; n];
        let mut y = vec![0f32; n];
        for bad in [0, good - 1, good + 1] {
            let src = vec![0u8; bad];
            assert_eq!(
                dequantize_row(ty, &src, &mut y),
                Err(QuantError::WrongLength { ty, expected: good, got: bad }),
                "{ty}"
            );
            let mut dst = vec![0u8; bad];
            assert!(matches!(quantize_row(ty, &x, &mut dst), Err(QuantError::WrongLength { .. })));
            assert!(matches!(check_vec_dot(ty, n, &src, &src), Err(QuantError::WrongLength { .. })));
        }
        if bs > 1 {
            let mut y = vec![0f32; bs + 1];
            let src = vec![0u8; good];
            assert_eq!(dequantize_row(ty, &src, &mut y), Err(QuantError::PartialBlock { ty, n: bs + 1, block: bs }));
            let mut dst = vec![0u8; good];
            assert!(matches!(quantize_row(ty, &x[..bs + 1], &mut dst), Err(QuantError::PartialBlock { .. })));
        }
        // Empty rows are fine.
        assert_eq!(dequantize_row(ty, &[], &mut []), Ok(()));
    }
}

#[test]
fn f16_conversion_matches_half_for_all_65536_values() {
    for b in 0..=u16::MAX {
        let ours = dequantize(F16, &b.to_le_bytes(), 1)[0];
        let want = half::f16::from_bits(b).to_f32();
        assert!(ours.to_bits() == want.to_bits() || (ours.is_nan() && want.is_nan()), "{b:#06x}: {ours} vs {want}");
        assert_eq!(ours.to_bits(), pocketllm::quant::blocks::f16_to_f32(b).to_bits());
    }
}

/// `matvec` (multi-row kernels where a type has them) against the f64 dot of the dequantized
/// rows, with row counts around the 4-row grouping (1..=9) and the prefetch reaching past the
/// end, and row lengths of one block and of many.
#[test]
fn matvec_matches_row_by_row_reference() {
    let mut rng = Rng(99);
    for ty in ALL.into_iter().filter(|t| !matches!(t, Q8_1 | Q8_K)) {
        let at = vec_dot_type(ty);
        for &n in &[ty.block_size().max(32), 576, 1536] {
            if ty.row_bytes(n).is_none() {
                continue;
            }
            for rows in 1..=9 {
                let w = quantize(ty, &rng.row(n * rows));
                let act = quantize(at, &rng.row(n));
                let mut out = vec![f32::NAN; rows];
                matvec(ty, n, &w, &act, &mut out);
                let rb = ty.row_bytes(n).unwrap();
                let ad = dequantize(at, &act, n);
                for (r, &got) in out.iter().enumerate() {
                    let wd = dequantize(ty, &w[r * rb..(r + 1) * rb], n);
                    let exact: f64 = wd.iter().zip(&ad).map(|(a, b)| *a as f64 * *b as f64).sum();
                    let tol = dot_tolerance(ty, &wd, &ad);
                    assert!(((got as f64) - exact).abs() <= tol, "{ty} n={n} rows={rows} row {r}: {got} vs {exact}");
                }
            }
        }
    }
}
